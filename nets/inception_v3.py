"""Inception V3, as TF-Slim's nets/inception_v3.py.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
arXiv:1512.00567, in TF-Slim's form: batch norm (beta only) after every conv,
a 'VALID' stem, factorized 1x7/7x1 and 1x3/3x1 convs, 'VALID' strided
reductions (Mixed_6a, Mixed_7a), and the auxiliary head 'AuxLogits' on
Mixed_6e. TF-Slim's odd scope names are kept so its checkpoints load:
Mixed_5c's Branch_1 is 'Conv2d_0b_1x1' -> 'Conv_1_0c_5x5', Mixed_6a's strided
3x3 convs are 'Conv2d_1a_1x1', Mixed_7b's 3x1 is 'Conv2d_0b_3x1'.
"""

import keras

from nets import net_utils
from nets import scopes

MODEL_SCOPE = 'InceptionV3'

# The stem's 'VALID' convs and pools need 75x75 images (Mixed_7a's 3x3 pool
# then sees 3x3); the aux head's 5x5 pool needs Mixed_6e at 5x5, i.e. 107x107.
MIN_SIZE = 75
MIN_SIZE_AUX = 107


# A Mixed block is a list of branches ('Branch_<i>'); a branch is a list of
# steps applied in order: a conv (name, depth, (kh, kw), stride, padding), a
# 3x3 pool (name, None, ...) whose name says max or avg, or a tuple of convs
# applied side by side to the same input and concatenated (Mixed_7b/7c).
def _conv(name, depth, kernel, stride=1, padding='same'):
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  return (name, depth, kernel, stride, padding)


def _pool(name, stride=1, padding='same'):
  return (name, None, (3, 3), stride, padding)


def _block_35(pool_depth, branch_1=('Conv2d_0a_1x1', 'Conv2d_0b_5x5')):
  return [[_conv('Conv2d_0a_1x1', 64, 1)],
          [_conv(branch_1[0], 48, 1), _conv(branch_1[1], 64, 5)],
          [_conv('Conv2d_0a_1x1', 64, 1), _conv('Conv2d_0b_3x3', 96, 3),
           _conv('Conv2d_0c_3x3', 96, 3)],
          [_pool('AvgPool_0a_3x3'), _conv('Conv2d_0b_1x1', pool_depth, 1)]]


def _block_17(d):
  return [[_conv('Conv2d_0a_1x1', 192, 1)],
          [_conv('Conv2d_0a_1x1', d, 1), _conv('Conv2d_0b_1x7', d, (1, 7)),
           _conv('Conv2d_0c_7x1', 192, (7, 1))],
          [_conv('Conv2d_0a_1x1', d, 1), _conv('Conv2d_0b_7x1', d, (7, 1)),
           _conv('Conv2d_0c_1x7', d, (1, 7)), _conv('Conv2d_0d_7x1', d, (7, 1)),
           _conv('Conv2d_0e_1x7', 192, (1, 7))],
          [_pool('AvgPool_0a_3x3'), _conv('Conv2d_0b_1x1', 192, 1)]]


def _block_8(branch_1_3x1):
  return [[_conv('Conv2d_0a_1x1', 320, 1)],
          [_conv('Conv2d_0a_1x1', 384, 1),
           (_conv('Conv2d_0b_1x3', 384, (1, 3)),
            _conv(branch_1_3x1, 384, (3, 1)))],
          [_conv('Conv2d_0a_1x1', 448, 1), _conv('Conv2d_0b_3x3', 384, 3),
           (_conv('Conv2d_0c_1x3', 384, (1, 3)),
            _conv('Conv2d_0d_3x1', 384, (3, 1)))],
          [_pool('AvgPool_0a_3x3'), _conv('Conv2d_0b_1x1', 192, 1)]]


