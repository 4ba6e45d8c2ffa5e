"""NASNet-A and PNASNet cells, as TF-Slim's nets/nasnet/nasnet_utils.py.

A cell takes the previous two cell outputs (prev_layer, net), makes them the
hidden states 0 and 1 (prev_layer matched to net's size and width by
_reduce_prev_layer, net through relu -> '1x1' -> 'beginning_bn'), then runs
five 'comb_iter_<i>' blocks: each applies one operation to each of two chosen
states ('left', 'right') and adds them, a new state. The states no block used
are concatenated ('cell_output'). Batch norms have their own Slim scopes
('beginning_bn', 'bn_sep_5x5_1', 'final_path_bn'), so their Keras layers are
named by those scopes, not '<conv>.BatchNorm'.

Drop path (TF-Slim's 'v3' schedule) follows every operation but 'none' when the
net's drop_path_keep_prob < 1: in training, a whole example's branch is dropped
with keep probability 1 - progress * layer_ratio * (1 - drop_path_keep_prob),
layer_ratio = (cell_num + 1) / total_num_cells and progress =
min(1, global_step / total_training_steps), which the training loop sets with
net_utils.set_training_progress(model, fraction). Identity at inference.
"""

import collections

import keras
import tensorflow as tf

from nets import conv_grad_auto
from nets import conv_layers
from nets import net_utils
from nets import scopes

# TF-Slim's cap of tf.clip_by_value after operations when use_bounded_activation.
CLIP_BY_VALUE_CAP = 6

# A cell's search result: ten operations (left, right of each comb_iter), which
# of the 7 hidden states a comb_iter consumed (those are not concatenated), and
# the hidden state each operation reads.
CellSpec = collections.namedtuple(
    'CellSpec', ['operations', 'used_hiddenstates', 'hiddenstate_indices'])

NASNET_A_NORMAL = CellSpec(
    ['separable_5x5_2', 'separable_3x3_2', 'separable_5x5_2', 'separable_3x3_2',
     'avg_pool_3x3', 'none', 'avg_pool_3x3', 'avg_pool_3x3', 'separable_3x3_2',
     'none'],
    [1, 0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 1, 1, 1, 0, 0])

NASNET_A_REDUCTION = CellSpec(
    ['separable_5x5_2', 'separable_7x7_2', 'max_pool_3x3', 'separable_7x7_2',
     'avg_pool_3x3', 'separable_5x5_2', 'none', 'avg_pool_3x3',
     'separable_3x3_2', 'max_pool_3x3'],
    [1, 1, 1, 0, 0, 0, 0],
    [0, 1, 0, 1, 0, 1, 3, 2, 2, 0])

# The hparams of TF-Slim's *_config() functions (tf.contrib.training.HParams).
HParams = collections.namedtuple('HParams', [
    'num_cells', 'num_conv_filters', 'stem_multiplier', 'filter_scaling_rate',
    'num_reduction_layers', 'drop_path_keep_prob', 'dense_dropout_keep_prob',
    'use_aux_head', 'skip_reduction_layer_input', 'total_training_steps',
    'use_bounded_activation', 'data_format'])


def hparams_from(options):
  """HParams from a builder's keyword arguments (extra keys ignored), checked."""
  hp = HParams(**{k: options[k] for k in HParams._fields})
  positive = ('num_cells', 'num_conv_filters', 'stem_multiplier',
              'filter_scaling_rate', 'total_training_steps')
  for name in positive:
    if not getattr(hp, name) > 0:
      raise ValueError('%s: expected a value > 0, got %r' % (name, getattr(hp, name)))
  for name in ('drop_path_keep_prob', 'dense_dropout_keep_prob'):
    value = getattr(hp, name)
    if not 0.0 < value <= 1.0:
      raise ValueError('%s: expected a probability in (0, 1], got %r' % (name, value))
  if hp.num_reduction_layers < 0:
    raise ValueError('num_reduction_layers: expected a value >= 0, got %r'
                     % (hp.num_reduction_layers,))
  if hp.data_format != 'NHWC':
    # Keras on CPU has no NCHW pooling; NHWC is also what the checkpoints hold.
    raise ValueError("data_format: only 'NHWC' is supported, got %r"
                     % (hp.data_format,))
  return hp


def check_filters(hp, stem_cells):
  """The smallest cell (a stem cell scales filters by rate**-2) needs 2 filters."""
  smallest = int(hp.num_conv_filters / hp.filter_scaling_rate ** stem_cells)
  if smallest < 2:
    raise ValueError('num_conv_filters: %r gives %d filter(s) in the first cell; '
                     'expected at least 2' % (hp.num_conv_filters, smallest))


