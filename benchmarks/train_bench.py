"""Training speed: train_image_classifier.py against keras fit and TF-Slim, one run.

Every trainer runs in a process of its own, on the same converted dataset read by
the same input pipeline (slimkit.inputs, the net's preprocessing), with the same
net, batch, optimizer (momentum 0.9, lr 0.01, fixed), loss and precision:

  ours      train_image_classifier.py, figures from its train_stats.json: ours_tf
            with TF's conv gradient kernels and no XLA; ours_auto with the defaults,
            --conv_gradients=auto and --jit_compile=auto, whose decisions a warm-up
            run measures first (as a user's second run finds them cached); ours_jit
            with --jit_compile=true
  fit       keras.Model.fit on the same Keras net (TF's gradients), Logits only,
            with the kernels TensorFlow picks for this CPU by itself
  fit_onednn  the same with oneDNN's kernels forced on (TF_ENABLE_ONEDNN_OPTS=1):
            how much of ours' lead is only that switch (deployment/cpu.py)
  tf_slim   the original TF-Slim code (tf_slim 1.1.0) in graph mode, the nets the
            package has (Inception V1-V3, ResNet V1/V2, VGG, AlexNet, OverFeat) as
            they are, with their arg scopes; resnet_v1_50_cifar with our
            small-input root (conv1 stride 1, no pool1); other nets have no
            TF-Slim counterpart here
An auxiliary head (Inception V3) adds 0.4 of its cross-entropy in every method.

A net is a nets_factory name, trained at its own default image size, or NAME@SIZE:
resnet_v1_50@32 is the small-map case, TF-Slim's ImageNet ResNet-50 (7x7/2 conv1,
3x3/2 pool1) on 32x32 CIFAR-10 images, so its blocks run at 8x8 down to 1x1.

Methods are interleaved over --repeats so all see the same load; the table gives
images/s (mean +/- std), the ratio to fit and to TF-Slim, and the time from process
start to the end of the first step.

--cpu=avx2 runs every process as on this CPU without AVX-512/AMX/VNNI (an AVX2-only
CPU such as a Zen 3): oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA), and oneDNN on or
off as TensorFlow (fit, tf_slim) or ours (train_image_classifier.py) would choose
on such a CPU. TF_ENABLE_ONEDNN_OPTS set by the caller applies to every method.

  python benchmarks/train_bench.py --nets=resnet_v1_50@32 --batch=128
  python benchmarks/train_bench.py --cpu=avx2 ...   # as on an AVX2-only CPU
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# TensorFlow's C++ start-up notices (cuInit on a machine without a GPU...) are
# held back and filtered once main has probed the devices (deployment/startup.py);
# unlike slimkit.cli this leaves oneDNN as each method's environment sets it.
from deployment import startup  # pylint: disable=g-import-not-at-top
startup.capture()

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

from benchmarks import cli_runs
from benchmarks import harness
from deployment import cpu
from slimkit import jit_trial

flags.DEFINE_list('nets', ['resnet_v1_50@32', 'resnet_v1_50_cifar',
                           'inception_v1_cifar', 'mobilenet_v1_cifar', 'custom_cnn'],
                  'Nets to measure: NAME or NAME@IMAGE_SIZE.')
flags.DEFINE_integer('batch', 128, 'Global batch size.')
flags.DEFINE_integer('steps', 20, 'Timed steps per measurement (after 1 warm-up).')
flags.DEFINE_integer('repeats', 2, 'Measurements per net and method, interleaved.')
flags.DEFINE_list('methods', ['ours_tf', 'ours_auto', 'fit', 'fit_onednn', 'tf_slim'],
                  'Methods to run (also: ours_jit).')
flags.DEFINE_enum('cpu', 'native', ['native', 'avx2'],
                  'native: this CPU; avx2: as this CPU without AVX-512, AMX and VNNI.')
flags.DEFINE_enum('precision', 'float32', ['float32', 'bfloat16'],
                  'Compute precision of every method (TF-Slim: float32 only).')
flags.DEFINE_string('dataset_dir', None, 'A converted cifar10 dataset (default: '
                    'converted from the shared copy into --work_dir).')
flags.DEFINE_string('work_dir', None, 'Where data, train dirs and logs go '
                    '(default: a temporary directory).')
flags.DEFINE_string('worker', None, 'Internal: run one in-process measurement '
                    '(fit | fit_onednn | tf_slim) and print its result.')
flags.DEFINE_string('net', None, 'Internal: the worker\'s net (NAME[@SIZE]).')
FLAGS = flags.FLAGS
flags.register_validator(
    'nets', lambda entries: all(parse_net(e) for e in entries),
    message='--nets: expected nets_factory names, each optionally @IMAGE_SIZE')

NUM_CLASSES = 10
LEARNING_RATE = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
AUX_WEIGHT = 0.4  # TF-Slim's weight of an auxiliary head's loss
# nets_factory name -> (tf_slim.nets module, builder, arg scope) of the package.
SLIM_PACKAGE = {
    'inception_v1': ('inception_v1', 'inception_v1', 'inception_v1_arg_scope'),
    'inception_v2': ('inception_v2', 'inception_v2', 'inception_v2_arg_scope'),
    'inception_v3': ('inception_v3', 'inception_v3', 'inception_v3_arg_scope'),
    'vgg_a': ('vgg', 'vgg_a', 'vgg_arg_scope'),
    'vgg_16': ('vgg', 'vgg_16', 'vgg_arg_scope'),
    'vgg_19': ('vgg', 'vgg_19', 'vgg_arg_scope'),
    'alexnet_v2': ('alexnet', 'alexnet_v2', 'alexnet_v2_arg_scope'),
    'overfeat': ('overfeat', 'overfeat', 'overfeat_arg_scope'),
}
SLIM_PACKAGE.update({'resnet_v%d_%d' % (v, d): ('resnet_v%d' % v, 'resnet_v%d_%d' % (v, d),
                                                'resnet_arg_scope')
                     for v in (1, 2) for d in (50, 101, 152, 200)
                     if (v, d) != (1, 200)})
SLIM_NETS = tuple(SLIM_PACKAGE) + ('resnet_v1_50_cifar',)  # with a TF-Slim counterpart
STARTED = time.time()


# ------------------------------------------------------------------------------
# Workers: keras fit and TF-Slim, each in its own process.
# ------------------------------------------------------------------------------


def parse_net(entry):
  """(nets_factory name, image size) of NAME or NAME@SIZE."""
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  name, _, size = entry.partition('@')
  if name not in nets_factory.list_networks() or size and not size.isdigit():
    raise flags.ValidationError('--nets: %r: expected NAME or NAME@IMAGE_SIZE, NAME '
                                'one of nets_factory\'s' % entry)
  return name, int(size) if size else nets_factory.default_image_size(name)


def has_tf_slim(name, precision):
  """Whether the tf_slim method runs for this net and precision (float32 only)."""
  return name in SLIM_NETS and precision == 'float32'


def input_pipeline(name, size, dataset_dir, batch):
  """The dataset train_image_classifier.py reads: same split, preprocessing, seed."""
  from datasets import dataset_factory  # pylint: disable=g-import-not-at-top
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  from preprocessing import preprocessing_factory  # pylint: disable=g-import-not-at-top
  from slimkit import inputs  # pylint: disable=g-import-not-at-top
  split = dataset_factory.get_split('cifar10', 'train', dataset_dir)
  preprocess = preprocessing_factory.get_preprocessing(
      nets_factory.preprocessing_name(name), is_training=True)
  return inputs.build_input(split, preprocess, batch, is_training=True,
                            image_size=size, seed=0, num_readers=4)


def fit_worker(net, dataset_dir, batch, steps, precision):
  import keras  # pylint: disable=g-import-not-at-top
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  if precision != 'float32':
    keras.mixed_precision.set_global_policy('mixed_' + precision)
  keras.utils.set_random_seed(0)
  name, size = parse_net(net)
  dataset = input_pipeline(name, size, dataset_dir, batch)
  model = nets_factory.build_model(name, NUM_CLASSES, (size, size, 3),
                                   weight_decay=WEIGHT_DECAY)
  heads = ['Logits'] + (['AuxLogits'] if 'AuxLogits' in model.output else [])
  model = keras.Model(model.input, [model.output[h] for h in heads])
  model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM),
                loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True)] *
                len(heads), loss_weights=[1.0, AUX_WEIGHT][:len(heads)])
  if len(heads) > 1:  # both heads learn the same labels
    dataset = dataset.map(lambda images, labels: (images, (labels, labels)))
  model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
  first = time.time() - STARTED
  start = time.time()
  model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
  return {'images_per_sec': steps * batch / (time.time() - start),
          'time_to_first_step': first, 'onednn': cpu.onednn_enabled()}


def _import_tf_slim():
  """tf_slim 1.1.0 imports tf_keras paths that moved into tf_keras.src."""
  import importlib  # pylint: disable=g-import-not-at-top
  for name in ('legacy_tf_layers', 'legacy_tf_layers.normalization'):
    sys.modules.setdefault('tf_keras.' + name,
                           importlib.import_module('tf_keras.src.' + name))
  import tf_slim  # pylint: disable=g-import-not-at-top
  return tf_slim


def slim_net(name, images, slim):
  """(logits [B, classes], aux logits or None) of TF-Slim's own net for `name`.

  resnet_v1_50_cifar is TF-Slim's ResNet-50 v1 with our small_input root (conv1
  stride 1, no pool1); every other name is the package's net as it is.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if name == 'resnet_v1_50_cifar':
    resnet_utils = importlib_module('tf_slim.nets.resnet_utils')
    resnet_v1 = importlib_module('tf_slim.nets.resnet_v1')
    blocks = [resnet_v1.resnet_v1_block('block1', base_depth=64, num_units=3, stride=2),
              resnet_v1.resnet_v1_block('block2', base_depth=128, num_units=4, stride=2),
              resnet_v1.resnet_v1_block('block3', base_depth=256, num_units=6, stride=2),
              resnet_v1.resnet_v1_block('block4', base_depth=512, num_units=3, stride=1)]
    with slim.arg_scope(resnet_v1.resnet_arg_scope(weight_decay=WEIGHT_DECAY)):
      with tf.compat.v1.variable_scope('resnet_v1_50_root'):
        net = resnet_utils.conv2d_same(images, 64, 7, stride=1, scope='conv1')
      logits, _ = resnet_v1.resnet_v1(net, blocks, NUM_CLASSES, is_training=True,
                                      include_root_block=False, scope='resnet_v1_50')
    return tf.reshape(logits, [-1, NUM_CLASSES]), None
  module_name, builder, arg_scope = SLIM_PACKAGE[name]
  module = importlib_module('tf_slim.nets.' + module_name)
  with slim.arg_scope(getattr(module, arg_scope)(weight_decay=WEIGHT_DECAY)):
    logits, end_points = getattr(module, builder)(images, NUM_CLASSES,
                                                  is_training=True)
  aux = end_points.get('AuxLogits')
  if aux is not None:
    aux = tf.reshape(aux, [-1, NUM_CLASSES])
  return tf.reshape(logits, [-1, NUM_CLASSES]), aux  # resnet: [B, 1, 1, C]


