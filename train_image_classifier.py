"""Trains an image classifier: TF-Slim's train_image_classifier.py on TF2 / Keras 3.

  python train_image_classifier.py --train_dir=/tmp/train --dataset_name=cifar10 \\
      --dataset_dir=/tmp/cifar10 --model_name=cifarnet --max_number_of_steps=1000

Every TF-Slim flag keeps its name and default (see docs/training.md for what is new
or different). Rerunning the same command resumes from the last checkpoint.
Exit codes: 0 done, 1 bad input or a non-finite loss, 130/143 stopped by
SIGINT/SIGTERM after saving a checkpoint.
"""

import sys

from slimkit import cli  # first: sets up TensorFlow (C++ logging, oneDNN)

from absl import flags  # pylint: disable=g-bad-import-order

from slimkit import flags as slim_flags
from slimkit import presets

slim_flags.define_train_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv  # cli.run rejects positional arguments
  config = presets.resolve(slim_flags.config(FLAGS), slim_flags.explicitly_set(FLAGS))
  from slimkit import train  # pylint: disable=g-import-not-at-top
  result = train.run(config)
  if result['signal'] is not None:
    return 128 + result['signal']
  return 0


if __name__ == '__main__':
  cli.run(main)
