"""The training step: one update of a run's state from one batch.

train_step(state, images, labels) is the whole update on one replica's share of
the batch: forward in training mode, Slim's losses, gradients, the optimizer, the
moving averages; it returns the METRICS vector. Runner calls it num_steps times
inside one tf.function (a tf.range loop), so Python runs once per call rather
than once per step, and the host reads back one small vector per call (the last
step's values, which is also the NaN check).
"""

import time

import tensorflow as tf

from nets import conv_grad_auto
from nets import net_utils
from slimkit import distill
from slimkit import jit_trial

# Order of the values the step returns (summed over replicas).
METRICS = ('total_loss', 'cross_entropy', 'aux_loss', 'regularization_loss',
           'distillation_loss', 'correct')

# TF-Slim's train_image_classifier.py weighs an auxiliary head's cross-entropy so.
AUX_LOSS_WEIGHT = 0.4


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
  A net with an auxiliary head (end_points['AuxLogits']: Inception V3/V4,
  Inception-ResNet-v2, NASNet) adds AUX_LOSS_WEIGHT times its cross-entropy.
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
  if state.drop_path_steps:
    net_utils.set_training_progress(
        state.model, tf.cast(state.step, tf.float32) / state.drop_path_steps)
  # Only the trained variables are watched, so convs of a frozen body need (and
  # measure, under --conv_gradients=auto) no gradient.
  with tf.GradientTape(watch_accessed_variables=False) as tape:
    tape.watch([v.value for v in state.variables_to_train])  # Keras' tf.Variables
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


class Runner(object):
  """Runs train_step on the devices, num_steps per call, for the host loop.

  coordinator: a ClusterCoordinator with parameter servers (the workers then
  share each call's steps, asynchronously), else None.
  --jit_compile=auto: slimkit/jit_trial.py picks the variant of each call until it
  has decided; runs too short to repay a compile, and multi-process runs (whose
  workers must make identical calls), go without.
  """

  def __init__(self, state, label_smoothing=0.0, distillation=None, jit_compile=False,
               coordinator=None, num_workers=1):
    """distillation: (temperature, weight) when state has a teacher; jit_compile:
    True, False or 'auto' (--jit_compile)."""
    self.state = state
    self.strategy = state.strategy
    self.coordinator = coordinator
    self.num_workers = num_workers
    self.traced = False  # whether the last call traced a step function
    if (distillation is None) != (state.teacher is None):
      raise ValueError('distillation (temperature, weight) goes with a teacher')

    def step_fn(images, labels):
      return train_step(state, images, labels, label_smoothing, distillation)
    self.step_fns = {False: step_fn, True: tf.function(step_fn, jit_compile=True)}
    self.loop_fns = {}
    self.trial = None
    jit = jit_trial.setting(jit_compile)
    if jit == 'auto':
      multi_process = coordinator is not None or num_workers > 1 or isinstance(
          self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
      self.trial = jit_trial.Trial([
          state.model_name, state.global_batch,
          state.strategy.num_replicas_in_sync, list(state.input_shape),
          str(state.model.dtype_policy.name), state.conv_gradients,
          bool(state.teacher)], multi_process)
    self.fixed_jit = None if jit == 'auto' else jit

  @property
  def jit(self):
    """True/False, or 'auto' while the trial is still measuring."""
    if self.fixed_jit is not None:
      return self.fixed_jit
    return 'auto' if self.trial.decided is None else self.trial.decided

  def loop_fn(self, jit):
    if jit not in self.loop_fns:
      step_fn = self.step_fns[jit]
      self.loop_fns[jit] = tf.function(lambda it, n: self._steps(it, n, step_fn))
    return self.loop_fns[jit]

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
    if self.coordinator is not None:
      return self._call_workers(iterator, num_steps)
    while True:
      measuring = self.trial is not None and self.trial.decided is None
      jit = self.jit
      if measuring:
        jit = self.trial.variant(set(self.loop_fns), remaining)
      self.traced = jit not in self.loop_fns
      loop_fn = self.loop_fn(jit)
      began = time.perf_counter()
      try:
        metrics = loop_fn(iterator, tf.constant(num_steps, tf.int32)).numpy()
      except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as e:
        if not (measuring and jit and self.traced):
          raise
        self.trial.failed(e)  # XLA cannot compile this step here: train without
        continue
      if self.traced:
        conv_grad_auto.take_measured()
      elif measuring:
        self.trial.record(jit, time.perf_counter() - began, num_steps)
      return metrics

  def _call_workers(self, iterator, num_steps):
    """Parameter servers: the workers share the call's steps, asynchronously."""
    loop_fn = self.loop_fn(self.jit is True)
    self.traced = False
    workers = self.num_workers
    shares = [num_steps // workers + (i < num_steps % workers) for i in range(workers)]
    results = [self.coordinator.schedule(loop_fn,
                                         args=(iterator, tf.constant(n, tf.int32)))
               for n in shares if n]
    self.coordinator.join()
    return results[-1].fetch()
