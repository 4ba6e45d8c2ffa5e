"""Training speed (images/s) of our nets next to keras.applications in one run.

    python3 benchmarks/nets_bench.py                       # the full run
    python3 benchmarks/nets_bench.py --nets=resnet_v1_50 --steps=3 --windows=2
    python3 benchmarks/nets_bench.py --mixed_precision     # mixed_bfloat16

For each net, at 32x32 and at its default size (--batch_size for sizes up to
32, --default_size_batch_size above), one tf.function train step (forward with
training=True, sparse softmax cross-entropy, gradients, SGD apply) runs on a
fixed random batch; the same step function times the closest keras.applications
model (weights=None, same input and classes). Warm-up steps (tracing included)
are not timed; then --windows windows of --steps steps each give mean +/- std
images/s. Ratio = ours / keras.applications (higher is faster).
"""

import argparse
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import cli_runs  # noqa: E402
from nets import complexity  # noqa: E402
from nets import nets_factory  # noqa: E402

DEFAULT_NETS = 'custom_cnn,cifarnet,lenet,resnet_v1_50,mobilenet_v1,inception_v1'
NUM_CLASSES = 10


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


def images_per_second(model, logits_fn, batch_size, input_shape, steps,
                      windows, warmup):
  """Per timing window after warm-up: (wall images/s, images per CPU second).

  The second counts the CPU time of this process, all threads: on a machine
  shared with other jobs it moves less than wall time does.
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

  for _ in range(warmup):
    train_step(images, labels).numpy()
  wall, cpu = [], []
  for _ in range(windows):
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
      loss = train_step(images, labels)
    loss.numpy()  # Waits for the last step.
    wall.append(batch_size * steps / (time.perf_counter() - start))
    cpu.append(batch_size * steps / (time.process_time() - start_cpu))
  return wall, cpu


def _device():
  cpu = cli_runs.cpu_model()
  gpus = tf.config.list_physical_devices('GPU')
  return '%s; %d logical CPUs; GPUs: %s' % (
      cpu, os.cpu_count() or 0, ', '.join(g.name for g in gpus) or 'none')


def _mean_std(rates):
  return '%6.1f +/- %5.1f' % (np.mean(rates), np.std(rates))


def run(names, sizes, batch_size, default_size_batch_size, steps, windows,
        warmup):
  print('TF %s, Keras %s, policy %s, intra-op threads %s' % (
      tf.__version__, keras.__version__,
      keras.mixed_precision.global_policy().name,
      tf.config.threading.get_intra_op_parallelism_threads() or 'default'))
  print('device: %s' % _device())
  print('train step: fwd + sparse CE + grads + SGD(momentum); %d warm-up '
        'steps untimed; %d windows x %d steps; img/s = wall clock, '
        'cpu = images per CPU-second of this process' % (warmup, windows, steps))
  print('%-18s %4s %5s | %16s %7s %8s | %16s %7s %8s | %5s %5s' % (
      'net', 'size', 'batch', 'ours img/s', 'cpu', 'MACs(M)',
      'keras.app img/s', 'cpu', 'MACs(M)', 'ratio', 'cpu'))
  for name in names:
    default = nets_factory.default_image_size(name)
    for size in dict.fromkeys(s or default for s in sizes):
      batch = batch_size if size <= 32 else default_size_batch_size
      channels = 1 if name == 'lenet' else 3
      input_shape = (size, size, channels)
      keras.utils.set_random_seed(0)
      ours = nets_factory.build_model(name, NUM_CLASSES, input_shape)
      wall, cpu = images_per_second(ours, _end_points_logits, batch,
                                    input_shape, steps, windows, warmup)
      line = '%-18s %4d %5d | %16s %7.1f %8.1f | ' % (
          name, size, batch, _mean_std(wall), np.mean(cpu),
          complexity.count_macs(ours) / 1e6)
      app = _keras_app(name, input_shape)
      if app is None:
        line += '%16s %7s %8s | %5s %5s' % ('-', '-', '-', '-', '-')
      else:
        app_wall, app_cpu = images_per_second(
            app, _app_logits, batch, input_shape, steps, windows, warmup)
        line += '%16s %7.1f %8.1f | %5.2f %5.2f' % (
            _mean_std(app_wall), np.mean(app_cpu),
            complexity.count_macs(app) / 1e6,
            np.mean(wall) / np.mean(app_wall), np.mean(cpu) / np.mean(app_cpu))
      print(line, flush=True)
      keras.backend.clear_session()


def _positive(flag, value):
  if value < 1:
    raise ValueError('--%s: expected an integer >= 1, got %d' % (flag, value))
  return value


def main(argv=None):
  parser = argparse.ArgumentParser(
      description='Training images/s of our nets vs keras.applications.')
  parser.add_argument('--nets', default=DEFAULT_NETS,
                      help='comma-separated network names')
  parser.add_argument('--sizes', default='32,default',
                      help="comma-separated image sizes; 'default' = the "
                      "net's default_image_size")
  parser.add_argument('--batch_size', type=int, default=128,
                      help='batch size for images up to 32x32')
  parser.add_argument('--default_size_batch_size', type=int, default=16,
                      help='batch size for larger images (e.g. 224)')
  parser.add_argument('--steps', type=int, default=10,
                      help='timed steps per window')
  parser.add_argument('--windows', type=int, default=3,
                      help='timing windows (mean +/- std over them)')
  parser.add_argument('--warmup', type=int, default=2,
                      help='untimed steps first (the first one traces)')
  parser.add_argument('--threads', type=int, default=0,
                      help='TF intra-op threads (0 = TF default)')
  parser.add_argument('--mixed_precision', action='store_true',
                      help="train under keras policy 'mixed_bfloat16'")
  args = parser.parse_args(argv)
  try:
    names = [n.strip() for n in args.nets.split(',') if n.strip()]
    if not names:
      raise ValueError('--nets: expected at least one network name')
    unknown = [n for n in names if n not in nets_factory.networks_map]
    if unknown:
      raise ValueError('--nets: unknown network(s) %s; available: %s' % (
          ', '.join(unknown), ', '.join(nets_factory.list_networks())))
    sizes = []
    for s in args.sizes.split(','):
      s = s.strip()
      if s == 'default':
        sizes.append(0)
      elif s.isdigit() and int(s) > 0:
        sizes.append(int(s))
      else:
        raise ValueError("--sizes: expected positive integers or 'default', "
                         'got %r' % s)
    for flag in ('batch_size', 'default_size_batch_size', 'steps', 'windows'):
      _positive(flag, getattr(args, flag))
    if args.threads < 0:
      raise ValueError('--threads: expected an integer >= 0, got %d'
                       % args.threads)
    if args.threads:
      tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.mixed_precision:
      keras.mixed_precision.set_global_policy('mixed_bfloat16')
    run(names, sizes, args.batch_size,
        args.default_size_batch_size, args.steps, args.windows,
        max(args.warmup, 1))
  except ValueError as e:
    print('error: %s' % e, file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
