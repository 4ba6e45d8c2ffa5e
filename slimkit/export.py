"""Export behind export_inference_graph.py: a SavedModel (and TFLite) with weights.

TF-Slim wrote a weightless GraphDef with a float placeholder named 'input', to be
frozen with freeze_graph and a list of output node names. Here the checkpoint's
weights (its moving averages with --moving_average_decay) are folded in, and the
SavedModel in --output_file (a directory) serves three signatures:

  serving_default(images: tf.string [N])       encoded images (JPEG, PNG, GIF, BMP,
                                               WebP), decoded and preprocessed as
                                               eval_image_classifier.py does
  predict_images(images: float32 [N, H, W, C]) images already preprocessed
  labels()                                     {'class_names': string [num_classes]}

The first two return {'logits': float32 [N, num_classes] (the net's, to compare with
TF-Slim's numbers), 'probabilities': float32 [N, num_classes], 'classes': int64 [N]
(argmax, an index into probabilities), 'class_names': string [N]}. Class i of the
model is label i + --labels_offset of the dataset's labels.txt; without a dataset or
a train run, --dataset_name=imagenet gives TF-Slim's 1001 classes, named as its
imagenet metadata does, with 0 the background. N is free unless --batch_size is
set. With --tflite, <output_file>/model.tflite holds predict_images (dynamic-range
int8 weights with --quantize). The directory also gets labels.txt and
export_config.json (what was exported, from which checkpoint).
"""

import json
import os
import shutil

from absl import logging
import keras
import tensorflow as tf

from common import errors
from common import files
from datasets import dataset_factory
from datasets import dataset_info
from datasets import imagenet
from nets import nets_factory
from slimkit import checkpoints
from slimkit import manifest
from slimkit import run_config as run_config_lib
from slimkit import slim_checkpoint

TFLITE_FILE = 'model.tflite'
TEXT_GRAPH_FILE = 'graph.pbtxt'
CONFIG_FILE = manifest.EXPORT_RECORD


def check_config(config):
  """Raises ValueError with one line naming the flag for bad or unsupported values."""
  if not config.get('output_file'):
    raise ValueError('--output_file: expected the directory to write the SavedModel to')
  output = config['output_file']
  errors.check_output_dir('output_file', output)  # a SavedModel is a directory
  if (os.path.isdir(output) and os.listdir(output) and
      not os.path.exists(os.path.join(output, 'saved_model.pb'))):
    raise ValueError('--output_file=%s is a non-empty directory that is not a '
                     'SavedModel; refusing to replace it' % output)
  if config.get('is_training'):
    raise ValueError('--is_training: a SavedModel for training is not supported; the '
                     'export serves inference (batch norm uses its moving averages)')
  if config.get('quantize') and not config.get('tflite'):
    raise ValueError('--quantize needs --tflite: TF2 quantizes the TFLite model after '
                     'training (dynamic-range int8 weights); contrib.quantize graphs '
                     'do not exist in TF2')


def _dataset_facts(config, run_config):
  """(dataset_info dict or None, {id: name}): --dataset_dir's, else the train run's.

  With neither, --dataset_name=imagenet (the default) means TF-Slim's 1001 classes,
  named as TF-Slim named them (datasets/imagenet_classes.txt).
  """
  dataset_dir = config.get('dataset_dir') or (run_config or {}).get('dataset_dir')
  name = config.get('dataset_name')
  if not dataset_dir:
    # A TF-Slim checkpoint's classifier says its class count: ImageNet's names fit
    # when it has TF-Slim's classes after --labels_offset.
    trained = (run_config or {}).get('num_classes')
    offset = config.get('labels_offset') or 0
    if name == imagenet.NAME and trained in (None, imagenet.NUM_CLASSES - offset):
      return {'name': name, 'num_classes': imagenet.NUM_CLASSES}, imagenet.readable_names()
    return None, {}
  info = dataset_factory.read_info(name if config.get('dataset_dir') else None, dataset_dir)
  if info is None:
    if config.get('dataset_dir'):
      raise FileNotFoundError('--dataset_dir=%s: no %s (convert the dataset with '
                              'download_and_convert_data.py)' % (
                                  dataset_dir, dataset_info.INFO_FILE))
    return None, {}  # the train run's dataset is gone: use run_config only
  return info, dataset_factory.labels_to_names(info, dataset_dir)


