"""Inception V4, as TF-Slim's nets/inception_v4.py.

Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", arXiv:1602.07261, in TF-Slim's form: a stem of
'VALID' convs and pools (299 -> 35x35), 4 Inception-A blocks, Reduction-A,
7 Inception-B, Reduction-B, 3 Inception-C; no conv biases, batch norm (beta
only) after every conv; both classifiers are fully connected layers with 2-D
weights ('Logits/Logits' [1536, classes], 'AuxLogits/Aux_logits').

The block tables and the heads here are shared with inception_resnet_v2.py.
"""

import collections

import keras

from nets import net_utils
from nets import scopes

MODEL_SCOPE = 'InceptionV4'

# One conv or pool of a branch. The scope's prefix says which (Conv2d_ /
# MaxPool_ / AvgPool_); filters is None for pools; kernel is an int or (h, w).
Op = collections.namedtuple('Op', 'scope filters kernel stride padding',
                            defaults=(1, 'same'))

# A block is a list of branches ('Branch_0', 'Branch_1', ...), a branch a list
# of Ops run in turn; a tuple of Ops inside a branch runs each on the same input
# and concatenates them (the split towers of Inception-C).
_MIXED_3A = [
    [Op('MaxPool_0a_3x3', None, 3, 2, 'valid')],
    [Op('Conv2d_0a_3x3', 96, 3, 2, 'valid')],
]
_MIXED_4A = [
    [Op('Conv2d_0a_1x1', 64, 1), Op('Conv2d_1a_3x3', 96, 3, 1, 'valid')],
    [Op('Conv2d_0a_1x1', 64, 1), Op('Conv2d_0b_1x7', 64, (1, 7)),
     Op('Conv2d_0c_7x1', 64, (7, 1)), Op('Conv2d_1a_3x3', 96, 3, 1, 'valid')],
]
_MIXED_5A = [
    [Op('Conv2d_1a_3x3', 192, 3, 2, 'valid')],
    [Op('MaxPool_1a_3x3', None, 3, 2, 'valid')],
]
_INCEPTION_A = [
    [Op('Conv2d_0a_1x1', 96, 1)],
    [Op('Conv2d_0a_1x1', 64, 1), Op('Conv2d_0b_3x3', 96, 3)],
    [Op('Conv2d_0a_1x1', 64, 1), Op('Conv2d_0b_3x3', 96, 3),
     Op('Conv2d_0c_3x3', 96, 3)],
    [Op('AvgPool_0a_3x3', None, 3), Op('Conv2d_0b_1x1', 96, 1)],
]
_REDUCTION_A = [
    [Op('Conv2d_1a_3x3', 384, 3, 2, 'valid')],
    [Op('Conv2d_0a_1x1', 192, 1), Op('Conv2d_0b_3x3', 224, 3),
     Op('Conv2d_1a_3x3', 256, 3, 2, 'valid')],
    [Op('MaxPool_1a_3x3', None, 3, 2, 'valid')],
]
_INCEPTION_B = [
    [Op('Conv2d_0a_1x1', 384, 1)],
    [Op('Conv2d_0a_1x1', 192, 1), Op('Conv2d_0b_1x7', 224, (1, 7)),
     Op('Conv2d_0c_7x1', 256, (7, 1))],
    [Op('Conv2d_0a_1x1', 192, 1), Op('Conv2d_0b_7x1', 192, (7, 1)),
     Op('Conv2d_0c_1x7', 224, (1, 7)), Op('Conv2d_0d_7x1', 224, (7, 1)),
     Op('Conv2d_0e_1x7', 256, (1, 7))],
    [Op('AvgPool_0a_3x3', None, 3), Op('Conv2d_0b_1x1', 128, 1)],
]
_REDUCTION_B = [
    [Op('Conv2d_0a_1x1', 192, 1), Op('Conv2d_1a_3x3', 192, 3, 2, 'valid')],
    [Op('Conv2d_0a_1x1', 256, 1), Op('Conv2d_0b_1x7', 256, (1, 7)),
     Op('Conv2d_0c_7x1', 320, (7, 1)), Op('Conv2d_1a_3x3', 320, 3, 2, 'valid')],
    [Op('MaxPool_1a_3x3', None, 3, 2, 'valid')],
]
_INCEPTION_C = [
    [Op('Conv2d_0a_1x1', 256, 1)],
    [Op('Conv2d_0a_1x1', 384, 1),
     (Op('Conv2d_0b_1x3', 256, (1, 3)), Op('Conv2d_0c_3x1', 256, (3, 1)))],
    [Op('Conv2d_0a_1x1', 384, 1), Op('Conv2d_0b_3x1', 448, (3, 1)),
     Op('Conv2d_0c_1x3', 512, (1, 3)),
     (Op('Conv2d_0d_1x3', 256, (1, 3)), Op('Conv2d_0e_3x1', 256, (3, 1)))],
    [Op('AvgPool_0a_3x3', None, 3), Op('Conv2d_0b_1x1', 256, 1)],
]

