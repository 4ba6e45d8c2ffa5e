"""Training speed: our loop (slimkit.train) against keras.Model.fit, same run.

For each net, both train the same Keras model (fresh weights, same seed) on the
same in-memory tf.data pipeline with the same batch, optimizer and loss:
  ours   slimkit.train.Trainer.train(): the real host loop and tf.function loop
  fit    keras.Model.fit on the model wrapped to return Logits only, compiled with
         the same optimizer and sparse cross-entropy (weight decay comes from
         model.losses in both), default steps_per_execution unless told
Reported: steady-state images/s (after warm-up, mean +/- std over --repeats,
the methods interleaved so both see the same load), images per CPU-second (less
sensitive to other processes on a shared machine), the ratios ours/fit, and the
time from building the model to the end of the first step.

  python benchmarks/train_bench.py                       # the full table
  python benchmarks/train_bench.py --nets=lenet,cifarnet --steps=20 --repeats=1

The machine matters: run on a quiet one; a shared CPU gives noisy, lower numbers.
"""

import os
import sys
import tempfile
import time
import types

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from deployment import model_deploy
from slimkit import flags as slim_flags
from slimkit import optimizers
from slimkit import train

NETS = ('lenet', 'cifarnet', 'custom_cnn', 'inception_v1_cifar', 'resnet_v1_50_cifar',
        'mobilenet_v1_cifar')

flags.DEFINE_list('nets', list(NETS), 'Nets to measure (nets_factory names).')
flags.DEFINE_integer('image_size', 32, 'Height and width of the images.')
flags.DEFINE_integer('bench_batch_size', 64, 'Global batch size.')
flags.DEFINE_integer('steps', 60, 'Timed steps per measurement.')
flags.DEFINE_integer('warmup_steps', 10, 'Untimed steps first (tracing, warm-up).')
flags.DEFINE_integer('repeats', 3, 'Measurements per net and method.')
flags.DEFINE_string('bench_optimizer', 'sgd', 'Optimizer of both loops.')
flags.DEFINE_list('precisions', ['float32', 'bfloat16'],
                  'Our loop also with these mixed precisions (float32 = off).')
flags.DEFINE_integer('fit_steps_per_execution', 1,
                     'keras.Model.fit steps_per_execution (its default is 1).')
FLAGS = flags.FLAGS

NUM_CLASSES = 10
NUM_IMAGES = 1024


class InMemoryTrainer(train.Trainer):
  """The real Trainer, fed from in-memory tensors and saving nothing."""

  def __init__(self, config, deploy, strategy, data):
    self._data = data
    super().__init__(config, deploy, strategy, time.time())

  def _build_data(self):
    images, _ = self._data
    self.split = types.SimpleNamespace(num_samples=len(images))
    self.num_classes = NUM_CLASSES
    self.image_size = images.shape[1]
    self.channels = images.shape[-1]
    self.preprocessing_name = None

  def dataset_fn(self, input_context):
    batch = input_context.get_per_replica_batch_size(self.global_batch)
    return memory_dataset(self._data, batch)

  def save(self):
    return None


def memory_dataset(data, batch_size):
  images, labels = data
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
  return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def make_data(image_size, channels):
  rng = np.random.default_rng(0)
  images = rng.standard_normal((NUM_IMAGES, image_size, image_size, channels),
                               dtype=np.float32)
  labels = rng.integers(0, NUM_CLASSES, NUM_IMAGES).astype(np.int64)
  return images, labels


def base_config(net, train_dir):
  slim_flags.define_train_flags()
  config = slim_flags.defaults(FLAGS)
  config.update(model_name=net, dataset_dir='(in memory)', train_dir=train_dir,
                batch_size=FLAGS.bench_batch_size, optimizer=FLAGS.bench_optimizer,
                learning_rate=0.01, learning_rate_decay_type='fixed',
                save_interval_secs=0, save_summaries_secs=0, log_every_n_steps=10**9,
                random_seed=0, weight_decay=0.00004)
  return config


# ------------------------------------------------------------------------------
# The two methods.
# ------------------------------------------------------------------------------


