"""What a training run holds: the model, the learning rate and optimizer, the moving
averages, the global step, and the checkpoint it resumes from and saves to.

RunState(config, strategy, num_classes, input_shape, num_samples) builds them
from the flags' values (a dict) inside the strategy's scope; it reads no data, so
a benchmark or test can build one for in-memory batches. initialize() applies
the init order: the latest checkpoint in train_dir > --checkpoint_path > scratch.
"""

import os
import time

from absl import logging
import keras
import tensorflow as tf

from common import errors
from nets import nets_factory
from nets import scopes
from slimkit import checkpoints
from slimkit import learning_rate as learning_rate_lib
from slimkit import memory
from slimkit import optimizers


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


def variables_to_train(model, trainable_scopes):
  """--trainable_scopes: the variables in those scopes, else all trainable."""
  if not trainable_scopes:
    return list(model.trainable_variables)
  inside, _, unmatched = scopes.select(model.trainable_variables, model.name,
                                       trainable_scopes)
  if unmatched:
    raise errors.UserError('--trainable_scopes: %s matched no trainable variable of %s '
                           '(its top-level scopes: %s)' % (
                               ','.join(unmatched), model.name,
                               ', '.join(checkpoints.top_scopes(model))))
  freeze_batch_norm(model, trainable_scopes)
  return inside


def _net_options(config):
  """Builder options from the flags: --activation, --batch_norm_decay."""
  options = {}
  if config.get('activation'):
    options['activation'] = config['activation']
  decay = config.get('batch_norm_decay')
  if decay is not None:
    if 'batch_norm_decay' in nets_factory.builder_defaults(config['model_name']):
      options['batch_norm_decay'] = decay
    else:  # a preset's value meets a net without batch norm
      logging.warning('--batch_norm_decay=%g ignored: %s has no batch norm', decay,
                      config['model_name'])
  return options


def _learning_rate(config, num_samples):
  return learning_rate_lib.configure_learning_rate(
      num_samples, config['batch_size'],
      decay_type=config['learning_rate_decay_type'],
      learning_rate=config['learning_rate'],
      learning_rate_decay_factor=config['learning_rate_decay_factor'],
      num_epochs_per_decay=config['num_epochs_per_decay'],
      end_learning_rate=config['end_learning_rate'],
      warmup_epochs=config['warmup_epochs'],
      max_number_of_steps=config['max_number_of_steps'])


