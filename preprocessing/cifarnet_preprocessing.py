"""TF-Slim's cifarnet preprocessing.

Train: zero-pad by 4, random crop to the output size, random flip, random
brightness (max delta 63 on 0..255) and contrast (0.2 to 1.8), per-image
standardisation. Eval: crop or pad to the output size, per-image standardisation.
"""

import tensorflow as tf

from preprocessing import compose
from preprocessing import seeds as seeds_lib

PADDING = 4
BRIGHTNESS_MAX_DELTA = 63.0
CONTRAST_RANGE = (0.2, 1.8)


def train_geometry(image, height, width, seed, flip=True, padding=PADDING,
                   pad_mode='constant', **unused):
  """uint8 [H, W, C] -> float32 [height, width, C], values 0..255."""
  del unused
  s_crop, s_flip = seeds_lib.split(seed, 2)
  image = tf.cast(image, tf.float32)
  if padding > 0:
    image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]],
                   mode=pad_mode.upper())
  # Slim crops straight from the padded image; pad further (zeros) if it is still
  # smaller than the output, e.g. MNIST's 28 x 28 at 40.
  shape = tf.shape(image)
  image = tf.image.resize_with_crop_or_pad(
      image, tf.maximum(shape[0], height), tf.maximum(shape[1], width))
  image = tf.image.stateless_random_crop(image, [height, width, image.shape[-1]],
                                         s_crop)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, s_flip)
  return image


def photometric(image, seed, **unused):
  """Slim's random brightness then random contrast (no clipping, as Slim)."""
  del unused
  s_bright, s_contrast = seeds_lib.split(seed, 2)
  image = tf.image.stateless_random_brightness(image, BRIGHTNESS_MAX_DELTA, s_bright)
  return tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, seed=s_contrast)


def eval_geometry(image, height, width, **unused):
  """Central crop, or zero padding, to height x width."""
  del unused
  return tf.image.resize_with_crop_or_pad(tf.cast(image, tf.float32), height, width)


def normalize(image, formula='rec601'):
  """Per-image standardisation: zero mean, unit variance over all values."""
  del formula
  return tf.image.per_image_standardization(image)


PRESET = compose.Preset(
    name='cifarnet', train_geometry=train_geometry, eval_geometry=eval_geometry,
    photometric=photometric, normalize=normalize,
    options={'padding': PADDING},
    own_padding=True)


def preprocess_image(image, height, width, is_training=False, seed=None, **options):
  """Slim-style entry point: uint8 [H, W, C] -> float32 [height, width, C]."""
  return compose.build(PRESET, is_training, **options)(image, height, width, seed)
