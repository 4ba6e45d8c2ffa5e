"""Evaluates an image classifier: TF-Slim's eval_image_classifier.py on TF2 / Keras 3.

  python eval_image_classifier.py --checkpoint_path=/tmp/train \\
      --eval_dir=/tmp/train_eval --dataset_name=cifar10 --dataset_dir=/tmp/cifar10 \\
      --model_name=cifarnet

Every TF-Slim flag keeps its name and default. Add --eval_interval_secs=60 (and
--timeout) to evaluate each new checkpoint while training runs. See
docs/evaluation.md. Exit codes: 0 done, 1 bad input, 130 interrupted.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app
from absl import flags
from absl import logging

from slimkit import flags as slim_flags

slim_flags.define_eval_flags()
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    _fail('unexpected arguments %s (flags are --name=value)' % ' '.join(argv[1:]))
  logging.set_verbosity(logging.INFO)
  config = slim_flags.config(FLAGS)
  config['explicit_flags'] = sorted(slim_flags.explicitly_set(FLAGS))
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from slimkit import evaluate  # pylint: disable=g-import-not-at-top
    try:
      evaluate.run(config)
    except tf.errors.OpError as e:  # e.g. a corrupt TFRecord: its first line says
      _fail(e.message.splitlines()[0] if e.message else e)
  except (ValueError, FileNotFoundError) as e:
    _fail(e)
  except KeyboardInterrupt:
    print('eval_image_classifier.py: interrupted', file=sys.stderr)
    sys.exit(130)


def _fail(message):
  text = ' '.join(str(message).split())  # one line
  print('eval_image_classifier.py: error: %s' % text, file=sys.stderr)
  sys.exit(1)


if __name__ == '__main__':
  app.run(main)
