"""Builds a preprocessing fn from a preset's stages plus the common options.

Every preprocessing runs the same stages, in this order:

  1. image_filter           uint8 noise filter (filters.py), off by default
  2. geometry               preset: crop / resize / pad-and-crop / flip -> float 0..255
  3. pad_crop               extra random translation (presets without their own)
  4. photometric            preset: Slim's colour distortion (inception, cifarnet)
  5. color_jitter           extra colour jitter, off by default
  6. grayscale              use_grayscale, with the chosen luma formula
  7. normalize              preset: [-1, 1], mean subtraction or standardisation
  8. cutout                 random erasing after normalisation, off by default
  9. grayscale_channels     repeat a 1-channel result to 3 channels if asked

Stages 3, 4, 5 and 8 run in training only. This is TF-Slim's order for each preset:
where Slim grays earlier (cifarnet, vgg) the steps in between are per-channel
affine maps, which commute with a weighted channel sum whose weights sum to 1.

The returned fn is fn(image, height, width, seed=None): `seed` is a [2] int seed
for the stateless random ops (the input pipeline passes one per element); None
draws a fresh random seed, i.e. non-deterministic augmentation.
"""

import collections
import numbers

import tensorflow as tf

from preprocessing import augment
from preprocessing import filters
from preprocessing import grayscale
from preprocessing import seeds as seeds_lib

# name: a preset's name, for error messages.
# train_geometry(image, height, width, seed, flip, **opts) -> float [h, w, C] 0..255
# eval_geometry(image, height, width, **opts) -> float [h, w, C] 0..255
# photometric(image, seed, **opts) -> image, or None
# normalize(image, formula) -> float
# options: the preset's own options and their defaults.
# own_padding: the preset pads-and-crops itself (then pad_crop sets its padding).
Preset = collections.namedtuple(
    'Preset', 'name train_geometry eval_geometry photometric normalize options '
    'own_padding')

# Options every preprocessing accepts, with their defaults.
COMMON_OPTIONS = {
    'use_grayscale': False,
    'grayscale_formula': 'rec601',
    'grayscale_channels': 1,
    'image_filter': None,
    'filter_size': 3,
    'trim': 'one',
    'adaptive_m': None,
    'filter_padding': 'reflect',
    'random_flip': None,      # None: the preset's own choice
    'pad_crop': 0,            # 0: the preset's own padding (or none)
    'pad_mode': None,         # None: 'reflect', or the preset's own mode
    'color_jitter': 0.0,
    'cutout_size': 0.0,       # fraction of min(height, width)
    'cutout_prob': 1.0,
}


def build(preset, is_training=False, **options):
  """fn(image, height, width, seed=None) for `preset` with `options` applied."""
  opts = _resolve_options(preset, options)
  own = {k: opts[k] for k in preset.options}
  if opts['pad_crop'] and preset.own_padding:
    own['padding'] = opts['pad_crop']
  if opts['pad_mode'] and preset.own_padding:
    own['pad_mode'] = opts['pad_mode']
  geometry_kw = dict(own)
  if opts['random_flip'] is not None:
    geometry_kw['flip'] = bool(opts['random_flip'])
  extra_padding = 0 if preset.own_padding else opts['pad_crop']

  def preprocessing_fn(image, height, width, seed=None):
    image = _check_image(preset.name, image)
    height, width = _check_size(preset.name, height, width)
    if opts['image_filter']:
      image = filters.apply_filter(
          image, opts['image_filter'], opts['filter_size'], trim=opts['trim'],
          m=opts['adaptive_m'], padding=opts['filter_padding'])
    channels = image.shape[-1]
    if is_training:
      s_geo, s_pad, s_photo, s_jitter, s_cut = seeds_lib.split(
          seeds_lib.resolve(seed), 5)
      image = preset.train_geometry(image, height, width, s_geo, **geometry_kw)
      # Crops of dynamic size lose the static shape, which later stages and
      # batching need (in a tf.data graph; eager tensors always have it).
      image = tf.ensure_shape(image, [height, width, channels])
      image = augment.pad_and_crop(image, extra_padding, s_pad,
                                   opts['pad_mode'] or 'reflect')
      if preset.photometric is not None:
        image = preset.photometric(image, s_photo, **own)
      image = augment.color_jitter(image, opts['color_jitter'], s_jitter)
    else:
      image = tf.ensure_shape(preset.eval_geometry(image, height, width, **own),
                              [height, width, channels])
    if opts['use_grayscale']:
      image = grayscale.to_grayscale(image, opts['grayscale_formula'])
    image = preset.normalize(image, opts['grayscale_formula'])
    if is_training:
      image = augment.cutout(image, opts['cutout_size'], opts['cutout_prob'], s_cut)
    image = grayscale.repeat_channels(image, opts['grayscale_channels'])
    image = tf.ensure_shape(tf.cast(image, tf.float32),
                            [height, width, image.shape[-1]])
    return image

  return preprocessing_fn


