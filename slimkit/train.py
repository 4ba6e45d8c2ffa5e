"""The training loop behind train_image_classifier.py.

run(config) trains a net from the flags' values (a dict from slimkit.flags.config,
presets already resolved). The file reads top to bottom: checks, the pieces of a
run (data, model, optimizer, moving averages), the step, then the loop.

Why it is faster than keras.Model.fit on the same model and data:
- one tf.function call runs many steps (a tf.range loop) up to the next log, save
  or summary boundary, so Python runs once per call rather than once per step;
- the host reads one small vector per call (the last step's losses, which is also
  the NaN check) and nothing else;
- the optimizer's `iterations` is the global step, so there is no counter to bump;
- tf.data reads and preprocesses on the CPU, prefetching ahead of the step.
"""

import math
import os
import signal
import threading
import time

from absl import logging
import keras
import tensorflow as tf

from datasets import dataset_factory
from deployment import model_deploy
from nets import nets_factory
from nets import scopes
from preprocessing import augment
from preprocessing import preprocessing_factory
from slimkit import checkpoints
from slimkit import distill
from slimkit import errors
from slimkit import inputs
from slimkit import learning_rate as learning_rate_lib
from slimkit import optimizers
from slimkit import run_config as run_config_lib
from slimkit import summaries

AUX_LOSS_WEIGHT = 0.4        # Slim's weight of the AuxLogits loss
TARGET_CALL_SECS = 0.5       # a call to the loop lasts about this long (1 worker)
MAX_STEPS_PER_CALL = 1000
# Order of the values the step returns (summed over replicas).
METRICS = ('total_loss', 'cross_entropy', 'aux_loss', 'regularization_loss',
           'distillation_loss', 'correct')

# ==============================================================================
# Checks on the flags, before anything is built.
# ==============================================================================


def check_config(config):
  """Raises ValueError with one line naming the flag for bad values."""
  if not config.get('dataset_dir'):
    raise ValueError('You must supply the dataset directory with --dataset_dir')
  errors.check_output_dir('train_dir', config.get('train_dir'))
  model_deploy.check_master(config.get('master'))
  if config.get('quantize_delay', -1) >= 0:
    raise ValueError('--quantize_delay=%d: quantization-aware training is not '
                     'supported on Keras 3 (tfmot has no Keras 3 support); use -1 and '
                     'quantize after training (export to TFLite)'
                     % config['quantize_delay'])
  for flag in ('moving_average_decay', 'batch_norm_decay'):
    decay = config.get(flag)
    if decay is not None and not 0.0 < decay < 1.0:
      raise ValueError('--%s must be in (0, 1), got %g' % (flag, decay))
  smoothing = config.get('label_smoothing', 0.0)
  if not 0.0 <= smoothing < 1.0:
    raise ValueError('--label_smoothing must be in [0, 1), got %g' % smoothing)
  distill.check_config(config)


# ==============================================================================
# Losses and metrics of one replica.
# ==============================================================================


def targets_for(labels, num_classes, label_smoothing=0.0):
  """One-hot (or given soft) targets, smoothed as tf.losses.softmax_cross_entropy."""
  if labels.dtype.is_integer:
    targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
  else:
    targets = tf.cast(labels, tf.float32)
  if label_smoothing:
    targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
  return targets


