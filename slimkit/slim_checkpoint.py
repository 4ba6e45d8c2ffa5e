"""TF-Slim's checkpoints (TF1, name-based): find, fetch and read them into our nets.

A TF-Slim checkpoint names each variable by its scope: '<scope>/weights',
'<scope>/biases', '<scope>/depthwise_weights', '<scope>/BatchNorm/{beta, gamma,
moving_mean, moving_variance}', plus '<name>/ExponentialMovingAverage' shadows when
it was trained with --moving_average_decay. Our Keras variable
'Mixed_3b.Branch_1.Conv2d_0b_3x3/kernel' of model 'InceptionV1' is TF-Slim's
'InceptionV1/Mixed_3b/Branch_1/Conv2d_0b_3x3/weights'.

resolve(path) accepts what TF-Slim's users have: a '.ckpt' prefix (V2 with .index,
or the old single-file V1), a directory with a 'checkpoint' file, a published
.tar.gz/.tgz (extracted safely into the cache once), or a short name of TF-Slim's
table (PUBLISHED), downloaded once from download.tensorflow.org (MobileNet V2/V3:
storage.googleapis.com; or the mirror in $SLIMKIT_MODELS_URL) into the cache
($SLIMKIT_CACHE, else ~/.cache/slimkit).
"""

import collections
import glob
import hashlib
import os
import re
import shutil
import urllib.parse

import keras
import tensorflow as tf

from common import errors
from common import tuning
from datasets import archive
from datasets import download
from nets import scopes

BASE_URL = 'http://download.tensorflow.org/models/'
EMA_SUFFIX = '/ExponentialMovingAverage'

# One published ImageNet checkpoint of TF-Slim's README table.
Published = collections.namedtuple('Published', [
    'archive', 'num_classes', 'labels_offset', 'image_size', 'preprocessing',
    'top1'])

PUBLISHED = {
    'inception_v1': Published('inception_v1_2016_08_28.tar.gz', 1001, 0, 224,
                              'inception', 69.8),
    'inception_v2': Published('inception_v2_2016_08_28.tar.gz', 1001, 0, 224,
                              'inception', 73.9),
    'inception_v3': Published('inception_v3_2016_08_28.tar.gz', 1001, 0, 299,
                              'inception', 78.0),
    'inception_v4': Published('inception_v4_2016_09_09.tar.gz', 1001, 0, 299,
                              'inception', 80.2),
    'inception_resnet_v2': Published('inception_resnet_v2_2016_08_30.tar.gz', 1001,
                                     0, 299, 'inception', 80.4),
    'resnet_v1_50': Published('resnet_v1_50_2016_08_28.tar.gz', 1000, 1, 224,
                              'vgg', 75.2),
    'resnet_v1_101': Published('resnet_v1_101_2016_08_28.tar.gz', 1000, 1, 224,
                               'vgg', 76.4),
    'resnet_v1_152': Published('resnet_v1_152_2016_08_28.tar.gz', 1000, 1, 224,
                               'vgg', 76.8),
    # Trained at 299 with Inception preprocessing, unlike the nets_factory
    # default (224, 'vgg') of the same names: see docs/nets.md.
    'resnet_v2_50': Published('resnet_v2_50_2017_04_14.tar.gz', 1001, 0, 299,
                              'inception', 75.6),
    'resnet_v2_101': Published('resnet_v2_101_2017_04_14.tar.gz', 1001, 0, 299,
                               'inception', 77.0),
    'resnet_v2_152': Published('resnet_v2_152_2017_04_14.tar.gz', 1001, 0, 299,
                               'inception', 77.8),
    'vgg_16': Published('vgg_16_2016_08_28.tar.gz', 1000, 1, 224, 'vgg', 71.5),
    'vgg_19': Published('vgg_19_2016_08_28.tar.gz', 1000, 1, 224, 'vgg', 71.1),
    'mobilenet_v1': Published('mobilenet_v1_2018_02_22/mobilenet_v1_1.0_224.tgz',
                              1001, 0, 224, 'inception', 70.9),
    'mobilenet_v1_075': Published(
        'mobilenet_v1_2018_02_22/mobilenet_v1_0.75_224.tgz', 1001, 0, 224,
        'inception', 68.4),
    'mobilenet_v1_050': Published(
        'mobilenet_v1_2018_02_22/mobilenet_v1_0.5_224.tgz', 1001, 0, 224,
        'inception', 63.3),
    'mobilenet_v1_025': Published(
        'mobilenet_v1_2018_02_22/mobilenet_v1_0.25_224.tgz', 1001, 0, 224,
        'inception', 49.8),
}

