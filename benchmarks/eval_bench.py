"""Evaluation speed: the 10,000 CIFAR-10 test images with custom_cnn.

Measured in one run, on the same images, net, batch and precision (float32):
  forward  images/s of the bare model (tf.function) on batches already preprocessed
           and in memory: the compute ceiling, the baseline;
  eval     eval_image_classifier.py run as a subprocess, end to end: wall time
           including Python and TensorFlow start-up, and the images/s of its pass
           over the split as written to eval_<step>.json.
The two are interleaved, repeat by repeat, so both see the same machine load. It
prints eval / forward and the wall time against the target (< 20 s for 10,000).
The weights are a fresh, untrained checkpoint: speed does not depend on them.

Data: --dataset_dir is a converted CIFAR-10 directory with a 'test' split. Without
it, download_and_convert_data.py converts --num_images test images (default all) of
--source (default: the shared JPEG copy in ../shared/datasets) into --work_dir.

  python3 benchmarks/eval_bench.py                      # 10,000 images
  python3 benchmarks/eval_bench.py --num_images=2000    # smaller, on a busy machine
"""

import itertools
import os
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

from benchmarks import cli_runs
from benchmarks import harness
from datasets import dataset_factory
from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import checkpoints
from slimkit import cli

TARGET_SECONDS = 20.0

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset_dir', None, 'Converted CIFAR-10 directory (test split).')
flags.DEFINE_string('source', None, 'CIFAR-10 class folders to convert when '
                    '--dataset_dir is not given (default: the shared JPEG copy).')
flags.DEFINE_string('work_dir', None, 'Where the test split is converted when '
                    '--dataset_dir is not given (default: a new temporary directory).')
flags.DEFINE_integer('num_images', None, 'Convert only this many test images (default '
                     'all 10,000); ignored with --dataset_dir.', lower_bound=1)
flags.DEFINE_string('model_name', 'custom_cnn', 'The net (at its default image size).')
flags.DEFINE_integer('batch_size', 100, 'Eval batch size (TF-Slim\'s default: 100).',
                     lower_bound=1)
flags.DEFINE_integer('repeats', 3, 'Runs of each measurement (mean +/- std).',
                     lower_bound=1)


def fresh_checkpoint(train_dir, num_classes, size):
  model = nets_factory.build_model(FLAGS.model_name, num_classes, (size, size, 3))
  step = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(checkpoints.make_checkpoint(model, step),
                                       train_dir, max_to_keep=1,
                                       checkpoint_name=checkpoints.CHECKPOINT_NAME)
  return manager.save(checkpoint_number=0)


def forward_meter(split, size, batch_size):
  """A Meter of the bare model: one window is one pass over the split's full
  batches, preprocessed as eval does and held in memory."""
  preprocess = preprocessing_factory.get_preprocessing(FLAGS.model_name,
                                                       is_training=False)
  pixels = split.read().map(lambda image, _: preprocess(image, size, size))
  images = np.stack(list(pixels.as_numpy_iterator()))
  model = nets_factory.build_model(FLAGS.model_name, split.num_classes,
                                   (size, size, 3))
  spec = tf.TensorSpec([None, size, size, 3], tf.float32)
  forward = tf.function(lambda x: model(x, training=False)['Logits'],
                        input_signature=[spec])
  batch_size = min(batch_size, len(images))
  batches = [tf.constant(images[i:i + batch_size])
             for i in range(0, len(images) - batch_size + 1, batch_size)]
  cycle = itertools.cycle(batches)
  return harness.Meter(lambda: forward(next(cycle)), items=batch_size,
                       steps=len(batches), name='forward')


class EvalRuns:
  """eval_image_classifier.py, one process per window: its wall time and the
  images/s of its pass (eval_<step>.json)."""

  def __init__(self, dataset_dir, prefix, work_dir):
    self.dataset_dir, self.prefix, self.work_dir = dataset_dir, prefix, work_dir
    self.walls, self.rates, self.samples = [], [], []

  def window(self):
    eval_dir = os.path.join(self.work_dir, 'eval_%d' % len(self.walls))
    self.walls.append(harness.run_script('eval_image_classifier.py', {
        'checkpoint_path': self.prefix, 'eval_dir': eval_dir,
        'dataset_name': 'cifar10', 'dataset_dir': self.dataset_dir,
        'model_name': FLAGS.model_name, 'batch_size': FLAGS.batch_size},
        eval_dir + '.log'))
    result = cli_runs.eval_results(eval_dir)[-1]
    self.rates.append(result['images_per_sec'])
    self.samples.append(result['num_samples'])


def main(argv):
  del argv
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='eval_bench_')
  dataset_dir = harness.converted(
      'cifar10', work_dir, FLAGS.dataset_dir, FLAGS.source,
      sample={'train': 10, 'test': FLAGS.num_images})  # the converter wants a train split
  split = dataset_factory.get_split('cifar10', 'test', dataset_dir)
  size = nets_factory.default_image_size(FLAGS.model_name)
  prefix = fresh_checkpoint(os.path.join(work_dir, 'train'), split.num_classes, size)
  print(harness.describe())
  print('%s at %dx%d, float32, on %d images of %s, batch %d, %d repeats'
        % (FLAGS.model_name, size, size, split.num_samples, dataset_dir,
           FLAGS.batch_size, FLAGS.repeats))
  forward = forward_meter(split, size, FLAGS.batch_size)
  forward.warm()  # traces
  runs = EvalRuns(dataset_dir, prefix, work_dir)
  for _ in range(FLAGS.repeats):  # interleaved: both see the same load
    forward.window()
    runs.window()
  if any(n != split.num_samples for n in runs.samples):
    raise harness.RunError('eval_image_classifier.py evaluated %s images, not the '
                           'split\'s %d' % (runs.samples, split.num_samples))
  e_mean, _ = harness.mean_std(runs.rates)
  w_mean, _ = harness.mean_std(runs.walls)
  # Start-up is paid once; the pass scales with the number of images.
  startup = w_mean - split.num_samples / e_mean
  scaled = startup + 10000.0 / e_mean
  print('forward (baseline)   %s images/s' % forward)
  print('eval pass            %s images/s   eval / forward = %.2f'
        % (harness.format_mean_std(runs.rates), e_mean / forward.mean))
  print('eval wall time       %s s (start-up and set-up: %.1f s)'
        % (harness.format_mean_std(runs.walls), startup))
  note = '' if split.num_samples == 10000 else (
      ' (measured on %d images: ~%.1f s for 10,000)' % (split.num_samples, scaled))
  print('target: 10,000 images in < %.0f s: %s%s' % (
      TARGET_SECONDS, 'met' if scaled < TARGET_SECONDS else 'NOT met', note))


if __name__ == '__main__':
  cli.run(main)
