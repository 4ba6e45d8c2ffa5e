"""Inception V2 (BN-Inception), as TF-Slim's nets/inception_v2.py.

Ioffe and Szegedy, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", arXiv:1502.03167, in TF-Slim's form: the
stem 'Conv2d_1a_7x7' is a separable conv (depthwise 7x7 with multiplier 8, then
a 1x1 to 64, with biases and ReLU, no batch norm: TF-Slim's arg scope does not
reach separable_conv2d), every other conv has batch norm (beta only) and ReLU,
GoogLeNet's 5x5 branches are two 3x3 convs, 'Mixed_4a' and 'Mixed_5a' reduce
with strided convs, every conv and pool is 'SAME'.
"""

import keras

from nets import net_utils
from nets import scopes

MODEL_SCOPE = 'InceptionV2'

# Mixed blocks as data, widths before depth_multiplier. Inception blocks:
# (Branch_0 1x1, Branch_1 1x1 -> 3x3, Branch_2 1x1 -> 3x3 -> 3x3, Branch_3
# 3x3 pool -> 1x1, that pool 'avg' | 'max'). Reductions (4 widths): (Branch_0
# 1x1 -> 3x3/2, Branch_1 1x1 -> 3x3 -> 3x3/2), Branch_2 a 3x3/2 max pool.
_BODY = [
    ('Mixed_3b', (64, 64, 64, 64, 96, 32, 'avg')),
    ('Mixed_3c', (64, 64, 96, 64, 96, 64, 'avg')),
    ('Mixed_4a', (128, 160, 64, 96)),
    ('Mixed_4b', (224, 64, 96, 96, 128, 128, 'avg')),
    ('Mixed_4c', (192, 96, 128, 96, 128, 128, 'avg')),
    ('Mixed_4d', (160, 128, 160, 128, 160, 96, 'avg')),
    ('Mixed_4e', (96, 128, 192, 160, 192, 96, 'avg')),
    ('Mixed_5a', (128, 192, 192, 256)),
    ('Mixed_5b', (352, 192, 320, 160, 224, 128, 'avg')),
    ('Mixed_5c', (352, 192, 320, 192, 224, 128, 'max')),
]

# TF-Slim sets these initializers per conv; the rest take the arg scope's
# variance_scaling_initializer (He, truncated normal).
_STEM_INIT = 1.0
_REDUCE_1X1_INIT = 0.09   # a branch's 1x1 that feeds a 3x3
_POOL_1X1_INIT = 0.1      # Branch_3's 1x1 after the pool, and Conv2d_2b_1x1


def _pool(x, kind, scope, stride=1):
  layer = (keras.layers.MaxPooling2D if kind == 'max'
           else keras.layers.AveragePooling2D)
  return layer(3, strides=stride, padding='same',
               name=scopes.layer_name(scope))(x)


def _concat(scope, branches):
  return keras.layers.Concatenate(axis=-1, name=scopes.layer_name(
      scope, 'concat'))(branches)


def _mixed(x, scope, widths, conv):
  b0, b1a, b1b, b2a, b2b, b3, pool = widths
  branch_0 = conv(x, b0, 1, scope + '/Branch_0/Conv2d_0a_1x1')
  branch_1 = conv(x, b1a, 1, scope + '/Branch_1/Conv2d_0a_1x1',
                  init=_REDUCE_1X1_INIT)
  branch_1 = conv(branch_1, b1b, 3, scope + '/Branch_1/Conv2d_0b_3x3')
  branch_2 = conv(x, b2a, 1, scope + '/Branch_2/Conv2d_0a_1x1',
                  init=_REDUCE_1X1_INIT)
  branch_2 = conv(branch_2, b2b, 3, scope + '/Branch_2/Conv2d_0b_3x3')
  branch_2 = conv(branch_2, b2b, 3, scope + '/Branch_2/Conv2d_0c_3x3')
  pool_name = 'MaxPool_0a_3x3' if pool == 'max' else 'AvgPool_0a_3x3'
  branch_3 = _pool(x, pool, scope + '/Branch_3/' + pool_name)
  branch_3 = conv(branch_3, b3, 1, scope + '/Branch_3/Conv2d_0b_1x1',
                  init=_POOL_1X1_INIT)
  return _concat(scope, [branch_0, branch_1, branch_2, branch_3])


def _reduction(x, scope, widths, conv):
  b0a, b0b, b1a, b1b = widths
  branch_0 = conv(x, b0a, 1, scope + '/Branch_0/Conv2d_0a_1x1',
                  init=_REDUCE_1X1_INIT)
  branch_0 = conv(branch_0, b0b, 3, scope + '/Branch_0/Conv2d_1a_3x3',
                  stride=2)
  branch_1 = conv(x, b1a, 1, scope + '/Branch_1/Conv2d_0a_1x1',
                  init=_REDUCE_1X1_INIT)
  branch_1 = conv(branch_1, b1b, 3, scope + '/Branch_1/Conv2d_0b_3x3')
  branch_1 = conv(branch_1, b1b, 3, scope + '/Branch_1/Conv2d_1a_3x3',
                  stride=2)
  branch_2 = _pool(x, 'max', scope + '/Branch_2/MaxPool_1a_3x3', stride=2)
  return _concat(scope, [branch_0, branch_1, branch_2])