# MobileNet V2 and V3 (TF-Slim's nets/mobilenet/README.md) are not under BASE_URL:
# their rows carry the full URL. Short names: the net's name for the 224 ones,
# 'mobilenet_v2_<width>_<resolution>' for V2's other resolutions.
G2_URL = 'https://storage.googleapis.com/mobilenet_v2/checkpoints/'
G3_URL = 'https://storage.googleapis.com/mobilenet_v3/checkpoints/'
# V2 width -> (net name, {resolution: top-1}).
_MOBILENET_V2 = {
    '1.4': ('mobilenet_v2_140', {224: 75.0}),
    '1.3': ('mobilenet_v2_130', {224: 74.4}),
    '1.0': ('mobilenet_v2', {224: 71.8, 192: 70.7, 160: 68.8, 128: 65.3, 96: 60.3}),
    '0.75': ('mobilenet_v2_075', {224: 69.8, 192: 68.7, 160: 66.4, 128: 63.2,
                                  96: 58.8}),
    '0.5': ('mobilenet_v2_050', {224: 65.4, 192: 63.9, 160: 61.0, 128: 57.7,
                                 96: 51.2}),
    '0.35': ('mobilenet_v2_035', {224: 60.3, 192: 58.2, 160: 55.7, 128: 50.8,
                                  96: 45.5}),
}
# V3 float checkpoints (all 224): net name -> (archive, top-1).
_MOBILENET_V3 = {
    'mobilenet_v3_large': ('v3-large_224_1.0_float.tgz', 75.2),
    'mobilenet_v3_large_075': ('v3-large_224_0.75_float.tgz', 73.3),
    'mobilenet_v3_small': ('v3-small_224_1.0_float.tgz', 67.5),
    'mobilenet_v3_small_075': ('v3-small_224_0.75_float.tgz', 65.4),
    'mobilenet_v3_large_minimalistic': ('v3-large-minimalistic_224_1.0_float.tgz',
                                        72.3),
    'mobilenet_v3_small_minimalistic': ('v3-small-minimalistic_224_1.0_float.tgz',
                                        61.9),
}
for _width, (_name, _top1) in _MOBILENET_V2.items():
  for _size, _accuracy in _top1.items():
    PUBLISHED[_name if _size == 224 else 'mobilenet_v2_%s_%d' % (_width, _size)] = (
        Published('%smobilenet_v2_%s_%d.tgz' % (G2_URL, _width, _size), 1001, 0,
                  _size, 'inception', _accuracy))
for _name, (_archive, _accuracy) in _MOBILENET_V3.items():
  PUBLISHED[_name] = Published(G3_URL + _archive, 1001, 0, 224, 'inception',
                               _accuracy)

# NASNet-A and PNASNet-5 (TF-Slim's README): another bucket, full URLs.
GD_URL = 'https://storage.googleapis.com/download.tensorflow.org/models/'
PUBLISHED.update({
    'nasnet_mobile': Published(GD_URL + 'nasnet-a_mobile_04_10_2017.tar.gz', 1001,
                               0, 224, 'inception', 74.0),
    'nasnet_large': Published(GD_URL + 'nasnet-a_large_04_10_2017.tar.gz', 1001, 0,
                              331, 'inception', 82.7),
    'pnasnet_mobile': Published(GD_URL + 'pnasnet-5_mobile_2017_12_13.tar.gz',
                                1001, 0, 224, 'inception', 74.2),
    'pnasnet_large': Published(GD_URL + 'pnasnet-5_large_2017_12_13.tar.gz', 1001,
                               0, 331, 'inception', 82.9),
})

