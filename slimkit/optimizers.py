"""Optimizers by name, with TF-Slim's parameters and semantics.

Each entry of OPTIMIZERS builds a Keras 3 optimizer from the learning rate (a float
or a schedule) and the values of the optimizer flags. Where Keras differs from the
TF1 optimizers Slim used, the difference is either removed (RMSProp's accumulator
starts at 1, as tf.compat.v1.train.RMSPropOptimizer) or documented in
docs/training.md (momentum with a changing learning rate, Adagrad's 1e-7 epsilon).
"""

import keras

# The optimizer flags each builder may read (their defaults, TF-Slim's, are the
# flag definitions in slimkit/flags.py).
PARAMS = ('adadelta_rho', 'adagrad_initial_accumulator_value', 'adam_beta1',
          'adam_beta2', 'opt_epsilon', 'ftrl_learning_rate_power',
          'ftrl_initial_accumulator_value', 'ftrl_l1', 'ftrl_l2', 'momentum',
          'rmsprop_momentum', 'rmsprop_decay', 'weight_decay')


class SlimRMSprop(keras.optimizers.RMSprop):
  """Keras RMSprop whose mean-square accumulator starts at 1, as TF1's did.

  tf.compat.v1.train.RMSPropOptimizer initialises its 'rms' slot with ones, which
  damps the first steps; Keras starts at zeros. The update itself is the same:
  ms = decay*ms + (1-decay)*g^2; mom = momentum*mom + lr*g/sqrt(ms + epsilon).
  """

  def build(self, var_list):
    if self.built:
      return
    super().build(var_list)
    for velocity in self._velocities:
      velocity.assign(keras.ops.ones_like(velocity))


def _adadelta(lr, p):
  return keras.optimizers.Adadelta(lr, rho=p['adadelta_rho'], epsilon=p['opt_epsilon'])


def _adagrad(lr, p):
  return keras.optimizers.Adagrad(
      lr, initial_accumulator_value=p['adagrad_initial_accumulator_value'])


def _adam(lr, p):
  # Slim passes --opt_epsilon (default 1.0, far above Adam's usual 1e-8) to Adam.
  return keras.optimizers.Adam(lr, beta_1=p['adam_beta1'], beta_2=p['adam_beta2'],
                               epsilon=p['opt_epsilon'])


def _adamw(lr, p):
  # Decoupled decay: w -= lr * weight_decay * w each step, in place of the L2 loss.
  return keras.optimizers.AdamW(lr, weight_decay=p['weight_decay'],
                                beta_1=p['adam_beta1'], beta_2=p['adam_beta2'],
                                epsilon=p['opt_epsilon'])


def _ftrl(lr, p):
  return keras.optimizers.Ftrl(
      lr, learning_rate_power=p['ftrl_learning_rate_power'],
      initial_accumulator_value=p['ftrl_initial_accumulator_value'],
      l1_regularization_strength=p['ftrl_l1'],
      l2_regularization_strength=p['ftrl_l2'])


def _momentum(lr, p):
  return keras.optimizers.SGD(lr, momentum=p['momentum'])


def _rmsprop(lr, p):
  return SlimRMSprop(lr, rho=p['rmsprop_decay'], momentum=p['rmsprop_momentum'],
                     epsilon=p['opt_epsilon'])


def _sgd(lr, p):
  del p  # plain gradient descent has no parameters
  return keras.optimizers.SGD(lr)


OPTIMIZERS = {
    'adadelta': _adadelta,
    'adagrad': _adagrad,
    'adam': _adam,
    'adamw': _adamw,
    'ftrl': _ftrl,
    'momentum': _momentum,
    'rmsprop': _rmsprop,
    'sgd': _sgd,
}


def configure_optimizer(name, learning_rate, params):
  """The optimizer `name` with learning_rate (float or schedule) and flag values.

  params: the optimizer flags' values (PARAMS; a whole config dict will do).
  """
  if name not in OPTIMIZERS:
    raise ValueError('--optimizer: unknown %r; expected one of %s'
                     % (name, '|'.join(sorted(OPTIMIZERS))))
  return OPTIMIZERS[name](learning_rate, {k: params[k] for k in PARAMS})


def decoupled_weight_decay(name):
  """True when the optimizer applies --weight_decay itself (no L2 loss then)."""
  return name == 'adamw'


def exclude_from_decay(optimizer, variables):
  """AdamW decays kernels only, matching the L2 loss the other optimizers get."""
  if not hasattr(optimizer, 'exclude_from_weight_decay'):
    return
  others = [v for v in variables if not _is_kernel(v)]
  if others:
    optimizer.exclude_from_weight_decay(var_list=others)


def _is_kernel(variable):
  return variable.path.split('/')[-1] in ('kernel', 'depthwise_kernel',
                                          'pointwise_kernel')
