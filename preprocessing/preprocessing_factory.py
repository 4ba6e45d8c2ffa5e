"""Preprocessing by name, as TF-Slim's preprocessing_factory.

get_preprocessing(name, is_training=False, **options) returns
fn(image, height, width, seed=None) -> float32 [height, width, C] for one uint8
image [H, W, C] (C = 1 or 3). `name` is a preprocessing or a net name:

  a preset name                              -> itself (PRESETS)
  a net of nets_factory                      -> its NetSpec's preprocessing
  TF-Slim's other nets: inception*, mobilenet*, nasnet*, pnasnet* -> inception,
                        resnet*, vgg*                             -> vgg

Options (all off or preset-default unless given; None means default):
  use_grayscale, grayscale_formula ('rec601'|'rec709'|'mean'), grayscale_channels
  (1, or 3 to repeat a gray image for RGB nets); image_filter (filters.NAMES),
  filter_size, trim ('one'|'quarter'), adaptive_m, filter_padding; for training:
  random_flip (None = preset's own, True/False to force), pad_crop (pixels), pad_mode,
  color_jitter (strength), cutout_size (fraction of the side), cutout_prob; and each
  preset's own (inception: fast_mode, random_crop, central_fraction; vgg:
  resize_side_min, resize_side_max; cifarnet and cifar: padding). The order of the
  stages is documented in preprocessing/compose.py. Mixup and CutMix act on batches:
  see preprocessing.augment.batch_mix.
"""

from nets import nets_factory
from preprocessing import cifar_preprocessing
from preprocessing import cifarnet_preprocessing
from preprocessing import compose
from preprocessing import inception_preprocessing
from preprocessing import lenet_preprocessing
from preprocessing import vgg_preprocessing

PRESETS = {
    'cifar': cifar_preprocessing.PRESET,
    'cifarnet': cifarnet_preprocessing.PRESET,
    'inception': inception_preprocessing.PRESET,
    'lenet': lenet_preprocessing.PRESET,
    'vgg': vgg_preprocessing.PRESET,
}

# TF-Slim's other nets (not built here) by family, so its --preprocessing_name
# values keep working; our nets' own choice is their NetSpec's.
_SLIM_FAMILIES = (('inception', 'inception'), ('mobilenet', 'inception'),
                  ('nasnet', 'inception'), ('pnasnet', 'inception'),
                  ('resnet', 'vgg'), ('vgg', 'vgg'))


def preset_name(name):
  """The preset used for a preprocessing or net name, e.g. 'resnet_v1_50' -> 'vgg'."""
  if name in PRESETS:
    return name
  if name in nets_factory.networks_map:
    return nets_factory.get_spec(name).preprocessing
  for prefix, preset in _SLIM_FAMILIES:
    if name.startswith(prefix):
      return preset
  raise ValueError('preprocessing_name: unknown %r; expected one of %s, or a net name '
                   '(%s; or TF-Slim\'s inception_*, mobilenet_*, nasnet_*, pnasnet_*, '
                   'resnet_*, vgg_*)' % (name, '|'.join(sorted(PRESETS)),
                                         ', '.join(nets_factory.list_networks())))


def get_preprocessing(name, is_training=False, **options):
  """fn(image, height, width, seed=None) -> float32 [height, width, C]."""
  return compose.build(PRESETS[preset_name(name)], is_training, **options)