_ARCHIVE_ENDINGS = ('.tar.gz', '.tgz', '.tar')


# ==============================================================================
# Finding the checkpoint: prefix, V1 file, directory, archive, short name.
# ==============================================================================


def cache_dir():
  return tuning.root()  # one cache root for downloads and measurements


def is_short_name(path):
  return str(path) in PUBLISHED and not os.path.exists(str(path))


def is_archive_path(path):
  return str(path).endswith(_ARCHIVE_ENDINGS) and os.path.isfile(str(path))


def archive_url(published, base_url=None):
  """Where a PUBLISHED archive is: its full URL, or BASE_URL + its path; a mirror
  (base_url, $SLIMKIT_MODELS_URL) replaces the host and keeps the path."""
  mirror = base_url or os.environ.get('SLIMKIT_MODELS_URL')
  if '://' in published.archive:
    if not mirror:
      return published.archive
    path = urllib.parse.urlparse(published.archive).path
    return mirror.rstrip('/') + path
  return (mirror or BASE_URL).rstrip('/') + '/' + published.archive


def fetch(name, base_url=None, timeout=60, flag='--checkpoint_path'):
  """The archive of a PUBLISHED name in the cache, downloaded on first use."""
  published = PUBLISHED[name]
  filename = os.path.basename(published.archive)
  dest = os.path.join(cache_dir(), 'downloads')
  local = os.path.join(dest, filename)
  if os.path.isfile(local):
    return local
  os.makedirs(dest, exist_ok=True)
  url = archive_url(published, base_url)
  # TF-Slim published no checksums: the archive is checked by reading it.
  remote = download.Remote(filename, [url], 'sha256', None, None)
  try:
    return download.fetch(remote, dest, timeout=timeout)
  except OSError as e:
    raise errors.UserError('%s=%s: %s; offline? download %s by other means and put '
                           'it at %s' % (flag, name, e, url, local)) from None


def _archive_stem(name):
  return re.sub(r'(\.tar\.gz|\.tgz|\.tar)$', '', os.path.basename(name))


def published_name(path):
  """The PUBLISHED name a checkpoint comes from, or None.

  Known by its short name, its archive's file name, or the cache folder its archive
  was extracted into ('<archive stem>-<12 hex digits>').
  """
  path = str(path)
  if path in PUBLISHED:
    return path
  stems = {_archive_stem(p.archive): name for name, p in PUBLISHED.items()}
  if path.endswith(_ARCHIVE_ENDINGS):
    return stems.get(_archive_stem(path))
  extracted = os.path.join(os.path.abspath(cache_dir()), 'extracted') + os.sep
  if os.path.abspath(path).startswith(extracted):
    folder = os.path.abspath(path)[len(extracted):].split(os.sep)[0]
    return stems.get(re.sub(r'-[0-9a-f]{12}$', '', folder))
  return None


def published_settings(path):
  """What a published checkpoint was trained with, as run_config.json would say.

  The input size and preprocessing differ from the net's defaults for some
  (ResNet V2: inception preprocessing at 299, per TF-Slim's README); flags the user
  gives still win. None for any other checkpoint.
  """
  name = published_name(path)
  if name is None:
    return None
  published = PUBLISHED[name]
  return {'image_size': published.image_size,
          'preprocessing_name': published.preprocessing}


