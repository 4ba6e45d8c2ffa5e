"""ResNet v2 (pre-activation bottleneck), as TF-Slim's resnet_v2.py.

He et al., "Identity Mappings in Deep Residual Networks", arXiv:1603.05027, in
TF-Slim's form: each unit starts with batch norm + ReLU ('preact') and ends in a
plain addition; 'conv1' of the root has a bias and no batch norm (the first
unit's preact normalizes it); each unit's 'shortcut' and 'conv3' have biases
and no batch norm; 'postnorm' (batch norm + ReLU) follows the last block. The
block layout is ResNet v1's (stride 2 in the last unit of blocks 1-3,
conv2d_same padding), so the conv shapes and multiply-adds equal v1's.

The published checkpoints (resnet_v2_50/101/152_2017_04_14) were trained at
299x299 with Inception preprocessing, unlike the v1 ones (see docs/nets.md).
"""

import functools

import keras

from nets import net_utils
from nets import resnet_v1
from nets import scopes

# (scope, base_depth, num_units, stride) as ResNet v1's; 200 is v2's own depth.
BLOCKS = dict(resnet_v1.BLOCKS)
BLOCKS[200] = [('block1', 64, 3, 2), ('block2', 128, 24, 2),
               ('block3', 256, 36, 2), ('block4', 512, 3, 1)]


def _batch_norm_relu(x, scope, bn):
  """Slim's batch_norm(activation_fn=relu, scope=...): variables '<scope>/beta'..."""
  x = net_utils.BatchNorm(
      momentum=bn['decay'], epsilon=bn['epsilon'], center=bn['center'],
      scale=bn['scale'], name=scopes.layer_name(scope))(x)
  return net_utils.activation(x, scope, 'relu')


def bottleneck(x, depth, depth_bottleneck, stride, scope, conv, bn):
  """Slim's bottleneck (v2): shortcut + conv3(conv2(conv1(preact(x)))).

  conv(x, filters, kernel, scope, stride=1, padding='same', plain=False):
  plain=True is a conv with bias and no batch norm or activation.
  """
  preact = _batch_norm_relu(x, scope + '/preact', bn)
  if x.shape[-1] == depth:
    shortcut = x  # the identity takes x itself, not its preactivation
    if stride > 1:
      shortcut = keras.layers.MaxPooling2D(
          1, strides=stride, name=scopes.layer_name(scope, 'shortcut'))(x)
  else:
    shortcut = conv(preact, depth, 1, scope + '/shortcut', stride=stride,
                    plain=True)
  residual = conv(preact, depth_bottleneck, 1, scope + '/conv1')
  residual = resnet_v1.conv2d_same(residual, depth_bottleneck, 3, stride,
                                   scope + '/conv2', conv)
  residual = conv(residual, depth, 1, scope + '/conv3', plain=True)
  return keras.layers.Add(name=scopes.layer_name(scope, 'add'))(
      [shortcut, residual])


def resnet_v2(blocks, num_classes=1000, input_shape=(224, 224, 3),
              weight_decay=1e-4, batch_norm_decay=0.997,
              batch_norm_epsilon=1e-5, batch_norm_scale=True,
              model_scope='resnet_v2'):
  """Builds a ResNet v2 from a list of (scope, base_depth, num_units, stride).

  Args:
    blocks: the block table, e.g. BLOCKS[50].
    num_classes: classes of the 'logits' conv; 0 or None builds no classifier
      and the features are end_points['PreLogits'] ([batch, 2048]).
    input_shape: (height, width, channels); any size of at least 1 pixel (the
      head pools globally, Slim's global_pool=True, and squeezes the 1x1
      logits, Slim's spatial_squeeze=True).
    weight_decay: L2 on conv kernels with Slim's scale (resnet_arg_scope: 1e-4).
    batch_norm_decay, batch_norm_epsilon, batch_norm_scale: Slim's
      resnet_arg_scope defaults (0.997, 1e-5, with gamma).
    model_scope: the model's name, e.g. 'resnet_v2_50'.

  Returns:
    keras.Model whose call returns the end_points dict.
  """
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   batch_norm_scale)

  def conv(x, filters, kernel, scope, stride=1, padding='same', plain=False):
    return net_utils.conv2d(x, filters, kernel, scope, stride=stride,
                            padding=padding,
                            activation_fn=None if plain else 'relu',
                            bn=None if plain else bn,
                            weight_decay=weight_decay)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  # No batch norm or ReLU on conv1: block1/unit_1's preact applies them.
  net = resnet_v1.conv2d_same(inputs, 64, 7, 2, 'conv1',
                              functools.partial(conv, plain=True))
  end_points['conv1'] = net
  net = keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                  name='pool1')(net)
  end_points['pool1'] = net
  for block_scope, base_depth, num_units, stride in blocks:
    for i in range(num_units):
      unit_stride = stride if i == num_units - 1 else 1
      net = bottleneck(net, 4 * base_depth, base_depth, unit_stride,
                       '%s/unit_%d/bottleneck_v2' % (block_scope, i + 1), conv,
                       bn)
    end_points[block_scope] = net
  # The units end in a bare addition, so the features get their norm here.
  net = end_points['postnorm'] = _batch_norm_relu(net, 'postnorm', bn)

  net_utils.slim_head(net, num_classes, end_points, '', 'pool5', 'global_pool',
                      'logits', predictions_scope='predictions',
                      weight_decay=weight_decay)
  return net_utils.end_points_model(inputs, end_points, model_scope)


def _resnet_v2_depth(depth):
  """The builder of one depth, with resnet_v2's keyword arguments."""
  model_scope = 'resnet_v2_%d' % depth

  def builder(num_classes=1000, input_shape=(224, 224, 3), weight_decay=1e-4,
              batch_norm_decay=0.997, batch_norm_epsilon=1e-5,
              batch_norm_scale=True):
    return resnet_v2(BLOCKS[depth], num_classes, input_shape,
                     weight_decay=weight_decay,
                     batch_norm_decay=batch_norm_decay,
                     batch_norm_epsilon=batch_norm_epsilon,
                     batch_norm_scale=batch_norm_scale,
                     model_scope=model_scope)

  builder.__name__ = model_scope
  builder.__doc__ = 'ResNet-%d v2 (%r); arguments as resnet_v2.' % (
      depth, model_scope)
  builder.model_scope = model_scope
  return builder


resnet_v2_50 = _resnet_v2_depth(50)
resnet_v2_101 = _resnet_v2_depth(101)
resnet_v2_152 = _resnet_v2_depth(152)
resnet_v2_200 = _resnet_v2_depth(200)
