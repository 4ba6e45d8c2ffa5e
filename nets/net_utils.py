"""Layers shared by the nets, named as TF-Slim names its scopes.

Each helper takes the Slim scope of the op ('Mixed_3b/Branch_1/Conv2d_0b_3x3') and
builds Keras layers named by `scopes.layer_name`, so the conv is
'Mixed_3b.Branch_1.Conv2d_0b_3x3' and its batch norm '<conv>.BatchNorm'.
"""

import keras
import tensorflow as tf

from nets import conv_layers
from nets import scopes


def l2_regularizer(weight_decay):
  """Slim's l2_regularizer(wd) as a Keras regularizer, or None for wd == 0.

  slim.l2_regularizer(wd)(w) = wd * tf.nn.l2_loss(w) = wd * sum(w**2) / 2, while
  keras.regularizers.L2(l)(w) = l * sum(w**2); hence L2(wd / 2).
  """
  if not weight_decay:
    return None
  return keras.regularizers.L2(weight_decay / 2.0)


def batch_norm_params(decay, epsilon, scale, center=True):
  """The per-net batch norm settings of a Slim arg_scope (Keras momentum == decay)."""
  return {'decay': float(decay), 'epsilon': float(epsilon),
          'scale': bool(scale), 'center': bool(center)}


def batch_norm(x, scope, bn):
  return BatchNorm(
      momentum=bn['decay'], epsilon=bn['epsilon'], center=bn['center'],
      scale=bn['scale'], name=scopes.layer_name(scope, 'BatchNorm'))(x)


@keras.saving.register_keras_serializable(package='nets')
class BatchNorm(keras.layers.BatchNormalization):
  """keras.layers.BatchNormalization computed by TF's fused kernel, as Slim's.

  Keras 3 normalizes with separate mean, variance and arithmetic ops (upcast to
  float32 under mixed precision); the fused op does it in one pass and is
  about 20 % faster per CPU-second on whole nets here. Same variables, same
  momentum semantics; like Slim's fused batch norm, the moving variance
  averages the batch variance with Bessel's correction (n / (n - 1)).
  """

  def call(self, inputs, training=None, mask=None):
    if mask is not None or self.renorm or len(inputs.shape) != 4 or \
        self.axis not in (-1, 3):
      return super().call(inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    gamma = self.gamma if self.scale else tf.ones((channels,), tf.float32)
    beta = self.beta if self.center else tf.zeros((channels,), tf.float32)
    if training and self.trainable:
      outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
          inputs, gamma, beta, epsilon=self.epsilon, is_training=True)
      decay = self.momentum
      self.moving_mean.assign(self.moving_mean * decay + mean * (1.0 - decay))
      self.moving_variance.assign(
          self.moving_variance * decay + variance * (1.0 - decay))
    else:
      outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
          inputs, gamma, beta, mean=self.moving_mean,
          variance=self.moving_variance, epsilon=self.epsilon,
          is_training=False)
    return outputs


def activation(x, scope, name):
  """Activation layer '<scope>.<Name>' (Slim's op names: Relu, Relu6, ...)."""
  op_name = ''.join(part.capitalize() for part in name.split('_'))
  return keras.layers.Activation(name, name=scopes.layer_name(scope, op_name))(x)


def conv2d(x, filters, kernel_size, scope, stride=1, padding='same',
           activation_fn='relu', bn=None, weight_decay=0.0,
           initializer='he_normal', dtype=None):
  """Slim's conv2d: conv -> batch norm (if bn) -> activation (if activation_fn).

  As in Slim, the conv has a bias only when there is no batch norm (the norm's
  beta takes its place).
  """
  use_bn = bn is not None
  x = conv_layers.Conv2D(
      filters, kernel_size, strides=stride, padding=padding,
      use_bias=not use_bn, kernel_initializer=initializer,
      kernel_regularizer=l2_regularizer(weight_decay),
      activation=None if use_bn else activation_fn,
      name=scopes.layer_name(scope), dtype=dtype)(x)
  if use_bn:
    x = batch_norm(x, scope, bn)
    if activation_fn:
      x = activation(x, scope, activation_fn)
  return x