def extract(path, flag='--checkpoint_path'):
  """Extracts an archive once into the cache (safely: no links, no '..') -> dir."""
  path = os.path.abspath(str(path))
  stat = os.stat(path)
  key = hashlib.sha1(('%s|%d|%d' % (path, stat.st_size, stat.st_mtime_ns)).encode())
  stem = _archive_stem(path)
  target = os.path.join(cache_dir(), 'extracted', '%s-%s' % (stem, key.hexdigest()[:12]))
  if os.path.isdir(target):
    return target
  try:
    members = archive.read_members(path)
  except ValueError as e:
    raise errors.UserError('%s=%s: %s' % (flag, path, e)) from None
  tmp = '%s.tmp-%d' % (target, os.getpid())
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    for relpath, data in members:
      out = os.path.join(tmp, relpath)
      os.makedirs(os.path.dirname(out), exist_ok=True)
      with open(out, 'wb') as f:
        f.write(data)
    os.makedirs(tmp, exist_ok=True)
    os.replace(tmp, target)  # whole or absent: a half extraction is never reused
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return target


def _in_directory(directory):
  """The checkpoint prefix in a directory: its 'checkpoint' file, else the only one."""
  prefix = tf.train.latest_checkpoint(directory)
  if prefix:
    return prefix
  found = sorted(p[:-len('.index')] for p in glob.glob(
      os.path.join(directory, '**', '*.index'), recursive=True))
  found += sorted(p for p in glob.glob(os.path.join(directory, '**', '*.ckpt'),
                                       recursive=True) if os.path.isfile(p))
  if len(found) > 1:
    # MobileNet V3's archives hold ema/model-N (the moving averages under the plain
    # names, what TF-Slim evaluates) beside pristine/model.ckpt-N: take ema/.
    ema = [p for p in found if os.path.basename(os.path.dirname(p)) == 'ema']
    found = ema if len(ema) == 1 else found
  return found[0] if len(found) == 1 else None


def _is_v1_file(path):
  if not os.path.isfile(path) or path.endswith('.index') or '.data-' in path:
    return False
  try:
    tf.train.load_checkpoint(path)
    return True
  except (tf.errors.OpError, ValueError):
    return False


def resolve(path, flag='--checkpoint_path'):
  """A loadable checkpoint prefix for any form a TF-Slim user has, or None."""
  path = str(path)
  if is_short_name(path):
    path = fetch(path, flag=flag)
  if is_archive_path(path):
    directory = extract(path, flag)
    prefix = _in_directory(directory)
    if prefix is None:
      raise errors.UserError('%s=%s: the archive holds no single checkpoint (expected '
                             '<name>.ckpt or <name>.ckpt.index + .data files)'
                             % (flag, path))
    return prefix
  if os.path.isdir(path):
    return _in_directory(path)
  if _is_v1_file(path):
    return path
  if os.path.isfile(path) and not path.endswith(('.index', '.meta')) and \
      '.data-' not in path:
    raise errors.UserError('%s=%s: not a checkpoint TensorFlow can read (damaged or '
                           'truncated?); download or copy it again' % (flag, path))
  return None


# ==============================================================================
# Names and values.
# ==============================================================================


def is_slim(prefix, flag='--checkpoint_path'):
  """True for a TF1 name-based checkpoint (ours are object-based tf.train.Checkpoint)."""
  with errors.reading('%s=%s' % (flag, prefix), 'copy the checkpoint again'):
    names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  return not any(n.endswith('/.ATTRIBUTES/VARIABLE_VALUE') for n in names)


def slim_names(model, model_scope):
  """{Keras variable path: TF-Slim variable name} of a model built by nets/."""
  out = {}
  for layer in model.layers:
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    for v in layer.weights:
      if v.path.endswith('seed_generator_state'):
        continue
      scope, leaf = v.path.rsplit('/', 1)
      # A SeparableConv2D (Inception V2's stem) holds both halves in one scope.
      leaf = {'kernel': 'depthwise_weights' if depthwise else 'weights',
              'bias': 'biases', 'depthwise_kernel': 'depthwise_weights',
              'pointwise_kernel': 'pointwise_weights'}.get(leaf, leaf)
      out[v.path] = scopes.to_slim(model_scope, scope) + '/' + leaf
  return out