def _resolve_options(preset, options):
  known = dict(COMMON_OPTIONS)
  known.update(preset.options)
  unknown = sorted(set(options) - set(known))
  if unknown:
    raise ValueError('preprocessing %r: unknown option %r; expected one of %s'
                     % (preset.name, unknown[0], ', '.join(sorted(known))))
  opts = dict(known)
  # None means 'default' (so unset flags can be passed straight through).
  opts.update({k: v for k, v in options.items() if v is not None})
  _check_options(opts)
  return opts


def _check_options(opts):
  """Fails fast, at build time, on values the stages would reject later."""
  grayscale.weights(opts['grayscale_formula'])
  if opts['grayscale_channels'] not in (1, 3):
    raise ValueError('grayscale_channels: expected 1 or 3, got %r'
                     % (opts['grayscale_channels'],))
  name = opts['image_filter']
  if name is not None:
    if name not in filters.NAMES:
      raise ValueError('image_filter: expected one of %s, got %r'
                       % ('|'.join(filters.NAMES), name))
    size = opts['filter_size']
    filters._check_size(size)  # pylint: disable=protected-access
    filters.trim_count(size * size, opts['trim'])
    filters.adaptive_count(size * size, opts['adaptive_m'])
    if opts['filter_padding'] not in filters.PADDINGS:
      raise ValueError('filter_padding: expected one of %s, got %r'
                       % ('|'.join(filters.PADDINGS), opts['filter_padding']))
  if not isinstance(opts['pad_crop'], numbers.Integral) or opts['pad_crop'] < 0:
    raise ValueError('pad_crop: expected an int >= 0, got %r' % (opts['pad_crop'],))
  if opts['pad_mode'] is not None and opts['pad_mode'] not in augment.PAD_MODES:
    raise ValueError('pad_mode: expected one of %s, got %r'
                     % ('|'.join(augment.PAD_MODES), opts['pad_mode']))
  if opts['color_jitter'] < 0:
    raise ValueError('color_jitter: expected >= 0, got %r' % (opts['color_jitter'],))
  for flag in ('cutout_size', 'cutout_prob'):
    if not 0.0 <= opts[flag] <= 1.0:
      raise ValueError('%s: expected a value in [0, 1], got %r' % (flag, opts[flag]))


def _check_image(name, image):
  image = tf.convert_to_tensor(image)
  if image.dtype != tf.uint8 or image.shape.rank != 3 or image.shape[-1] not in (1, 3):
    raise ValueError('preprocessing %r: expected one uint8 image [H, W, C] with C = 1 '
                     'or 3 known statically, got %s %s'
                     % (name, image.dtype.name, image.shape))
  return image


def _check_size(name, height, width):
  for flag, value in (('height', height), ('width', width)):
    if not isinstance(value, numbers.Integral) or value < 1:
      raise ValueError('preprocessing %r: %s must be a positive int, got %r'
                       % (name, flag, value))
  return int(height), int(width)