def compute_losses(end_points, targets, regularization_losses, global_batch_size,
                   distillation=None):
  """This replica's share of Slim's losses; summed over replicas they are the means.

  Cross-entropy terms are summed over the replica's examples and divided by the
  GLOBAL batch; the regularization loss is divided by the number of replicas.
  distillation: None, or (teacher logits, temperature, weight): the total then has
  (1 - weight) * cross_entropy + weight * distillation_loss (slimkit/distill.py).
  """
  def cross_entropy(logits):
    per_example = tf.nn.softmax_cross_entropy_with_logits(
        targets, tf.cast(logits, tf.float32))
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

  losses = {'cross_entropy': cross_entropy(end_points['Logits']),
            'aux_loss': tf.constant(0.0)}
  if 'AuxLogits' in end_points:
    losses['aux_loss'] = AUX_LOSS_WEIGHT * cross_entropy(end_points['AuxLogits'])
  regularization = tf.constant(0.0)
  if regularization_losses:
    regularization = tf.nn.scale_regularization_loss(
        tf.add_n([tf.cast(l, tf.float32) for l in regularization_losses]))
  losses['regularization_loss'] = regularization
  fit = losses['cross_entropy']
  losses['distillation_loss'] = tf.constant(0.0)
  if distillation is not None:
    teacher_logits, temperature, weight = distillation
    losses['distillation_loss'] = distill.distillation_loss(
        end_points['Logits'], teacher_logits, temperature, global_batch_size)
    fit = (1.0 - weight) * fit + weight * losses['distillation_loss']
  losses['total_loss'] = fit + losses['aux_loss'] + regularization
  return losses


def freeze_batch_norm(model, trainable_scopes):
  """Batch norm layers wholly outside trainable_scopes run in inference mode.

  Frozen means frozen: their moving statistics keep the checkpoint's values instead
  of drifting to the new dataset's batches (TF-Slim still updated them), as Keras's
  fine-tuning guide does with layer.trainable = False. Returns the frozen layers.
  """
  frozen = []
  pending = list(model.layers)
  while pending:
    layer = pending.pop()
    pending.extend(getattr(layer, 'layers', []))
    if not isinstance(layer, keras.layers.BatchNormalization):
      continue
    inside, _, _ = scopes.select(layer.variables, model.name, trainable_scopes)
    if not inside:
      layer.trainable = False
      frozen.append(layer)
  return frozen


# ==============================================================================
# Moving averages of the model variables (TF-Slim's --moving_average_decay).
# ==============================================================================


