"""The training step: one update of a run's state from one batch.

train_step(state, images, labels) is the whole update on one replica's share of
the batch: forward in training mode, Slim's losses, gradients, the optimizer, the
moving averages; it returns the METRICS vector. Runner calls it num_steps times
inside one tf.function (a tf.range loop), so Python runs once per call rather
than once per step, and the host reads back one small vector per call (the last
step's values, which is also the NaN check).
"""

import tensorflow as tf

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


class Runner(object):
  """Runs train_step on the devices, num_steps per call, for the host loop.

  coordinator: a ClusterCoordinator with parameter servers (the workers then
  share each call's steps, asynchronously), else None.
  """

  def __init__(self, state, config, coordinator=None, num_workers=1):
    self.state = state
    self.strategy = state.strategy
    self.coordinator = coordinator
    self.num_workers = num_workers
    smoothing = config.get('label_smoothing') or 0.0
    distillation = None
    if state.teacher is not None:
      distillation = (config['distillation_temperature'],
                      config['distillation_weight'])

    def step_fn(images, labels):
      return train_step(state, images, labels, smoothing, distillation)
    self.step_fn = step_fn
    if config.get('jit_compile'):
      self.step_fn = tf.function(step_fn, jit_compile=True)
    self.loop_fn = tf.function(self._steps)

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

  def _one_step(self, iterator):
    images, labels = next(iterator)
    per_replica = self.strategy.run(self.step_fn, args=(images, labels))
    return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

  def _steps(self, iterator, num_steps):
    """num_steps steps; stops early on a non-finite loss. Returns the last METRICS."""
    metrics = tf.zeros([len(METRICS)])
    for _ in tf.range(num_steps):  # the step is traced once, as the loop body
      metrics = self._one_step(iterator)
      if not tf.reduce_all(tf.math.is_finite(metrics)):
        break
    return metrics

  def __call__(self, iterator, num_steps):
    """Runs num_steps steps; returns the last step's METRICS as numpy."""
    if self.coordinator is None:
      return self.loop_fn(iterator, tf.constant(num_steps, tf.int32)).numpy()
    workers = self.num_workers
    shares = [num_steps // workers + (i < num_steps % workers) for i in range(workers)]
    results = [self.coordinator.schedule(self.loop_fn,
                                         args=(iterator, tf.constant(n, tf.int32)))
               for n in shares if n]
    self.coordinator.join()
    return results[-1].fetch()
