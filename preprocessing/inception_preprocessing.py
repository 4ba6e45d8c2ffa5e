"""TF-Slim's inception preprocessing (Inception, MobileNet, NASNet nets).

Train: a distorted bounding-box crop (tf.image.sample_distorted_bounding_box with
Slim's parameters), resize to the output size, random flip, colour distortion, scale
to [-1, 1]. Eval: central crop of 0.875 of the image, bilinear resize, scale to
[-1, 1]. Stages work on float values on the 0..255 scale; the factory composes them
(see preprocessing_factory) and `preprocess_image` is the Slim-style entry point.
"""

import tensorflow as tf

from preprocessing import compose
from preprocessing import seeds as seeds_lib

# Slim's distorted_bounding_box_crop defaults.
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
CENTRAL_FRACTION = 0.875

# Slim's fast_mode=False picks one of these at random per image.
RESIZE_METHODS = ('bilinear', 'nearest', 'bicubic', 'area')

def distorted_bounding_box_crop(image, seed):
  """A random crop covering 5-100% of the image with aspect ratio 3:4 to 4:3."""
  whole_image = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), bounding_boxes=whole_image, seed=seed,
      min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
      area_range=AREA_RANGE, max_attempts=MAX_ATTEMPTS,
      use_image_if_no_bounding_boxes=True)
  return tf.slice(image, begin, size)


def _resize(image, height, width, seed, fast_mode):
  if fast_mode:
    return tf.image.resize(image, [height, width], method='bilinear')
  choice = tf.random.stateless_uniform([], seed, 0, len(RESIZE_METHODS), dtype=tf.int32)
  branches = [lambda m=m: tf.cast(tf.image.resize(image, [height, width], method=m),
                                  tf.float32)
              for m in RESIZE_METHODS]
  return tf.switch_case(choice, branches)


def train_geometry(image, height, width, seed, flip=True, fast_mode=True,
                   random_crop=True, **unused):
  """uint8 [H, W, C] -> float32 [height, width, C], values 0..255."""
  del unused
  s_box, s_resize, s_flip = seeds_lib.split(seed, 3)
  if random_crop:
    image = distorted_bounding_box_crop(image, s_box)
  image = tf.cast(_resize(image, height, width, s_resize, fast_mode), tf.float32)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, s_flip)
  return image


def distort_color(image, ordering, seeds, fast_mode=True):
  """Slim's distort_color on [0, 1] values; `ordering` is a Python int 0..3.

  fast_mode: brightness and saturation (ordering 0: in that order, else reversed);
  otherwise brightness, saturation, hue and contrast in one of four orders.
  Saturation and hue need RGB and are skipped for 1-channel images.
  """
  rgb = image.shape[-1] == 3
  ops = {
      'brightness': lambda x: tf.image.stateless_random_brightness(
          x, 32. / 255., seeds[0]),
      'saturation': lambda x: (tf.image.stateless_random_saturation(
          x, 0.5, 1.5, seeds[1]) if rgb else x),
      'hue': lambda x: (tf.image.stateless_random_hue(x, 0.2, seeds[2])
                        if rgb else x),
      'contrast': lambda x: tf.image.stateless_random_contrast(
          x, 0.5, 1.5, seeds[3]),
  }
  if fast_mode:
    order = ['brightness', 'saturation'] if ordering == 0 else [
        'saturation', 'brightness']
  else:
    order = [['brightness', 'saturation', 'hue', 'contrast'],
             ['saturation', 'brightness', 'contrast', 'hue'],
             ['contrast', 'hue', 'brightness', 'saturation'],
             ['hue', 'saturation', 'contrast', 'brightness']][ordering]
  for name in order:
    image = ops[name](image)
  return tf.clip_by_value(image, 0.0, 1.0)


def photometric(image, seed, fast_mode=True, **unused):
  """Slim's colour distortion on 0..255 values.

  As Slim: fast_mode uses ordering 0 only (num_distort_cases = 1); otherwise one of
  the four orderings is drawn per image.
  """
  del unused
  s_order, s_ops = seeds_lib.split(seed, 2)
  op_seeds = seeds_lib.split(s_ops, 4)
  image = image / 255.0
  if fast_mode:
    image = distort_color(image, 0, op_seeds, fast_mode=True)
  else:
    choice = tf.random.stateless_uniform([], s_order, 0, 4, dtype=tf.int32)
    image = tf.switch_case(choice, [
        lambda k=k: distort_color(image, k, op_seeds, fast_mode=False)
        for k in range(4)])
  return image * 255.0


def eval_geometry(image, height, width, central_fraction=CENTRAL_FRACTION, **unused):
  """Central crop of `central_fraction` of the image, then bilinear resize."""
  del unused
  if central_fraction:
    image = tf.image.central_crop(image, central_fraction=central_fraction)
  return tf.cast(tf.image.resize(image, [height, width], method='bilinear'),
                 tf.float32)


def normalize(image, formula='rec601'):
  """0..255 -> [-1, 1], as Slim's (x - 0.5) * 2 on [0, 1] values."""
  del formula
  return image / 127.5 - 1.0


PRESET = compose.Preset(
    name='inception', train_geometry=train_geometry, eval_geometry=eval_geometry,
    photometric=photometric, normalize=normalize,
    options={'fast_mode': True, 'random_crop': True,
             'central_fraction': CENTRAL_FRACTION},
    own_padding=False)


def preprocess_image(image, height, width, is_training=False, seed=None, **options):
  """Slim-style entry point: uint8 [H, W, C] -> float32 [height, width, C]."""
  return compose.build(PRESET, is_training, **options)(image, height, width, seed)
