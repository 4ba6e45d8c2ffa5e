"""TF-Slim's lenet preprocessing: crop or pad to the output size, (x - 128) / 128.

As Slim, training and evaluation are the same (no augmentation of its own; digits
are not flipped), giving values in [-1, 127/128].
"""

import tensorflow as tf

from preprocessing import compose
from preprocessing import seeds as seeds_lib


def train_geometry(image, height, width, seed, flip=False, **unused):
  """Slim's resize_image_with_crop_or_pad, plus a flip only if asked for."""
  del unused
  image = eval_geometry(image, height, width)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, seeds_lib.split(seed, 1)[0])
  return image


def eval_geometry(image, height, width, **unused):
  """Central crop, or zero padding, to height x width."""
  del unused
  return tf.image.resize_with_crop_or_pad(tf.cast(image, tf.float32), height, width)


def normalize(image, formula='rec601'):
  del formula
  return (image - 128.0) / 128.0


PRESET = compose.Preset(
    name='lenet', train_geometry=train_geometry, eval_geometry=eval_geometry,
    photometric=None, normalize=normalize, options={}, own_padding=False)


def preprocess_image(image, height, width, is_training=False, seed=None, **options):
  """Slim-style entry point: uint8 [H, W, C] -> float32 [height, width, C]."""
  return compose.build(PRESET, is_training, **options)(image, height, width, seed)