_BODY = [
    ('Mixed_5b', _block_35(32)),
    ('Mixed_5c', _block_35(64, ('Conv2d_0b_1x1', 'Conv_1_0c_5x5'))),
    ('Mixed_5d', _block_35(64)),
    ('Mixed_6a', [[_conv('Conv2d_1a_1x1', 384, 3, 2, 'valid')],
                  [_conv('Conv2d_0a_1x1', 64, 1), _conv('Conv2d_0b_3x3', 96, 3),
                   _conv('Conv2d_1a_1x1', 96, 3, 2, 'valid')],
                  [_pool('MaxPool_1a_3x3', 2, 'valid')]]),
    ('Mixed_6b', _block_17(128)),
    ('Mixed_6c', _block_17(160)),
    ('Mixed_6d', _block_17(160)),
    ('Mixed_6e', _block_17(192)),
    ('Mixed_7a', [[_conv('Conv2d_0a_1x1', 192, 1),
                   _conv('Conv2d_1a_3x3', 320, 3, 2, 'valid')],
                  [_conv('Conv2d_0a_1x1', 192, 1),
                   _conv('Conv2d_0b_1x7', 192, (1, 7)),
                   _conv('Conv2d_0c_7x1', 192, (7, 1)),
                   _conv('Conv2d_1a_3x3', 192, 3, 2, 'valid')],
                  [_pool('MaxPool_1a_3x3', 2, 'valid')]]),
    ('Mixed_7b', _block_8('Conv2d_0b_3x1')),
    ('Mixed_7c', _block_8('Conv2d_0c_3x1')),
]

# (name, depth, kernel, stride, padding) of the stem, then max pools.
_STEM = [
    _conv('Conv2d_1a_3x3', 32, 3, 2, 'valid'),
    _conv('Conv2d_2a_3x3', 32, 3, 1, 'valid'),
    _conv('Conv2d_2b_3x3', 64, 3, 1, 'same'),
    _pool('MaxPool_3a_3x3', 2, 'valid'),
    _conv('Conv2d_3b_1x1', 80, 1, 1, 'valid'),
    _conv('Conv2d_4a_3x3', 192, 3, 1, 'valid'),
    _pool('MaxPool_5a_3x3', 2, 'valid'),
]


def _concat(scope, tensors):
  return keras.layers.Concatenate(axis=-1, name=scopes.layer_name(
      scope, 'concat'))(tensors)


def _step(x, step, scope, conv):
  """One step of a branch (see _conv / _pool) under `scope`."""
  if isinstance(step[0], tuple):  # side by side: concat of convs of x
    return _concat(scope, [_step(x, s, scope, conv) for s in step])
  name, depth, kernel, stride, padding = step
  path = scopes.layer_name(scope, name)
  if depth is None:
    layer = (keras.layers.MaxPooling2D if name.startswith('MaxPool')
             else keras.layers.AveragePooling2D)
    return layer(kernel, strides=stride, padding=padding, name=path)(x)
  return conv(x, depth, kernel, path, stride=stride, padding=padding)


def _mixed(x, scope, branches, conv):
  outputs = []
  for i, steps in enumerate(branches):
    branch = x
    for step in steps:
      branch = _step(branch, step, '%s/Branch_%d' % (scope, i), conv)
    outputs.append(branch)
  return _concat(scope, outputs)


def _aux_kernel(net):
  """TF-Slim's _reduced_kernel_size_for_small_input(net, [5, 5])."""
  return tuple(5 if d is None else min(d, 5) for d in net.shape[1:3])


def _check_size(shape, create_aux):
  minimum = MIN_SIZE_AUX if create_aux else MIN_SIZE
  if any(d is not None and d < minimum for d in shape[:2]):
    why = (' for its AuxLogits head (create_aux_logits=False: %d)' % MIN_SIZE
           if create_aux else '')
    raise ValueError('input_shape: inception_v3 needs height and width of at '
                     'least %d%s, got %r' % (minimum, why, tuple(shape)))


