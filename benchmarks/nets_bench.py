"""Training speed (images/s) of our nets next to keras.applications in one run.

    python3 benchmarks/nets_bench.py                       # the full run
    python3 benchmarks/nets_bench.py --nets=resnet_v1_50 --steps=3 --windows=2
    python3 benchmarks/nets_bench.py --mixed_precision     # mixed_bfloat16

For each net, at 32x32 and at its default size (--batch_size for sizes up to
32, --default_size_batch_size above), one tf.function train step (forward with
training=True, sparse softmax cross-entropy, gradients, SGD apply) runs on a
fixed random batch; the same step function times the closest keras.applications
model (weights=None, same input, classes, batch and Keras policy). Warm-up steps
(tracing included) are not timed; then --windows windows of --steps steps each,
ours and keras.applications in turn, give mean +/- std images/s.
Ratio = ours / keras.applications (higher is faster).
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top
import keras
import numpy as np
import tensorflow as tf

from benchmarks import harness
from nets import complexity
from nets import nets_factory
from slimkit import cli

NUM_CLASSES = 10

FLAGS = flags.FLAGS
flags.DEFINE_list('nets', ['custom_cnn', 'cifarnet', 'lenet', 'resnet_v1_50',
                           'mobilenet_v1', 'inception_v1'], 'Nets of nets_factory.')
flags.DEFINE_list('sizes', ['32', 'default'], "Image sizes; 'default' = the net's "
                  'default_image_size.')
flags.register_validator('sizes', lambda v: all(s == 'default' or s.isdigit() and
                                                int(s) > 0 for s in v),
                         "--sizes: expected positive integers or 'default'")
flags.DEFINE_integer('batch_size', 128, 'Batch size for images up to 32x32.',
                     lower_bound=1)
flags.DEFINE_integer('default_size_batch_size', 16, 'Batch size for larger images '
                     '(e.g. 224).', lower_bound=1)
flags.DEFINE_integer('steps', 10, 'Timed steps per window.', lower_bound=1)
flags.DEFINE_integer('windows', 3, 'Timing windows (mean +/- std over them).',
                     lower_bound=1)
flags.DEFINE_integer('warmup', 2, 'Untimed steps first (the first one traces).',
                     lower_bound=1)
flags.DEFINE_integer('threads', 0, 'TF intra-op threads (0 = TF default).',
                     lower_bound=0)
flags.DEFINE_bool('mixed_precision', False, "Both sides under the Keras policy "
                  "'mixed_bfloat16'.")


def _end_points_logits(end_points):
  return end_points['Logits']


def _app_logits(outputs):
  return outputs


def _keras_app(name, input_shape):
  """The same architecture in keras.applications, or None."""
  if name == 'resnet_v1_50':
    return keras.applications.ResNet50(
        weights=None, input_shape=input_shape, classes=NUM_CLASSES,
        classifier_activation=None)
  if name.startswith('mobilenet_v1') and not name.endswith('_cifar'):
    alpha = nets_factory.get_spec(name).kwargs.get('depth_multiplier', 1.0)
    return keras.applications.MobileNet(
        weights=None, input_shape=input_shape, classes=NUM_CLASSES,
        alpha=alpha, classifier_activation=None)
  return None


def train_meter(model, logits_fn, batch_size, input_shape, name):
  """A Meter of one train step (forward, sparse CE, gradients, SGD) on a fixed batch.

  Its cpu_rates count the CPU time of this process, all threads: on a machine
  shared with other jobs they move less than wall time does.
  """
  rng = np.random.default_rng(0)
  images = tf.constant(rng.uniform(-1, 1, (batch_size,) + input_shape),
                       tf.float32)
  labels = tf.constant(rng.integers(0, NUM_CLASSES, batch_size), tf.int64)
  optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
  variables = model.trainable_variables

  @tf.function
  def train_step(x, y):
    with tf.GradientTape() as tape:
      logits = tf.cast(logits_fn(model(x, training=True)), tf.float32)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=y, logits=logits))
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return loss

  return harness.Meter(lambda: train_step(images, labels), items=batch_size,
                       steps=FLAGS.steps, name=name)


def _column(meter):
  return '%16s %7.1f' % (meter, meter.cpu_mean)


def run(names, sizes):
  print(harness.describe())
  print('policy %s, intra-op threads %s' % (
      keras.mixed_precision.global_policy().name,
      tf.config.threading.get_intra_op_parallelism_threads() or 'default'))
  print('train step: fwd + sparse CE + grads + SGD(momentum), same step, batch, '
        'input and policy on both sides; %d warm-up steps untimed; %d windows x %d '
        'steps, interleaved; img/s = wall clock, cpu = images per CPU-second of this '
        'process' % (FLAGS.warmup, FLAGS.windows, FLAGS.steps))
  print('%-18s %4s %5s | %16s %7s %8s | %16s %7s %8s | %5s %5s' % (
      'net', 'size', 'batch', 'ours img/s', 'cpu', 'MACs(M)',
      'keras.app img/s', 'cpu', 'MACs(M)', 'ratio', 'cpu'))
  for name in names:
    default = nets_factory.default_image_size(name)
    for size in dict.fromkeys(s or default for s in sizes):
      batch = FLAGS.batch_size if size <= 32 else FLAGS.default_size_batch_size
      channels = 1 if name == 'lenet' else 3
      input_shape = (size, size, channels)
      keras.utils.set_random_seed(0)
      ours = nets_factory.build_model(name, NUM_CLASSES, input_shape)
      meters = [train_meter(ours, _end_points_logits, batch, input_shape, 'ours')]
      app = _keras_app(name, input_shape)
      if app is not None:
        meters.append(train_meter(app, _app_logits, batch, input_shape, 'app'))
      harness.interleave(meters, FLAGS.windows, warmup=FLAGS.warmup)
      line = '%-18s %4d %5d | %s %8.1f | ' % (
          name, size, batch, _column(meters[0]), complexity.count_macs(ours) / 1e6)
      if app is None:
        line += '%16s %7s %8s | %5s %5s' % ('-', '-', '-', '-', '-')
      else:
        line += '%s %8.1f | %5.2f %5.2f' % (
            _column(meters[1]), complexity.count_macs(app) / 1e6,
            meters[0].mean / meters[1].mean, meters[0].cpu_mean / meters[1].cpu_mean)
      print(line, flush=True)
      keras.backend.clear_session()


def main(argv):
  del argv
  harness.check_nets(FLAGS.nets)
  if FLAGS.threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  if FLAGS.mixed_precision:
    keras.mixed_precision.set_global_policy('mixed_bfloat16')
  run(FLAGS.nets, [0 if s == 'default' else int(s) for s in FLAGS.sizes])


if __name__ == '__main__':
  cli.run(main)
