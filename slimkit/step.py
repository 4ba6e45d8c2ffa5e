"""The training step: one update of a run's state from one batch.

train_step(state, images, labels) is the whole update on one replica's share of
the batch: forward in training mode, Slim's losses, gradients, the optimizer, the
moving averages; it returns the METRICS vector. Runner calls it num_steps times
inside one tf.function (a tf.range loop), so Python runs once per call rather
than once per step, and the host reads back one small vector per call (the last
step's values, which is also the NaN check).
"""

import json
import time

from absl import logging
import tensorflow as tf

from nets import conv_grad_auto
from slimkit import distill

# Order of the values the step returns (summed over replicas).
METRICS = ('total_loss', 'cross_entropy', 'regularization_loss', 'distillation_loss',
           'correct')


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

  losses = {'cross_entropy': cross_entropy(end_points['Logits'])}
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
  losses['total_loss'] = fit + regularization
  return losses


def train_step(state, images, labels, label_smoothing=0.0, distillation=None):
  """One update of `state` (a run_state.RunState) on this replica's batch.

  distillation: (temperature, weight) when state.teacher is set; images is then
  the pair (student images, teacher images). Returns the METRICS vector.
  """
  targets = targets_for(labels, state.num_classes, label_smoothing)
  soft = None
  if state.teacher is not None:
    images, teacher_images = images
    soft = (state.teacher.logits(teacher_images),) + tuple(distillation)
  with tf.GradientTape() as tape:
    end_points = state.model(images, training=True)
    losses = compute_losses(end_points, targets, state.model.losses,
                            state.global_batch, soft)
    loss = losses['total_loss']
    if state.loss_scaled:
      loss = state.optimizer.scale_loss(loss)
  gradients = tape.gradient(loss, state.variables_to_train)
  num_updates = tf.identity(state.step)  # before this update, as Slim's EMA
  state.optimizer.apply(gradients, state.variables_to_train)
  if state.ema is not None:
    state.ema.update(num_updates)
  predicted = tf.argmax(end_points['Logits'], axis=-1)
  correct = tf.reduce_sum(tf.cast(
      tf.equal(predicted, tf.argmax(targets, axis=-1)), tf.float32))
  return tf.stack([losses[name] for name in METRICS[:-1]] + [correct])


# --jit_compile=auto: a run with at least this many steps left tries XLA.
JIT_TRIAL_MIN_STEPS = 20
JIT_TRIAL_CALLS = 2  # timed calls of each variant, after its tracing call
JIT_MARGIN = 1.05  # XLA must be this much faster to be kept


def jit_setting(value):
  """'auto', True or False from --jit_compile (or an older run's boolean)."""
  if value is None or isinstance(value, bool):
    return bool(value)
  value = str(value).lower()
  return 'auto' if value == 'auto' else value in ('true', '1', 'yes')