def inception_v3(num_classes=1000, input_shape=(299, 299, 3),
                 weight_decay=4e-5, dropout_keep_prob=0.8, min_depth=16,
                 depth_multiplier=1.0, create_aux_logits=True,
                 batch_norm_decay=0.9997, batch_norm_epsilon=0.001):
  """Builds Inception V3; the model's call returns the end_points dict.

  Args:
    num_classes: classes of Logits/Conv2d_1c_1x1 (and of AuxLogits); 0 or None
      builds no classifier and no aux head, the features are
      end_points['PreLogits'] ([batch, 2048]).
    input_shape: (height, width, channels); at least 75x75, or 107x107 with
      the aux head (TF-Slim's 'VALID' stem and aux pool need it).
    weight_decay: L2 on every conv kernel (aux head and classifiers too) with
      Slim's scale (see net_utils).
    dropout_keep_prob: keep probability of Logits/Dropout_1b.
    min_depth, depth_multiplier: every conv has max(int(d * depth_multiplier),
      min_depth) channels (TF-Slim's `depth`; not the classifiers).
    create_aux_logits: build TF-Slim's auxiliary head on Mixed_6e as
      end_points['AuxLogits'] ([batch, num_classes]); training adds 0.4 times
      its cross-entropy, evaluation ignores it.
    batch_norm_decay, batch_norm_epsilon: TF-Slim's inception_v3_arg_scope
      (0.9997, 0.001, no gamma). Use about 0.9 to 0.99 for short from-scratch
      runs.

  Returns:
    keras.Model named 'InceptionV3'.
  """
  if depth_multiplier <= 0:
    raise ValueError('depth_multiplier: expected a value > 0, got %r'
                     % (depth_multiplier,))
  if min_depth < 1:
    raise ValueError('min_depth: expected an integer >= 1, got %r'
                     % (min_depth,))
  create_aux = bool(create_aux_logits and num_classes)
  _check_size(net_utils.check_input_shape(input_shape), create_aux)
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   scale=False)
  # inception_v3_arg_scope's initializer (as the published checkpoint was
  # trained; later TF-Slim copies switched to variance scaling).
  init = net_utils.truncated_normal(0.1)

  def depth(d):
    return max(int(d * depth_multiplier), min_depth)

  def conv(x, filters, kernel, scope, stride=1, padding='same',
           initializer=init):
    return net_utils.conv2d(x, depth(filters), kernel, scope, stride=stride,
                            padding=padding, bn=bn, weight_decay=weight_decay,
                            initializer=initializer)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  net = inputs
  for step in _STEM:
    net = end_points[step[0]] = _step(net, step, '', conv)
  for scope, branches in _BODY:
    net = end_points[scope] = _mixed(net, scope, branches, conv)

  if create_aux:
    aux = keras.layers.AveragePooling2D(
        5, strides=3, padding='valid',
        name='AuxLogits.AvgPool_1a_5x5')(end_points['Mixed_6e'])
    aux = conv(aux, 128, 1, 'AuxLogits/Conv2d_1b_1x1')
    kernel = _aux_kernel(aux)
    aux = conv(aux, 768, kernel, 'AuxLogits/Conv2d_2a_%dx%d' % kernel,
               padding='valid', initializer=net_utils.truncated_normal(0.01))
    # 1x1 up to TF-Slim's sizes (its squeeze fails above); the mean of a 1x1
    # map is the map itself, and a larger one averages its logits.
    aux = net_utils.global_avg_pool(aux, 'AuxLogits/GlobalPool')
    end_points['AuxLogits'] = net_utils.conv_logits(
        aux, num_classes, 'AuxLogits/Conv2d_2b_1x1', 'AuxLogits/SpatialSqueeze',
        weight_decay=weight_decay,
        initializer=net_utils.truncated_normal(0.001))

  # TF-Slim pools with min(8, map) 'VALID', i.e. over the whole map whenever
  # its logits are [batch, classes]; the global mean also serves larger inputs.
  net_utils.slim_head(net, num_classes, end_points, 'Logits', 'AvgPool_1a',
                      'AvgPool_1a', 'Conv2d_1c_1x1', dropout_scope='Dropout_1b',
                      dropout_keep_prob=dropout_keep_prob,
                      weight_decay=weight_decay, initializer=init)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


inception_v3.model_scope = MODEL_SCOPE