def importlib_module(name):
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(name)


def tf_slim_worker(net, dataset_dir, batch, steps, precision):
  name, size = parse_net(net)
  if not has_tf_slim(name, precision):
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.compat.v1.disable_eager_execution()
  slim = _import_tf_slim()
  tf.compat.v1.set_random_seed(0)
  dataset = input_pipeline(name, size, dataset_dir, batch)
  images, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
  logits, aux = slim_net(name, images, slim)
  tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  if aux is not None:  # as TF-Slim's train_image_classifier.py
    tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, aux, weights=AUX_WEIGHT)
  total_loss = tf.compat.v1.losses.get_total_loss()
  optimizer = tf.compat.v1.train.MomentumOptimizer(LEARNING_RATE, MOMENTUM)
  train_op = slim.learning.create_train_op(total_loss, optimizer)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    first = time.time() - STARTED
    start = time.time()
    for _ in range(steps):
      sess.run(train_op)
    return {'images_per_sec': steps * batch / (time.time() - start),
            'time_to_first_step': first, 'onednn': cpu.onednn_enabled()}


def run_worker():
  fn = {'fit': fit_worker, 'fit_onednn': fit_worker,
        'tf_slim': tf_slim_worker}[FLAGS.worker]
  result = fn(FLAGS.net, FLAGS.dataset_dir, FLAGS.batch, FLAGS.steps, FLAGS.precision)
  print('RESULT ' + json.dumps(result))


