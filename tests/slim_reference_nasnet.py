"""TF-Slim's NASNet-A and PNASNet-5 in TF1 graph mode, with tf_slim's layers.

Not in the tf_slim package: rebuilt here from TF-Slim's nets/nasnet/{nasnet,
nasnet_utils, pnasnet}.py (the hparams, arg scopes, cell tables, stems, aux head
and final layer), without importing our nets. Inference graph (batch norm with
its moving statistics, no dropout, no drop path), but with the aux head that
TF-Slim builds for training only, so a saved checkpoint holds every variable of
a published one (and its aux logits can be compared too).

build(images, num_classes, name, aux=True, fc_scope='FC', **hparams) ->
(logits, aux_logits or None); REFERENCES (merged into slim_reference.REFERENCES)
returns the logits only.
"""

import tensorflow as tf

# TF-Slim's *_config() hparams and *_arg_scope() settings per net.
CONFIGS = {
    'nasnet_cifar': dict(
        stem='cifar', cell='nasnet', stem_multiplier=3.0, drop_path_keep_prob=0.6,
        num_cells=18, use_aux_head=1, num_conv_filters=32,
        dense_dropout_keep_prob=1.0, filter_scaling_rate=2.0,
        num_reduction_layers=2, skip_reduction_layer_input=0,
        use_bounded_activation=False, weight_decay=5e-4,
        batch_norm_decay=0.9, batch_norm_epsilon=1e-5),
    'nasnet_mobile': dict(
        stem='imagenet', cell='nasnet', stem_multiplier=1.0,
        dense_dropout_keep_prob=0.5, num_cells=12, filter_scaling_rate=2.0,
        drop_path_keep_prob=1.0, num_conv_filters=44, use_aux_head=1,
        num_reduction_layers=2, skip_reduction_layer_input=0,
        use_bounded_activation=False, weight_decay=4e-5,
        batch_norm_decay=0.9997, batch_norm_epsilon=1e-3),
    'nasnet_large': dict(
        stem='imagenet', cell='nasnet', stem_multiplier=3.0,
        dense_dropout_keep_prob=0.5, num_cells=18, filter_scaling_rate=2.0,
        num_conv_filters=168, drop_path_keep_prob=0.7, use_aux_head=1,
        num_reduction_layers=2, skip_reduction_layer_input=1,
        use_bounded_activation=False, weight_decay=5e-5,
        batch_norm_decay=0.9997, batch_norm_epsilon=1e-3),
    'pnasnet_mobile': dict(
        stem='imagenet', cell='pnasnet', stem_multiplier=1.0,
        dense_dropout_keep_prob=0.5, num_cells=9, filter_scaling_rate=2.0,
        num_conv_filters=54, drop_path_keep_prob=1.0, use_aux_head=1,
        num_reduction_layers=2, skip_reduction_layer_input=1,
        use_bounded_activation=False, weight_decay=4e-5,
        batch_norm_decay=0.9997, batch_norm_epsilon=1e-3),
    'pnasnet_large': dict(
        stem='imagenet', cell='pnasnet', stem_multiplier=3.0,
        dense_dropout_keep_prob=0.5, num_cells=12, filter_scaling_rate=2.0,
        num_conv_filters=216, drop_path_keep_prob=0.6, use_aux_head=1,
        num_reduction_layers=2, skip_reduction_layer_input=1,
        use_bounded_activation=False, weight_decay=4e-5,
        batch_norm_decay=0.9997, batch_norm_epsilon=1e-3),
}

# (operations, used hidden states, hidden state indices) of TF-Slim's cells.
NORMAL_A = (['separable_5x5_2', 'separable_3x3_2', 'separable_5x5_2',
             'separable_3x3_2', 'avg_pool_3x3', 'none', 'avg_pool_3x3',
             'avg_pool_3x3', 'separable_3x3_2', 'none'],
            [1, 0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 1, 1, 1, 0, 0])
REDUCTION_A = (['separable_5x5_2', 'separable_7x7_2', 'max_pool_3x3',
                'separable_7x7_2', 'avg_pool_3x3', 'separable_5x5_2', 'none',
                'avg_pool_3x3', 'separable_3x3_2', 'max_pool_3x3'],
               [1, 1, 1, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1, 3, 2, 2, 0])
PNASNET_5 = (['separable_5x5_2', 'max_pool_3x3', 'separable_7x7_2',
              'max_pool_3x3', 'separable_5x5_2', 'separable_3x3_2',
              'separable_3x3_2', 'max_pool_3x3', 'separable_3x3_2', 'none'],
             [1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 4, 0, 1, 0])


def _slim():
  import slim_reference  # pylint: disable=g-import-not-at-top  (imports us)
  return slim_reference.import_tf_slim()


