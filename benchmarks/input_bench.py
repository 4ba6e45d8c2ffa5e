"""Input pipeline throughput against training throughput, on this machine.

For each row (dataset, preprocessing, net) it measures, window by window in turn so
that both see the same load:
  input  images/s of slimkit.inputs.build_input in training mode (unseeded, the
         fast mode, unless --seed), after the first batch (which includes filling
         the shuffle buffer and, for CIFAR-10, the decoded-image cache);
  train  images/s of a plain float32 SGD step (tf.function) of the net built by
         nets.nets_factory.build_model, on a fixed batch of the same shape;
and prints input / train. Target: >= 3 for every row, so that the pipeline needs at
most a third of the CPU that training uses.

Data: --cifar_dir and --flowers_dir are converted dataset directories. When one is
not given, download_and_convert_data.py converts --cifar_source / --flowers_source
(default: the shared copies in ../shared/datasets) into --work_dir; --cifar_images
converts only a seeded sample of CIFAR-10's training images (--quick: 5000).

  python3 benchmarks/input_bench.py                     # full run
  python3 benchmarks/input_bench.py --quick             # smoke run, a few minutes
"""

import os
import shutil
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top
import keras
import tensorflow as tf

from benchmarks import harness
from datasets import dataset_factory
from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import cli
from common import errors
from slimkit import inputs

# (dataset, split, preprocessing, net, image size, batch size)
ROWS = (
    ('cifar10', 'train', 'cifar', 'cifarnet', 32, 128),
    ('cifar10', 'train', 'cifar', 'custom_cnn', 32, 128),
    ('cifar10', 'train', 'cifarnet', 'cifarnet', 32, 128),
    ('flowers', 'train', 'inception', 'inception_v1', 224, 32),
    ('flowers', 'train', 'inception', 'mobilenet_v1', 224, 32),
    ('flowers', 'train', 'vgg', 'resnet_v1_50', 224, 32),
)
QUICK_CIFAR_IMAGES = 5000

FLAGS = flags.FLAGS
flags.DEFINE_string('cifar_dir', None, 'Converted CIFAR-10 directory.')
flags.DEFINE_string('flowers_dir', None, 'Converted flowers directory.')
flags.DEFINE_string('cifar_source', None, 'CIFAR-10 source to convert without '
                    '--cifar_dir (default: the shared JPEG copy).')
flags.DEFINE_string('flowers_source', None, 'Flowers source to convert without '
                    '--flowers_dir (default: the shared sample).')
flags.DEFINE_string('work_dir', None,
                    'Where to convert the datasets when a *_dir is not given '
                    '(default: a temporary directory, removed at the end).')
flags.DEFINE_bool('quick', False,
                  'Smoke run: %d CIFAR-10 images, batches of at most 64 (32 px) and 8 '
                  '(224 px), one short window per measurement.' % QUICK_CIFAR_IMAGES)
flags.DEFINE_float('input_seconds', 10.0, 'Seconds per input measurement window.',
                   lower_bound=0.0)
flags.DEFINE_integer('train_steps', 20, 'Timed SGD steps per training window.',
                     lower_bound=1)
flags.DEFINE_integer('repeats', 3, 'Measurement windows per row (mean +/- std).',
                     lower_bound=1)
flags.DEFINE_integer('seed', None,
                     'Measure the seeded, deterministic pipeline (default: the fast '
                     'unseeded one).')
flags.DEFINE_list('rows', None, 'Only these rows, as preprocessing:net '
                  '(e.g. cifar:cifarnet,vgg:resnet_v1_50).')
flags.DEFINE_integer('image_size', None, 'Every row at this size instead of its own '
                     '(a smaller one for a smoke run).', lower_bound=8)
flags.DEFINE_integer('cifar_images', None, 'CIFAR-10 training images to convert '
                     '(default: all; --quick: %d).' % QUICK_CIFAR_IMAGES, lower_bound=1)


def prepare(name, work_dir):
  """A converted dataset directory for `name`: the given one, or a fresh conversion."""
  if name == 'flowers':
    return harness.converted('flowers', work_dir, FLAGS.flowers_dir,
                             FLAGS.flowers_source)
  count = FLAGS.cifar_images or (QUICK_CIFAR_IMAGES if FLAGS.quick else None)
  sample = {'train': count, 'test': 10} if count else None
  return harness.converted('cifar10', work_dir, FLAGS.cifar_dir, FLAGS.cifar_source,
                           sample=sample)


