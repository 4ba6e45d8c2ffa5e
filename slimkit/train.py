"""The training run behind train_image_classifier.py.

run(config) trains a net from the flags' values (a dict from slimkit.flags.config,
presets already resolved): it checks the flags, builds the input from the
dataset, the run's state (slimkit/run_state.py: model, optimizer, averages,
checkpoints), the step (slimkit/step.py) and the host loop with its hooks
(slimkit/loop.py: progress, summaries, saves, stats, signals), and runs it. To
train on other input (benchmarks, tests), use those modules directly: see
slimkit/loop.py.

Why it is faster than keras.Model.fit on the same model and data:
- one tf.function call runs many steps (a tf.range loop) up to the next log, save
  or summary boundary, so Python runs once per call rather than once per step;
- the host reads one small vector per call (the last step's losses, which is also
  the NaN check) and nothing else;
- the optimizer's `iterations` is the global step, so there is no counter to bump;
- tf.data reads and preprocesses on the CPU, prefetching ahead of the step.
"""

import collections
import os
import signal
import time

from absl import logging
import keras
import tensorflow as tf

from common import errors
from common import locks
from datasets import dataset_factory
from datasets import dataset_info
from datasets import imagenet_records
from deployment import cpu
from deployment import model_deploy
from nets import nets_factory
from preprocessing import augment
from preprocessing import preprocessing_factory
from slimkit import checkpoints
from slimkit import distill
from slimkit import hooks as hooks_lib
from slimkit import inputs
from slimkit import learning_rate as learning_rate_lib
from slimkit import loop as loop_lib
from slimkit import run_config as run_config_lib
from slimkit import run_state
from slimkit import step as step_lib
from slimkit import summaries


def check_config(config):
  """Raises errors.UserError, one line naming the flag, for bad values."""
  bad = errors.UserError
  if not config.get('dataset_dir'):
    raise bad('You must supply the dataset directory with --dataset_dir')
  if os.path.exists(config['dataset_dir']):  # a missing one: get_split says what to run
    errors.check_input_dir('dataset_dir', config['dataset_dir'], 'dataset directory')
  errors.check_output_dir('train_dir', config.get('train_dir'))
  check_not_a_dataset(config['train_dir'])
  model_deploy.check_master(config.get('master'))
  if config['quantize_delay'] >= 0:
    raise bad('--quantize_delay=%d: quantization-aware training is not supported on '
              'Keras 3 (tfmot has no Keras 3 support); use -1 and quantize after '
              'training (export to TFLite)' % config['quantize_delay'])
  for flag in ('moving_average_decay', 'batch_norm_decay'):
    decay = config.get(flag)
    if decay is not None and not 0.0 < decay < 1.0:
      raise bad('--%s must be in (0, 1), got %g' % (flag, decay))
  smoothing = config['label_smoothing']
  if not 0.0 <= smoothing < 1.0:
    raise bad('--label_smoothing must be in [0, 1), got %g' % smoothing)
  distill.check_config(config)


def check_not_a_dataset(train_dir):
  """A train dir of its own: checkpoints and events must not mix with a dataset's
  shards (and a converter run again there would refuse or replace them)."""
  try:
    names = sorted(os.listdir(train_dir))
  except OSError:  # not there yet: training makes it
    return
  found = [n for n in names if n == dataset_info.INFO_FILE or n.endswith('.tfrecord')
           or imagenet_records.SHARD.match(n)]
  if found:
    path = os.path.abspath(train_dir)
    raise errors.UserError(
        '--train_dir=%s holds a converted dataset (%s%s); pass a directory of its '
        'own, e.g. --train_dir=%s' % (
            train_dir, found[0], ' and %d more' % (len(found) - 1) if found[1:] else '',
            os.path.join(os.path.dirname(path), 'train', os.path.basename(path))))


# The training input: the split, what the net is built for, and
# dataset_fn(input_context) -> the per-replica batched dataset.
Input = collections.namedtuple('Input', 'split num_classes image_size channels '
                                        'preprocessing_name teacher dataset_fn')