# ------------------------------------------------------------------------------
# The driver: one process per measurement.
# ------------------------------------------------------------------------------


def environment(method):
  """The kernel settings of a method's process: TF's own choice, or ours."""
  flags_ = cpu.flags()
  env = {}
  if FLAGS.cpu == 'avx2':
    flags_ = cpu.avx2_only(flags_)
    env['ONEDNN_MAX_CPU_ISA'] = 'AVX2'
  if 'TF_ENABLE_ONEDNN_OPTS' not in os.environ:
    if method.startswith('ours') or method == 'fit_onednn':
      on = cpu.want_onednn(flags_)
    else:
      on = cpu.tf_default_onednn(flags_)
    env['TF_ENABLE_ONEDNN_OPTS'] = '1' if on else '0'
  return env


def measure_worker(method, net, dataset_dir, log_path):
  args = [sys.executable, os.path.abspath(__file__), '--worker=' + method,
          '--net=' + net, '--dataset_dir=' + dataset_dir, '--batch=%d' % FLAGS.batch,
          '--steps=%d' % FLAGS.steps, '--precision=' + FLAGS.precision]
  with open(log_path, 'w') as log:
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=log, text=True,
                         cwd=ROOT, check=False,
                         env=dict(os.environ, **environment(method)))
  lines = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')]
  if out.returncode or not lines:
    raise harness.RunError('%s worker for %s failed (log: %s)' % (method, net,
                                                                   log_path))
  return json.loads(lines[-1][len('RESULT '):])


