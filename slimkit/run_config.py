"""What a trained run is: run_config.json, written, read and resolved in one place.

Training writes `<train_dir>/run_config.json` (the resolved flags plus the model's
name, class count, image size and channels). Evaluation, export and a distillation
teacher read it back with `read()` and rebuild the same net with `resolve_net()`:
a flag the user gave wins, else the train run's value, else the net's default.
"""

import collections
import json
import os

import tensorflow as tf

from common import errors
from common.files import read_json
from common.files import write_json_atomic
from nets import nets_factory
from preprocessing import preprocessing_factory

FILE = 'run_config.json'

# Flags that describe how the net was trained: unset, they come from run_config.json.
INHERITED = ('preprocessing_name', 'activation', 'use_grayscale', 'grayscale_formula',
             'image_filter', 'filter_size')
PREPROCESS_OPTIONS = ('use_grayscale', 'grayscale_formula', 'image_filter',
                      'filter_size')

# The net of a trained run, as evaluation, export and a teacher rebuild it.
NetSetup = collections.namedtuple('NetSetup', [
    'model_name', 'image_size', 'preprocessing_name', 'preprocess_options',
    'net_options'])


def train_dir_of(checkpoint_path):
  """The directory of a checkpoint given as a train dir or a prefix."""
  path = str(checkpoint_path)
  return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def write(train_dir, config):
  write_json_atomic(os.path.join(train_dir, FILE), config)


# What evaluation and export rebuild the net from: (type, least value); None is unset.
_CHECKED = {'model_name': (str, None), 'preprocessing_name': (str, None),
            'num_classes': (int, 1), 'image_size': (int, 1), 'channels': (int, 1),
            'max_number_of_steps': (int, 0)}
_FIX = ('restore it or evaluate with explicit --model_name and dataset flags from '
        'another train dir')


def read(checkpoint_path):
  """run_config.json of the train dir holding a checkpoint (dir or prefix), or None.

  A damaged file, or a value of _CHECKED of the wrong kind, is one error naming it.
  """
  if not checkpoint_path:
    return None
  path = os.path.join(train_dir_of(checkpoint_path), FILE)
  record = read_json(path, _FIX)
  for key, (kind, least) in _CHECKED.items():
    value = (record or {}).get(key)
    if value is None:
      continue
    if (not isinstance(value, kind) or isinstance(value, bool) or
        (least is not None and value < least)):
      raise errors.UserError('%s is damaged ("%s" is %s, expected %s); %s' % (
          path, key, json.dumps(value), 'a name' if kind is str else
          'a whole number >= %d' % least, _FIX))
  return record


def given(config, name):
  """True if the user set the flag (config['explicit_flags'] from the CLI)."""
  if 'explicit_flags' in config:
    return name in config['explicit_flags']
  return config.get(name) is not None


def check_model_name(model_name, run_config, flag='--model_name', where=''):
  """TF-Slim took --model_name on trust; a mismatch with run_config.json is an error."""
  trained = (run_config or {}).get('model_name')
  if trained and trained != model_name:
    raise ValueError('%s=%s but %s was trained as %s (its run_config.json); pass '
                     '%s=%s' % (flag, model_name, where or 'the checkpoint', trained,
                                flag, trained))


def check_num_classes(num_classes, run_config, message):
  """The class count the net is built for must be the one it was trained for.

  message: the error, with %(trained)d and %(classes)d for the two counts.
  """
  trained = (run_config or {}).get('num_classes')
  if trained not in (None, num_classes):
    raise ValueError(message % {'trained': trained, 'classes': num_classes})


def trained_settings(config, run_config):
  """{flag: value} of INHERITED: the flag if given, else the train run's value."""
  run_config = run_config or {}
  values = {}
  for name in INHERITED:
    values[name] = config.get(name)
    if not given(config, name) and run_config.get(name) is not None:
      values[name] = run_config[name]
  return values


def resolve_net(config, run_config, model_name, image_size_flag=None):
  """The NetSetup of a trained run from the flags and its run_config.json.

  config: the script's flag values (with 'explicit_flags'); model_name and
  image_size_flag are passed apart because their flag names differ per script.
  """
  spec = nets_factory.get_spec(model_name)  # unknown names fail before any work
  values = trained_settings(config, run_config)
  image_size = int(image_size_flag or (run_config or {}).get('image_size') or
                   spec.default_image_size)
  options = {k: values[k] for k in PREPROCESS_OPTIONS}
  net_options = {'activation': values['activation']} if values['activation'] else {}
  preprocessing_name = preprocessing_factory.preset_name(
      values['preprocessing_name'] or model_name)
  return NetSetup(model_name, image_size, preprocessing_name,
                  options, net_options)


def preprocess_fn(setup, is_training=False):
  return preprocessing_factory.get_preprocessing(
      setup.preprocessing_name, is_training=is_training, **setup.preprocess_options)


def output_channels(setup, input_channels):
  """Channels the eval preprocessing gives (1 with --use_grayscale), read by tracing."""
  fn = preprocess_fn(setup)
  size = setup.image_size
  traced = tf.function(lambda image: fn(image, size, size))
  spec = tf.TensorSpec([None, None, input_channels], tf.uint8)
  return int(traced.get_concrete_function(spec).structured_outputs.shape[-1])