def depthwise_conv2d(x, kernel_size, scope, stride=1, activation_fn='relu6',
                     bn=None, weight_decay=0.0, initializer='he_normal'):
  """Slim's separable_conv2d(num_outputs=None): depthwise conv -> bn -> act."""
  x = conv_layers.DepthwiseConv2D(
      kernel_size, strides=stride, padding='same', depth_multiplier=1,
      use_bias=bn is None, depthwise_initializer=initializer,
      depthwise_regularizer=l2_regularizer(weight_decay),
      name=scopes.layer_name(scope))(x)
  if bn is not None:
    x = batch_norm(x, scope, bn)
  if activation_fn:
    x = activation(x, scope, activation_fn)
  return x


def global_avg_pool(x, scope):
  """Mean over height and width, keeping a 1x1 map as Slim's heads expect.

  At the default image size this equals Slim's fixed-window average pool (the
  final map is 7x7 there); at any other size it still pools to 1x1, so small
  inputs never hit a 'Negative dimension size' and large ones still give
  [batch, num_classes] logits.
  """
  return keras.layers.GlobalAveragePooling2D(
      keepdims=True, name=scopes.layer_name(scope))(x)


def flatten(x, scope):
  return keras.layers.Flatten(name=scopes.layer_name(scope))(x)


def dropout(x, keep_prob, scope, seed=None):
  """Slim's dropout(keep_prob) is Keras Dropout(rate=1 - keep_prob)."""
  return Dropout(1.0 - keep_prob, seed=seed, name=scopes.layer_name(scope))(x)


@keras.saving.register_keras_serializable(package='nets')
class Dropout(keras.layers.Layer):
  """Dropout whose seed-generator variable is named after the layer.

  keras.layers.Dropout names it 'seed_generator_<n>/seed_generator_state', <n>
  counting the generators made so far in the process; checkpoints keyed by
  variable path need one path in every build: '<layer>.seed/seed_generator_state'.
  """

  def __init__(self, rate, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.rate = float(rate)
    self.seed = seed
    self.seed_generator = None
    if self.rate > 0:
      self.seed_generator = keras.random.SeedGenerator(
          seed, name=self.name + '.seed')

  def call(self, x, training=False):
    if training and self.rate > 0:
      return keras.random.dropout(x, self.rate, seed=self.seed_generator)
    return x

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(rate=self.rate, seed=self.seed)
    return config


def conv_logits(x, num_classes, scope, squeeze_scope, weight_decay=0.0,
                initializer='he_normal'):
  """Slim's 1x1 conv classifier on a [B, 1, 1, C] map, squeezed to [B, classes].

  The conv keeps Slim's [1, 1, C, classes] kernel shape. It runs in float32
  (also under a mixed precision policy) so the logits keep full precision.
  """
  logits = conv_layers.Conv2D(
      num_classes, 1, use_bias=True, kernel_initializer=initializer,
      kernel_regularizer=l2_regularizer(weight_decay),
      name=scopes.layer_name(scope), dtype='float32')(x)
  return keras.layers.Flatten(name=scopes.layer_name(squeeze_scope),
                              dtype='float32')(logits)


def slim_head(net, num_classes, end_points, scope, pool, pool_end_point, logits,
              predictions_scope='Predictions', dropout_scope=None,
              dropout_keep_prob=1.0,
              weight_decay=0.0, initializer='he_normal'):
  """TF-Slim's classifier head, shared by Inception V1, MobileNet V1 and ResNet V1.

  Global mean (end_points[pool_end_point]) -> end_points['PreLogits'] (flat) ->
  dropout (if dropout_scope names it) -> 1x1 conv `logits` with bias -> squeeze ->
  end_points['Logits'] and ['Predictions']. `scope` ('Logits', or '' for ResNet)
  prefixes every layer but the predictions. No classifier for num_classes 0/None.
  """
  net = global_avg_pool(net, scopes.layer_name(scope, pool))
  end_points[pool_end_point] = net
  end_points['PreLogits'] = flatten(net, scopes.layer_name(scope, 'PreLogits'))
  if not num_classes:
    return end_points
  if dropout_scope:
    net = dropout(net, dropout_keep_prob, scopes.layer_name(scope, dropout_scope))
  logits = conv_logits(net, num_classes, scopes.layer_name(scope, logits),
                       scopes.layer_name(scope, 'SpatialSqueeze'),
                       weight_decay=weight_decay, initializer=initializer)
  end_points['Logits'] = logits
  end_points['Predictions'] = predictions(logits, predictions_scope)
  return end_points


def predictions(logits, scope='Predictions'):
  """Softmax over the logits, in float32 whatever the mixed precision policy."""
  return keras.layers.Softmax(name=scopes.layer_name(scope),
                              dtype='float32')(logits)


def truncated_normal(stddev):
  return keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev)


