"""The noise filters studied in the thesis, as tf ops on one uint8 image.

Each filter looks at the size x size window around every pixel, per channel, and
returns a uint8 image of the same shape. Windows come from tf.image.extract_patches
and are sorted along the window axis, so every filter is a few vectorised ops.

Border rule: the image is padded by size // 2 pixels before the windows are taken,
so the output has the input's size. 'reflect' (default) mirrors about the edge pixel
without repeating it (d c b | a b c d | c b a, numpy's and tf.pad's REFLECT; needs
size // 2 < height and width); 'symmetric' mirrors including the edge pixel
(b a | a b c d | d c, SYMMETRIC; needs size // 2 <= height and width).

Averages are rounded to the nearest integer (ties to even) and clipped to 0..255.
"""

import tensorflow as tf

NAMES = ('median', 'mean', 'trimmed_mean', 'trimmed_mean_quarter',
         'closest_to_mean', 'adaptive_mean')
TRIMS = ('one', 'quarter')
PADDINGS = ('reflect', 'symmetric')


def windows(image, size, padding='reflect'):
  """uint8 [H, W, C] -> int32 [H, W, C, size*size], each window in raster order."""
  _check_size(size)
  if padding not in PADDINGS:
    raise ValueError('filter_padding: expected one of %s, got %r'
                     % ('|'.join(PADDINGS), padding))
  r = size // 2
  channels = image.shape[-1]
  padded = tf.pad(image, [[r, r], [r, r], [0, 0]], mode=padding.upper())
  patches = tf.image.extract_patches(
      padded[tf.newaxis], sizes=[1, size, size, 1], strides=[1, 1, 1, 1],
      rates=[1, 1, 1, 1], padding='VALID')[0]
  # A patch vector is ordered (row, col, channel); move the window axis last.
  shape = tf.shape(image)
  patches = tf.reshape(patches, [shape[0], shape[1], size * size, channels])
  return tf.transpose(tf.cast(patches, tf.int32), [0, 1, 3, 2])


def median_filter(image, size=3, padding='reflect'):
  """Median of each window (size must be odd, so the median is one pixel value)."""
  sorted_values = tf.sort(windows(image, size, padding), axis=-1)
  return _to_uint8(sorted_values[..., (size * size) // 2])


def mean_filter(image, size=3, padding='reflect'):
  """Mean of each window."""
  values = windows(image, size, padding)
  return _rounded_mean(tf.reduce_sum(values, axis=-1), size * size)


def trimmed_mean_filter(image, size=3, trim='one', padding='reflect'):
  """Mean of each window without its k smallest and k largest values.

  trim='one': k = 1; trim='quarter': k = (size*size) // 4 (2 of 9, 6 of 25).
  """
  n = size * size
  k = trim_count(n, trim)
  sorted_values = tf.sort(windows(image, size, padding), axis=-1)
  kept = sorted_values[..., k:n - k]
  return _rounded_mean(tf.reduce_sum(kept, axis=-1), n - 2 * k)


def closest_to_mean_filter(image, size=3, padding='reflect'):
  """The window value closest to the window mean (the smaller one on a tie).

  Compared exactly in integers: |n * v - sum| instead of |v - sum / n|.
  """
  n = size * size
  sorted_values = tf.sort(windows(image, size, padding), axis=-1)
  total = tf.reduce_sum(sorted_values, axis=-1, keepdims=True)
  distance = tf.abs(n * sorted_values - total)
  # argmin returns the first minimum, i.e. the smaller value of a tie.
  best = tf.argmin(distance, axis=-1, output_type=tf.int32)
  return _to_uint8(tf.gather(sorted_values, best, axis=-1, batch_dims=3))


def adaptive_mean_filter(image, size=3, m=None, padding='reflect'):
  """Mean of the m window values nearest to the centre pixel's value.

  The centre pixel itself is one of them (distance 0). Ties in distance go to the
  smaller value. m defaults to (size*size) // 2 + 1, a majority of the window.
  """
  n = size * size
  m = adaptive_count(n, m)
  values = windows(image, size, padding)
  centre = values[..., n // 2:n // 2 + 1]
  sorted_values = tf.sort(values, axis=-1)
  # Stable sort by distance over the value-sorted window: ties keep smaller first.
  order = tf.argsort(tf.abs(sorted_values - centre), axis=-1, stable=True)
  nearest = tf.gather(sorted_values, order[..., :m], axis=-1, batch_dims=3)
  return _rounded_mean(tf.reduce_sum(nearest, axis=-1), m)


def apply_filter(image, name, size=3, trim='one', m=None, padding='reflect'):
  """Applies the filter `name` (one of NAMES) to a uint8 [H, W, C] image."""
  if image.dtype != tf.uint8:
    raise ValueError('image_filter: expected a uint8 image, got %s' % image.dtype.name)
  if name == 'median':
    return median_filter(image, size, padding)
  if name == 'mean':
    return mean_filter(image, size, padding)
  if name == 'trimmed_mean':
    return trimmed_mean_filter(image, size, trim, padding)
  if name == 'trimmed_mean_quarter':
    return trimmed_mean_filter(image, size, 'quarter', padding)
  if name == 'closest_to_mean':
    return closest_to_mean_filter(image, size, padding)
  if name == 'adaptive_mean':
    return adaptive_mean_filter(image, size, m, padding)
  raise ValueError('image_filter: expected one of %s, got %r' % ('|'.join(NAMES), name))


def trim_count(n, trim):
  """How many values a trimmed mean drops at each end of an n-value window."""
  if trim not in TRIMS:
    raise ValueError('trim: expected one of %s, got %r' % ('|'.join(TRIMS), trim))
  return 1 if trim == 'one' else n // 4


def adaptive_count(n, m):
  """The m of the adaptive mean: given, or (n // 2 + 1); must be in 1..n."""
  if m is None:
    return n // 2 + 1
  if not isinstance(m, int) or not 1 <= m <= n:
    raise ValueError('adaptive_m: expected an int in 1..%d for a %d-pixel window, got '
                     '%r' % (n, n, m))
  return m


def _check_size(size):
  if not isinstance(size, int) or size < 3 or size % 2 == 0:
    raise ValueError('filter_size: expected an odd int >= 3, got %r' % (size,))


def _rounded_mean(total, count):
  # int32 sums divided in float64: exact enough that rounding matches numpy.
  mean = tf.cast(total, tf.float64) / float(count)
  return _to_uint8(tf.round(mean))


def _to_uint8(values):
  return tf.cast(tf.clip_by_value(values, 0, 255), tf.uint8)
