"""MobileNet V2/V3 building blocks, as TF-Slim's nets/mobilenet/{mobilenet,conv_blocks}.py.

A net is a list of ops (TF-Slim's conv_defs 'spec'): Conv(...) for a plain conv,
Block(...) for an 'expanded_conv' (1x1 expand -> depthwise -> optional
squeeze-excite -> 1x1 linear project, plus the residual) and Pool() for V3's
average pool to 1x1 before its last conv. build() names them as TF-Slim's
variable scopes do by default: 'Conv', 'Conv_1', ..., 'expanded_conv',
'expanded_conv_1', ..., and end points 'layer_<i>' (i from 1) with
'layer_<i>/expansion_output', '/depthwise_output' and '/output' for blocks.
"""

import collections

import keras
import tensorflow as tf

from nets import net_utils
from nets import scopes

# kernel: conv size; activation: 'relu' | 'relu6' | 'hard_swish' | None;
# batch_norm False: a bias instead, as V3's last conv.
Conv = collections.namedtuple('Conv', 'num_outputs kernel stride activation batch_norm')
# expansion: factor of the input depth; expansion_divisor: TF-Slim's
# expand_input_by_factor(n, divisible_by); se: squeeze-excite after the depthwise.
Block = collections.namedtuple(
    'Block', 'num_outputs expansion kernel stride activation se expansion_divisor')
Pool = collections.namedtuple('Pool', '')


def conv(num_outputs, kernel=1, stride=1, activation='relu6', batch_norm=True):
  return Conv(num_outputs, kernel, stride, activation, batch_norm)


def block(num_outputs, expansion=6, kernel=3, stride=1, activation='relu6',
          se=False, expansion_divisor=8):
  return Block(num_outputs, expansion, kernel, stride, activation, se,
               expansion_divisor)


def make_divisible(v, divisor=8, min_value=None):
  """TF-Slim's _make_divisible: v rounded to a multiple of divisor, never more
  than 10 % below v and never below min_value (default: divisor)."""
  if min_value is None:
    min_value = divisor
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


@keras.saving.register_keras_serializable(package='nets')
class HardSwish(keras.layers.Layer):
  """MobileNet V3's hard-swish x * relu6(x + 3) / 6 (TFLite fuses it to HARD_SWISH)."""

  def call(self, x):
    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)

  def compute_output_shape(self, input_shape):
    return input_shape


@keras.saving.register_keras_serializable(package='nets')
class HardSigmoid(keras.layers.Layer):
  """The squeeze-excite gate of TF-Slim's V3: relu6(x + 3) * 0.16667 (its constant,
  not 1/6, so the logits match the checkpoints')."""

  def call(self, x):
    return tf.nn.relu6(x + 3.0) * 0.16667

  def compute_output_shape(self, input_shape):
    return input_shape


def apply_activation(x, scope, name):
  if name is None:
    return x
  if name == 'hard_swish':
    return HardSwish(name=scopes.layer_name(scope, 'hard_swish'))(x)
  return net_utils.activation(x, scope, name)


def _conv(x, filters, kernel, scope, options, stride=1, activation=None,
          batch_norm=True):
  """Slim's conv2d of the arg scope: batch norm, or a bias when batch_norm is False."""
  x = net_utils.conv2d(x, filters, kernel, scope, stride=stride, activation_fn=None,
                       bn=options['bn'] if batch_norm else None,
                       weight_decay=options['weight_decay'],
                       initializer=options['initializer'])
  return apply_activation(x, scope, activation)


def squeeze_excite(x, scope, options, squeeze_factor=4, divisible_by=8):
  """conv_blocks.squeeze_excite as V3 sets it: mean -> 1x1 'Conv' (bias, ReLU) ->
  1x1 'Conv_1' (bias, hard sigmoid) -> x * gate."""
  channels = x.shape[-1]
  squeeze = make_divisible(channels / squeeze_factor, divisible_by)
  pooled = keras.layers.GlobalAveragePooling2D(
      keepdims=True, name=scopes.layer_name(scope, 'AvgPool'))(x)
  gate = _conv(pooled, squeeze, 1, scope + '/Conv', options, activation='relu',
               batch_norm=False)
  gate = _conv(gate, channels, 1, scope + '/Conv_1', options, batch_norm=False)
  gate = HardSigmoid(name=scopes.layer_name(scope, 'Conv_1', 'hard_sigmoid'))(gate)
  return keras.layers.Multiply(name=scopes.layer_name(scope, 'mul'))([x, gate])