def input_meter(split, preprocessing, size, batch_size):
  """(Meter of the training pipeline, seconds to its first batch)."""
  fn = preprocessing_factory.get_preprocessing(preprocessing, is_training=True)
  dataset = inputs.build_input(split, fn, batch_size, is_training=True,
                               image_size=size, seed=FLAGS.seed)
  iterator = iter(dataset)
  meter = harness.Meter(lambda: next(iterator), items=batch_size, steps=1,
                        min_seconds=FLAGS.input_seconds, name='input')
  first = meter.warm(1)
  meter.warm(3)  # lets tf.data's autotuning settle
  return meter, first


def train_meter(net, num_classes, size, batch_size):
  """A Meter of a float32 SGD step of `net` on a fixed batch."""
  model = nets_factory.build_model(net, num_classes, input_shape=(size, size, 3))
  optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
  images = tf.random.uniform([batch_size, size, size, 3], -1.0, 1.0)
  labels = tf.random.uniform([batch_size], 0, num_classes, dtype=tf.int64)

  @tf.function
  def step(x, y):
    with tf.GradientTape() as tape:
      logits = model(x, training=True)['Logits']
      loss = tf.reduce_mean(
          tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
      if model.losses:
        loss += tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  meter = harness.Meter(lambda: step(images, labels), items=batch_size,
                        steps=FLAGS.train_steps, name='train')
  meter.warm(2)  # trace + warm-up
  return meter


def main(argv):
  del argv
  if FLAGS.quick:  # a smoke run of a few minutes on 2 busy cores
    FLAGS.input_seconds = min(FLAGS.input_seconds, 2.0)
    FLAGS.train_steps = min(FLAGS.train_steps, 2)
    FLAGS.repeats = 1
  if FLAGS.work_dir:
    return measure(FLAGS.work_dir)
  work_dir = tempfile.mkdtemp(prefix='input_bench_')
  try:  # only converted data goes there: the table is printed
    return measure(work_dir)
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)


def measure(work_dir):
  rows = [r for r in ROWS
          if not FLAGS.rows or '%s:%s' % (r[2], r[3]) in FLAGS.rows]
  if not rows:
    raise errors.UserError('--rows=%s: no such row; expected preprocessing:net from %s'
                           % (','.join(FLAGS.rows),
                              ', '.join('%s:%s' % (r[2], r[3]) for r in ROWS)))
  print(harness.describe())
  print('windows: %d x %.0f s (input%s), %d x %d steps (train, float32 SGD)%s' % (
      FLAGS.repeats, FLAGS.input_seconds,
      ', seed %d' % FLAGS.seed if FLAGS.seed is not None else ', unseeded',
      FLAGS.repeats, FLAGS.train_steps, ' [--quick]' if FLAGS.quick else ''))
  print('%-8s %-10s %-13s %5s %5s %18s %8s %18s %7s' % (
      'data', 'preproc', 'net', 'size', 'batch', 'input img/s', '1st (s)',
      'train img/s', 'ratio'))
  ratios = []
  for dataset, split_name, preprocessing, net, size, batch in rows:
    size = FLAGS.image_size or size
    if FLAGS.quick:
      batch = min(batch, 8 if size > 64 else 64)
    split = dataset_factory.get_split(dataset, split_name, prepare(dataset, work_dir))
    pipeline, first = input_meter(split, preprocessing, size, batch)
    training = train_meter(net, split.num_classes, size, batch)
    harness.interleave([pipeline, training], FLAGS.repeats)
    ratios.append(pipeline.mean / training.mean)
    print('%-8s %-10s %-13s %5d %5d %18s %8.1f %18s %7.2f' % (
        dataset, preprocessing, net, size, batch, pipeline, first, training,
        ratios[-1]), flush=True)
  print('min ratio %.2f: %s (target >= 3)' % (
      min(ratios), 'ok' if min(ratios) >= 3 else 'BELOW TARGET'))


if __name__ == '__main__':
  cli.run(main)