def measure_ours(method, net, dataset_dir, work_dir, tag, steps=None):
  train_dir = os.path.join(work_dir, 'train', '%s-%s-%s' % (net, method, tag))
  # From scratch every time: a --work_dir reused from an earlier run would
  # resume its checkpoint and report that run's figures.
  shutil.rmtree(train_dir, ignore_errors=True)
  name, size = parse_net(net)
  run_flags = {
      'model_name': name, 'train_image_size': size, 'dataset_name': 'cifar10',
      'dataset_dir': dataset_dir,
      'batch_size': FLAGS.batch, 'max_number_of_steps': 1 + (steps or FLAGS.steps),
      'optimizer': 'momentum', 'momentum': MOMENTUM, 'learning_rate': LEARNING_RATE,
      'learning_rate_decay_type': 'fixed', 'weight_decay': WEIGHT_DECAY,
      'save_interval_secs': 0, 'save_summaries_secs': 0, 'log_every_n_steps': 1000,
      'random_seed': 0, 'conv_gradients': 'tf' if method == 'ours_tf' else 'auto',
      'jit_compile': {'ours_tf': 'false', 'ours_jit': 'true'}.get(method, 'auto'),
      'mixed_precision': FLAGS.precision}
  stats = cli_runs.train(train_dir, run_flags,
                         os.path.join(work_dir, 'logs', os.path.basename(train_dir)
                                      + '.log'), env=environment(method))
  return {'images_per_sec': stats['steady_images_per_sec'],
          'time_to_first_step': stats['time_to_first_step'],
          'onednn': stats['onednn']}


