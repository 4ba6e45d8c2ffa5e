"""TF-Slim's MobileNet V2 and V3 in TF1 graph mode, for parity checks of nets/.

TF-Slim's research/slim/nets/mobilenet is not in the tf_slim package: this module
writes its conv_defs (V2_DEF, V3_LARGE, V3_SMALL and the minimalistic ones) with
tf_slim's layers, its expanded_conv and squeeze_excite blocks, its depth
multiplier and its training_scope(is_training=False), independently of nets/.
Scopes are left to TF1's default naming ('Conv', 'Conv_1', 'expanded_conv_3',
'squeeze_excite/Conv_1'), as in TF-Slim's own code.

slim_reference.REFERENCES picks up REFERENCES from here; graph_counts() gives
TF-Slim's trainable weights and multiply-adds of a net from its graph alone.
"""

import math

import numpy as np
import tensorflow as tf


def _slim():
  import slim_reference  # here, not at the top: slim_reference imports this module
  return slim_reference.import_tf_slim()


def _make_divisible(v, divisor, min_value=None):
  # mobilenet.py / conv_blocks.py: round to the divisor, at most 10 % down.
  if min_value is None:
    min_value = divisor
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  if new_v < 0.9 * v:
    new_v += divisor
  return new_v


def _hard_swish(x):
  return x * tf.nn.relu6(x + np.float32(3)) * np.float32(1. / 6.)


def _hard_sigmoid(x):
  return tf.nn.relu6(x + 3) * 0.16667


# Ops as TF-Slim's conv_defs list them. conv: (num_outputs, kernel, stride,
# activation, batch norm); block: mbv3_op(ef, n, k, s, act, se) with
# expand_input_by_factor's divisor; pool: reduce_to_1x1.
def _conv(n, k=1, s=1, act=tf.nn.relu6, bn=True):
  return ('conv', dict(n=n, k=k, s=s, act=act, bn=bn))


def _op(ef, n, k=3, s=1, act=tf.nn.relu, se=False, divisor=8):
  return ('block', dict(ef=ef, n=n, k=k, s=s, act=act, se=se, divisor=divisor))


_POOL = ('pool', {})
R6 = tf.nn.relu6
HS = _hard_swish

V2_DEF = ([_conv(32, 3, 2), _op(1, 16, act=R6, divisor=1)] +
          [_op(6, n, s=s, act=R6) for n, s in [
              (24, 2), (24, 1), (32, 2), (32, 1), (32, 1), (64, 2), (64, 1),
              (64, 1), (64, 1), (96, 1), (96, 1), (96, 1), (160, 2), (160, 1),
              (160, 1), (320, 1)]] +
          [_conv(1280)])

V3_LARGE = [
    _conv(16, 3, 2, HS), _op(1, 16), _op(4, 24, s=2), _op(3, 24),
    _op(3, 40, 5, 2, se=True), _op(3, 40, 5, se=True), _op(3, 40, 5, se=True),
    _op(6, 80, 3, 2, HS), _op(2.5, 80, act=HS), _op(184 / 80., 80, act=HS),
    _op(184 / 80., 80, act=HS), _op(6, 112, act=HS, se=True),
    _op(6, 112, act=HS, se=True), _op(6, 160, 5, 2, HS, se=True),
    _op(6, 160, 5, 1, HS, se=True), _op(6, 160, 5, 1, HS, se=True),
    _conv(960, act=HS), _POOL, _conv(1280, act=HS, bn=False)]

V3_LARGE_MINIMALISTIC = [
    _conv(16, 3, 2, tf.nn.relu), _op(1, 16), _op(4, 24, s=2), _op(3, 24),
    _op(3, 40, s=2), _op(3, 40), _op(3, 40), _op(6, 80, s=2), _op(2.5, 80),
    _op(184 / 80., 80), _op(184 / 80., 80), _op(6, 112), _op(6, 112),
    _op(6, 160, s=2), _op(6, 160), _op(6, 160),
    _conv(960, act=tf.nn.relu), _POOL, _conv(1280, act=tf.nn.relu, bn=False)]