class Runner(object):
  """Runs train_step on the devices, num_steps per call, for the host loop.

  coordinator: a ClusterCoordinator with parameter servers (the workers then
  share each call's steps, asynchronously), else None.
  --jit_compile=auto: the step with and without XLA take turns on the first calls
  (both are real training steps on the same variables); the faster is kept and
  cached per machine, net, batch and precision. Runs too short to repay a compile,
  and multi-process runs (whose workers must make identical calls), go without.
  """

  def __init__(self, state, config, coordinator=None, num_workers=1):
    self.state = state
    self.strategy = state.strategy
    self.coordinator = coordinator
    self.num_workers = num_workers
    self.traced = False  # whether the last call traced a step function
    smoothing = config.get('label_smoothing') or 0.0
    distillation = None
    if state.teacher is not None:
      distillation = (config['distillation_temperature'],
                      config['distillation_weight'])

    def step_fn(images, labels):
      return train_step(state, images, labels, smoothing, distillation)
    self.step_fns = {False: step_fn, True: tf.function(step_fn, jit_compile=True)}
    self.loop_fns = {}
    self.jit = jit_setting(config.get('jit_compile'))
    self.trial = None
    if self.jit == 'auto':
      self.jit_key = 'jit_compile %s' % json.dumps([
          config.get('model_name'), state.global_batch,
          state.strategy.num_replicas_in_sync, list(state.input_shape),
          str(state.model.dtype_policy.name), config.get('conv_gradients'),
          bool(state.teacher)])
      cached = conv_grad_auto.read_cache().get(self.jit_key)
      if cached is not None:
        self.jit = cached['jit']
        logging.info('--jit_compile=auto: %s (cached: %s)', 'XLA' if self.jit else
                     'no XLA', self._describe(cached['secs_per_step']))
      elif coordinator is not None or num_workers > 1 or (
          isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)):
        self.jit = False
        logging.info('--jit_compile=auto: no XLA (not measured in a multi-process '
                     'run; set --jit_compile=true to compile)')
      else:
        self.trial = {False: [], True: []}  # seconds per step of timed calls

  def loop_fn(self, jit):
    if jit not in self.loop_fns:
      step_fn = self.step_fns[jit]
      self.loop_fns[jit] = tf.function(lambda it, n: self._steps(it, n, step_fn))
    return self.loop_fns[jit]

  @staticmethod
  def _describe(secs):
    return 'XLA %.3g s/step, without %.3g s/step' % (secs['True'], secs['False'])

  def _trial_variant(self, remaining):
    """The variant the next call runs while --jit_compile=auto is measuring."""
    if not self.loop_fns and remaining is not None and (
        remaining < JIT_TRIAL_MIN_STEPS):
      # A short run: not worth a compile; nothing is cached.
      logging.info('--jit_compile=auto: no XLA (a run of %d steps is too short to '
                   'try it)', remaining)
      self.trial, self.jit = None, False
      return False
    # Untraced variants first, then alternate, the one with fewer timings first.
    for jit in (False, True):
      if jit not in self.loop_fns:
        return jit
    return min((False, True), key=lambda j: len(self.trial[j]))

  def _record_trial(self, jit, seconds, num_steps):
    self.trial[jit].append(seconds / num_steps)
    if min(len(t) for t in self.trial.values()) < JIT_TRIAL_CALLS:
      return
    secs = {str(j): min(t) for j, t in self.trial.items()}
    self.jit = secs['True'] * JIT_MARGIN < secs['False']
    self.trial = None
    conv_grad_auto.update_cache({self.jit_key: {'jit': self.jit,
                                                 'secs_per_step': secs}})
    logging.info('--jit_compile=auto: %s (measured: %s; cached for this machine)',
                 'XLA' if self.jit else 'no XLA', self._describe(secs))

  def iterator(self, dataset):
    """An iterator over the distributed input.

    dataset: a tf.data.Dataset of global batches (images, labels), or
    fn(tf.distribute.InputContext) -> the per-replica batched dataset.
    """
    if isinstance(dataset, tf.data.Dataset):
      if self.coordinator is not None:
        raise TypeError('with parameter servers the input must be a '
                        'fn(input_context) -> dataset, not a tf.data.Dataset')
      return iter(self.strategy.experimental_distribute_dataset(dataset))
    if self.coordinator is None:
      return iter(self.strategy.distribute_datasets_from_function(dataset))

    @tf.function
    def per_worker_dataset():
      return self.strategy.distribute_datasets_from_function(dataset)
    return iter(self.coordinator.create_per_worker_dataset(per_worker_dataset))

  # The step has no tensor-dependent Python control flow: autograph converting it
  # (and all it calls) only cost time to first step (ResNet-50: a fifth of its
  # trace, by profile).
  @tf.autograph.experimental.do_not_convert
  def _one_step(self, iterator, step_fn):
    images, labels = next(iterator)
    per_replica = self.strategy.run(step_fn, args=(images, labels))
    return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

  def _steps(self, iterator, num_steps, step_fn):
    """num_steps steps; stops early on a non-finite loss. Returns the last METRICS."""
    metrics = tf.zeros([len(METRICS)])
    for _ in tf.range(num_steps):  # the step is traced once, as the loop body
      metrics = self._one_step(iterator, step_fn)
      if not tf.reduce_all(tf.math.is_finite(metrics)):
        break
    return metrics

  def __call__(self, iterator, num_steps, remaining=None):
    """Runs num_steps steps; returns the last step's METRICS as numpy.

    remaining: steps left in the run (None: unbounded), for --jit_compile=auto.
    """
    jit = self.jit
    if self.trial is not None:
      jit = self._trial_variant(remaining)
    self.traced = jit not in self.loop_fns
    loop_fn = self.loop_fn(jit)
    if self.coordinator is None:
      began = time.perf_counter()
      try:
        metrics = loop_fn(iterator, tf.constant(num_steps, tf.int32)).numpy()
      except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as e:
        if not (self.trial is not None and jit and self.traced):
          raise
        # XLA cannot compile this step here: train on without it.
        logging.warning('--jit_compile=auto: no XLA (it failed to compile the '
                        'step: %s)', str(e).splitlines()[0][:200])
        self.trial, self.jit = None, False
        return self(iterator, num_steps, remaining)
      if self.trial is not None and not self.traced:
        self._record_trial(jit, time.perf_counter() - began, num_steps)
      return metrics
    workers = self.num_workers
    shares = [num_steps // workers + (i < num_steps % workers) for i in range(workers)]
    results = [self.coordinator.schedule(loop_fn,
                                         args=(iterator, tf.constant(n, tf.int32)))
               for n in shares if n]
    self.coordinator.join()
    return results[-1].fetch()
