"""TF-Slim's Inception V4 and Inception-ResNet-v2 in TF1 graph mode, for parity.

Neither net is in the tf_slim package, so both are written here with tf_slim's
layers (conv2d, max_pool2d, avg_pool2d, repeat, fully_connected, arg_scope)
from TF-Slim's research/slim/nets/inception_v4.py, inception_resnet_v2.py and
inception_utils.py, independently of nets/ (nothing from there is imported).

Each reference returns the logits; the auxiliary logits go to the graph
collection AUX_COLLECTION so tests can compare them too.
"""

import tensorflow as tf

AUX_COLLECTION = 'aux_logits'


def _slim():
  import slim_reference  # pylint: disable=g-import-not-at-top
  return slim_reference.import_tf_slim()


def _scope(slim, activation_fn=tf.nn.relu):
  """The inference arg scope of both nets: batch norm without gamma, ReLU."""
  bn = {'decay': 0.9997, 'epsilon': 0.001, 'scale': False, 'is_training': False}
  return slim.arg_scope([slim.conv2d], activation_fn=activation_fn,
                        normalizer_fn=slim.batch_norm, normalizer_params=bn)


def _vs(name):
  return tf.compat.v1.variable_scope(name)


# ==============================================================================
# Inception V4.
# ==============================================================================


def _v4_inception_a(slim, net, scope):
  with _vs(scope):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 96, [1, 1], scope='Conv2d_0a_1x1')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 64, [1, 1], scope='Conv2d_0a_1x1')
      b1 = slim.conv2d(b1, 96, [3, 3], scope='Conv2d_0b_3x3')
    with _vs('Branch_2'):
      b2 = slim.conv2d(net, 64, [1, 1], scope='Conv2d_0a_1x1')
      b2 = slim.conv2d(b2, 96, [3, 3], scope='Conv2d_0b_3x3')
      b2 = slim.conv2d(b2, 96, [3, 3], scope='Conv2d_0c_3x3')
    with _vs('Branch_3'):
      b3 = slim.avg_pool2d(net, [3, 3], scope='AvgPool_0a_3x3')
      b3 = slim.conv2d(b3, 96, [1, 1], scope='Conv2d_0b_1x1')
    return tf.concat([b0, b1, b2, b3], 3)


def _v4_reduction_a(slim, net, scope):
  with _vs(scope):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 384, [3, 3], stride=2, padding='VALID',
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 192, [1, 1], scope='Conv2d_0a_1x1')
      b1 = slim.conv2d(b1, 224, [3, 3], scope='Conv2d_0b_3x3')
      b1 = slim.conv2d(b1, 256, [3, 3], stride=2, padding='VALID',
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_2'):
      b2 = slim.max_pool2d(net, [3, 3], stride=2, padding='VALID',
                           scope='MaxPool_1a_3x3')
    return tf.concat([b0, b1, b2], 3)


def _v4_inception_b(slim, net, scope):
  with _vs(scope):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 384, [1, 1], scope='Conv2d_0a_1x1')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 192, [1, 1], scope='Conv2d_0a_1x1')
      b1 = slim.conv2d(b1, 224, [1, 7], scope='Conv2d_0b_1x7')
      b1 = slim.conv2d(b1, 256, [7, 1], scope='Conv2d_0c_7x1')
    with _vs('Branch_2'):
      b2 = slim.conv2d(net, 192, [1, 1], scope='Conv2d_0a_1x1')
      b2 = slim.conv2d(b2, 192, [7, 1], scope='Conv2d_0b_7x1')
      b2 = slim.conv2d(b2, 224, [1, 7], scope='Conv2d_0c_1x7')
      b2 = slim.conv2d(b2, 224, [7, 1], scope='Conv2d_0d_7x1')
      b2 = slim.conv2d(b2, 256, [1, 7], scope='Conv2d_0e_1x7')
    with _vs('Branch_3'):
      b3 = slim.avg_pool2d(net, [3, 3], scope='AvgPool_0a_3x3')
      b3 = slim.conv2d(b3, 128, [1, 1], scope='Conv2d_0b_1x1')
    return tf.concat([b0, b1, b2, b3], 3)