def read_values(prefix, names, use_ema=False, flag='--checkpoint_path'):
  """{Keras path: value} of the variables of `names` that the checkpoint has.

  use_ema reads the ExponentialMovingAverage shadows, as TF-Slim's eval did with
  --moving_average_decay; a variable without a shadow (TF-Slim kept none for the
  batch norm statistics in some runs) is read as it is.
  """
  with errors.reading('%s=%s' % (flag, prefix),
                      'download or copy the checkpoint again'):
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    if use_ema and not any(n.endswith(EMA_SUFFIX) for n in shapes):
      raise errors.UserError(
          '%s=%s has no ExponentialMovingAverage variables; evaluate without '
          '--moving_average_decay' % (flag, prefix))
    out = {}
    for path, name in names.items():
      name = _spelled_as_in(name, shapes)
      if use_ema and name + EMA_SUFFIX in shapes:
        out[path] = reader.get_tensor(name + EMA_SUFFIX)
      elif name in shapes:
        out[path] = reader.get_tensor(name)
    return out


# The published NASNet checkpoints were re-uploaded once with 'fully_connected'
# scopes switched for 'FC' (or the other way round): either spelling is read.
_SCOPE_ALIASES = {'FC': 'fully_connected', 'fully_connected': 'FC'}


def _spelled_as_in(name, shapes):
  """name, or its _SCOPE_ALIASES spelling when only that is in the checkpoint."""
  if name in shapes or name + EMA_SUFFIX in shapes:
    return name
  parts = name.split('/')
  other = '/'.join([_SCOPE_ALIASES.get(p, p) for p in parts[:-1]] + parts[-1:])
  return other if other in shapes or other + EMA_SUFFIX in shapes else name


# Conv2d_0's depth per MobileNet width; block3's units per ResNet depth.
_MOBILENET_WIDTHS = {32: 'mobilenet_v1', 24: 'mobilenet_v1_075',
                     16: 'mobilenet_v1_050', 8: 'mobilenet_v1_025'}
_RESNET_BLOCK3_UNITS = {6: 'resnet_v1_50', 23: 'resnet_v1_101', 36: 'resnet_v1_152'}
# MobileNet V2 by expanded_conv_16's depth (320 x the width; Conv is 16 for both
# 0.5 and 0.35); V3 by (blocks: 15 large, 11 small; squeeze-excite, none in the
# minimalistic ones; Conv_1's depth).
_MOBILENET_V2_WIDTHS = {448: 'mobilenet_v2_140', 416: 'mobilenet_v2_130',
                        320: 'mobilenet_v2', 240: 'mobilenet_v2_075',
                        160: 'mobilenet_v2_050', 112: 'mobilenet_v2_035'}
_MOBILENET_V3_SHAPES = {
    (15, True, 960): 'mobilenet_v3_large', (15, True, 720): 'mobilenet_v3_large_075',
    (11, True, 576): 'mobilenet_v3_small', (11, True, 432): 'mobilenet_v3_small_075',
    (15, False, 960): 'mobilenet_v3_large_minimalistic',
    (11, False, 576): 'mobilenet_v3_small_minimalistic'}
# ResNet v2 by (block2 units, block3 units): 152 and 200 differ in block2 only.
_RESNET_V2_UNITS = {(4, 6): 'resnet_v2_50', (4, 23): 'resnet_v2_101',
                    (8, 36): 'resnet_v2_152', (24, 36): 'resnet_v2_200'}
# VGG by its 3x3 convs (conv<i>/conv<i>_<j>): configurations A, D, E.
_VGG_CONVS = {8: 'vgg_a', 13: 'vgg_16', 16: 'vgg_19'}


def identify(prefix):
  """The net a TF-Slim checkpoint looks like ('resnet_v1_101', 'vgg_16', ...) or None."""
  return _identify(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())


def identify_model(model, model_scope):
  """identify() of the checkpoint this model would write."""
  names = slim_names(model, model_scope)
  return _identify({names[v.path]: list(v.shape) for v in model.weights
                    if v.path in names})


# NASNet-A / PNASNet-5 by their cell_0's filters (num_conv_filters).
_NASNETS = {('nasnet', 44): 'nasnet_mobile', ('nasnet', 168): 'nasnet_large',
            ('pnasnet', 54): 'pnasnet_mobile', ('pnasnet', 216): 'pnasnet_large'}