V3_SMALL = [
    _conv(16, 3, 2, HS), _op(1, 16, s=2, se=True), _op(72. / 16, 24, s=2),
    _op(88. / 24, 24), _op(4, 40, 5, 2, HS, se=True),
    _op(6, 40, 5, 1, HS, se=True), _op(6, 40, 5, 1, HS, se=True),
    _op(3, 48, 5, 1, HS, se=True), _op(3, 48, 5, 1, HS, se=True),
    _op(6, 96, 5, 2, HS, se=True), _op(6, 96, 5, 1, HS, se=True),
    _op(6, 96, 5, 1, HS, se=True),
    _conv(576, act=HS), _POOL, _conv(1024, act=HS, bn=False)]

V3_SMALL_MINIMALISTIC = [
    _conv(16, 3, 2, tf.nn.relu), _op(1, 16, s=2), _op(72. / 16, 24, s=2),
    _op(88. / 24, 24), _op(4, 40, s=2), _op(6, 40), _op(6, 40), _op(3, 48),
    _op(3, 48), _op(6, 96, s=2), _op(6, 96), _op(6, 96),
    _conv(576, act=tf.nn.relu), _POOL, _conv(1024, act=tf.nn.relu, bn=False)]


def _squeeze_excite(slim, x):
  """conv_blocks.squeeze_excite with V3's squeeze_factor=4, ReLU, hard sigmoid."""
  with tf.compat.v1.variable_scope('squeeze_excite'):
    h, w, c = x.shape.as_list()[1:]
    pooled = tf.nn.avg_pool(x, (1, h, w, 1), (1, 1, 1, 1), 'VALID')
    squeeze = slim.conv2d(pooled, _make_divisible(c / 4, 8), [1, 1],
                          normalizer_fn=None, activation_fn=tf.nn.relu)
    excite = slim.conv2d(squeeze, c, [1, 1], normalizer_fn=None,
                         activation_fn=_hard_sigmoid)
    return x * excite


def _expanded_conv(slim, net, p):
  """conv_blocks.expanded_conv: expand (if wider), depthwise, SE, linear project."""
  with tf.compat.v1.variable_scope(None, default_name='expanded_conv'):
    prev = net.shape.as_list()[3]
    inner = _make_divisible(prev * p['ef'], p['divisor'])
    x = net
    if inner > prev:
      x = slim.conv2d(x, inner, [1, 1], activation_fn=p['act'], scope='expand')
    x = slim.separable_conv2d(x, None, [p['k'], p['k']], depth_multiplier=1,
                              stride=p['s'], activation_fn=p['act'],
                              scope='depthwise')
    if p['se']:
      x = _squeeze_excite(slim, x)
    x = slim.conv2d(x, p['n'], [1, 1], activation_fn=tf.identity, scope='project')
    if p['s'] == 1 and p['n'] == prev:
      x = x + net
    return x


