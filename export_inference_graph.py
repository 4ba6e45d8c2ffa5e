"""Exports a trained classifier as a SavedModel (and TFLite): TF-Slim's script name.

  python export_inference_graph.py --model_name=custom_cnn \\
      --checkpoint_path=/tmp/train --dataset_dir=/tmp/cifar10 \\
      --output_file=/tmp/custom_cnn_export [--tflite]

TF-Slim's flags keep their names and defaults; --output_file is now the SavedModel
directory, and the weights of --checkpoint_path are folded in (no freeze_graph).
See docs/evaluation.md. Exit codes: 0 done, 1 bad input.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app
from absl import flags
from absl import logging

from slimkit import flags as slim_flags

# TF-Slim's export_inference_graph.py flags (is_video_model and num_frames are
# left out: there are no video nets here).
flags.DEFINE_string('model_name', 'inception_v3', 'The name of the architecture to save.')
flags.DEFINE_boolean('is_training', False,
                     'Whether to save out a training-focused version of the model '
                     '(not supported: the export serves inference).')
flags.DEFINE_integer('image_size', None,
                     'The image size to use; default: the train image size of the '
                     'checkpoint\'s run_config.json, else the net\'s default.')
flags.DEFINE_integer('batch_size', None,
                     'Batch size for the exported model. Defaulted to "None" so batch '
                     'size can be specified at model runtime.')
flags.DEFINE_string('dataset_name', 'imagenet', 'The name of the dataset to use with '
                    'the model.')
flags.DEFINE_integer('labels_offset', 0,
                     'An offset for the labels in the dataset. This flag is primarily '
                     'used to evaluate the VGG and ResNet architectures which do not '
                     'use a background class for the ImageNet dataset.')
flags.DEFINE_string('output_file', '',
                    'Where to save the resulting SavedModel (a directory).')
flags.DEFINE_string('dataset_dir', '',
                    'Directory of the converted dataset: its labels.txt names the '
                    'classes and its dataset_info.json gives the class count.')
flags.DEFINE_bool('quantize', False,
                  'With --tflite: dynamic-range int8 weights in model.tflite.')
flags.DEFINE_bool('write_text_graphdef', False,
                  'Also write the serving_default GraphDef as text (graph.pbtxt).')
flags.DEFINE_bool('use_grayscale', False,
                  'Whether to convert input images to grayscale.')
# New.
flags.DEFINE_string('checkpoint_path', None,
                    '(new) Checkpoint (or train dir: its newest) whose weights are '
                    'exported; unset exports freshly initialised weights.')
flags.DEFINE_float('moving_average_decay', None,
                   '(new) If set, export the moving averages of the weights.')
flags.DEFINE_bool('tflite', False,
                  '(new) Also write model.tflite (the predict_images signature).')
flags.DEFINE_string('preprocessing_name', None,
                    '(new) Preprocessing of serving_default; default: the '
                    'checkpoint\'s, else the model_name\'s.')
flags.DEFINE_enum('grayscale_formula', 'rec601', slim_flags.GRAYSCALE_FORMULAS,
                  '(new) Luma weights for --use_grayscale.')
flags.DEFINE_enum('image_filter', None, slim_flags.IMAGE_FILTERS,
                  '(new) Noise filter applied to each input image before '
                  'preprocessing.')
flags.DEFINE_integer('filter_size', 3, '(new) Window size (odd) of --image_filter.',
                     lower_bound=1)
flags.DEFINE_enum('activation', None, slim_flags.ACTIVATIONS,
                  '(new) Activation of custom_cnn (default: the checkpoint\'s).')
FLAGS = flags.FLAGS

NAMES = ('model_name', 'is_training', 'image_size', 'batch_size', 'dataset_name',
         'labels_offset', 'output_file', 'dataset_dir', 'quantize',
         'write_text_graphdef', 'use_grayscale', 'checkpoint_path',
         'moving_average_decay', 'tflite', 'preprocessing_name', 'grayscale_formula',
         'image_filter', 'filter_size', 'activation')


def main(argv):
  if len(argv) > 1:
    _fail('unexpected arguments %s (flags are --name=value)' % ' '.join(argv[1:]))
  logging.set_verbosity(logging.INFO)
  config = {name: FLAGS[name].value for name in NAMES}
  config['explicit_flags'] = sorted(name for name in NAMES if FLAGS[name].present)
  try:
    from slimkit import export  # pylint: disable=g-import-not-at-top
    paths = export.run(config)
  except (ValueError, FileNotFoundError) as e:
    _fail(e)
  for kind, path in sorted(paths.items()):
    print('%s: %s' % (kind, path))


def _fail(message):
  text = ' '.join(str(message).split())  # one line
  print('export_inference_graph.py: error: %s' % text, file=sys.stderr)
  sys.exit(1)


if __name__ == '__main__':
  app.run(main)
