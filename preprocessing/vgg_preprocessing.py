"""TF-Slim's vgg preprocessing (VGG and ResNet nets).

Train: aspect-preserving resize of the shorter side to a random length in
[resize_side_min, resize_side_max], random crop to the output size, random flip,
subtraction of the ImageNet RGB means. Eval: resize of the shorter side to
resize_side_min, central crop, mean subtraction.

Slim's sides (256, 512) are for a 224 output. Here they default to
round(256 * size / 224) and round(512 * size / 224) with size = max(height, width),
so 224 gives Slim's values and other sizes (e.g. CIFAR-10 at 32, or upscaled to 224
as in the thesis) keep the same crop-to-image ratio.
"""

import tensorflow as tf

from preprocessing import compose
from preprocessing import grayscale
from preprocessing import seeds as seeds_lib

MEANS = (123.68, 116.78, 103.94)  # R, G, B
RESIZE_SIDE_MIN = 256
RESIZE_SIDE_MAX = 512
REFERENCE_SIZE = 224  # the output size Slim's resize sides are meant for


def resize_sides(height, width, resize_side_min=None, resize_side_max=None):
  """(min, max) resize side for an output of height x width."""
  size = max(height, width)
  low = resize_side_min or int(round(RESIZE_SIDE_MIN * size / REFERENCE_SIZE))
  high = resize_side_max or int(round(RESIZE_SIDE_MAX * size / REFERENCE_SIZE))
  if low < size or high < low:
    raise ValueError('vgg preprocessing: need max(height, width) = %d <= '
                     'resize_side_min = %d <= resize_side_max = %d'
                     % (size, low, high))
  return low, high


def aspect_preserving_resize(image, smallest_side):
  """Bilinear resize so that the shorter side is `smallest_side` (Slim's rounding)."""
  shape = tf.shape(image)
  height = tf.cast(shape[0], tf.float32)
  width = tf.cast(shape[1], tf.float32)
  scale = tf.cast(smallest_side, tf.float32) / tf.minimum(height, width)
  new_height = tf.cast(tf.math.rint(height * scale), tf.int32)
  new_width = tf.cast(tf.math.rint(width * scale), tf.int32)
  return tf.image.resize(image, [new_height, new_width], method='bilinear')


def central_crop(image, height, width):
  """The height x width centre of the image (Slim's offsets: (H - h) // 2)."""
  shape = tf.shape(image)
  top = (shape[0] - height) // 2
  left = (shape[1] - width) // 2
  return tf.slice(image, [top, left, 0], [height, width, -1])


def train_geometry(image, height, width, seed, flip=True, resize_side_min=None,
                   resize_side_max=None, **unused):
  """uint8 [H, W, C] -> float32 [height, width, C], values 0..255."""
  del unused
  low, high = resize_sides(height, width, resize_side_min, resize_side_max)
  s_side, s_crop, s_flip = seeds_lib.split(seed, 3)
  side = tf.random.stateless_uniform([], s_side, low, high + 1, dtype=tf.int32)
  image = aspect_preserving_resize(image, side)
  image = tf.image.stateless_random_crop(image, [height, width, image.shape[-1]],
                                         s_crop)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, s_flip)
  return image


def eval_geometry(image, height, width, resize_side_min=None, resize_side_max=None,
                  **unused):
  """Shorter side to resize_side_min, then the central height x width crop."""
  del unused
  low, _ = resize_sides(height, width, resize_side_min, resize_side_max)
  return central_crop(aspect_preserving_resize(image, low), height, width)


def normalize(image, formula='rec601'):
  """Subtracts the RGB means (their luma for a 1-channel image)."""
  if image.shape[-1] == 1:
    return image - grayscale.gray_value(MEANS, formula)
  return image - tf.constant(MEANS, tf.float32)


PRESET = compose.Preset(
    name='vgg', train_geometry=train_geometry, eval_geometry=eval_geometry,
    photometric=None, normalize=normalize,
    options={'resize_side_min': None, 'resize_side_max': None},
    own_padding=False)


def preprocess_image(image, height, width, is_training=False, seed=None, **options):
  """Slim-style entry point: uint8 [H, W, C] -> float32 [height, width, C]."""
  return compose.build(PRESET, is_training, **options)(image, height, width, seed)
