"""Keras conv layers whose gradients may come from nets/conv_grad_auto.py.

Same names, variables, configs and forward results as keras.layers.Conv2D and
DepthwiseConv2D, so checkpoints and saved models do not change; only the
backward pass differs when the layer is built under gradients('auto'). A conv's
bias goes through tf.nn.bias_add (see _biased).

  with conv_layers.gradients('auto'):
    model = nets_factory.build_model(...)   # what slimkit.train does

'tf' (the default) keeps TensorFlow's own gradient kernels.
"""

import contextlib

import keras
import tensorflow as tf

from common import errors
from nets import conv_grad_auto

MODES = ('auto', 'tf')
_mode = ['tf']


@contextlib.contextmanager
def gradients(mode):
  """Layers built inside take this gradient mode ('auto' | 'tf'; None = 'tf')."""
  mode = mode or 'tf'
  if mode not in MODES:
    raise errors.UserError('--conv_gradients=%s: expected one of %s'
                           % (mode, '|'.join(MODES)))
  _mode.insert(0, mode)
  try:
    yield
  finally:
    _mode.pop(0)


def _biased(layer, outputs):
  """outputs + bias by tf.nn.bias_add, where Keras 3 reshapes and broadcast-adds:
  grappler fuses conv + BiasAdd (+ ReLU) into one kernel, as in TF-Slim's graphs,
  and BiasAddGrad sums the gradient in one pass."""
  return tf.nn.bias_add(outputs, tf.cast(layer.bias, outputs.dtype))


def _nhwc_2d(layer):
  return layer.data_format == 'channels_last' and layer.rank == 2


def _auto(layer):
  return layer.gradient_mode == 'auto' and _nhwc_2d(layer)


@keras.saving.register_keras_serializable(package='nets')
class Conv2D(keras.layers.Conv2D):
  """keras.layers.Conv2D; under 'auto' its gradients are chosen by measurement."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.gradient_mode = _mode[0]

  def call(self, inputs):
    if not (self.use_bias and _nhwc_2d(self)):
      return super().call(inputs)
    outputs = _biased(self, self.convolution_op(inputs, self.kernel))
    return outputs if self.activation is None else self.activation(outputs)

  def convolution_op(self, inputs, kernel):
    if not _auto(self) or self.groups != 1:
      return super().convolution_op(inputs, kernel)
    return conv_grad_auto.conv(inputs, kernel, self.strides, self.padding,
                               self.dilation_rate)


@keras.saving.register_keras_serializable(package='nets')
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
  """keras.layers.DepthwiseConv2D (multiplier 1 under 'auto'), as Conv2D above."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.gradient_mode = _mode[0]

  def call(self, inputs):
    if not _auto(self) or self.depth_multiplier != 1:
      return super().call(inputs)
    outputs = conv_grad_auto.conv(inputs, self.kernel, self.strides, self.padding,
                                  self.dilation_rate, depthwise=True)
    if self.use_bias:
      outputs = _biased(self, outputs)
    if self.activation is not None:
      outputs = self.activation(outputs)
    return outputs