# The body: an Op is a layer of its own (its scope is the end point), a
# (scope, block) pair a Mixed block. 299x299 gives 149, 147, 147, 73, 71, 35
# (Mixed_5*), 17 (Mixed_6*), 8 (Mixed_7*).
BODY = ([
    Op('Conv2d_1a_3x3', 32, 3, 2, 'valid'),
    Op('Conv2d_2a_3x3', 32, 3, 1, 'valid'),
    Op('Conv2d_2b_3x3', 64, 3),
    ('Mixed_3a', _MIXED_3A),
    ('Mixed_4a', _MIXED_4A),
    ('Mixed_5a', _MIXED_5A),
] + [('Mixed_5' + c, _INCEPTION_A) for c in 'bcde'] +
        [('Mixed_6a', _REDUCTION_A)] +
        [('Mixed_6' + c, _INCEPTION_B) for c in 'bcdefgh'] +
        [('Mixed_7a', _REDUCTION_B)] +
        [('Mixed_7' + c, _INCEPTION_C) for c in 'bcd'])

# The auxiliary head reads this end point; its 5x5 stride 3 'VALID' average pool
# needs a map of at least 5x5 there.
AUX_END_POINT = 'Mixed_6h'
AUX_POOL = 5
AUX_STRIDE = 3


def _pair(kernel):
  return (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)


def _is_pool(op):
  return op.scope.startswith(('MaxPool', 'AvgPool'))


def run_op(x, op, scope, conv, valid='valid'):
  """One Op under `scope`; `valid` replaces 'valid' padding (IRv2's alignment)."""
  padding = valid if op.padding == 'valid' else op.padding
  if not _is_pool(op):
    return conv(x, op.filters, _pair(op.kernel), scopes.layer_name(scope, op.scope),
                stride=op.stride, padding=padding)
  pool = (keras.layers.MaxPooling2D if op.scope.startswith('MaxPool')
          else keras.layers.AveragePooling2D)
  # Keras' 'same' average pool divides by the unpadded count, as tf.nn.avg_pool.
  return pool(_pair(op.kernel), strides=op.stride, padding=padding,
              name=scopes.layer_name(scope, op.scope))(x)


def mixed(x, scope, block, conv, valid='valid'):
  """A block of the tables: its branches concatenated on channels."""
  outputs = []
  for i, branch in enumerate(block):
    branch_scope = scopes.layer_name(scope, 'Branch_%d' % i)
    net = x
    for item in branch:
      if isinstance(item, Op):
        net = run_op(net, item, branch_scope, conv, valid)
      else:
        net = keras.layers.Concatenate(
            axis=-1, name=scopes.layer_name(branch_scope, 'concat'))(
                [run_op(net, op, branch_scope, conv, valid) for op in item])
    outputs.append(net)
  return keras.layers.Concatenate(axis=-1, name=scopes.layer_name(
      scope, 'concat'))(outputs)


# ==============================================================================
# Map sizes: the smallest input each net takes.
# ==============================================================================