def inception_v2(num_classes=1000, input_shape=(224, 224, 3),
                 weight_decay=4e-5, dropout_keep_prob=0.8, min_depth=16,
                 depth_multiplier=1.0, use_separable_conv=True,
                 data_format='NHWC', batch_norm_decay=0.9997,
                 batch_norm_epsilon=0.001):
  """Builds Inception V2; the model's call returns the end_points dict.

  Args:
    num_classes: classes of Logits/Conv2d_1c_1x1; 0 or None builds no
      classifier and the features are end_points['PreLogits'] ([batch, 1024]).
    input_shape: (height, width, channels); any size of at least 1 pixel (all
      convs and pools are 'SAME', the head pools globally).
    weight_decay: L2 on conv kernels with Slim's scale (see net_utils); as in
      TF-Slim, not on the separable stem (its arg scope covers conv2d only).
    dropout_keep_prob: keep probability of Logits/Dropout_1b.
    min_depth, depth_multiplier: every conv has max(int(d * depth_multiplier),
      min_depth) channels (TF-Slim's `depth`).
    use_separable_conv: Conv2d_1a_7x7 as TF-Slim's separable conv (the
      published checkpoint's); False makes it a plain 7x7 conv with batch norm.
    data_format: 'NHWC' only: these Keras nets are channels-last (a TF-Slim
      checkpoint's weights are the same in either layout).
    batch_norm_decay, batch_norm_epsilon: TF-Slim's inception arg scope
      (0.9997, 0.001, no gamma). Use about 0.9 to 0.99 for short from-scratch
      runs.

  Returns:
    keras.Model named 'InceptionV2'.
  """
  if depth_multiplier <= 0:
    raise ValueError('depth_multiplier: expected a value > 0, got %r'
                     % (depth_multiplier,))
  if min_depth < 1:
    raise ValueError('min_depth: expected an integer >= 1, got %r'
                     % (min_depth,))
  if data_format != 'NHWC':
    raise ValueError("data_format: expected 'NHWC' (channels-last Keras nets; "
                     "transpose NCHW images first), got %r" % (data_format,))
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   scale=False)
  he = keras.initializers.VarianceScaling(2.0, 'fan_in', 'truncated_normal')

  def depth(d):
    return max(int(d * depth_multiplier), min_depth)

  def conv(x, filters, kernel, scope, stride=1, init=None):
    initializer = he if init is None else net_utils.truncated_normal(init)
    return net_utils.conv2d(x, depth(filters), kernel, scope, stride=stride,
                            bn=bn, weight_decay=weight_decay,
                            initializer=initializer)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  if use_separable_conv:
    # TF-Slim's depthwise multiplier keeps in_channels * multiplier <= 64.
    # keras' SeparableConv2D, not a conv_layers one: --conv_gradients has no
    # rewrite for multiplier 8, and the stem needs no input gradient.
    init = net_utils.truncated_normal(_STEM_INIT)
    net = keras.layers.SeparableConv2D(
        depth(64), 7, strides=2, padding='same',
        depth_multiplier=min(int(depth(64) / 3), 8), activation='relu',
        depthwise_initializer=init, pointwise_initializer=init,
        name='Conv2d_1a_7x7')(inputs)
  else:
    net = conv(inputs, 64, 7, 'Conv2d_1a_7x7', stride=2, init=_STEM_INIT)
  end_points['Conv2d_1a_7x7'] = net
  net = end_points['MaxPool_2a_3x3'] = _pool(net, 'max', 'MaxPool_2a_3x3', 2)
  net = end_points['Conv2d_2b_1x1'] = conv(net, 64, 1, 'Conv2d_2b_1x1',
                                           init=_POOL_1X1_INIT)
  net = end_points['Conv2d_2c_3x3'] = conv(net, 192, 3, 'Conv2d_2c_3x3')
  net = end_points['MaxPool_3a_3x3'] = _pool(net, 'max', 'MaxPool_3a_3x3', 2)
  for scope, widths in _BODY:
    block = _mixed if len(widths) == 7 else _reduction
    net = end_points[scope] = block(net, scope, widths, conv)

  # TF-Slim pools with min(7, map) 'VALID', i.e. over the whole map whenever
  # its logits are [batch, classes]; the global mean also serves larger inputs.
  net_utils.slim_head(net, num_classes, end_points, 'Logits', 'AvgPool_1a',
                      'AvgPool_1a', 'Conv2d_1c_1x1', dropout_scope='Dropout_1b',
                      dropout_keep_prob=dropout_keep_prob,
                      weight_decay=weight_decay, initializer=he)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


inception_v2.model_scope = MODEL_SCOPE