class _Net(object):
  """The graph-building functions of one net, closed over its hparams."""

  def __init__(self, hp):
    self.slim = _slim()
    self.hp = hp
    self.act = tf.nn.relu6 if hp['use_bounded_activation'] else tf.nn.relu

  def factorized_reduction(self, net, filters, stride):
    slim = self.slim
    if stride == 1:
      net = slim.conv2d(net, filters, 1, scope='path_conv')
      return slim.batch_norm(net, scope='path_bn')
    strides = [1, stride, stride, 1]
    path1 = tf.nn.avg_pool2d(net, [1, 1, 1, 1], strides, 'VALID')
    path1 = slim.conv2d(path1, int(filters / 2), 1, scope='path1_conv')
    path2 = tf.pad(net, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]
    path2 = tf.nn.avg_pool2d(path2, [1, 1, 1, 1], strides, 'VALID')
    path2 = slim.conv2d(path2, int(filters / 2) + int(filters % 2), 1,
                        scope='path2_conv')
    return slim.batch_norm(tf.concat([path1, path2], 3), scope='final_path_bn')

  def operation(self, net, op, stride, filters):
    slim, bounded = self.slim, self.hp['use_bounded_activation']
    in_filters = int(net.shape[3])
    if op.startswith('separable'):
      kernel = int(op.split('_')[1].split('x')[0])
      layers = int(op.split('_')[2])
      for n in range(1, layers + 1):
        net = self.act(net)
        net = slim.separable_conv2d(
            net, filters, kernel, depth_multiplier=1, stride=stride,
            scope='separable_%dx%d_%d' % (kernel, kernel, n))
        net = slim.batch_norm(net, scope='bn_sep_%dx%d_%d' % (kernel, kernel, n))
        stride = 1
      if bounded:
        net = tf.clip_by_value(net, -6, 6)
    elif op == 'none':
      if bounded:
        net = tf.nn.relu6(net)
      if stride > 1 or in_filters != filters:
        if not bounded:
          net = tf.nn.relu(net)
        net = slim.conv2d(net, filters, 1, stride=stride, scope='1x1')
        net = slim.batch_norm(net, scope='bn_1')
        if bounded:
          net = tf.clip_by_value(net, -6, 6)
    else:
      if bounded:
        net = tf.nn.relu6(net)
      pool = slim.avg_pool2d if op.startswith('avg') else slim.max_pool2d
      net = pool(net, 3, stride=stride, padding='SAME')
      if in_filters != filters:
        net = slim.conv2d(net, filters, 1, scope='1x1')
        net = slim.batch_norm(net, scope='bn_1')
      if bounded:
        net = tf.clip_by_value(net, -6, 6)
    return net  # drop path: none at inference

  def cell(self, table, net, scope, filter_scaling, stride, prev_layer):
    slim = self.slim
    operations, used, indices = table
    filters = int(self.hp['num_conv_filters'] * filter_scaling)
    with tf.compat.v1.variable_scope(scope):
      if prev_layer is None:
        prev_layer = net
      elif int(prev_layer.shape[2]) != int(net.shape[2]):
        prev_layer = self.factorized_reduction(self.act(prev_layer), filters, 2)
      elif int(prev_layer.shape[3]) != filters:
        prev_layer = slim.conv2d(self.act(prev_layer), filters, 1, scope='prev_1x1')
        prev_layer = slim.batch_norm(prev_layer, scope='prev_bn')
      net = slim.conv2d(self.act(net), filters, 1, scope='1x1')
      net = slim.batch_norm(net, scope='beginning_bn')
      states = [net, prev_layer]
      for i in range(5):
        with tf.compat.v1.variable_scope('comb_iter_%d' % i):
          outs = []
          for side, j in (('left', 2 * i), ('right', 2 * i + 1)):
            with tf.compat.v1.variable_scope(side):
              outs.append(self.operation(
                  states[indices[j]], operations[j],
                  stride if indices[j] < 2 else 1, filters))
          h = outs[0] + outs[1]
          if self.hp['use_bounded_activation']:
            h = tf.nn.relu6(h)
          states.append(h)
      with tf.compat.v1.variable_scope('cell_output'):
        width, depth = int(states[-1].shape[2]), int(states[-1].shape[3])
        for idx, is_used in enumerate(used):
          if is_used:
            continue
          if int(states[idx].shape[2]) != width or int(states[idx].shape[3]) != depth:
            with tf.compat.v1.variable_scope('reduction_%d' % idx):
              states[idx] = self.factorized_reduction(
                  states[idx], depth,
                  2 if int(states[idx].shape[2]) != width else 1)
        return tf.concat([h for h, u in zip(states, used) if not u], 3)

  def aux_head(self, net, num_classes, scope, fc_scope):
    slim = self.slim
    with tf.compat.v1.variable_scope(scope):
      with tf.compat.v1.variable_scope('aux_logits'):
        net = slim.avg_pool2d(net, [5, 5], stride=3, padding='VALID')
        net = slim.conv2d(net, 128, [1, 1], scope='proj')
        net = self.act(slim.batch_norm(net, scope='aux_bn0'))
        net = slim.conv2d(net, 768, net.shape[1:3], padding='VALID')
        net = self.act(slim.batch_norm(net, scope='aux_bn1'))
        return slim.fully_connected(slim.flatten(net), num_classes, scope=fc_scope)