def _identify_nasnet(shapes):
  """NASNet and PNASNet have no model scope: known by their stems and cells."""
  if 'l1_stem_3x3/weights' in shapes:
    return 'nasnet_cifar'
  if 'cell_stem_0/1x1/weights' not in shapes:
    return None
  kind = ('nasnet' if any(n.startswith('reduction_cell_') for n in shapes)
          else 'pnasnet')
  filters = shapes.get('cell_0/1x1/weights', [0])[-1]
  return _NASNETS.get((kind, filters), '%s (%d filters)' % (kind, filters))


def _identify(shapes):
  """{TF-Slim name: shape} -> a net name, by model scope, width and depth."""
  nasnet = _identify_nasnet(shapes)
  if nasnet:
    return nasnet
  tops = collections.Counter(n.split('/')[0] for n in shapes)
  if not tops:
    return None
  top = tops.most_common(1)[0][0]
  if top == 'MobilenetV1':
    width = shapes.get('MobilenetV1/Conv2d_0/weights', [0])[-1]
    return _MOBILENET_WIDTHS.get(width, 'mobilenet_v1 (width %d)' % width)
  if top == 'MobilenetV2':
    width = shapes.get('MobilenetV2/expanded_conv_16/project/weights', [0])[-1]
    return _MOBILENET_V2_WIDTHS.get(width, 'mobilenet_v2 (width %d)' % width)
  if top == 'MobilenetV3':
    blocks = {m.group(0) for n in shapes
              for m in [re.match(r'MobilenetV3/expanded_conv(_\d+)?/', n)] if m}
    key = (len(blocks), any('/squeeze_excite/' in n for n in shapes),
           shapes.get('MobilenetV3/Conv_1/weights', [0])[-1])
    return _MOBILENET_V3_SHAPES.get(key, 'mobilenet_v3 (%d blocks, Conv_1 depth %d)'
                                    % (key[0], key[2]))
  if top.startswith('resnet_v1_'):
    units = {m.group(1) for n in shapes
             for m in [re.match(r'[^/]+/block3/unit_(\d+)/', n)] if m}
    return _RESNET_BLOCK3_UNITS.get(len(units), top)
  if top.startswith('resnet_v2_'):
    units = tuple(len({m.group(1) for n in shapes
                       for m in [re.match(r'[^/]+/%s/unit_(\d+)/' % block, n)] if m})
                  for block in ('block2', 'block3'))
    return _RESNET_V2_UNITS.get(units, top)
  if top.startswith('vgg'):
    convs = sum(1 for n in shapes if re.match(r'[^/]+/conv\d/conv\d_\d+/weights$', n))
    return _VGG_CONVS.get(convs, top)
  return {'InceptionV1': 'inception_v1', 'InceptionV2': 'inception_v2',
          'InceptionV3': 'inception_v3', 'InceptionV4': 'inception_v4',
          'InceptionResnetV2': 'inception_resnet_v2', 'CifarNet': 'cifarnet',
          'LeNet': 'lenet', 'alexnet_v2': 'alexnet_v2',
          'overfeat': 'overfeat'}.get(top, top)


def classifier_classes(prefix, logits_scopes):
  """Classes of a TF-Slim checkpoint's classifier under one of logits_scopes, or None.

  The scopes are tried in order: an aux head ('AuxLogits') holds convs of other
  depths before its classifier, so the main classifier's scope comes first.
  """
  shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  for scope in logits_scopes:
    for name, shape in sorted(shapes.items()):
      if name.endswith('/weights') and name.startswith(scope + '/'):
        return int(shape[-1])
  return None


def input_channels(prefix):
  """Channels of the images a TF-Slim checkpoint's net reads (1 for LeNet on MNIST).

  The first conv has the fewest input channels of all full convs in these nets.
  """
  shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  ins = [s[2] for n, s in shapes.items() if n.endswith('/weights') and len(s) == 4]
  return int(min(ins)) if ins else None
