"""Seeds for the stateless random ops of the preprocessing.

Every random choice in preprocessing/ is a stateless op (tf.image.stateless_*,
tf.random.stateless_*) fed from one [2] int64 seed per image (or per batch). The
input pipeline derives that seed from (run seed, element index), so a seeded run
gives the same images whatever the parallelism; without a run seed a fresh random
seed is drawn per call, which is the fast non-deterministic mode.
"""

import tensorflow as tf


def resolve(seed):
  """A [2] int64 seed tensor: the given seed, or a fresh random one for None.

  seed: None, a Python int, or an int tensor of shape [] or [2].
  """
  if seed is None:
    return tf.random.uniform([2], minval=0, maxval=2**62, dtype=tf.int64)
  seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
  if seed.shape.rank == 0:
    return tf.stack([seed, tf.constant(0, tf.int64)])
  if seed.shape.rank != 1 or seed.shape[0] != 2:
    raise ValueError('seed: expected an int or a [2] int tensor, got shape %s'
                     % seed.shape)
  return seed


def split(seed, num):
  """`num` independent [2] seeds from one, as a list."""
  seeds = tf.random.experimental.stateless_split(seed, num)
  return [seeds[i] for i in range(num)]


def fold_in(seed, data):
  """A new [2] seed for item `data` (an int scalar) of the stream `seed`."""
  return tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))


def uniform(seed, minval=0.0, maxval=1.0, shape=()):
  """Stateless float32 uniform in [minval, maxval)."""
  return tf.random.stateless_uniform(shape, seed, minval=minval, maxval=maxval)