def expanded_conv(x, op, scope, options, stride, end_points, layer):
  """conv_blocks.expanded_conv: expand only when it widens; residual when the op's
  own stride is 1 and depths match (op.stride, not the small_input stride, so a
  _cifar net computes the same function as the ImageNet one)."""
  in_depth = x.shape[-1]
  inner = make_divisible(in_depth * op.expansion, op.expansion_divisor)
  net = x
  if inner > in_depth:
    net = _conv(net, inner, 1, scope + '/expand', options, activation=op.activation)
    end_points[layer + '/expansion_output'] = net
  net = net_utils.depthwise_conv2d(
      net, op.kernel, scope + '/depthwise', stride=stride, activation_fn=None,
      bn=options['bn'],
      weight_decay=options['weight_decay'] if options['regularize_depthwise'] else 0.0,
      initializer=options['initializer'])
  net = apply_activation(net, scope + '/depthwise', op.activation)
  end_points[layer + '/depthwise_output'] = net
  if op.se:
    net = squeeze_excite(net, scope + '/squeeze_excite', options)
  net = _conv(net, op.num_outputs, 1, scope + '/project', options)
  if op.stride == 1 and op.num_outputs == in_depth:
    net = keras.layers.Add(name=scopes.layer_name(scope, 'add'))([net, x])
  end_points[layer + '/output'] = net
  return net


def _slim_scope(base, counts):
  """Slim's default scope names: base, base_1, base_2, ..."""
  n = counts[base]
  counts[base] += 1
  return base if n == 0 else '%s_%d' % (base, n)


def small_input_strides(spec):
  """Indices of the first two strided ops: stride 1 under small_input (output
  stride 8 instead of 32, so a 32x32 image ends at 4x4)."""
  return [i for i, op in enumerate(spec)
          if not isinstance(op, Pool) and op.stride > 1][:2]


def build(spec, inputs, options, small_input=False):
  """Runs the ops on inputs -> (net, end_points), TF-Slim's mobilenet_base.

  options: 'bn' (net_utils.batch_norm_params), 'weight_decay', 'initializer',
  'regularize_depthwise'. Ops' depths are final (depth multiplier applied).
  """
  unstrided = small_input_strides(spec) if small_input else []
  counts = collections.Counter()
  end_points = {}
  net = inputs
  for i, op in enumerate(spec):
    layer = 'layer_%d' % (i + 1)
    if isinstance(op, Pool):
      # TF-Slim's reduce_to_1x1 (a VALID average pool over the whole square map);
      # the mean also serves non-square inputs.
      net = keras.layers.GlobalAveragePooling2D(
          keepdims=True, name=_slim_scope('AvgPool2D', counts))(net)
    elif isinstance(op, Conv):
      stride = 1 if i in unstrided else op.stride
      net = _conv(net, op.num_outputs, op.kernel, _slim_scope('Conv', counts),
                  options, stride=stride, activation=op.activation,
                  batch_norm=op.batch_norm)
    else:
      stride = 1 if i in unstrided else op.stride
      net = expanded_conv(net, op, _slim_scope('expanded_conv', counts), options,
                          stride, end_points, layer)
    end_points[layer] = net
  return net, end_points


def apply_depth_multiplier(spec, multiplier, divisible_by=8, min_depth=8,
                           keep_last=False):
  """TF-Slim's depth_multiplier on every op's num_outputs; keep_last leaves the
  last op as it is (V3's finegrain_classification_mode)."""
  out = []
  for i, op in enumerate(spec):
    if isinstance(op, Pool) or (keep_last and i == len(spec) - 1):
      out.append(op)
      continue
    out.append(op._replace(num_outputs=make_divisible(
        op.num_outputs * multiplier, divisible_by, min_depth)))
  return out


def check_options(depth_multiplier, min_depth, divisible_by):
  if not depth_multiplier > 0:
    raise ValueError('depth_multiplier: expected a value > 0, got %r'
                     % (depth_multiplier,))
  for name, value in (('min_depth', min_depth), ('divisible_by', divisible_by)):
    if not isinstance(value, int) or value < 1:
      raise ValueError('%s: expected an integer >= 1, got %r' % (name, value))


def head(net, num_classes, end_points, dropout_keep_prob, options):
  """TF-Slim's mobilenet() head: Logits/global_pool -> Dropout -> Conv2d_1c_1x1."""
  return net_utils.slim_head(
      net, num_classes, end_points, 'Logits', 'global_pool', 'global_pool',
      'Conv2d_1c_1x1', dropout_scope='Dropout', dropout_keep_prob=dropout_keep_prob,
      weight_decay=options['weight_decay'], initializer=options['initializer'])