def _v4_reduction_b(slim, net, scope):
  with _vs(scope):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 192, [1, 1], scope='Conv2d_0a_1x1')
      b0 = slim.conv2d(b0, 192, [3, 3], stride=2, padding='VALID',
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 256, [1, 1], scope='Conv2d_0a_1x1')
      b1 = slim.conv2d(b1, 256, [1, 7], scope='Conv2d_0b_1x7')
      b1 = slim.conv2d(b1, 320, [7, 1], scope='Conv2d_0c_7x1')
      b1 = slim.conv2d(b1, 320, [3, 3], stride=2, padding='VALID',
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_2'):
      b2 = slim.max_pool2d(net, [3, 3], stride=2, padding='VALID',
                           scope='MaxPool_1a_3x3')
    return tf.concat([b0, b1, b2], 3)


def _v4_inception_c(slim, net, scope):
  with _vs(scope):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 256, [1, 1], scope='Conv2d_0a_1x1')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 384, [1, 1], scope='Conv2d_0a_1x1')
      b1 = tf.concat([slim.conv2d(b1, 256, [1, 3], scope='Conv2d_0b_1x3'),
                      slim.conv2d(b1, 256, [3, 1], scope='Conv2d_0c_3x1')], 3)
    with _vs('Branch_2'):
      b2 = slim.conv2d(net, 384, [1, 1], scope='Conv2d_0a_1x1')
      b2 = slim.conv2d(b2, 448, [3, 1], scope='Conv2d_0b_3x1')
      b2 = slim.conv2d(b2, 512, [1, 3], scope='Conv2d_0c_1x3')
      b2 = tf.concat([slim.conv2d(b2, 256, [1, 3], scope='Conv2d_0d_1x3'),
                      slim.conv2d(b2, 256, [3, 1], scope='Conv2d_0e_3x1')], 3)
    with _vs('Branch_3'):
      b3 = slim.avg_pool2d(net, [3, 3], scope='AvgPool_0a_3x3')
      b3 = slim.conv2d(b3, 256, [1, 1], scope='Conv2d_0b_1x1')
    return tf.concat([b0, b1, b2, b3], 3)


