"""Learning-rate schedules, as TF-Slim's _configure_learning_rate.

All schedules count GLOBAL steps (one step = one update with the global batch of
--batch_size images over all replicas), so an epoch is num_samples / batch_size
steps however many replicas share the batch. TF-Slim counted per-clone batches,
which made decay too slow with several clones (tensorflow/models#1428).

  fixed        learning_rate
  exponential  learning_rate * decay_factor ** floor(step / decay_steps)   (staircase)
  polynomial   linear (power 1) from learning_rate to end_learning_rate over
               decay_steps, then end_learning_rate (no cycling)
  cosine       half a cosine from learning_rate to end_learning_rate over the whole
               run (--max_number_of_steps), new
  decay_steps = int(num_samples_per_epoch * num_epochs_per_decay / batch_size)

Warm-up (--warmup_epochs, Slim's formula): lr = min(learning_rate * step /
warmup_steps, schedule(step)); the schedule itself is not shifted.
"""

import math

import keras
import tensorflow as tf

DECAY_TYPES = ('fixed', 'exponential', 'polynomial', 'cosine')


class Constant(keras.optimizers.schedules.LearningRateSchedule):
  """A fixed rate, as a schedule so every run has the same optimizer state."""

  def __init__(self, learning_rate):
    self.learning_rate = float(learning_rate)

  def __call__(self, step):
    return tf.constant(self.learning_rate, tf.float32)

  def get_config(self):
    return {'learning_rate': self.learning_rate}


class Warmup(keras.optimizers.schedules.LearningRateSchedule):
  """min(peak * step / warmup_steps, schedule(step)), TF-Slim's warm-up."""

  def __init__(self, schedule, peak, warmup_steps):
    self.schedule = schedule
    self.peak = float(peak)
    self.warmup_steps = float(warmup_steps)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    warm = self.peak * step / self.warmup_steps
    return tf.minimum(warm, tf.cast(self.schedule(step), tf.float32))

  def get_config(self):
    return {'schedule': keras.optimizers.schedules.serialize(self.schedule),
            'peak': self.peak, 'warmup_steps': self.warmup_steps}


def steps_per_epoch(num_samples_per_epoch, batch_size):
  """Global steps in one epoch (float): one step consumes the global batch."""
  return num_samples_per_epoch / float(batch_size)


def decay_steps_for(num_samples_per_epoch, batch_size, num_epochs_per_decay):
  """Slim's int(num_samples * num_epochs_per_decay / batch_size), at least 1."""
  return max(1, int(num_samples_per_epoch * num_epochs_per_decay / batch_size))


def configure_learning_rate(num_samples_per_epoch, batch_size, *, decay_type,
                            learning_rate, learning_rate_decay_factor,
                            num_epochs_per_decay, end_learning_rate, warmup_epochs,
                            max_number_of_steps):
  """A keras LearningRateSchedule of the global step.

  batch_size: the GLOBAL batch (all replicas together). The rest are the flags'
  values (their defaults live in slimkit/flags.py); max_number_of_steps: the run's
  length (None: unbounded); cosine decays over it.
  """
  if batch_size < 1 or num_samples_per_epoch < 1:
    raise ValueError('learning rate: need batch_size >= 1 and num_samples >= 1, got '
                     '%s and %s' % (batch_size, num_samples_per_epoch))
  decay_steps = decay_steps_for(num_samples_per_epoch, batch_size, num_epochs_per_decay)
  if decay_type == 'fixed':
    schedule = Constant(learning_rate)
  elif decay_type == 'exponential':
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps, learning_rate_decay_factor, staircase=True)
  elif decay_type == 'polynomial':
    schedule = keras.optimizers.schedules.PolynomialDecay(
        learning_rate, decay_steps, end_learning_rate, power=1.0, cycle=False)
  elif decay_type == 'cosine':
    if not max_number_of_steps:
      raise ValueError('--learning_rate_decay_type=cosine decays over the whole run: '
                       'set --max_number_of_steps')
    alpha = end_learning_rate / learning_rate if learning_rate else 0.0
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, max_number_of_steps, alpha=alpha)
  else:
    raise ValueError('--learning_rate_decay_type: unknown %r; expected one of %s'
                     % (decay_type, '|'.join(DECAY_TYPES)))
  if warmup_epochs and warmup_epochs > 0:
    warmup_steps = steps_per_epoch(num_samples_per_epoch, batch_size) * warmup_epochs
    schedule = Warmup(schedule, learning_rate, max(warmup_steps, 1e-9))
  return schedule


def value_at(schedule, step):
  """The schedule's rate at a step, as a Python float (for logs and tests)."""
  return float(schedule(tf.constant(step, tf.int64)))


def describe(schedule):
  """Short text for the log: 'exponential: 0.01 * 0.94^(step // 2000)'."""
  if isinstance(schedule, Warmup):
    return '%s, warm-up over %d steps' % (describe(schedule.schedule),
                                          int(math.ceil(schedule.warmup_steps)))
  if isinstance(schedule, Constant):
    return 'fixed %g' % schedule.learning_rate
  if isinstance(schedule, keras.optimizers.schedules.ExponentialDecay):
    return 'exponential %g * %g^(step // %d)' % (
        schedule.initial_learning_rate, schedule.decay_rate, schedule.decay_steps)
  if isinstance(schedule, keras.optimizers.schedules.PolynomialDecay):
    return 'polynomial %g -> %g over %d steps' % (
        schedule.initial_learning_rate, schedule.end_learning_rate,
        schedule.decay_steps)
  if isinstance(schedule, keras.optimizers.schedules.CosineDecay):
    return 'cosine %g -> %g over %d steps' % (
        schedule.initial_learning_rate, schedule.initial_learning_rate * schedule.alpha,
        schedule.decay_steps)
  return type(schedule).__name__
