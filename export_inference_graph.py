"""Exports a trained classifier as a SavedModel (and TFLite): TF-Slim's script name.

  python export_inference_graph.py --model_name=custom_cnn \\
      --checkpoint_path=/tmp/train --dataset_dir=/tmp/cifar10 \\
      --output_file=/tmp/custom_cnn_export [--tflite]

TF-Slim's flags keep their names and defaults; --output_file is now the SavedModel
directory, and the weights of --checkpoint_path are folded in (no freeze_graph).
See docs/evaluation.md. Exit codes: 0 done, 1 bad input.
"""

from slimkit import cli  # first: sets up TensorFlow (C++ logging, oneDNN)

from absl import flags  # pylint: disable=g-bad-import-order

from slimkit import flags as slim_flags

slim_flags.define_export_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv  # cli.run rejects positional arguments
  config = slim_flags.config(FLAGS)
  config['explicit_flags'] = sorted(slim_flags.explicitly_set(FLAGS))
  from slimkit import export  # pylint: disable=g-import-not-at-top
  paths = export.run(config)
  for kind, path in sorted(paths.items()):
    print('%s: %s' % (kind, path))


if __name__ == '__main__':
  cli.run(main)