def _out_size(size, kernel, stride, padding):
  """Output length of one dimension, None when the input is too small."""
  if padding == 'same':
    return -(-size // stride)
  if size < kernel:
    return None
  return (size - kernel) // stride + 1


def _op_size(hw, op, valid):
  padding = valid if op.padding == 'valid' else op.padding
  out = tuple(_out_size(s, k, op.stride, padding)
              for s, k in zip(hw, _pair(op.kernel)))
  return None if None in out else out


def body_sizes(hw, body, valid='valid'):
  """{end point: (h, w)} of a body table for an input of hw, None if too small.

  Every branch of a block ends at the same size, so Branch_0 gives it.
  """
  sizes = {}
  for entry in body:
    if isinstance(entry, Op):
      hw = _op_size(hw, entry, valid)
      name = entry.scope
    else:
      name, block = entry
      for op in block[0]:
        hw = _op_size(hw, op, valid)
        if hw is None:
          break
    if hw is None:
      return None
    sizes[name] = hw
  return sizes


def smallest_input(body, aux_end_point, create_aux_logits, valid='valid'):
  """The smallest square input whose maps all fit (the aux pool needs 5x5)."""
  for size in range(1, 1024):
    sizes = body_sizes((size, size), body, valid)
    if sizes and (not create_aux_logits or
                  min(sizes[aux_end_point]) >= AUX_POOL):
      return size
  raise AssertionError('no input size up to 1024 fits')


def check_input(input_shape, body, aux_end_point, create_aux_logits, net_name,
                valid='valid'):
  """input_shape as a tuple, or a one-line ValueError if the net cannot take it."""
  shape = net_utils.check_input_shape(input_shape)
  hw = shape[:2]
  if None in hw:
    if create_aux_logits:
      raise ValueError(
          'input_shape: %s\'s auxiliary head needs a known height and width, got '
          '%r; pass create_aux_logits=False for images of any size' % (
              net_name, shape))
    return shape
  sizes = body_sizes(hw, body, valid)
  aux_fits = sizes and min(sizes[aux_end_point]) >= AUX_POOL
  if sizes is None or (create_aux_logits and not aux_fits):
    smallest = smallest_input(body, aux_end_point, create_aux_logits, valid)
    if create_aux_logits:
      hint = ' with create_aux_logits=True (%d without)' % smallest_input(
          body, aux_end_point, False, valid)
    else:
      hint = ''
    raise ValueError('input_shape: height and width must be at least %d for %s%s, '
                     'got %r' % (smallest, net_name, hint, shape))
  return shape


# ==============================================================================
# Heads.
# ==============================================================================


def dense_logits(x, num_classes, scope, weight_decay, regularize_biases=False):
  """Slim's fully_connected(activation_fn=None): '<scope>/weights' [in, classes].

  Xavier (Glorot uniform) weights and zero biases, as Slim's defaults; float32 so
  the logits keep full precision under a mixed precision policy.
  """
  return keras.layers.Dense(
      num_classes, kernel_initializer='glorot_uniform', bias_initializer='zeros',
      kernel_regularizer=net_utils.l2_regularizer(weight_decay),
      bias_regularizer=(net_utils.l2_regularizer(weight_decay)
                        if regularize_biases else None),
      dtype='float32', name=scopes.layer_name(scope))(x)


def aux_head(net, num_classes, conv, names, weight_decay,
             regularize_biases=False):
  """TF-Slim's AuxLogits head: 5x5/3 average pool, 1x1 conv 128, a conv of 768
  whose kernel is the pooled map's own size ('VALID': 5x5 at 299, so 1x1 out),
  flatten, fully connected. names: (pool, conv 1x1, conv 768, logits) scopes.
  """
  pool, conv_1x1, conv_768, logits = names
  aux = keras.layers.AveragePooling2D(
      AUX_POOL, strides=AUX_STRIDE, padding='valid',
      name=scopes.layer_name('AuxLogits', pool))(net)
  aux = conv(aux, 128, 1, 'AuxLogits/' + conv_1x1)
  aux = conv(aux, 768, tuple(aux.shape[1:3]), 'AuxLogits/' + conv_768,
             padding='valid')
  aux = net_utils.flatten(aux, 'AuxLogits/Flatten')
  return dense_logits(aux, num_classes, 'AuxLogits/' + logits, weight_decay,
                      regularize_biases)


def logits_head(net, num_classes, end_points, names, dropout_keep_prob,
                weight_decay, regularize_biases=False):
  """Global average pool, flatten, dropout, fully connected 'Logits/Logits'.

  TF-Slim pools with a 'VALID' window of the map's own size (8x8 at 299): that is
  the global mean at every size. end_points: 'global_pool' [B, 1, 1, C],
  'PreLogits' (flat, before dropout), 'PreLogitsFlatten' (after dropout, as
  Slim's), 'Logits', 'Predictions'. names: (pool, flatten, dropout) scopes.
  """
  pool, flatten, dropout = names
  net = net_utils.global_avg_pool(net, 'Logits/' + pool)
  end_points['global_pool'] = net
  net = end_points['PreLogits'] = net_utils.flatten(net, 'Logits/' + flatten)
  if not num_classes:
    return end_points
  net = net_utils.dropout(net, dropout_keep_prob, 'Logits/' + dropout)
  end_points['PreLogitsFlatten'] = net
  logits = dense_logits(net, num_classes, 'Logits/Logits', weight_decay,
                        regularize_biases)
  end_points['Logits'] = logits
  end_points['Predictions'] = net_utils.predictions(logits)
  return end_points


def inception_v4(num_classes=1001, input_shape=(299, 299, 3),
                 weight_decay=4e-5, dropout_keep_prob=0.8,
                 create_aux_logits=True, batch_norm_decay=0.9997,
                 batch_norm_epsilon=0.001, batch_norm_scale=False):
  """Builds Inception V4; the model's call returns the end_points dict.

  Args:
    num_classes: classes of both classifiers; 0 or None builds neither and the
      features are end_points['PreLogits'] ([batch, 1536]).
    input_shape: (height, width, channels); at least 107x107 with the auxiliary
      head (its pool needs Mixed_6h at 5x5 or more), 75x75 without.
    weight_decay: L2 on conv and fully connected weights with Slim's scale
      (inception_arg_scope: 4e-5; biases are not decayed).
    dropout_keep_prob: keep probability of Logits/Dropout_1b.
    create_aux_logits: build end_points['AuxLogits'] ([batch, num_classes]) from
      Mixed_6h, as TF-Slim; training adds 0.4 x its cross-entropy.
    batch_norm_decay, batch_norm_epsilon, batch_norm_scale: Slim's
      inception_arg_scope defaults (0.9997, 0.001, no gamma). Use about 0.9 to
      0.99 for short from-scratch runs.

  Returns:
    keras.Model named 'InceptionV4'.
  """
  create_aux_logits = bool(create_aux_logits and num_classes)
  shape = check_input(input_shape, BODY, AUX_END_POINT, create_aux_logits,
                      'inception_v4')
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   batch_norm_scale)

  # inception_arg_scope: Slim's variance_scaling_initializer() is He normal.
  def conv(x, filters, kernel, scope, stride=1, padding='same'):
    return net_utils.conv2d(x, filters, kernel, scope, stride=stride,
                            padding=padding, bn=bn, weight_decay=weight_decay,
                            initializer='he_normal')

  inputs = net_utils.input_layer(shape)
  end_points = {}
  net = inputs
  for entry in BODY:
    if isinstance(entry, Op):
      net = end_points[entry.scope] = run_op(net, entry, '', conv)
    else:
      scope, block = entry
      net = end_points[scope] = mixed(net, scope, block, conv)

  if create_aux_logits:
    end_points['AuxLogits'] = aux_head(
        end_points[AUX_END_POINT], num_classes, conv,
        ('AvgPool_1a_5x5', 'Conv2d_1b_1x1', 'Conv2d_2a', 'Aux_logits'),
        weight_decay)
  logits_head(net, num_classes, end_points,
              ('AvgPool_1a', 'PreLogitsFlatten', 'Dropout_1b'),
              dropout_keep_prob, weight_decay)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


inception_v4.model_scope = MODEL_SCOPE
