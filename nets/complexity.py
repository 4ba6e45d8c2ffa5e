"""Parameter and multiply-add counts of a built Keras model, from its layers.

Multiply-adds (MACs) are counted as the papers count them ("mult-adds"; ResNet's
"FLOPs" are the same thing): one per kernel weight per output element of every
Conv (incl. depthwise and grouped) and Dense layer, for ONE image. Batch norm,
activations, pooling, additions and the softmax are not counted.
"""

import math

import keras


def _spatial_size(shape, layer):
  dims = shape[1:-1]
  if any(d is None for d in dims):
    raise ValueError('cannot count multiply-adds of layer %r: its output shape '
                     '%s is not fully known; build the model with a fixed '
                     'input size' % (layer.name, tuple(shape)))
  return math.prod(dims)


def layer_macs(layer):
  """Multiply-adds of one layer for one input image (0 for uncounted layers)."""
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    out = layer.output.shape
    return (_spatial_size(out, layer) * out[-1] *
            math.prod(layer.kernel_size))
  if isinstance(layer, keras.layers.SeparableConv2D):
    out = layer.output.shape
    in_channels = layer.input.shape[-1]
    depthwise = in_channels * layer.depth_multiplier * math.prod(
        layer.kernel_size)
    pointwise = in_channels * layer.depth_multiplier * out[-1]
    return _spatial_size(out, layer) * (depthwise + pointwise)
  if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D,
                        keras.layers.Conv3D)):
    out = layer.output.shape
    in_channels = layer.input.shape[-1]
    per_output = math.prod(layer.kernel_size) * in_channels // layer.groups
    return _spatial_size(out, layer) * out[-1] * per_output
  if isinstance(layer, keras.layers.Dense):
    out = layer.output.shape
    leading = math.prod(d for d in out[1:-1]) if len(out) > 2 else 1
    return leading * layer.input.shape[-1] * layer.units
  return 0


def count_macs(model):
  """Multiply-adds of a model (nested models included) for one image."""
  total = 0
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      total += count_macs(layer)
    else:
      total += layer_macs(layer)
  return total


def count_params(model, trainable_only=True):
  """Number of weights; with trainable_only False also batch norm statistics."""
  weights = model.trainable_weights if trainable_only else model.weights
  return sum(math.prod(w.shape) for w in weights)


def summarize(model):
  """{'params': trainable, 'all_params': incl. BN statistics, 'macs': per image}."""
  return {'params': count_params(model),
          'all_params': count_params(model, trainable_only=False),
          'macs': count_macs(model)}