def build(images, num_classes, name, aux=True, fc_scope='FC', **changes):
  """TF-Slim's net `name` (hparams changed by `changes`) -> (logits, aux logits)."""
  slim = _slim()
  hp = dict(CONFIGS[name], **changes)
  net_fns = _Net(hp)
  bn = {'decay': hp['batch_norm_decay'], 'epsilon': hp['batch_norm_epsilon'],
        'scale': True, 'fused': True, 'is_training': False}
  init = slim.variance_scaling_initializer(mode='FAN_OUT')
  reg = slim.l2_regularizer(hp['weight_decay'])
  with slim.arg_scope([slim.fully_connected, slim.conv2d, slim.separable_conv2d],
                      weights_regularizer=reg, weights_initializer=init), \
      slim.arg_scope([slim.fully_connected], activation_fn=None), \
      slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=None,
                     biases_initializer=None), \
      slim.arg_scope([slim.batch_norm], **bn):
    return _build(net_fns, images, num_classes, hp, aux, fc_scope)


def _build(net_fns, images, num_classes, hp, aux, fc_scope):
  slim = net_fns.slim
  rate = hp['filter_scaling_rate']
  pnas = hp['cell'] == 'pnasnet'
  normal = PNASNET_5 if pnas else NORMAL_A
  reduction = PNASNET_5 if pnas else REDUCTION_A
  if hp['stem'] == 'imagenet':
    net = slim.conv2d(images, int(32 * hp['stem_multiplier']), [3, 3], stride=2,
                      padding='VALID', scope='conv0')
    net = slim.batch_norm(net, scope='conv0_bn')
    outputs = [None, net]
    scaling = 1.0 / rate ** 2
    for n in range(2):
      net = net_fns.cell(reduction, net, 'cell_stem_%d' % n, scaling, 2, outputs[-2])
      outputs.append(net)
      scaling *= rate
  else:
    net = slim.conv2d(images, int(hp['num_conv_filters'] * hp['stem_multiplier']),
                      3, scope='l1_stem_3x3')
    net = slim.batch_norm(net, scope='l1_stem_bn')
    outputs = [None, net]

  count = hp['num_reduction_layers']
  reductions = [int(float(k) / (count + 1) * hp['num_cells'])
                for k in range(1, count + 1)]
  aux_cells = [reductions[1] - 1] if len(reductions) >= 2 else []
  scaling, prev, aux_logits = 1.0, None, None
  skip = hp['skip_reduction_layer_input']
  for n in range(hp['num_cells']):
    is_reduction = n in reductions
    if pnas:
      if is_reduction:
        scaling *= rate
      if skip or not is_reduction:
        prev = outputs[-2]
      net = net_fns.cell(normal, net, 'cell_%d' % n, scaling,
                         2 if is_reduction else 1, prev)
    else:
      if skip:
        prev = outputs[-2]
      if is_reduction:
        scaling *= rate
        net = net_fns.cell(reduction, net,
                           'reduction_cell_%d' % reductions.index(n), scaling, 2,
                           outputs[-2])
        outputs.append(net)
      if not skip:
        prev = outputs[-2]
      net = net_fns.cell(normal, net, 'cell_%d' % n, scaling, 1, prev)
    if aux and hp['use_aux_head'] and n in aux_cells and num_classes:
      aux_logits = net_fns.aux_head(net_fns.act(net), num_classes, 'aux_%d' % n,
                                    fc_scope)
    outputs.append(net)

  with tf.compat.v1.variable_scope('final_layer'):
    net = tf.reduce_mean(net_fns.act(net), [1, 2])
    net = slim.dropout(net, hp['dense_dropout_keep_prob'], is_training=False,
                       scope='dropout')
    logits = slim.fully_connected(net, num_classes, scope=fc_scope)
  return logits, aux_logits


def _logits(name):
  def reference(images, num_classes):
    return build(images, num_classes, name)[0]
  return reference


REFERENCES = {name: _logits(name) for name in CONFIGS}
