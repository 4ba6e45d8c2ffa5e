"""Conv gradients op by op: TF's kernels against the exact rewrites, per layer shape.

Builds a net, records the geometry of every conv it trains (shapes, strides,
padding, dtype), and for each distinct one times TensorFlow's input and filter
gradient kernels next to the alternatives of nets/conv_grad.py, the way
--conv_gradients=auto measures them (fastest of a few runs, after a warm-up),
and prints what auto picks and the gradient time it saves per step.

  python benchmarks/conv_grad_bench.py --net=resnet_v1_50_cifar --batch=128
  python benchmarks/conv_grad_bench.py --cpu=avx2 --onednn=both   # an AVX2 CPU

--onednn=both measures TensorFlow's two kernel sets, each in a process of its own
(TF reads TF_ENABLE_ONEDNN_OPTS once, at import): Eigen's, which TensorFlow runs
on AVX2-only CPUs, and oneDNN's, which the scripts switch on there
(deployment/cpu.py). --cpu=avx2 limits oneDNN to AVX2 (ONEDNN_MAX_CPU_ISA).

Run it twice with the same settings: nothing is cached here (the measurements
are always fresh), so the second run shows the noise.
"""

import collections
import json
import os
import subprocess
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
import keras
import tensorflow as tf

from benchmarks import harness
from nets import conv_grad
from nets import conv_grad_auto
from nets import nets_factory

flags.DEFINE_string('net', 'resnet_v1_50_cifar', 'nets_factory name, or "small_maps": '
                    'five 3x3 stride-1 SAME layers at 1x1 to 32x32 maps, where Eigen\'s input gradient collapses on AVX2 CPUs.')
flags.DEFINE_integer('batch', 128, 'Batch size.')
flags.DEFINE_integer('image_size', 32, 'Height and width of the images.')
flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'], 'Compute dtype.')
flags.DEFINE_integer('max_shapes', 0, 'Measure only the first N shapes (0 = all).')
flags.DEFINE_enum('onednn', 'as_set', ['as_set', 'on', 'off', 'both'],
                  'TensorFlow\'s kernels: as this process has them, oneDNN\'s (on), '
                  'Eigen\'s (off), or both, one process each.')
flags.DEFINE_enum('cpu', 'native', ['native', 'avx2'],
                  'avx2: oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2).')
FLAGS = flags.FLAGS


def machine_line():
  return 'machine: ' + harness.describe()


# Map size and channels of ResNet-like 3x3 convs, stride 1, SAME, from 1x1 to 32x32.
SMALL_MAP_LAYERS = ((1, 512), (2, 256), (4, 256), (8, 128), (32, 64))


def small_map_geometries(batch, dtype):
  return collections.OrderedDict(
      (conv_grad.Geometry(False, (batch, n, n, c), (3, 3, c, c), (batch, n, n, c),
                          (1, 1), (1, 1), 'SAME', dtype), 1)
      for n, c in SMALL_MAP_LAYERS)


def net_geometries(net, batch, image_size, dtype):
  """{geometry: number of layers with it} of the net's convs, in build order."""
  if net == 'small_maps':
    return small_map_geometries(batch, dtype)
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
    # Under a tape, as in a training step: only convs whose gradients a tape
    # needs ask for a decision.
    with tf.GradientTape() as tape:
      tape.watch([v.value for v in model.trainable_variables])
      return model(images, training=True)['Logits']

  with conv_grad_auto.forced(record):
    trace.get_concrete_function(tf.TensorSpec([batch, image_size, image_size, 3]))
  return seen


def rerun(onednn):
  """This benchmark in a child process, oneDNN 'on', 'off' or 'as_set'; its totals."""
  env = dict(os.environ)
  if onednn != 'as_set':
    env['TF_ENABLE_ONEDNN_OPTS'] = '1' if onednn == 'on' else '0'
  if FLAGS.cpu == 'avx2':
    env['ONEDNN_MAX_CPU_ISA'] = 'AVX2'
  args = [sys.executable, os.path.abspath(__file__), '--onednn=as_set',
          '--net=' + FLAGS.net, '--batch=%d' % FLAGS.batch,
          '--image_size=%d' % FLAGS.image_size, '--dtype=' + FLAGS.dtype,
          '--max_shapes=%d' % FLAGS.max_shapes]
  out = subprocess.run(args, env=env, stdout=subprocess.PIPE, text=True, check=True)
  print('\n# oneDNN %s' % onednn)
  print('\n'.join(l for l in out.stdout.splitlines() if not l.startswith('TOTALS ')))
  sys.stdout.flush()
  return json.loads([l for l in out.stdout.splitlines()
                     if l.startswith('TOTALS ')][-1][len('TOTALS '):])


def main(argv):
  del argv
  if FLAGS.onednn != 'as_set' or FLAGS.cpu != 'native':
    kinds = ('off', 'on') if FLAGS.onednn == 'both' else (FLAGS.onednn,)
    totals = {kind: rerun(kind) for kind in kinds}
    if len(totals) == 2:
      print('\nconv gradients per step, ms: Eigen (oneDNN off) tf %.1f, auto %.1f; '
            'oneDNN tf %.1f, auto %.1f; oneDNN+auto over Eigen tf: %.2fx' % (
                totals['off']['tf'], totals['off']['auto'], totals['on']['tf'],
                totals['on']['auto'],
                totals['off']['tf'] / max(totals['on']['auto'], 1e-9)))
    return
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
  print('TOTALS ' + json.dumps(totals))


if __name__ == '__main__':
  app.run(main)