def measure(method, net, dataset_dir, work_dir, tag, steps=None):
  if method.startswith('ours'):
    return measure_ours(method, net, dataset_dir, work_dir, tag, steps)
  return measure_worker(method, net, dataset_dir, os.path.join(
      work_dir, 'logs', '%s-%s-%s.log' % (net, method, tag)))


def machine_line():
  return 'machine: ' + harness.describe()


def table(net, results):
  """Rows of one net: method, images/s, ratios to fit and TF-Slim, first step."""
  means = {m: harness.mean_std([r['images_per_sec'] for r in rs])[0]
           for m, rs in results.items() if rs}
  rows = []
  for method, rs in results.items():
    if not rs:
      rows.append('%-20s %-10s %18s' % (net, method, 'n/a'))
      continue
    rate, spread = harness.mean_std([r['images_per_sec'] for r in rs])
    ratio = lambda base: ('%7.2fx' % (means[method] / means[base])
                          if base in means else '%8s' % '-')
    rows.append('%-20s %-10s %9.1f +/- %5.1f %s %s %10.1fs %6s' % (
        net, method, rate, spread, ratio('fit'), ratio('tf_slim'),
        harness.mean_std([r['time_to_first_step'] for r in rs])[0],
        'on' if rs[-1]['onednn'] else 'off'))
  return rows


def main(argv):
  del argv
  startup.start_tensorflow()
  if FLAGS.worker:
    run_worker()
    return
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='train_bench_')
  os.makedirs(os.path.join(work_dir, 'logs'), exist_ok=True)
  # auto's decisions: measured once in this work dir, as a user's first run
  # stores them for every later run on the machine.
  os.environ['SLIMKIT_CACHE'] = os.path.join(work_dir, 'cache')
  dataset_dir = harness.converted('cifar10', work_dir, dataset_dir=FLAGS.dataset_dir)
  print(machine_line())
  if FLAGS.cpu == 'avx2':
    print('as an AVX2-only CPU: oneDNN limited to AVX2; oneDNN %s for fit/tf_slim '
          '(TensorFlow\'s choice there), %s for ours' % tuple(
              environment(m).get('TF_ENABLE_ONEDNN_OPTS', 'as set')
              for m in ('fit', 'ours_tf')))
  print('batch %d, %d timed steps x %d repeats, momentum SGD, %s; data %s' % (
      FLAGS.batch, FLAGS.steps, FLAGS.repeats, FLAGS.precision, dataset_dir))
  header = '%-20s %-10s %18s %8s %8s %11s %6s' % (
      'net', 'method', 'images/s', 'vs fit', 'vs slim', 'first step', 'oneDNN')
  print(header)
  print('-' * len(header))
  for net in FLAGS.nets:
    if 'ours_auto' in FLAGS.methods:  # fills the decision cache, untimed
      # Long enough for --jit_compile=auto to try XLA, as a user's first run.
      measure('ours_auto', net, dataset_dir, work_dir, 'warm',
              steps=max(FLAGS.steps, jit_trial.JIT_TRIAL_MIN_STEPS))
    results = {m: [] for m in FLAGS.methods}
    for repeat in range(FLAGS.repeats):
      for method in FLAGS.methods:
        if method == 'tf_slim' and not has_tf_slim(parse_net(net)[0],
                                                   FLAGS.precision):
          continue
        results[method].append(measure(method, net, dataset_dir, work_dir,
                                       str(repeat)))
    print('\n'.join(table(net, results)))
    sys.stdout.flush()


if __name__ == '__main__':
  app.run(main)