def resolve(config, run_config):
  """Everything the export needs, as a dict, from the flags and run_config.json."""
  run_config_lib.check_model_name(config['model_name'], run_config)
  run_config = run_config or {}
  net = run_config_lib.resolve_net(config, run_config, config['model_name'],
                                   config.get('image_size'))
  offset = config.get('labels_offset') or 0
  info, names = _dataset_facts(config, run_config)
  if info is not None:
    num_classes = info['num_classes'] - offset
    run_config_lib.check_num_classes(
        num_classes, run_config,
        '--dataset_dir has %d classes (%%(classes)d after --labels_offset=%d) but the '
        'checkpoint was trained for %%(trained)d (its run_config.json)' % (
            info['num_classes'], offset))
  elif run_config.get('num_classes') is not None:
    num_classes = run_config['num_classes']
  else:
    raise ValueError('--dataset_dir: needed to know the number of classes (or a '
                     '--checkpoint_path whose train dir has run_config.json)')
  channels_in = info.get('channels') if info else None
  if channels_in is None:  # no dataset: a 1-channel net without grayscale read gray
    gray_data = (run_config.get('channels') == 1 and
                 not net.preprocess_options['use_grayscale'])
    channels_in = 1 if gray_data else 3
  class_names = [names.get(i + offset, str(i + offset)) for i in range(num_classes)]
  dataset_name = (info or {}).get('name') or run_config.get('dataset_name')
  return {'model_name': net.model_name, 'num_classes': num_classes,
          'dataset_name': dataset_name or config.get('dataset_name'),
          'image_size': net.image_size, 'decode_channels': channels_in,
          'channels': run_config_lib.output_channels(net, channels_in),
          'preprocessing_name': net.preprocessing_name,
          'preprocess_options': net.preprocess_options,
          'preprocess_fn': run_config_lib.preprocess_fn(net),
          'net_options': net.net_options, 'class_names': class_names,
          'labels_offset': offset, 'batch_size': config.get('batch_size')}


def build_archive(model, setup):
  """A keras.export.ExportArchive with the three signatures (see module doc)."""
  size, channels = setup['image_size'], setup['channels']
  names = tf.constant(setup['class_names'])
  preprocess_fn = setup['preprocess_fn']
  decode_channels = setup['decode_channels']
  batch = setup['batch_size']

  def predict_images(images):
    logits = tf.cast(model(images, training=False)['Logits'], tf.float32)
    classes = tf.argmax(logits, axis=-1)
    return {'logits': logits, 'probabilities': tf.nn.softmax(logits), 'classes': classes,
            'class_names': tf.gather(names, classes)}

  def decode_and_preprocess(encoded):
    image = tf.io.decode_image(encoded, channels=decode_channels,
                               expand_animations=False)
    return preprocess_fn(image, size, size)

  def serving_default(images):
    pixels = tf.map_fn(decode_and_preprocess, images, fn_output_signature=tf.TensorSpec(
        [size, size, channels], tf.float32))
    return predict_images(pixels)

  def labels():
    return {'class_names': names}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint('serving_default', serving_default, input_signature=[
      tf.TensorSpec([batch], tf.string, name='images')])
  archive.add_endpoint('predict_images', predict_images, input_signature=[
      tf.TensorSpec([batch, size, size, channels], tf.float32, name='images')])
  archive.add_endpoint('labels', labels, input_signature=[])
  return archive


def tflite_bytes(saved_model_dir, quantize=False):
  """predict_images as a TFLite flatbuffer; TF ops only where builtins fall short."""
  def convert(select_tf_ops):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=['predict_images'])
    if select_tf_ops:
      converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                             tf.lite.OpsSet.SELECT_TF_OPS]
    if quantize:
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()

  try:
    return convert(select_tf_ops=False)
  except Exception as e:  # pylint: disable=broad-except  (the converter raises many kinds)
    logging.info('TFLite builtins were not enough (%s); adding SELECT_TF_OPS (the '
                 'interpreter then needs the Flex delegate)', str(e).splitlines()[0])
    return convert(select_tf_ops=True)


