"""A cheap preset for training small images at their native size (CIFAR-style).

Train: random crop after reflect-padding by 4, random flip, normalisation with the
per-channel CIFAR-10 mean and std. Eval: normalisation only. Images of another
size are first resized (bilinear) to the output size.
"""

import tensorflow as tf

from preprocessing import augment
from preprocessing import compose
from preprocessing import grayscale
from preprocessing import seeds as seeds_lib

PADDING = 4
# Per-channel mean and std of the CIFAR-10 training pixels, on [0, 1].
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def fit(image, height, width):
  """uint8 [H, W, C] -> float32 [height, width, C]: a resize only if sizes differ."""
  image = tf.cast(image, tf.float32)
  if image.shape[0] == height and image.shape[1] == width:
    return image
  shape = tf.shape(image)
  same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
  return tf.cond(same, lambda: image,
                 lambda: tf.image.resize(image, [height, width], method='bilinear'))


def train_geometry(image, height, width, seed, flip=True, padding=PADDING,
                   pad_mode='reflect', **unused):
  """uint8 [H, W, C] -> float32 [height, width, C], values 0..255."""
  del unused
  s_crop, s_flip = seeds_lib.split(seed, 2)
  image = augment.pad_and_crop(fit(image, height, width), padding, s_crop, pad_mode)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, s_flip)
  return image


def eval_geometry(image, height, width, **unused):
  del unused
  return fit(image, height, width)


def normalize(image, formula='rec601'):
  """(x / 255 - mean) / std per channel; for 1 channel the luma of mean and std."""
  if image.shape[-1] == 1:
    mean = grayscale.gray_value(MEAN, formula)
    std = grayscale.gray_value(STD, formula)
  else:
    mean = tf.constant(MEAN, tf.float32)
    std = tf.constant(STD, tf.float32)
  return (image / 255.0 - mean) / std


PRESET = compose.Preset(
    name='cifar', train_geometry=train_geometry, eval_geometry=eval_geometry,
    photometric=None, normalize=normalize, options={'padding': PADDING},
    own_padding=True)


def preprocess_image(image, height, width, is_training=False, seed=None, **options):
  """Slim-style entry point: uint8 [H, W, C] -> float32 [height, width, C]."""
  return compose.build(PRESET, is_training, **options)(image, height, width, seed)