def _v4_base(slim, images):
  """Up to Mixed_7d; returns (net, Mixed_6h)."""
  net = slim.conv2d(images, 32, [3, 3], stride=2, padding='VALID',
                    scope='Conv2d_1a_3x3')
  net = slim.conv2d(net, 32, [3, 3], padding='VALID', scope='Conv2d_2a_3x3')
  net = slim.conv2d(net, 64, [3, 3], scope='Conv2d_2b_3x3')
  with _vs('Mixed_3a'):
    with _vs('Branch_0'):
      b0 = slim.max_pool2d(net, [3, 3], stride=2, padding='VALID',
                           scope='MaxPool_0a_3x3')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 96, [3, 3], stride=2, padding='VALID',
                       scope='Conv2d_0a_3x3')
    net = tf.concat([b0, b1], 3)
  with _vs('Mixed_4a'):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 64, [1, 1], scope='Conv2d_0a_1x1')
      b0 = slim.conv2d(b0, 96, [3, 3], padding='VALID', scope='Conv2d_1a_3x3')
    with _vs('Branch_1'):
      b1 = slim.conv2d(net, 64, [1, 1], scope='Conv2d_0a_1x1')
      b1 = slim.conv2d(b1, 64, [1, 7], scope='Conv2d_0b_1x7')
      b1 = slim.conv2d(b1, 64, [7, 1], scope='Conv2d_0c_7x1')
      b1 = slim.conv2d(b1, 96, [3, 3], padding='VALID', scope='Conv2d_1a_3x3')
    net = tf.concat([b0, b1], 3)
  with _vs('Mixed_5a'):
    with _vs('Branch_0'):
      b0 = slim.conv2d(net, 192, [3, 3], stride=2, padding='VALID',
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_1'):
      b1 = slim.max_pool2d(net, [3, 3], stride=2, padding='VALID',
                           scope='MaxPool_1a_3x3')
    net = tf.concat([b0, b1], 3)
  for letter in 'bcde':
    net = _v4_inception_a(slim, net, 'Mixed_5' + letter)
  net = _v4_reduction_a(slim, net, 'Mixed_6a')
  for letter in 'bcdefgh':
    net = _v4_inception_b(slim, net, 'Mixed_6' + letter)
  mixed_6h = net
  net = _v4_reduction_b(slim, net, 'Mixed_7a')
  for letter in 'bcd':
    net = _v4_inception_c(slim, net, 'Mixed_7' + letter)
  return net, mixed_6h


def inception_v4(images, num_classes, create_aux_logits=True):
  slim = _slim()
  with _vs('InceptionV4'), _scope(slim), slim.arg_scope(
      [slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
      padding='SAME'):
    net, mixed_6h = _v4_base(slim, images)
    if create_aux_logits:
      with _vs('AuxLogits'):
        aux = slim.avg_pool2d(mixed_6h, [5, 5], stride=3, padding='VALID',
                              scope='AvgPool_1a_5x5')
        aux = slim.conv2d(aux, 128, [1, 1], scope='Conv2d_1b_1x1')
        aux = slim.conv2d(aux, 768, aux.shape[1:3], padding='VALID',
                          scope='Conv2d_2a')
        aux = slim.flatten(aux)
        aux = slim.fully_connected(aux, num_classes, activation_fn=None,
                                   scope='Aux_logits')
        tf.compat.v1.add_to_collection(AUX_COLLECTION, aux)
    with _vs('Logits'):
      net = slim.avg_pool2d(net, net.shape[1:3], padding='VALID',
                            scope='AvgPool_1a')
      net = slim.dropout(net, 0.8, is_training=False, scope='Dropout_1b')
      net = slim.flatten(net, scope='PreLogitsFlatten')
      return slim.fully_connected(net, num_classes, activation_fn=None,
                                  scope='Logits')


# ==============================================================================
# Inception-ResNet-v2.
# ==============================================================================


def _residual(slim, net, towers, scale, activation_fn, scope):
  """TF-Slim's block35/17/8: towers(net) -> 1x1 up-projection -> scaled sum."""
  with tf.compat.v1.variable_scope(scope):
    mixed = tf.concat(towers(net), 3)
    up = slim.conv2d(mixed, net.shape[3], 1, normalizer_fn=None,
                     activation_fn=None, scope='Conv2d_1x1')
    scaled_up = up * scale
    if activation_fn == tf.nn.relu6:
      scaled_up = tf.clip_by_value(scaled_up, -6.0, 6.0)
    net += scaled_up
    if activation_fn:
      net = activation_fn(net)
  return net


def _towers_35(slim, net):
  with _vs('Branch_0'):
    t0 = slim.conv2d(net, 32, 1, scope='Conv2d_1x1')
  with _vs('Branch_1'):
    t1 = slim.conv2d(net, 32, 1, scope='Conv2d_0a_1x1')
    t1 = slim.conv2d(t1, 32, 3, scope='Conv2d_0b_3x3')
  with _vs('Branch_2'):
    t2 = slim.conv2d(net, 32, 1, scope='Conv2d_0a_1x1')
    t2 = slim.conv2d(t2, 48, 3, scope='Conv2d_0b_3x3')
    t2 = slim.conv2d(t2, 64, 3, scope='Conv2d_0c_3x3')
  return [t0, t1, t2]


def _towers_17(slim, net):
  with _vs('Branch_0'):
    t0 = slim.conv2d(net, 192, 1, scope='Conv2d_1x1')
  with _vs('Branch_1'):
    t1 = slim.conv2d(net, 128, 1, scope='Conv2d_0a_1x1')
    t1 = slim.conv2d(t1, 160, [1, 7], scope='Conv2d_0b_1x7')
    t1 = slim.conv2d(t1, 192, [7, 1], scope='Conv2d_0c_7x1')
  return [t0, t1]


def _towers_8(slim, net):
  with _vs('Branch_0'):
    t0 = slim.conv2d(net, 192, 1, scope='Conv2d_1x1')
  with _vs('Branch_1'):
    t1 = slim.conv2d(net, 192, 1, scope='Conv2d_0a_1x1')
    t1 = slim.conv2d(t1, 224, [1, 3], scope='Conv2d_0b_1x3')
    t1 = slim.conv2d(t1, 256, [3, 1], scope='Conv2d_0c_3x1')
  return [t0, t1]


def _block(towers):
  """A unit in slim.repeat's form: fn(net, scale, activation_fn, scope)."""
  def block(net, scale=1.0, activation_fn=tf.nn.relu, scope=None):
    slim = _slim()
    return _residual(slim, net, lambda x: towers(slim, x), scale, activation_fn,
                     scope)
  return block


def _irv2_base(slim, images, activation_fn, padding):
  """Up to Conv2d_7b_1x1; returns (net, PreAuxLogits)."""
  net = slim.conv2d(images, 32, 3, stride=2, padding=padding,
                    scope='Conv2d_1a_3x3')
  net = slim.conv2d(net, 32, 3, padding=padding, scope='Conv2d_2a_3x3')
  net = slim.conv2d(net, 64, 3, scope='Conv2d_2b_3x3')
  net = slim.max_pool2d(net, 3, stride=2, padding=padding,
                        scope='MaxPool_3a_3x3')
  net = slim.conv2d(net, 80, 1, padding=padding, scope='Conv2d_3b_1x1')
  net = slim.conv2d(net, 192, 3, padding=padding, scope='Conv2d_4a_3x3')
  net = slim.max_pool2d(net, 3, stride=2, padding=padding,
                        scope='MaxPool_5a_3x3')
  with _vs('Mixed_5b'):
    with _vs('Branch_0'):
      t0 = slim.conv2d(net, 96, 1, scope='Conv2d_1x1')
    with _vs('Branch_1'):
      t1 = slim.conv2d(net, 48, 1, scope='Conv2d_0a_1x1')
      t1 = slim.conv2d(t1, 64, 5, scope='Conv2d_0b_5x5')
    with _vs('Branch_2'):
      t2 = slim.conv2d(net, 64, 1, scope='Conv2d_0a_1x1')
      t2 = slim.conv2d(t2, 96, 3, scope='Conv2d_0b_3x3')
      t2 = slim.conv2d(t2, 96, 3, scope='Conv2d_0c_3x3')
    with _vs('Branch_3'):
      t3 = slim.avg_pool2d(net, 3, stride=1, padding='SAME',
                           scope='AvgPool_0a_3x3')
      t3 = slim.conv2d(t3, 64, 1, scope='Conv2d_0b_1x1')
    net = tf.concat([t0, t1, t2, t3], 3)
  # slim.repeat scopes each call '<fn __name__>_<i>' under 'Repeat', 'Repeat_1'...
  block35, block17, block8 = (_block(_towers_35), _block(_towers_17),
                              _block(_towers_8))
  block35.__name__, block17.__name__, block8.__name__ = (
      'block35', 'block17', 'block8')
  net = slim.repeat(net, 10, block35, scale=0.17, activation_fn=activation_fn)
  with _vs('Mixed_6a'):
    with _vs('Branch_0'):
      t0 = slim.conv2d(net, 384, 3, stride=2, padding=padding,
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_1'):
      t1 = slim.conv2d(net, 256, 1, scope='Conv2d_0a_1x1')
      t1 = slim.conv2d(t1, 256, 3, scope='Conv2d_0b_3x3')
      t1 = slim.conv2d(t1, 384, 3, stride=2, padding=padding,
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_2'):
      t2 = slim.max_pool2d(net, 3, stride=2, padding=padding,
                           scope='MaxPool_1a_3x3')
    net = tf.concat([t0, t1, t2], 3)
  net = slim.repeat(net, 20, block17, scale=0.10, activation_fn=activation_fn)
  pre_aux = net
  with _vs('Mixed_7a'):
    with _vs('Branch_0'):
      t0 = slim.conv2d(net, 256, 1, scope='Conv2d_0a_1x1')
      t0 = slim.conv2d(t0, 384, 3, stride=2, padding=padding,
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_1'):
      t1 = slim.conv2d(net, 256, 1, scope='Conv2d_0a_1x1')
      t1 = slim.conv2d(t1, 288, 3, stride=2, padding=padding,
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_2'):
      t2 = slim.conv2d(net, 256, 1, scope='Conv2d_0a_1x1')
      t2 = slim.conv2d(t2, 288, 3, scope='Conv2d_0b_3x3')
      t2 = slim.conv2d(t2, 320, 3, stride=2, padding=padding,
                       scope='Conv2d_1a_3x3')
    with _vs('Branch_3'):
      t3 = slim.max_pool2d(net, 3, stride=2, padding=padding,
                           scope='MaxPool_1a_3x3')
    net = tf.concat([t0, t1, t2, t3], 3)
  net = slim.repeat(net, 9, block8, scale=0.20, activation_fn=activation_fn)
  net = block8(net, activation_fn=None, scope='Block8')
  net = slim.conv2d(net, 1536, 1, scope='Conv2d_7b_1x1')
  return net, pre_aux


def inception_resnet_v2(images, num_classes, create_aux_logits=True,
                        activation_fn=tf.nn.relu, align_feature_maps=False):
  slim = _slim()
  padding = 'SAME' if align_feature_maps else 'VALID'
  with _vs('InceptionResnetV2'), _scope(slim, activation_fn), slim.arg_scope(
      [slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
      padding='SAME'):
    net, pre_aux = _irv2_base(slim, images, activation_fn, padding)
    if create_aux_logits:
      with _vs('AuxLogits'):
        aux = slim.avg_pool2d(pre_aux, 5, stride=3, padding='VALID',
                              scope='Conv2d_1a_3x3')
        aux = slim.conv2d(aux, 128, 1, scope='Conv2d_1b_1x1')
        aux = slim.conv2d(aux, 768, aux.shape[1:3], padding='VALID',
                          scope='Conv2d_2a_5x5')
        aux = slim.flatten(aux)
        aux = slim.fully_connected(aux, num_classes, activation_fn=None,
                                   scope='Logits')
        tf.compat.v1.add_to_collection(AUX_COLLECTION, aux)
    with _vs('Logits'):
      net = slim.avg_pool2d(net, net.shape[1:3], padding='VALID',
                            scope='AvgPool_1a_8x8')
      net = slim.flatten(net)
      net = slim.dropout(net, 0.8, is_training=False, scope='Dropout')
      return slim.fully_connected(net, num_classes, activation_fn=None,
                                  scope='Logits')


def _irv2_variant(**options):
  def build(images, num_classes):
    return inception_resnet_v2(images, num_classes, **options)
  return build


REFERENCES = {
    'inception_v4': inception_v4,
    'inception_resnet_v2': inception_resnet_v2,
}

# Options the tests check beside the defaults (not net names: not in REFERENCES).
VARIANTS = {
    'inception_resnet_v2_relu6_aligned': _irv2_variant(
        activation_fn=tf.nn.relu6, align_feature_maps=True),
}
