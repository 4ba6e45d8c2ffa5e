"""Conv gradients op by op: TF's kernels against the exact rewrites, per layer shape.

Builds a net, records the geometry of every conv it trains (shapes, strides,
padding, dtype), and for each distinct one times TensorFlow's input and filter
gradient kernels next to the alternatives of nets/conv_grad.py, the way
--conv_gradients=auto measures them (fastest of a few runs, after a warm-up),
and prints what auto picks and the gradient time it saves per step.

  python benchmarks/conv_grad_bench.py --net=resnet_v1_50_cifar --batch=128
  ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/conv_grad_bench.py   # an AVX2 CPU

Run it twice with the same settings: nothing is cached here (the measurements
are always fresh), so the second run shows the noise.
"""

import collections
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
import keras
import tensorflow as tf

from benchmarks import harness
from nets import conv_grad_auto
from nets import nets_factory

flags.DEFINE_string('net', 'resnet_v1_50_cifar', 'nets_factory name.')
flags.DEFINE_integer('batch', 128, 'Batch size.')
flags.DEFINE_integer('image_size', 32, 'Height and width of the images.')
flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'], 'Compute dtype.')
flags.DEFINE_integer('max_shapes', 0, 'Measure only the first N shapes (0 = all).')
FLAGS = flags.FLAGS


def machine_line():
  return 'machine: ' + harness.describe()


def net_geometries(net, batch, image_size, dtype):
  """{geometry: number of layers with it} of the net's convs, in build order."""
  if dtype != 'float32':
    keras.mixed_precision.set_global_policy('mixed_' + dtype)
  try:
    model = nets_factory.build_model(net, 10, (image_size, image_size, 3),
                                     conv_gradients='auto')
  finally:
    keras.mixed_precision.set_global_policy('float32')
  seen = collections.OrderedDict()

  def record(g):
    seen[g] = seen.get(g, 0) + 1
    return {'dx': 'tf', 'dw': 'tf'}

  @tf.function
  def trace(images):
    return model(images, training=True)['Logits']

  with conv_grad_auto.forced(record):
    trace.get_concrete_function(tf.TensorSpec([batch, image_size, image_size, 3]))
  return seen


def main(argv):
  del argv
  print(machine_line())
  print('%s, batch %d, %dx%d, %s' % (FLAGS.net, FLAGS.batch, FLAGS.image_size,
                                     FLAGS.image_size, FLAGS.dtype))
  geometries = net_geometries(FLAGS.net, FLAGS.batch, FLAGS.image_size, FLAGS.dtype)
  items = list(geometries.items())
  if FLAGS.max_shapes:
    items = items[:FLAGS.max_shapes]
  header = '%-52s %3s %5s %-34s %-34s' % ('layer shape (x, kernel, stride, padding)',
                                           'n', 'grad', 'ms: tf / fwd / mm / taps',
                                           'auto picks')
  print(header)
  print('-' * len(header))
  totals = {'tf': 0.0, 'auto': 0.0}
  for g, count in items:
    decision = conv_grad_auto.measure(g)
    for grad in ('dx', 'dw'):
      times = decision['ms'][grad]
      cells = ' / '.join('%s %.2f' % (m, t) for m, t in times.items())
      pick = decision[grad]
      print('%-52s %3d %5s %-34s %-34s' % (
          g.key() if grad == 'dx' else '', count, grad, cells,
          '%s (%.2fx)' % (pick, times['tf'] / times[pick])))
      totals['tf'] += count * times['tf']
      totals['auto'] += count * times[pick]
    sys.stdout.flush()
  print('conv gradients per step: tf %.1f ms, auto %.1f ms (%.2fx)' % (
      totals['tf'], totals['auto'], totals['tf'] / max(totals['auto'], 1e-9)))


if __name__ == '__main__':
  app.run(main)