def mobilenet(images, num_classes, conv_defs, scope, multiplier=1.0,
              finegrain='none'):
  """TF-Slim's mobilenet.mobilenet at inference -> logits [batch, num_classes].

  finegrain: 'none'; 'v2' (mobilenet_v2: the last depth divided by a multiplier
  below 1 first); 'v3' (mobilenet_v3: the last op not multiplied).
  """
  slim = _slim()
  spec = [(kind, dict(p)) for kind, p in conv_defs]
  if finegrain == 'v2' and multiplier < 1:
    spec[-1][1]['n'] = spec[-1][1]['n'] / multiplier
  for i, (kind, p) in enumerate(spec):
    if 'n' in p and not (finegrain == 'v3' and i == len(spec) - 1):
      p['n'] = _make_divisible(p['n'] * multiplier, 8, 8)
  # training_scope(is_training=False): batch norm decay 0.997, Slim's default
  # epsilon 0.001, center and scale from the conv_defs' defaults.
  bn = {'center': True, 'scale': True, 'decay': 0.997, 'is_training': False}
  with tf.compat.v1.variable_scope(scope):
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                        normalizer_fn=slim.batch_norm, normalizer_params=bn,
                        padding='SAME'):
      net = images
      for kind, p in spec:
        if kind == 'conv':
          net = slim.conv2d(net, p['n'], [p['k'], p['k']], stride=p['s'],
                            activation_fn=p['act'],
                            normalizer_fn=slim.batch_norm if p['bn'] else None)
        elif kind == 'block':
          net = _expanded_conv(slim, net, p)
        else:  # reduce_to_1x1 on a square map
          h = net.shape.as_list()[1]
          net = slim.avg_pool2d(net, [h, h], stride=1, padding='VALID')
    with tf.compat.v1.variable_scope('Logits'):
      h, w = net.shape.as_list()[1:3]
      net = tf.nn.avg_pool(net, (1, h, w, 1), (1, 1, 1, 1), 'VALID')
      net = slim.dropout(net, keep_prob=0.8, is_training=False, scope='Dropout')
      logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                           normalizer_fn=None,
                           biases_initializer=tf.compat.v1.zeros_initializer(),
                           scope='Conv2d_1c_1x1')
  return tf.squeeze(logits, [1, 2])


def _reference(conv_defs, scope, multiplier=1.0, finegrain='none'):
  def build(images, num_classes):
    return mobilenet(images, num_classes, conv_defs, scope, multiplier, finegrain)
  return build


# Keyed by our nets_factory names. TF-Slim's mobilenet_v2_035 (and the published
# 0.75 / 0.5 checkpoints) use finegrain_classification_mode; so do the published
# V3 0.75 checkpoints (their Conv_2 has 1280 / 1024 outputs).
REFERENCES = {
    'mobilenet_v2': _reference(V2_DEF, 'MobilenetV2'),
    'mobilenet_v2_140': _reference(V2_DEF, 'MobilenetV2', 1.4),
    'mobilenet_v2_130': _reference(V2_DEF, 'MobilenetV2', 1.3),
    'mobilenet_v2_075': _reference(V2_DEF, 'MobilenetV2', 0.75, 'v2'),
    'mobilenet_v2_050': _reference(V2_DEF, 'MobilenetV2', 0.5, 'v2'),
    'mobilenet_v2_035': _reference(V2_DEF, 'MobilenetV2', 0.35, 'v2'),
    'mobilenet_v3_large': _reference(V3_LARGE, 'MobilenetV3'),
    'mobilenet_v3_small': _reference(V3_SMALL, 'MobilenetV3'),
    'mobilenet_v3_large_075': _reference(V3_LARGE, 'MobilenetV3', 0.75, 'v3'),
    'mobilenet_v3_small_075': _reference(V3_SMALL, 'MobilenetV3', 0.75, 'v3'),
    'mobilenet_v3_large_minimalistic': _reference(V3_LARGE_MINIMALISTIC,
                                                  'MobilenetV3'),
    'mobilenet_v3_small_minimalistic': _reference(V3_SMALL_MINIMALISTIC,
                                                  'MobilenetV3'),
}


def graph_counts(name, image_size=224, num_classes=1000):
  """(trainable weights, multiply-adds per image, {variable: shape}) of TF-Slim's
  net, from its TF1 graph: every Conv2D and depthwise conv op's output size
  times its kernel's weights per output."""
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, (1, image_size, image_size, 3))
    REFERENCES[name](images, num_classes)
    variables = tf.compat.v1.trainable_variables()
    params = sum(v.shape.num_elements() for v in variables)
    macs = 0
    for op in graph.get_operations():
      if op.type not in ('Conv2D', 'DepthwiseConv2dNative'):
        continue
      kernel = op.inputs[1].shape.as_list()
      out = op.outputs[0].shape.as_list()
      per_output = math.prod(kernel[:2]) * (
          kernel[2] if op.type == 'Conv2D' else 1)
      macs += math.prod(out[1:]) * per_output
    shapes = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
  return params, macs, shapes