class MovingAverages(object):
  """tf.train.ExponentialMovingAverage(decay, num_updates=global_step) in Keras 3.

  Averages every float model variable, BN statistics included (Slim's
  slim.get_model_variables()). The decay ramps up as Slim's did:
  min(decay, (1 + step) / (10 + step)). `shadows` is the checkpoint's 'ema' group.
  """

  def __init__(self, variables, decay):
    self.decay = float(decay)
    self.variables = {v.path: v for v in variables if v.dtype.startswith('float')}
    # ONLY_FIRST_REPLICA: the update is the same on every replica; keep one.
    self.shadows = {
        path: tf.Variable(tf.convert_to_tensor(v), trainable=False,
                          name='ema.' + path.replace('/', '.'),
                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        for path, v in self.variables.items()}

  def update(self, num_updates):
    n = tf.cast(num_updates, tf.float32)
    decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
    for path, variable in self.variables.items():
      shadow = self.shadows[path]
      shadow.assign_sub((1.0 - decay) * (shadow - tf.convert_to_tensor(variable)))

  def reset(self):
    """Shadows = current values (after a warm start)."""
    for path, variable in self.variables.items():
      self.shadows[path].assign(tf.convert_to_tensor(variable))


# ==============================================================================
# Signals: SIGINT / SIGTERM finish the current call, save, and stop.
# ==============================================================================


class StopRequest(object):
  """Records the first SIGINT/SIGTERM; a second one gets the default behaviour."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def install(self):
    if threading.current_thread() is not threading.main_thread():
      return self
    for signum in (signal.SIGINT, signal.SIGTERM):
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signum = signum
    self.uninstall()  # a second signal is not caught: stop at once
    logging.warning('%s received: finishing the current steps, then saving',
                    signal.Signals(signum).name)

  def uninstall(self):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}


# ==============================================================================
# The run: data, model, optimizer, state, step and loop.
# ==============================================================================


class Trainer(object):
  """Builds everything for one run from the config; train() runs the loop."""

  def __init__(self, config, deploy, strategy, started):
    self.config = config
    self.deploy = deploy
    self.strategy = strategy
    self.started = started
    self.num_replicas = strategy.num_replicas_in_sync
    self.global_batch = config['batch_size']
    if self.global_batch % self.num_replicas:
      raise ValueError('--batch_size=%d (the global batch) is not divisible by the %d '
                       'replicas' % (self.global_batch, self.num_replicas))
    self.train_dir = config['train_dir']
    self.coordinator = None
    if deploy.uses_ps:
      self.coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(
          strategy)
    self.max_steps = config.get('max_number_of_steps')
    self.saved = []  # {'step', 'seconds' since start} of each checkpoint written
    self.has_aux = False  # set when the step is traced
    self._build_data()
    self._build_model_and_optimizer()
    self._build_state()
    self.step_fn = self.train_step
    if config.get('jit_compile'):
      self.step_fn = tf.function(self.train_step, jit_compile=True)
    self.loop_fn = tf.function(self._loop)

  # ----------------------------------------------------------------------------
  # Data.
  # ----------------------------------------------------------------------------

  def _build_data(self):
    config = self.config
    self.split = dataset_factory.get_split(
        config['dataset_name'], config['dataset_split_name'], config['dataset_dir'])
    offset = config.get('labels_offset', 0)
    self.num_classes = self.split.num_classes - offset
    if self.num_classes < 2:
      raise ValueError('--labels_offset=%d leaves %d class(es) of the %d in %s'
                       % (offset, self.num_classes, self.split.num_classes,
                          config['dataset_name']))
    self.image_size = (config.get('train_image_size') or
                       nets_factory.default_image_size(config['model_name']))
    self.preprocessing_name = (config.get('preprocessing_name') or
                               config['model_name'])
    self.preprocess_fn = preprocessing_factory.get_preprocessing(
        self.preprocessing_name, is_training=True,
        use_grayscale=config.get('use_grayscale'),
        grayscale_formula=config.get('grayscale_formula'),
        image_filter=config.get('image_filter'),
        filter_size=config.get('filter_size'),
        pad_crop=config.get('pad_crop'),
        color_jitter=config.get('color_jitter'),
        cutout_size=config.get('cutout_size'),
        cutout_prob=config.get('cutout_prob'))
    self.teacher = None
    if config.get('teacher_model_name'):
      self.teacher = distill.Teacher(config, self.num_classes, self.split.channels)
      self.preprocess_fn = self.teacher.paired_preprocessing(self.preprocess_fn)
    self.batch_transform = augment.batch_mix(
        mixup_alpha=config.get('mixup_alpha') or 0.0,
        cutmix_alpha=config.get('cutmix_alpha') or 0.0)
    self.channels = self._output_channels()

  def _output_channels(self):
    """Channels of the preprocessed images: 1 with --use_grayscale, else the data's.

    (The preprocessing keeps the channels otherwise; the model's input layer checks
    it on the first step.)
    """
    if self.config.get('use_grayscale'):
      return 1
    return self.split.channels

  def dataset_fn(self, input_context):
    """The per-replica batched dataset, for strategy.distribute_datasets_from_function."""
    config = self.config
    return inputs.build_input(
        self.split, self.preprocess_fn,
        input_context.get_per_replica_batch_size(self.global_batch),
        is_training=True, image_size=self.image_size,
        seed=config.get('random_seed'),
        num_readers=config.get('num_readers', 4),
        num_parallel_calls=config.get('num_preprocessing_threads'),
        labels_offset=config.get('labels_offset', 0),
        batch_transform=self.batch_transform, input_context=input_context,
        num_classes=self.num_classes)

  # ----------------------------------------------------------------------------
  # Model, learning rate, optimizer.
  # ----------------------------------------------------------------------------

  def _build_model_and_optimizer(self):
    config = self.config
    name = config.get('optimizer', 'rmsprop')
    decoupled = optimizers.decoupled_weight_decay(name)
    kwargs = {}
    if config.get('activation'):
      kwargs['activation'] = config['activation']
    decay = config.get('batch_norm_decay')
    if decay is not None:
      if 'batch_norm_decay' in nets_factory.builder_defaults(config['model_name']):
        kwargs['batch_norm_decay'] = decay
      else:  # a preset's value meets a net without batch norm
        logging.warning('--batch_norm_decay=%g ignored: %s has no batch norm', decay,
                        config['model_name'])
    self.schedule = learning_rate_lib.configure_learning_rate(
        self.split.num_samples, self.global_batch,
        decay_type=config.get('learning_rate_decay_type', 'exponential'),
        learning_rate=config.get('learning_rate', 0.01),
        learning_rate_decay_factor=config.get('learning_rate_decay_factor', 0.94),
        num_epochs_per_decay=config.get('num_epochs_per_decay', 2.0),
        end_learning_rate=config.get('end_learning_rate', 0.0001),
        warmup_epochs=config.get('warmup_epochs', 0.0),
        max_number_of_steps=self.max_steps)
    with self.strategy.scope():
      self.model = nets_factory.build_model(
          config['model_name'], self.num_classes,
          (self.image_size, self.image_size, self.channels),
          weight_decay=0.0 if decoupled else config.get('weight_decay', 0.0),
          conv_gradients=config.get('conv_gradients'), **kwargs)
      self.variables_to_train = self._variables_to_train()
      if self.teacher:
        self.teacher.build()
      params = {k: config.get(k) for k in optimizers.DEFAULTS}
      optimizer = optimizers.configure_optimizer(name, self.schedule, **params)
      if decoupled:
        optimizers.exclude_from_decay(optimizer, self.variables_to_train)
      if config.get('mixed_precision') == 'float16':
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
      optimizer.build(self.variables_to_train)
      self.optimizer = optimizer
    self.loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

  def _variables_to_train(self):
    """--trainable_scopes: the variables in those scopes, else all trainable."""
    text = self.config.get('trainable_scopes')
    if not text:
      return list(self.model.trainable_variables)
    inside, _, unmatched = scopes.select(self.model.trainable_variables,
                                         self.model.name, text)
    if unmatched:
      raise ValueError('--trainable_scopes: %s matched no trainable variable of %s '
                       '(its top-level scopes: %s)' % (
                           ','.join(unmatched), self.model.name,
                           ', '.join(checkpoints.top_scopes(self.model))))
    freeze_batch_norm(self.model, text)
    return inside

  # ----------------------------------------------------------------------------
  # State: moving averages, checkpoints, summaries; init order.
  # ----------------------------------------------------------------------------

  def _build_state(self):
    config = self.config
    self.ema = None
    if config.get('moving_average_decay'):
      with self.strategy.scope():
        self.ema = MovingAverages(checkpoints.model_variables(self.model),
                                  config['moving_average_decay'])
    self.step = self.optimizer.iterations
    self.ckpt = checkpoints.make_checkpoint(
        self.model, self.step, self.optimizer, self.ema.shadows if self.ema else None)
    self.manager = None
    if self.deploy.is_chief:
      self.manager = tf.train.CheckpointManager(
          self.ckpt, self.train_dir, max_to_keep=config.get('max_checkpoints_to_keep', 5),
          checkpoint_name=checkpoints.CHECKPOINT_NAME)
    self.writer = summaries.Writer(self.train_dir, enabled=self.deploy.is_chief)

  def initialize(self):
    """Init order: latest checkpoint in train_dir > --checkpoint_path > scratch."""
    config = self.config
    prefix = checkpoints.latest(self.train_dir)
    if prefix:
      self._resume(prefix)
      if config.get('checkpoint_path'):
        logging.info('--checkpoint_path=%s ignored: resuming from %s instead (as '
                     'TF-Slim, a warm start only applies to a new train_dir)',
                     config['checkpoint_path'], prefix)
      return 'resumed from %s at step %d' % (prefix, self.current_step())
    if config.get('checkpoint_path'):
      restored, excluded, missing = checkpoints.restore_model(
          self.model, config['checkpoint_path'],
          exclude_scopes=config.get('checkpoint_exclude_scopes'),
          ignore_missing_vars=config.get('ignore_missing_vars', False))
      if self.ema:
        self.ema.reset()
      return ('warm start from %s: %d variables restored, %d excluded, %d missing '
              'kept fresh' % (checkpoints.latest(config['checkpoint_path']),
                              len(restored), len(excluded), len(missing)))
    return 'from scratch'

  def _resume(self, prefix):
    has_ema = bool(checkpoints.read_variables(prefix, 'ema'))
    ckpt = self.ckpt
    if self.ema and not has_ema:
      ckpt = checkpoints.make_checkpoint(self.model, self.step, self.optimizer)
    status = ckpt.restore(prefix)
    try:
      status.assert_existing_objects_matched()
    except AssertionError:
      # Name the model variables that differ, if that is the problem.
      checkpoints.restore_model(self.model, prefix, flag='--train_dir')
      raise ValueError('--train_dir=%s: its checkpoint %s was written with another '
                       '--optimizer or --trainable_scopes; use a new --train_dir or '
                       'the same flags' % (self.train_dir, prefix)) from None
    if self.ema and not has_ema:
      self.ema.reset()
      logging.info('%s has no moving averages: starting them from its weights', prefix)

  def current_step(self):
    """The global step (the optimizer's iterations) as a Python int."""
    return int(self.step.value.numpy())

  def save(self):
    """A checkpoint at the current step (chief only); returns its prefix."""
    if self.manager is None:
      return None
    step = self.current_step()
    if self.manager.latest_checkpoint and \
        checkpoints.step_of(self.manager.latest_checkpoint) == step:
      return self.manager.latest_checkpoint
    path = self.manager.save(checkpoint_number=step)
    self.saved.append({'step': step, 'seconds': round(time.time() - self.started, 3)})
    logging.info('saved %s', path)
    return path

  def write_stats(self, step):
    """train_stats.json: how long this run took, for benchmarks and users."""
    if not self.deploy.is_chief:
      return
    stats = dict(self.stats)
    steady = stats['steady_secs']
    stats.update({
        'start_step': self.start_step, 'end_step': step,
        'seconds': round(time.time() - self.started, 3),
        'global_batch_size': self.global_batch,
        'steady_images_per_sec': (stats['steady_steps'] * self.global_batch / steady
                                  if steady else None),
        'steady_sec_per_step': (steady / stats['steady_steps']
                                if stats['steady_steps'] else None),
        'checkpoints': self.saved,
        'device': self.deploy.describe(),
        'mixed_precision': keras.mixed_precision.global_policy().name})
    run_config_lib.write_json_atomic(os.path.join(self.train_dir, 'train_stats.json'), stats)

  def write_run_config(self):
    if not self.deploy.is_chief:
      return
    record = dict(self.config)
    record.update({
        'model_scope': self.model.name, 'num_classes': self.num_classes,
        'image_size': self.image_size, 'channels': self.channels,
        'preprocessing_name': self.preprocessing_name,
        'dataset_num_samples': self.split.num_samples,
        'num_replicas': self.num_replicas, 'global_batch_size': self.global_batch,
        'tensorflow_version': tf.__version__, 'keras_version': keras.__version__})
    run_config_lib.write(self.train_dir, record)

  # ----------------------------------------------------------------------------
  # The step (per replica) and the multi-step loop (one tf.function call).
  # ----------------------------------------------------------------------------

  def train_step(self, images, labels):
    """One update on this replica's share of the batch; returns METRICS values."""
    targets = targets_for(labels, self.num_classes, self.config.get('label_smoothing'))
    distillation = None
    if self.teacher:
      images, teacher_images = images
      distillation = (self.teacher.logits(teacher_images),
                      self.config['distillation_temperature'],
                      self.config['distillation_weight'])
    with tf.GradientTape() as tape:
      end_points = self.model(images, training=True)
      self.has_aux = 'AuxLogits' in end_points  # read when tracing, for summaries
      losses = compute_losses(end_points, targets, self.model.losses,
                              self.global_batch, distillation)
      loss = losses['total_loss']
      if self.loss_scaled:
        loss = self.optimizer.scale_loss(loss)
    gradients = tape.gradient(loss, self.variables_to_train)
    num_updates = tf.identity(self.step)  # before this update, as Slim's EMA
    self.optimizer.apply(gradients, self.variables_to_train)
    if self.ema:
      self.ema.update(num_updates)
    predicted = tf.argmax(end_points['Logits'], axis=-1)
    correct = tf.reduce_sum(tf.cast(
        tf.equal(predicted, tf.argmax(targets, axis=-1)), tf.float32))
    return tf.stack([losses[name] for name in METRICS[:-1]] + [correct])

  def _one_step(self, iterator):
    images, labels = next(iterator)
    per_replica = self.strategy.run(self.step_fn, args=(images, labels))
    return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

  def _loop(self, iterator, num_steps):
    """num_steps steps; stops early on a non-finite loss. Returns the last METRICS."""
    metrics = tf.zeros([len(METRICS)])
    for _ in tf.range(num_steps):  # the step is traced once, as the loop body
      metrics = self._one_step(iterator)
      if not tf.reduce_all(tf.math.is_finite(metrics)):
        break
    return metrics

  def _iterator(self):
    """Iterator over the distributed input: per worker with a coordinator."""
    if self.coordinator is None:
      return iter(self.strategy.distribute_datasets_from_function(self.dataset_fn))

    @tf.function
    def per_worker_dataset():
      return self.strategy.distribute_datasets_from_function(self.dataset_fn)
    return iter(self.coordinator.create_per_worker_dataset(per_worker_dataset))

  def _call(self, iterator, num_steps):
    """Runs num_steps steps; returns the last step's METRICS as numpy."""
    if self.coordinator is None:
      return self.loop_fn(iterator, tf.constant(num_steps, tf.int32)).numpy()
    # Parameter servers: the workers each take a share, asynchronously.
    workers = self.deploy.num_ps_workers
    shares = [num_steps // workers + (i < num_steps % workers) for i in range(workers)]
    results = [self.coordinator.schedule(self.loop_fn,
                                         args=(iterator, tf.constant(n, tf.int32)))
               for n in shares if n]
    self.coordinator.join()
    return results[-1].fetch()

  # ----------------------------------------------------------------------------
  # The host loop: boundaries, logs, summaries, checkpoints, signals.
  # ----------------------------------------------------------------------------

  def _due(self, step, mark, now, every_steps, every_secs):
    """Step-based when every_steps is set, else time-based (0 = never)."""
    if every_steps:
      return step // every_steps > mark[0] // every_steps
    return bool(every_secs) and every_secs > 0 and now - mark[1] >= every_secs

  def train(self, stop):
    """Runs until max_number_of_steps, a signal, or a non-finite loss.

    Returns (final step, checkpoint prefix or None). Fills self.stats with the
    time to the first step and the steady-state steps and seconds after it.
    """
    iterator = self._iterator()
    # Workers of a multi-worker run must make identical calls: no adaptation.
    adaptive = self.deploy.num_replicas == 1
    steps_per_call = 1 if adaptive else self.config.get('log_every_n_steps') or 10
    step = start = self.start_step = self.current_step()
    now = time.time()
    marks = {'log': (step, now), 'summary': (step, now), 'save': (step, now)}
    self.stats = {'time_to_first_step': None, 'steady_steps': 0, 'steady_secs': 0.0}
    metrics = None
    while (self.max_steps is None or step < self.max_steps) and stop.signum is None:
      num_steps = steps_to_boundary(
          step, steps_per_call, self.max_steps, self.config.get('log_every_n_steps'),
          self.config.get('save_interval_steps'),
          self.config.get('save_summaries_steps'))
      call_start = time.time()
      metrics = self._call(iterator, num_steps)
      now = time.time()
      previous, step = step, self.current_step()
      if self.stats['time_to_first_step'] is None:
        self._first_call_done(previous, step, call_start, now, marks)
      else:
        self.stats['steady_steps'] += step - previous
        self.stats['steady_secs'] += now - call_start
        if adaptive:
          per_step = (now - call_start) / max(1, step - previous)
          steps_per_call = int(min(MAX_STEPS_PER_CALL,
                                   max(1, TARGET_CALL_SECS / max(per_step, 1e-6))))
      if not all(math.isfinite(x) for x in metrics):
        self._non_finite(metrics, previous, step)
      self._periodic(previous, step, start, metrics, marks, now)
    if metrics is not None and marks['summary'][0] != step:
      self._summarize(step, metrics, marks['summary'], time.time())
    path = self.save() if step > start or stop.signum else None
    return step, path

  def _first_call_done(self, previous, step, call_start, now, marks):
    self.stats['time_to_first_step'] = now - self.started
    logging.info('first step done %.1f s after start (%.1f s of it tracing and '
                 'running the first step)', now - self.started, now - call_start)
    log_every = self.config.get('log_every_n_steps') or 10
    if step // log_every == previous // log_every:
      marks['log'] = (step, now)  # rates over steady steps, without tracing

  def _periodic(self, previous, step, start, metrics, marks, now):
    """Logs, summaries and checkpoints that fall due after a call."""
    config = self.config
    log_every = config.get('log_every_n_steps') or 10
    if step // log_every > previous // log_every or step == self.max_steps:
      self._log(step, metrics, marks['log'], now)
      marks['log'] = (step, now)
    if previous == start or self._due(step, marks['summary'], now,
                                      config.get('save_summaries_steps'),
                                      config.get('save_summaries_secs')):
      self._summarize(step, metrics, marks['summary'], now)
      marks['summary'] = (step, now)
    if self._due(step, marks['save'], now, config.get('save_interval_steps'),
                 config.get('save_interval_secs')):
      self.save()
      marks['save'] = (step, time.time())

  def _non_finite(self, metrics, previous, step):
    loss = metrics[0]
    last = self.manager.latest_checkpoint if self.manager else None
    where = ('step %d' % step if step == previous + 1 else
             'steps %d-%d' % (previous + 1, step))
    raise FloatingPointError(
        'loss is %s at %s: stopped without saving these weights; last good '
        'checkpoint: %s (lower --learning_rate, or check the data)'
        % (loss, where, last or 'none'))

  def _rates(self, step, metrics, since, now):
    images = (step - since[0]) * self.global_batch
    seconds = max(now - since[1], 1e-9)
    values = {name: float(metrics[i]) for i, name in enumerate(METRICS[:-1])}
    values['accuracy'] = float(metrics[-1]) / self.global_batch
    values['learning_rate'] = learning_rate_lib.value_at(self.schedule, step)
    values['images_per_sec'] = images / seconds
    values['sec_per_step'] = seconds / max(1, step - since[0])
    return values

  def _log(self, step, metrics, since, now):
    v = self._rates(step, metrics, since, now)
    eta = ''
    if self.max_steps:
      eta = ', ETA %s' % _duration((self.max_steps - step) * v['sec_per_step'])
    total = '%d/%d' % (step, self.max_steps) if self.max_steps else str(step)
    soft = (', distillation %.4f' % v['distillation_loss']) if self.teacher else ''
    logging.info('step %s: loss %.4f (cross-entropy %.4f%s), lr %.4g, accuracy %.3f, '
                 '%.1f images/s, %.3f s/step%s', total, v['total_loss'],
                 v['cross_entropy'], soft, v['learning_rate'], v['accuracy'],
                 v['images_per_sec'], v['sec_per_step'], eta)

  def _summarize(self, step, metrics, since, now):
    v = self._rates(step, metrics, since, now)
    scalars = {'total_loss': v['total_loss'],
               'losses/cross_entropy': v['cross_entropy'],
               'losses/regularization_loss': v['regularization_loss'],
               'learning_rate': v['learning_rate'],
               'accuracy': v['accuracy']}
    if self.has_aux:
      scalars['losses/aux_loss'] = v['aux_loss']
    if self.teacher:
      scalars['losses/distillation_loss'] = v['distillation_loss']
    if step > since[0]:
      scalars['images_per_sec'] = v['images_per_sec']
    self.writer.scalars(step, scalars)
    if self.config.get('summarize_histograms'):
      self.writer.histograms(step, {scopes.to_slim(self.model.name, p): v for p, v in
                                    checkpoints.by_path(
                                        checkpoints.model_variables(self.model)).items()
                                    if v.dtype.startswith('float')})
    self.writer.flush()


def steps_to_boundary(step, steps_per_call, max_steps, *every):
  """Steps for the next call: at most steps_per_call, ending on the next multiple
  of any of `every` (log, save and summary periods; None = none) or at max_steps."""
  limit = step + steps_per_call
  for n in every:
    if n:
      limit = min(limit, (step // n + 1) * n)
  if max_steps is not None:
    limit = min(limit, max_steps)
  return max(1, limit - step)


def _duration(seconds):
  seconds = int(round(seconds))
  return '%d:%02d:%02d' % (seconds // 3600, seconds // 60 % 60, seconds % 60)


# ==============================================================================
# Entry point.
# ==============================================================================


def run(config):
  """Trains from the flags' values. Returns a dict: step, checkpoint, signal.

  Raises ValueError / FileNotFoundError (bad input, one line) and
  FloatingPointError (non-finite loss).
  """
  started = time.time()
  check_config(config)
  deploy = model_deploy.DeploymentConfig.from_config(config)
  if deploy.uses_ps and deploy.task_type != model_deploy.CHIEF_JOB:
    model_deploy.serve_forever(deploy)
  strategy = deploy.strategy()  # first: multi-worker needs it before any op
  logging.info('deployment: %s', deploy.describe())
  note = model_deploy.replication_note(config, strategy.num_replicas_in_sync)
  if note:
    logging.info(note)
  if config.get('random_seed') is not None:
    keras.utils.set_random_seed(config['random_seed'])
  with model_deploy.precision_policy(config.get('mixed_precision')):
    return _train(config, deploy, strategy, started)


def _train(config, deploy, strategy, started):
  trainer = Trainer(config, deploy, strategy, started)
  how = trainer.initialize()
  step = trainer.current_step()
  logging.info('%s: %s (%d classes, %dx%dx%d images, global batch %d over %d '
               'replica(s)), %s; learning rate %s', config['model_name'], how,
               trainer.num_classes, trainer.image_size, trainer.image_size,
               trainer.channels, trainer.global_batch, trainer.num_replicas,
               config['optimizer'], learning_rate_lib.describe(trainer.schedule))
  if trainer.teacher:
    logging.info('distilling from %s: temperature %g, weight %g',
                 trainer.teacher.describe(), config['distillation_temperature'],
                 config['distillation_weight'])
  if trainer.max_steps is not None and step >= trainer.max_steps:
    logging.info('%s is already at step %d >= --max_number_of_steps=%d: nothing to '
                 'do', config['train_dir'], step, trainer.max_steps)
    return {'step': step, 'checkpoint': checkpoints.latest(config['train_dir']),
            'signal': None}
  trainer.write_run_config()
  stop = StopRequest().install()
  try:
    step, path = trainer.train(stop)
    trainer.write_stats(step)
  finally:
    stop.uninstall()
    trainer.writer.close()
  if stop.signum is not None:
    logging.warning('stopped by %s at step %d; checkpoint %s',
                    signal.Signals(stop.signum).name, step, path)
  else:
    logging.info('done at step %d; checkpoint %s', step, path)
  return {'step': step, 'checkpoint': path, 'signal': stop.signum}
