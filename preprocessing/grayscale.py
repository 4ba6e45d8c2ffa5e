"""Grayscale conversion with a choice of luma weights (--use_grayscale).

TF-Slim calls tf.image.rgb_to_grayscale, i.e. Rec. 601. The thesis compared three
formulas, so the weights are selectable. The weights sum to 1, so graying commutes
with the per-channel affine steps of the preprocessings (mean subtraction, [-1, 1]
scaling, brightness, contrast): the factory grays once, just before normalisation.
"""

import tensorflow as tf

FORMULAS = {
    'rec601': (0.299, 0.587, 0.114),     # SDTV luma, as tf.image.rgb_to_grayscale
    'rec709': (0.2126, 0.7152, 0.0722),  # HDTV luma
    'mean': (1.0 / 3, 1.0 / 3, 1.0 / 3),  # plain average of R, G, B
}


def weights(formula='rec601'):
  """The (r, g, b) weights of a formula name."""
  if formula not in FORMULAS:
    raise ValueError('grayscale_formula: expected one of %s, got %r'
                     % ('|'.join(sorted(FORMULAS)), formula))
  return FORMULAS[formula]


def to_grayscale(image, formula='rec601'):
  """[H, W, 3] float -> [H, W, 1] float (a 1-channel image is returned unchanged)."""
  if image.shape[-1] == 1:
    return image
  w = tf.constant(weights(formula), image.dtype)
  return tf.reduce_sum(image * w, axis=-1, keepdims=True)


def gray_value(rgb, formula='rec601'):
  """Luma of one RGB triple, e.g. a dataset mean, as a Python float."""
  return float(sum(c * w for c, w in zip(rgb, weights(formula))))


def repeat_channels(image, channels):
  """Repeats a 1-channel image to `channels` (1 or 3), for nets built for RGB."""
  if channels not in (1, 3):
    raise ValueError('grayscale_channels: expected 1 or 3, got %r' % (channels,))
  if image.shape[-1] == 1 and channels == 3:
    return tf.tile(image, [1, 1, 3])
  return image
