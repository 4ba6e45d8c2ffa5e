"""Trains an image classifier: TF-Slim's train_image_classifier.py on TF2 / Keras 3.

  python train_image_classifier.py --train_dir=/tmp/train --dataset_name=cifar10 \\
      --dataset_dir=/tmp/cifar10 --model_name=cifarnet --max_number_of_steps=1000

Every TF-Slim flag keeps its name and default (see docs/training.md for what is new
or different). Rerunning the same command resumes from the last checkpoint.
Exit codes: 0 done, 1 bad input or a non-finite loss, 130/143 stopped by
SIGINT/SIGTERM after saving a checkpoint.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app
from absl import flags
from absl import logging

from slimkit import flags as slim_flags
from slimkit import presets

slim_flags.define_train_flags()
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    _fail('unexpected arguments %s (flags are --name=value)' % ' '.join(argv[1:]))
  logging.set_verbosity(logging.INFO)
  try:
    config = presets.resolve(slim_flags.config(FLAGS), slim_flags.explicitly_set(FLAGS))
    from slimkit import train  # pylint: disable=g-import-not-at-top
    result = train.run(config)
  except (ValueError, FileNotFoundError, FloatingPointError) as e:
    _fail(e)
  if result['signal'] is not None:
    sys.exit(128 + result['signal'])


def _fail(message):
  text = ' '.join(str(message).split())  # one line
  print('train_image_classifier.py: error: %s' % text, file=sys.stderr)
  sys.exit(1)


if __name__ == '__main__':
  app.run(main)
