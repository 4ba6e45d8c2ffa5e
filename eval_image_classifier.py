"""Evaluates an image classifier: TF-Slim's eval_image_classifier.py on TF2 / Keras 3.

  python eval_image_classifier.py --checkpoint_path=/tmp/train \\
      --eval_dir=/tmp/train_eval --dataset_name=cifar10 --dataset_dir=/tmp/cifar10 \\
      --model_name=cifarnet

Every TF-Slim flag keeps its name and default. Add --eval_interval_secs=60 (and
--timeout) to evaluate each new checkpoint while training runs. See
docs/evaluation.md. Exit codes: 0 done, 1 bad input, 130 interrupted.
"""

from slimkit import cli  # first: sets up TensorFlow (C++ logging, oneDNN)

from absl import flags  # pylint: disable=g-bad-import-order

from slimkit import flags as slim_flags

slim_flags.define_eval_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv  # cli.run rejects positional arguments
  config = slim_flags.config(FLAGS)
  config['explicit_flags'] = sorted(slim_flags.explicitly_set(FLAGS))
  from slimkit import evaluate  # pylint: disable=g-import-not-at-top
  evaluate.run(config)


if __name__ == '__main__':
  cli.run(main)