class RunState(object):
  """The model, optimizer, moving averages, step and checkpoints of one run.

  config: the flags' values; num_classes and input_shape (height, width, channels)
  size the net; num_samples (of the training split) sets the epochs of the
  learning rate schedule; teacher: a distill.Teacher built here, or None; only a
  chief (is_chief) writes checkpoints; started: the run's start time, which the
  record of saved checkpoints counts from.
  """

  def __init__(self, config, strategy, num_classes, input_shape, num_samples,
               teacher=None, is_chief=True, started=None):
    self.config = config
    self.strategy = strategy
    self.num_classes = num_classes
    self.input_shape = tuple(input_shape)
    self.global_batch = config['batch_size']
    self.model_name = config['model_name']
    self.conv_gradients = config.get('conv_gradients')
    self.teacher = teacher
    self.train_dir = config['train_dir']
    self.started = time.time() if started is None else started
    self.saved = []  # {'step', 'seconds' since started} of each checkpoint written
    name = config['optimizer']
    decoupled = optimizers.decoupled_weight_decay(name)
    self.schedule = _learning_rate(config, num_samples)
    with strategy.scope():
      self.model = nets_factory.build_model(
          config['model_name'], num_classes, self.input_shape,
          weight_decay=0.0 if decoupled else config['weight_decay'],
          conv_gradients=config.get('conv_gradients'), **_net_options(config))
      memory.check_batch(self.model, self.global_batch, memory.host_share(strategy),
                         strategy.num_replicas_in_sync)
      self.variables_to_train = variables_to_train(self.model,
                                                   config.get('trainable_scopes'))
      if teacher is not None:
        teacher.build()
      optimizer = optimizers.configure_optimizer(name, self.schedule, config)
      if decoupled:
        optimizers.exclude_from_decay(optimizer, self.variables_to_train)
      if config.get('mixed_precision') == 'float16':
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
      optimizer.build(self.variables_to_train)
      self.optimizer = optimizer
      self.ema = None
      if config.get('moving_average_decay'):
        self.ema = MovingAverages(checkpoints.model_variables(self.model),
                                  config['moving_average_decay'])
    self.loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    outputs = self.model.output
    self.has_aux = isinstance(outputs, dict) and 'AuxLogits' in outputs
    # NASNet/PNASNet: drop path's keep probability follows step / this (TF-Slim's
    # hparam, not the run's length); None for nets without drop path.
    self.drop_path_steps = nets_factory.builder_defaults(config['model_name']).get(
        'total_training_steps')
    self.step = self.optimizer.iterations  # the global step
    self.checkpoint = checkpoints.make_checkpoint(
        self.model, self.step, self.optimizer, self.ema.shadows if self.ema else None)
    self.manager = None
    if is_chief:
      self.manager = tf.train.CheckpointManager(
          self.checkpoint, self.train_dir,
          max_to_keep=config['max_checkpoints_to_keep'],
          checkpoint_name=checkpoints.CHECKPOINT_NAME)

  def initialize(self):
    """Init order: latest checkpoint in train_dir > --checkpoint_path > scratch.

    Returns how the run starts, for the log.
    """
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
          ignore_missing_vars=config['ignore_missing_vars'])
      if self.ema:
        self.ema.reset()
      return ('warm start from %s: %d variables restored, %d excluded, %d missing '
              'kept fresh' % (checkpoints.require_latest(config['checkpoint_path']),
                              len(restored), len(excluded), len(missing)))
    return 'from scratch'

  def _resume(self, prefix):
    has_ema = bool(checkpoints.read_variables(prefix, 'ema'))
    checkpoint = self.checkpoint
    if self.ema and not has_ema:
      checkpoint = checkpoints.make_checkpoint(self.model, self.step, self.optimizer)
    status = checkpoint.restore(prefix)
    try:
      status.assert_existing_objects_matched()
    except AssertionError:
      # Name the model variables that differ, if that is the problem.
      checkpoints.restore_model(self.model, prefix, flag='--train_dir',
                                fine_tuning=False)
      raise errors.UserError(
          '--train_dir=%s: its checkpoint %s was written with another --optimizer '
          'or --trainable_scopes; use a new --train_dir or the same flags'
          % (self.train_dir, prefix)) from None
    if self.ema and not has_ema:
      self.ema.reset()
      logging.info('%s has no moving averages: starting them from its weights', prefix)

  def current_step(self):
    """The global step (the optimizer's iterations) as a Python int."""
    return int(self.step.value.numpy())

  def latest_checkpoint(self):
    return self.manager.latest_checkpoint if self.manager else None

  def save(self):
    """A checkpoint at the current step (chief only); returns its prefix."""
    if self.manager is None:
      return None
    step = self.current_step()
    latest = self.manager.latest_checkpoint
    if latest and checkpoints.step_of(latest) == step:
      return latest
    prefix = os.path.join(self.train_dir, '%s-%d' % (checkpoints.CHECKPOINT_NAME, step))
    before = set(os.listdir(self.train_dir)) if os.path.isdir(self.train_dir) else set()
    try:
      with errors.writing(prefix):
        path = self.manager.save(checkpoint_number=step)
    except errors.DiskFull:
      checkpoints.discard_failed_save(prefix, before)
      raise
    except (tf.errors.OpError, OSError) as e:  # not the data's fault: say so
      checkpoints.discard_failed_save(prefix, before)
      raise errors.UserError('%s: the checkpoint could not be written (%s); training '
                             'stopped' % (prefix, errors.first_line(e))) from e
    self.saved.append({'step': step, 'seconds': round(time.time() - self.started, 3)})
    logging.info('saved %s', path)
    return path