def calc_reduction_layers(num_cells, num_reduction_layers):
  """Indices of the cells preceded by a reduction (evenly spaced), as TF-Slim."""
  return [int(float(n) / (num_reduction_layers + 1) * num_cells)
          for n in range(1, num_reduction_layers + 1)]


def progress_variable():
  """The net's one training-progress scalar, read by all its DropPath layers.

  A tf.Variable, not a Keras weight: it stays out of model.weights and so out of
  checkpoints and TF-Slim name mapping. Every replica writes the same value.
  """
  return tf.Variable(0.0, trainable=False, name='drop_path_progress',
                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


@keras.saving.register_keras_serializable(package='nets')
class DropPath(keras.layers.Layer):
  """TF-Slim's drop_path: zero a whole example's branch, scale the kept ones.

  keep_prob is already scaled by the cell's position; in training the keep
  probability is 1 - progress * (1 - keep_prob) (TF-Slim's 'v3'), progress being
  `training_progress` (set by net_utils.set_training_progress). Identity at
  inference.
  """

  def __init__(self, keep_prob, progress=None, total_training_steps=None,
               seed=None, **kwargs):
    super().__init__(**kwargs)
    self.keep_prob = float(keep_prob)
    self.total_training_steps = total_training_steps
    self.seed = seed
    self.training_progress = progress if progress is not None else \
        progress_variable()
    self.seed_generator = keras.random.SeedGenerator(seed, name=self.name + '.seed')

  def current_keep_prob(self):
    progress = tf.clip_by_value(tf.cast(self.training_progress, tf.float32), 0.0, 1.0)
    return 1.0 - progress * (1.0 - self.keep_prob)

  def call(self, x, training=False):
    if not training:
      return x
    keep = self.current_keep_prob()
    noise = keras.random.uniform([tf.shape(x)[0], 1, 1, 1], dtype='float32',
                                 seed=self.seed_generator)
    mask = tf.floor(keep + noise) / keep
    return x * tf.cast(mask, x.dtype)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(keep_prob=self.keep_prob, seed=self.seed,
                  total_training_steps=self.total_training_steps)
    return config


def _gradient_mode():
  # The mode conv_layers.gradients() set for layers built now ('auto' | 'tf').
  return conv_layers._mode[0]  # pylint: disable=protected-access


@keras.saving.register_keras_serializable(package='nets')
class SeparableConv2D(keras.layers.SeparableConv2D):
  """keras.layers.SeparableConv2D (Slim's separable_conv2d with num_outputs).

  Its variables 'depthwise_kernel' and 'pointwise_kernel' are Slim's
  'depthwise_weights' and 'pointwise_weights'. Built under
  conv_layers.gradients('auto') its depthwise and pointwise convs take the
  measured gradients, as conv_layers' layers do; the forward result is
  tf.nn.separable_conv2d's (a depthwise conv, then a 1x1 conv).
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.gradient_mode = _gradient_mode()

  def call(self, inputs):
    if (self.gradient_mode != 'auto' or self.data_format != 'channels_last' or
        self.depth_multiplier != 1):
      return super().call(inputs)
    net = conv_grad_auto.conv(inputs, self.depthwise_kernel, self.strides,
                              self.padding, self.dilation_rate, depthwise=True)
    net = conv_grad_auto.conv(net, self.pointwise_kernel, (1, 1), 'valid', (1, 1))
    if self.use_bias:
      net = net + self.bias
    if self.activation is not None:
      net = self.activation(net)
    return net


class Layers(object):
  """The layers of one net with its Slim arg_scope (nasnet_*_arg_scope).

  Convs (plain, separable, fully connected) have no biases but the classifiers,
  variance-scaling (fan-out) initializers and the L2 weight decay on every
  kernel; batch norm has gamma and the net's decay and epsilon.
  """

  def __init__(self, weight_decay, batch_norm_decay, batch_norm_epsilon,
               use_bounded_activation=False):
    self.weight_decay = weight_decay
    self.bn_params = net_utils.batch_norm_params(batch_norm_decay,
                                                 batch_norm_epsilon, scale=True)
    self.bounded = bool(use_bounded_activation)

  @staticmethod
  def initializer():
    # Slim's variance_scaling_initializer(mode='FAN_OUT'): factor 2, truncated.
    return keras.initializers.VarianceScaling(2.0, 'fan_out', 'truncated_normal')

  def conv(self, x, filters, kernel, scope, stride=1, padding='same'):
    return conv_layers.Conv2D(
        filters, kernel, strides=stride, padding=padding, use_bias=False,
        kernel_initializer=self.initializer(),
        kernel_regularizer=net_utils.l2_regularizer(self.weight_decay),
        name=scopes.layer_name(scope))(x)

  def separable(self, x, filters, kernel, scope, stride=1):
    return SeparableConv2D(
        filters, kernel, strides=stride, padding='same', depth_multiplier=1,
        use_bias=False, depthwise_initializer=self.initializer(),
        pointwise_initializer=self.initializer(),
        depthwise_regularizer=net_utils.l2_regularizer(self.weight_decay),
        pointwise_regularizer=net_utils.l2_regularizer(self.weight_decay),
        name=scopes.layer_name(scope))(x)

  def batch_norm(self, x, scope):
    bn = self.bn_params
    return net_utils.BatchNorm(
        momentum=bn['decay'], epsilon=bn['epsilon'], center=bn['center'],
        scale=bn['scale'], name=scopes.layer_name(scope))(x)

  def fully_connected(self, x, units, scope):
    # Float32 also under a mixed policy: logits keep full precision.
    return keras.layers.Dense(
        units, kernel_initializer=self.initializer(),
        kernel_regularizer=net_utils.l2_regularizer(self.weight_decay),
        name=scopes.layer_name(scope), dtype='float32')(x)

  def activation(self, x, name):
    """relu, or relu6 for use_bounded_activation."""
    kind = 'relu6' if self.bounded else 'relu'
    return keras.layers.Activation(kind, name=scopes.layer_name(name))(x)

  def relu6(self, x, name):
    return keras.layers.Activation('relu6', name=scopes.layer_name(name))(x)

  def clip(self, x, name):
    """tf.clip_by_value(x, -6, 6) after an operation (use_bounded_activation)."""
    return Clip(CLIP_BY_VALUE_CAP, name=scopes.layer_name(name))(x)

  def pool(self, x, kind, size, stride, name, padding='same'):
    layer = (keras.layers.AveragePooling2D if kind == 'avg'
             else keras.layers.MaxPooling2D)
    return layer(size, strides=stride, padding=padding,
                 name=scopes.layer_name(name))(x)


@keras.saving.register_keras_serializable(package='nets')
class Clip(keras.layers.Layer):
  """tf.clip_by_value(x, -cap, cap)."""

  def __init__(self, cap, **kwargs):
    super().__init__(**kwargs)
    self.cap = float(cap)

  def call(self, x):
    return tf.clip_by_value(x, -self.cap, self.cap)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update(cap=self.cap)
    return config


def factorized_reduction(layers, net, output_filters, stride, scope):
  """Halves the size without dropping pixels: two 1x1 convs on the two offsets.

  Path 1 reads the even pixels, path 2 (shifted by one, zero past the edge) the
  odd ones; with an odd filter count path 2 gets the extra filter (TF-Slim's
  later form, which PNASNet's 27-filter stem needs). Stride 1: one 1x1 conv.
  """
  if stride == 1:
    net = layers.conv(net, output_filters, 1, scope + '/path_conv')
    return layers.batch_norm(net, scope + '/path_bn')
  path1 = layers.pool(net, 'avg', 1, stride, scope + '/path1_pool', 'valid')
  path1 = layers.conv(path1, output_filters // 2, 1, scope + '/path1_conv')
  path2 = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=scopes.layer_name(
      scope, 'path2_pad'))(net)
  path2 = keras.layers.Cropping2D(((1, 0), (1, 0)), name=scopes.layer_name(
      scope, 'path2_shift'))(path2)
  path2 = layers.pool(path2, 'avg', 1, stride, scope + '/path2_pool', 'valid')
  path2 = layers.conv(path2, output_filters // 2 + output_filters % 2, 1,
                      scope + '/path2_conv')
  net = keras.layers.Concatenate(name=scopes.layer_name(scope, 'path_concat'))(
      [path1, path2])
  return layers.batch_norm(net, scope + '/final_path_bn')


def _operation_info(operation):
  """'separable_5x5_2' -> (5, 2); 'avg_pool_3x3' -> (3, 1)."""
  parts = operation.split('_')
  num_layers = 1 if 'x' in parts[-1] else int(parts[-1])  # '..._3x3' is 1
  size = [p for p in parts if p[:1].isdigit() and 'x' in p][0].split('x')
  if size[0] != size[1]:
    raise ValueError('operation %r: rectangular filters are not supported'
                     % (operation,))
  return int(size[0]), num_layers


class Cell(object):
  """One NASNet-A / PNASNet cell type; call it to add a cell to the graph.

  cell(net, scope, filter_scaling, stride, prev_layer, cell_num) -> output,
  with filter_size = int(num_conv_filters * filter_scaling) filters per state.
  """

  def __init__(self, spec, num_conv_filters, drop_path_keep_prob,
               total_num_cells, total_training_steps, layers, progress=None):
    self.spec = spec
    self.num_conv_filters = num_conv_filters
    self.drop_path_keep_prob = drop_path_keep_prob
    self.total_num_cells = total_num_cells
    self.total_training_steps = total_training_steps
    self.layers = layers
    self.progress = progress

  def __call__(self, net, scope, filter_scaling=1, stride=1, prev_layer=None,
               cell_num=-1):
    filter_size = int(self.num_conv_filters * filter_scaling)
    layers = self.layers
    prev_layer = self._reduce_prev_layer(prev_layer, net, filter_size, scope)
    net = layers.activation(net, scope + '/1x1/act')
    net = layers.conv(net, filter_size, 1, scope + '/1x1')
    net = layers.batch_norm(net, scope + '/beginning_bn')
    states = [net, prev_layer]
    ops, indices = self.spec.operations, self.spec.hiddenstate_indices
    for i in range(5):
      block = '%s/comb_iter_%d' % (scope, i)
      branches = []
      for side, j in (('left', 2 * i), ('right', 2 * i + 1)):
        # Only the cell's two inputs are strided; later states are reduced.
        branches.append(self._operation(
            states[indices[j]], ops[j], stride if indices[j] < 2 else 1,
            filter_size, cell_num, '%s/%s' % (block, side)))
      h = keras.layers.Add(name=scopes.layer_name(block, 'combine'))(branches)
      if layers.bounded:
        h = layers.relu6(h, block + '/combine/relu6')
      states.append(h)
    return self._combine_unused_states(states, scope)

  def _reduce_prev_layer(self, prev_layer, net, filter_size, scope):
    """prev_layer at net's size and filter_size filters (net itself if None)."""
    if prev_layer is None:
      return net
    if int(prev_layer.shape[2]) != int(net.shape[2]):
      prev_layer = self.layers.activation(prev_layer, scope + '/prev_act')
      return factorized_reduction(self.layers, prev_layer, filter_size, 2, scope)
    if int(prev_layer.shape[-1]) != filter_size:
      prev_layer = self.layers.activation(prev_layer, scope + '/prev_act')
      prev_layer = self.layers.conv(prev_layer, filter_size, 1, scope + '/prev_1x1')
      return self.layers.batch_norm(prev_layer, scope + '/prev_bn')
    return prev_layer

  def _operation(self, net, operation, stride, filter_size, cell_num, scope):
    layers = self.layers
    input_filters = int(net.shape[-1])
    if operation.startswith('separable'):
      kernel, num_layers = _operation_info(operation)
      for n in range(1, num_layers + 1):
        name = 'separable_{0}x{0}_{1}'.format(kernel, n)
        net = layers.activation(net, '%s/%s/act' % (scope, name))
        net = layers.separable(net, filter_size, kernel, scope + '/' + name,
                               stride=stride if n == 1 else 1)
        net = layers.batch_norm(net, '{0}/bn_sep_{1}x{1}_{2}'.format(
            scope, kernel, n))
      if layers.bounded:
        net = layers.clip(net, scope + '/clip')
    elif operation == 'none':
      if layers.bounded:
        net = layers.relu6(net, scope + '/relu6')
      if stride > 1 or input_filters != filter_size:
        if not layers.bounded:
          net = layers.activation(net, scope + '/1x1/act')
        net = layers.conv(net, filter_size, 1, scope + '/1x1', stride=stride)
        net = layers.batch_norm(net, scope + '/bn_1')
        if layers.bounded:
          net = layers.clip(net, scope + '/clip')
      return net  # no drop path on 'none'
    elif 'pool' in operation:
      kernel, _ = _operation_info(operation)
      if layers.bounded:
        net = layers.relu6(net, scope + '/relu6')
      net = layers.pool(net, operation.split('_')[0], kernel, stride,
                        scope + '/' + operation)
      if input_filters != filter_size:
        net = layers.conv(net, filter_size, 1, scope + '/1x1')
        net = layers.batch_norm(net, scope + '/bn_1')
      if layers.bounded:
        net = layers.clip(net, scope + '/clip')
    else:
      raise ValueError('unknown cell operation %r' % (operation,))
    return self._drop_path(net, cell_num, scope)

  def _drop_path(self, net, cell_num, scope):
    if self.drop_path_keep_prob >= 1.0:
      return net
    layer_ratio = (cell_num + 1) / float(self.total_num_cells)
    keep_prob = 1.0 - layer_ratio * (1.0 - self.drop_path_keep_prob)
    return DropPath(keep_prob, self.progress, self.total_training_steps,
                    name=scopes.layer_name(scope, 'drop_path'))(net)

  def _combine_unused_states(self, states, scope):
    """Concatenates the states no comb_iter read, reduced to the last one's shape."""
    used = self.spec.used_hiddenstates
    final_width = int(states[-1].shape[2])
    final_filters = int(states[-1].shape[-1])
    for idx, is_used in enumerate(used):
      width, filters = int(states[idx].shape[2]), int(states[idx].shape[-1])
      if not is_used and (width != final_width or filters != final_filters):
        stride = 2 if width != final_width else 1
        states[idx] = factorized_reduction(
            self.layers, states[idx], final_filters, stride,
            '%s/cell_output/reduction_%d' % (scope, idx))
    unused = [h for h, is_used in zip(states, used) if not is_used]
    return keras.layers.Concatenate(name=scopes.layer_name(
        scope, 'cell_output/concat'))(unused)


def imagenet_stem(layers, inputs, hp, stem_cell):
  """conv0 (3x3, stride 2, VALID) + conv0_bn, then cell_stem_0 and cell_stem_1,
  two stride-2 cells with filter_scaling rate**-2 and rate**-1.

  Returns (net, cell_outputs) with cell_outputs [None, conv0, stem 0, stem 1].
  """
  net = layers.conv(inputs, int(32 * hp.stem_multiplier), 3, 'conv0', stride=2,
                    padding='valid')
  net = layers.batch_norm(net, 'conv0_bn')
  cell_outputs = [None, net]
  filter_scaling = 1.0 / hp.filter_scaling_rate ** 2
  for cell_num in range(2):
    net = stem_cell(net, 'cell_stem_%d' % cell_num, filter_scaling=filter_scaling,
                    stride=2, prev_layer=cell_outputs[-2], cell_num=cell_num)
    cell_outputs.append(net)
    filter_scaling *= hp.filter_scaling_rate
  return net, cell_outputs


def cifar_stem(layers, inputs, hp):
  """l1_stem_3x3 (stride 1) + l1_stem_bn; cell_outputs [None, net]."""
  net = layers.conv(inputs, int(hp.num_conv_filters * hp.stem_multiplier), 3,
                    'l1_stem_3x3')
  net = layers.batch_norm(net, 'l1_stem_bn')
  return net, [None, net]


def aux_head(layers, net, end_points, num_classes, scope):
  """TF-Slim's _build_aux_head on activation(net): 'aux_<n>/aux_logits/...'.

  5x5 average pool (stride 3, VALID), 'proj' 1x1 to 128 + aux_bn0, a VALID conv
  'Conv' to 768 whose kernel covers the whole remaining map + aux_bn1, then
  'FC'. Where the map is under 5x5 (TF-Slim fails there) the pool window
  shrinks to the map.
  """
  net = layers.activation(net, scope + '/act')
  inner = scope + '/aux_logits'
  window = (min(5, int(net.shape[1])), min(5, int(net.shape[2])))
  net = layers.pool(net, 'avg', window, 3, inner + '/avg_pool', 'valid')
  net = layers.conv(net, 128, 1, inner + '/proj')
  net = layers.batch_norm(net, inner + '/aux_bn0')
  net = layers.activation(net, inner + '/aux_bn0/act')
  net = layers.conv(net, 768, tuple(int(d) for d in net.shape[1:3]),
                    inner + '/Conv', padding='valid')
  net = layers.batch_norm(net, inner + '/aux_bn1')
  net = layers.activation(net, inner + '/aux_bn1/act')
  net = net_utils.flatten(net, inner + '/flatten')
  end_points['AuxLogits'] = layers.fully_connected(net, num_classes, inner + '/FC')


def final_layer(layers, net, end_points, num_classes, dense_dropout_keep_prob):
  """'final_layer': activation, global mean ('global_pool', also 'PreLogits'),
  dropout, 'FC' -> 'Logits', softmax -> 'Predictions'."""
  net = layers.activation(net, 'final_layer/act')
  net = keras.layers.GlobalAveragePooling2D(name=scopes.layer_name(
      'final_layer', 'global_pool'))(net)
  end_points['global_pool'] = end_points['PreLogits'] = net
  if not num_classes:
    return end_points
  net = net_utils.dropout(net, dense_dropout_keep_prob, 'final_layer/dropout')
  logits = layers.fully_connected(net, num_classes, 'final_layer/FC')
  end_points['Logits'] = logits
  end_points['Predictions'] = net_utils.predictions(logits, 'final_layer/predictions')
  return end_points