def check_input_shape(input_shape, min_size=1, allow_unknown=True):
  """Validates (height, width, channels); returns it as a tuple.

  Height and width may be None (any size) when allow_unknown; nets that flatten
  a feature map need them known. min_size is the smallest height/width the net
  accepts without shrinking a feature map below one pixel.
  """
  try:
    shape = tuple(None if d is None else int(d) for d in input_shape)
  except (TypeError, ValueError):
    raise ValueError('input_shape: expected (height, width, channels), got %r'
                     % (input_shape,))
  if len(shape) != 3 or shape[2] is None or shape[2] < 1:
    raise ValueError('input_shape: expected (height, width, channels) with a '
                     'known channel count, got %r' % (input_shape,))
  for d in shape[:2]:
    if d is None and not allow_unknown:
      raise ValueError('input_shape: this net needs a known height and width, '
                       'got %r' % (shape,))
    if d is not None and d < min_size:
      raise ValueError('input_shape: height and width must be at least %d for '
                       'this net, got %r' % (min_size, shape))
  return shape


def end_points_model(inputs, end_points, name):
  """The Keras model whose call returns the end_points dict."""
  return keras.Model(inputs=inputs, outputs=dict(end_points), name=name)


def input_layer(input_shape, min_size=1, allow_unknown=True):
  shape = check_input_shape(input_shape, min_size, allow_unknown)
  return keras.Input(shape=shape, name='images')


def lrn(x, scope, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75):
  return LocalResponseNorm(depth_radius, bias, alpha, beta,
                           name=scopes.layer_name(scope))(x)


@keras.saving.register_keras_serializable(package='nets')
class LocalResponseNorm(keras.layers.Layer):
  """tf.nn.lrn as a layer (CifarNet's norm1/norm2).

  Computed in float32: the op has no bfloat16 CPU kernel, and under a mixed
  policy the next conv casts the result back.
  """

  def __init__(self, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75,
               **kwargs):
    kwargs.setdefault('dtype', 'float32')
    super().__init__(**kwargs)
    self.depth_radius = depth_radius
    self.bias = bias
    self.alpha = alpha
    self.beta = beta

  def call(self, x):
    return tf.nn.local_response_normalization(
        x, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
        beta=self.beta)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(depth_radius=self.depth_radius, bias=self.bias,
                  alpha=self.alpha, beta=self.beta)
    return config


def _all_layers(model):
  for layer in model.layers:
    yield layer
    if hasattr(layer, 'layers'):  # a nested model
      yield from _all_layers(layer)


def set_training_progress(model, fraction):
  """Sets the training progress that drop path schedules read; -> layers set.

  fraction: global_step / total_training_steps in [0, 1] (a float, or a scalar
  tensor inside a tf.function; tensors are clipped to [0, 1]). Each layer with a
  `training_progress` variable (NASNet's DropPath) gets it; several may share
  one variable, assigned once. Returns the number of such layers, 0 for nets
  without drop path. The variables are no Keras weights, so checkpoints never
  see them.
  """
  if isinstance(fraction, (int, float)) and not 0.0 <= fraction <= 1.0:
    raise ValueError('fraction: expected a training progress in [0, 1], got %r'
                     % (fraction,))
  layers = [l for l in _all_layers(model) if hasattr(l, 'training_progress')]
  if not layers:
    return 0
  value = tf.clip_by_value(tf.cast(fraction, tf.float32), 0.0, 1.0)
  assigned = set()
  for layer in layers:
    variable = layer.training_progress
    if id(variable) not in assigned:
      variable.assign(value)
      assigned.add(id(variable))
  return len(layers)