def training_input(config):
  """The Input of the flags' dataset, with a distillation teacher if any."""
  split = dataset_factory.get_split(
      config['dataset_name'], config['dataset_split_name'], config['dataset_dir'])
  offset = config['labels_offset']
  num_classes = split.num_classes - offset
  if num_classes < 2:
    raise errors.UserError('--labels_offset=%d leaves %d class(es) of the %d in %s'
                           % (offset, num_classes, split.num_classes,
                              config['dataset_name']))
  image_size = (config.get('train_image_size') or
                nets_factory.default_image_size(config['model_name']))
  # The preset it resolves to ('custom_cnn' -> 'cifar'), as run_config.json records.
  preprocessing_name = preprocessing_factory.preset_name(
      config.get('preprocessing_name') or config['model_name'])
  preprocess_fn = preprocessing_factory.get_preprocessing(
      preprocessing_name, is_training=True,
      use_grayscale=config.get('use_grayscale'),
      grayscale_formula=config.get('grayscale_formula'),
      image_filter=config.get('image_filter'),
      filter_size=config.get('filter_size'),
      pad_crop=config.get('pad_crop'),
      color_jitter=config.get('color_jitter'),
      cutout_size=config.get('cutout_size'),
      cutout_prob=config.get('cutout_prob'))
  teacher = None
  if config.get('teacher_model_name'):
    teacher = distill.Teacher(config, num_classes, split.channels)
    preprocess_fn = teacher.paired_preprocessing(preprocess_fn)
  batch_transform = augment.batch_mix(mixup_alpha=config.get('mixup_alpha') or 0.0,
                                      cutmix_alpha=config.get('cutmix_alpha') or 0.0)

  def dataset_fn(input_context):
    return inputs.build_input(
        split, preprocess_fn,
        input_context.get_per_replica_batch_size(config['batch_size']),
        is_training=True, image_size=image_size, seed=config.get('random_seed'),
        num_readers=config['num_readers'],
        num_parallel_calls=config.get('num_preprocessing_threads'),
        labels_offset=offset, batch_transform=batch_transform,
        input_context=input_context, num_classes=num_classes)
  # The preprocessing keeps the channels but with --use_grayscale; the model's
  # input layer checks it on the first step.
  channels = 1 if config.get('use_grayscale') else split.channels
  return Input(split, num_classes, image_size, channels, preprocessing_name, teacher,
               dataset_fn)


def build_state(config, strategy, data, is_chief=True, started=None):
  """The RunState for the Input `data`."""
  return run_state.RunState(
      config, strategy, data.num_classes,
      (data.image_size, data.image_size, data.channels), data.split.num_samples,
      teacher=data.teacher, is_chief=is_chief, started=started)


def write_run_config(config, state, data):
  """run_config.json: the flags and the net, for evaluation and export."""
  record = dict(config)
  record.update({
      'model_scope': state.model.name, 'num_classes': data.num_classes,
      'image_size': data.image_size, 'channels': data.channels,
      'preprocessing_name': data.preprocessing_name,
      'dataset_num_samples': data.split.num_samples,
      'num_replicas': state.strategy.num_replicas_in_sync,
      'global_batch_size': state.global_batch,
      'tensorflow_version': tf.__version__, 'keras_version': keras.__version__})
  run_config_lib.write(state.train_dir, record)


def run(config):
  """Trains from the flags' values. Returns a dict: step, checkpoint, signal.

  Raises errors.UserError / FileNotFoundError (bad input, one line) and
  FloatingPointError (non-finite loss).
  """
  started = time.time()
  check_config(config)
  deploy = model_deploy.DeploymentConfig.from_config(config)
  if deploy.uses_ps and deploy.task_type != model_deploy.CHIEF_JOB:
    model_deploy.serve_forever(deploy)
  strategy = deploy.strategy()  # first: multi-worker needs it before any op
  logging.info('device: %s; %s; oneDNN %s', cpu.summary(), deploy.describe(),
               cpu.decision or ('on' if cpu.onednn_enabled() else 'off'))
  note = model_deploy.replication_note(config, strategy.num_replicas_in_sync)
  if note:
    logging.info(note)
  if config.get('random_seed') is not None:
    keras.utils.set_random_seed(config['random_seed'])
  with model_deploy.precision_policy(config.get('mixed_precision')):
    return _train(config, deploy, strategy, started)