def _replace_dir(tmp, output):
  """Moves the finished export into place, replacing an older SavedModel there."""
  old = None
  if os.path.exists(output):
    old = '%s.old-%d' % (output.rstrip('/'), os.getpid())
    os.replace(output, old)
  os.replace(tmp, output)
  if old:
    shutil.rmtree(old, ignore_errors=True)


def run(config):
  """Exports from the flags' values; returns {'saved_model', 'tflite', ...} paths."""
  check_config(config)
  if config['output_file'].endswith(('.pb', '.pbtxt')):
    logging.warning('--output_file=%s: a SavedModel is a directory, so that is the '
                    'name of a directory (saved_model.pb and the weights inside); no '
                    'frozen GraphDef file is written', config['output_file'])
  checkpoint_path = config.get('checkpoint_path')
  prefix = run_config = None
  if checkpoint_path:
    prefix = checkpoints.require_intact(checkpoint_path)
    run_config = run_config_lib.read(prefix)
    if run_config is None and slim_checkpoint.is_slim(prefix):
      run_config = slim_checkpoint.published_settings(prefix) or {}
      if not config.get('dataset_dir'):
        # A TF-Slim checkpoint alone: its weights say the class count and channels.
        run_config.update(
            num_classes=slim_checkpoint.classifier_classes(
                prefix, nets_factory.get_spec(config['model_name']).logits_scopes),
            channels=slim_checkpoint.input_channels(prefix))
      run_config = run_config or None
  setup = resolve(config, run_config)
  model = nets_factory.build_model(
      setup['model_name'], setup['num_classes'],
      (setup['image_size'], setup['image_size'], setup['channels']),
      **setup['net_options'])
  use_ema = bool(config.get('moving_average_decay'))
  if prefix:
    checkpoints.restore_model(model, prefix, use_ema=use_ema, fine_tuning=False)
  else:
    logging.warning('no --checkpoint_path: exporting freshly initialised weights')
  output = os.path.abspath(config['output_file'])
  tmp = '%s.tmp-%d' % (output.rstrip('/'), os.getpid())
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    with errors.writing(output, 'free space, then export again'):
      build_archive(model, setup).write_out(tmp, verbose=False)
      with open(os.path.join(tmp, dataset_info.LABELS_FILE), 'w') as f:
        f.writelines('%d:%s\n' % (i + setup['labels_offset'], name)
                     for i, name in enumerate(setup['class_names']))
      paths = {'saved_model': output}
      if config.get('write_text_graphdef'):
        loaded = tf.saved_model.load(tmp)
        graph = loaded.signatures['serving_default'].graph.as_graph_def()
        tf.io.write_graph(graph, tmp, TEXT_GRAPH_FILE, as_text=True)
        paths['text_graphdef'] = os.path.join(output, TEXT_GRAPH_FILE)
      if config.get('tflite'):
        with open(os.path.join(tmp, TFLITE_FILE), 'wb') as f:
          f.write(tflite_bytes(tmp, quantize=config.get('quantize')))
        paths['tflite'] = os.path.join(output, TFLITE_FILE)
      record = {k: v for k, v in setup.items() if k != 'preprocess_fn'}
      record.update({'checkpoint_path': os.path.abspath(prefix) if prefix else None,
                     'step': checkpoints.step_of(prefix) if prefix else None,
                     'moving_average': use_ema, 'quantized_tflite': bool(
                         config.get('tflite') and config.get('quantize')),
                     'files': manifest.digests(tmp)})  # checked by classify_image.py
      files.write_json_atomic(os.path.join(tmp, CONFIG_FILE), record)
      _replace_dir(tmp, output)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  logging.info('exported %s (%s, %d classes, %dx%dx%d) to %s', prefix or 'fresh weights',
               setup['model_name'], setup['num_classes'], setup['image_size'],
               setup['image_size'], setup['channels'], output)
  return paths


def read_export_config(saved_model_dir):
  with open(os.path.join(saved_model_dir, CONFIG_FILE)) as f:
    return json.load(f)