class Ours(object):
  """slimkit.train's Trainer.train() on the in-memory data."""

  def __init__(self, net, data, train_dir, precision):
    self.name = 'ours' if precision == 'float32' else 'ours+' + precision[:4]
    config = base_config(net, train_dir)
    if precision != 'float32':
      config['mixed_precision'] = precision
    deploy = model_deploy.DeploymentConfig.from_config(config)
    policy = keras.mixed_precision.global_policy()
    if precision != 'float32':  # layers take the policy when they are built
      keras.mixed_precision.set_global_policy('mixed_' + precision)
    try:
      keras.utils.set_random_seed(0)
      self.trainer = InMemoryTrainer(config, deploy, deploy.strategy(), data)
    finally:
      keras.mixed_precision.set_global_policy(policy)
    self.stop = train.StopRequest()

  def warm(self):
    """Seconds from construction to the end of the first step."""
    self.trainer.max_steps = FLAGS.warmup_steps
    self.trainer.train(self.stop)
    return self.trainer.stats['time_to_first_step']

  def measure(self):
    """(images/s, images per CPU-second) over FLAGS.steps more steps.

    The first call of train() (a new input iterator) is left out of images/s,
    as fit's per-epoch set-up is left in; the CPU figure counts all of it.
    """
    trainer = self.trainer
    trainer.max_steps = trainer.current_step() + FLAGS.steps
    cpu = time.process_time()
    trainer.train(self.stop)
    cpu = time.process_time() - cpu
    return (trainer.stats['steady_steps'] * FLAGS.bench_batch_size /
            trainer.stats['steady_secs'], FLAGS.steps * FLAGS.bench_batch_size / cpu)


class _FirstBatch(keras.callbacks.Callback):
  def on_train_batch_end(self, batch, logs=None):
    if not hasattr(self, 'time'):
      self.time = time.time()


class Fit(object):
  """keras.Model.fit on the same net, returning Logits only."""

  def __init__(self, net, data):
    from nets import nets_factory  # pylint: disable=g-import-not-at-top
    self.name = 'fit'
    self.started = time.time()
    keras.utils.set_random_seed(0)
    size, channels = data[0].shape[1], data[0].shape[-1]
    model = nets_factory.build_model(net, NUM_CLASSES, (size, size, channels),
                                     weight_decay=0.00004)
    self.model = keras.Model(model.input, model.output['Logits'])
    self.model.compile(
        optimizer=optimizers.configure_optimizer(FLAGS.bench_optimizer, 0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=FLAGS.fit_steps_per_execution)
    self.dataset = memory_dataset(data, FLAGS.bench_batch_size)

  def warm(self):
    first = _FirstBatch()
    self.model.fit(self.dataset, steps_per_epoch=FLAGS.warmup_steps, epochs=1,
                   verbose=0, callbacks=[first])
    return first.time - self.started

  def measure(self):
    """(images/s, images per CPU-second) over FLAGS.steps steps."""
    start, cpu = time.time(), time.process_time()
    self.model.fit(self.dataset, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
    images = FLAGS.steps * FLAGS.bench_batch_size
    return images / (time.time() - start), images / (time.process_time() - cpu)


# ------------------------------------------------------------------------------
# The table.
# ------------------------------------------------------------------------------


def _fmt(rates):
  return '%8.1f +/- %5.1f' % (np.mean(rates), np.std(rates))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  print('train_bench: TF %s, Keras %s, %d CPU(s), GPUs: %d; batch %d, %dx%d, %d '
        'timed steps x %d repeats after %d warm-up steps, optimizer %s; fit '
        'steps_per_execution=%d' % (
            tf.__version__, keras.__version__, os.cpu_count(),
            len(tf.config.list_physical_devices('GPU')), FLAGS.bench_batch_size,
            FLAGS.image_size, FLAGS.image_size, FLAGS.steps, FLAGS.repeats,
            FLAGS.warmup_steps, FLAGS.bench_optimizer, FLAGS.fit_steps_per_execution))
  header = '%-20s %-9s %20s %8s %14s %8s %11s' % (
      'net', 'method', 'images/s', 'vs fit', 'images/cpu-s', 'vs fit', 'first step')
  print(header)
  print('-' * len(header))
  tf.reduce_sum(tf.ones([8, 8]))  # start the runtime before timing anything
  for net in FLAGS.nets:
    channels = 1 if net == 'lenet' else 3
    data = make_data(FLAGS.image_size, channels)
    with tempfile.TemporaryDirectory() as train_dir:
      runners = [Fit(net, data)]
      runners[0].first = runners[0].warm()
      for precision in FLAGS.precisions:
        runner = Ours(net, data, os.path.join(train_dir, precision), precision)
        runner.first = runner.warm()
        runners.append(runner)
      rates = {r.name: [] for r in runners}
      for _ in range(FLAGS.repeats):  # interleaved: both see the same load
        for runner in runners:
          rates[runner.name].append(runner.measure())
    base = np.mean(rates['fit'], axis=0)
    for runner in runners:
      wall, cpu = np.array(rates[runner.name]).T
      print('%-20s %-9s %20s %7.2fx %14.1f %7.2fx %10.1fs' % (
          net, runner.name, _fmt(wall), wall.mean() / base[0], cpu.mean(),
          cpu.mean() / base[1], runner.first))
    sys.stdout.flush()


if __name__ == '__main__':
  app.run(main)