def _train(config, deploy, strategy, started):
  replicas = strategy.num_replicas_in_sync
  if config['batch_size'] % replicas:
    raise errors.UserError('--batch_size=%d (the global batch) is not divisible by '
                           'the %d replicas' % (config['batch_size'], replicas))
  data = training_input(config)
  if not deploy.is_chief:  # writes nothing to the train dir
    return _train_on(config, deploy, strategy, started, data)
  train_dir = config['train_dir']
  with locks.exclusive(train_dir, '--train_dir', 'training'):
    # Holding the lock, what is in train_dir is this run's to repair: damaged newer
    # checkpoints are set aside, not resumed from; unfinished saves are removed.
    checkpoints.prepare_resume(train_dir)
    try:
      return _train_on(config, deploy, strategy, started, data)
    except errors.DiskFull as e:
      newest, _ = checkpoints.newest_intact(train_dir)
      raise errors.DiskFull(
          '%s; training stopped, newest complete checkpoint: %s; free space, then '
          'run the same command to %s' % (e, newest or 'none',
                                          'resume from it' if newest else 'start again')
      ) from e


def _train_on(config, deploy, strategy, started, data):
  replicas = strategy.num_replicas_in_sync
  state = build_state(config, strategy, data, deploy.is_chief, started)
  how = state.initialize()
  step = state.current_step()
  max_steps = config.get('max_number_of_steps')
  logging.info('%s: %s (%d classes, %dx%dx%d images, global batch %d over %d '
               'replica(s)), %s; learning rate %s', config['model_name'], how,
               data.num_classes, data.image_size, data.image_size, data.channels,
               state.global_batch, replicas, config['optimizer'],
               learning_rate_lib.describe(state.schedule))
  if data.teacher:
    logging.info('distilling from %s: temperature %g, weight %g',
                 data.teacher.describe(), config['distillation_temperature'],
                 config['distillation_weight'])
  if max_steps is not None and step >= max_steps:
    logging.info('%s is already at step %d >= --max_number_of_steps=%d: nothing to '
                 'do', config['train_dir'], step, max_steps)
    return {'step': step, 'checkpoint': checkpoints.latest(config['train_dir']),
            'signal': None}
  if deploy.is_chief:
    write_run_config(config, state, data)
  coordinator = None
  if deploy.uses_ps:
    coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
  distilling = data.teacher is not None
  runner = step_lib.Runner(
      state, config['label_smoothing'],
      ((config['distillation_temperature'], config['distillation_weight'])
       if distilling else None),
      config['jit_compile'], coordinator, deploy.num_ps_workers)
  log_every = config['log_every_n_steps']
  writer = summaries.Writer(config['train_dir'], enabled=deploy.is_chief)
  progress = hooks_lib.Progress(log_every, distilling)
  saver = hooks_lib.Saver(config['save_interval_steps'], config['save_interval_secs'])
  hooks = [progress,
           hooks_lib.Summaries(writer, config['save_summaries_steps'],
                               config['save_summaries_secs'],
                               config['summarize_histograms'], distilling),
           saver,
           hooks_lib.StatsFile(config['train_dir'], deploy.describe(),
                              enabled=deploy.is_chief)]
  # Workers of a multi-worker run must make identical calls: no adaptation.
  steps_per_call = None if deploy.num_replicas == 1 else log_every
  steps = loop_lib.Loop(runner, hooks, max_steps, steps_per_call, started)
  stop = loop_lib.StopRequest().install()
  try:
    with errors.reading('--dataset_dir=%s' % config['dataset_dir'],
                        lambda: data_fix(state), locate=data.split.find_damage):
      step = steps.run(data.dataset_fn, stop)
  finally:
    stop.uninstall()
    progress.close()
    writer.close()
  if stop.signum is not None:
    logging.warning('stopped by %s at step %d; checkpoint %s',
                    signal.Signals(stop.signum).name, step, saver.path)
  else:
    logging.info('done at step %d; checkpoint %s', step, saver.path)
  return {'step': step, 'checkpoint': saver.path, 'signal': stop.signum}


def data_fix(state):
  """What to do after bad data stopped training (nothing was saved after it)."""
  return ('re-run download_and_convert_data.py for this dataset; training stopped '
          'without saving, last good checkpoint: %s'
          % (state.latest_checkpoint() or 'none'))
