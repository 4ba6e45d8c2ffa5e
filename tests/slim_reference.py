"""TF-Slim's original nets in TF1 graph mode, to check ours against them.

Inception V1 and ResNet V1 come from the `tf_slim` package itself. MobileNet V1,
CifarNet and LeNet are not in that package: they are written here with tf_slim's
layers from TF-Slim's published layer lists and arg scopes (not from our nets).

save_random_checkpoint() builds one of them, sets every variable (batch norm
statistics too) to seeded random values, saves a TF1 checkpoint with
tf.compat.v1.train.Saver and returns the logits TF-Slim computes for fixed images.
"""

import sys

import numpy as np
import tensorflow as tf


def import_tf_slim():
  """tf_slim 1.1.0 on TF 2.21: it imports two tf_keras modules by their old paths."""
  import tf_keras.src.legacy_tf_layers as legacy
  import tf_keras.src.legacy_tf_layers.normalization as normalization
  sys.modules.setdefault('tf_keras.legacy_tf_layers', legacy)
  sys.modules.setdefault('tf_keras.legacy_tf_layers.normalization', normalization)
  import tf_slim
  return tf_slim


def _inception_v1(images, num_classes):
  slim = import_tf_slim()
  from tf_slim.nets import inception_v1
  with slim.arg_scope(inception_v1.inception_v1_arg_scope()):
    logits, _ = inception_v1.inception_v1(images, num_classes, is_training=False)
  return logits


def _resnet_v1(depth):
  def build(images, num_classes):
    slim = import_tf_slim()
    from tf_slim.nets import resnet_utils
    from tf_slim.nets import resnet_v1
    with slim.arg_scope(resnet_utils.resnet_arg_scope()):
      logits, _ = getattr(resnet_v1, 'resnet_v1_%d' % depth)(
          images, num_classes, is_training=False)
    return tf.reshape(logits, [-1, num_classes])
  return build


# TF-Slim's MOBILENETV1_CONV_DEFS: (kind, stride, depth), all 3x3.
_MOBILENET_V1_LAYERS = [('conv', 2, 32), ('sep', 1, 64), ('sep', 2, 128),
                        ('sep', 1, 128), ('sep', 2, 256), ('sep', 1, 256),
                        ('sep', 2, 512)] + [('sep', 1, 512)] * 5 + [
                            ('sep', 2, 1024), ('sep', 1, 1024)]


def _mobilenet_v1(depth_multiplier):
  def build(images, num_classes):
    slim = import_tf_slim()
    bn = {'center': True, 'scale': True, 'decay': 0.9997, 'epsilon': 0.001,
          'is_training': False}

    def depth(d):
      return max(int(d * depth_multiplier), 8)

    with tf.compat.v1.variable_scope('MobilenetV1'):
      with slim.arg_scope([slim.conv2d, slim.separable_conv2d],
                          activation_fn=tf.nn.relu6, normalizer_fn=slim.batch_norm,
                          normalizer_params=bn, padding='SAME'):
        net = images
        for i, (kind, stride, d) in enumerate(_MOBILENET_V1_LAYERS):
          if kind == 'conv':
            net = slim.conv2d(net, depth(d), [3, 3], stride=stride,
                              scope='Conv2d_%d' % i)
            continue
          net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                      stride=stride, scope='Conv2d_%d_depthwise' % i)
          net = slim.conv2d(net, depth(d), [1, 1], scope='Conv2d_%d_pointwise' % i)
      with tf.compat.v1.variable_scope('Logits'):
        size = [min(int(net.shape[1]), 7), min(int(net.shape[2]), 7)]
        net = slim.avg_pool2d(net, size, padding='VALID', scope='AvgPool_1a')
        net = slim.dropout(net, 0.999, is_training=False, scope='Dropout_1b')
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                             normalizer_fn=None, scope='Conv2d_1c_1x1')
    return tf.squeeze(logits, [1, 2])
  return build


def _cifarnet(images, num_classes):
  slim = import_tf_slim()
  with tf.compat.v1.variable_scope('CifarNet'):
    with slim.arg_scope([slim.conv2d], activation_fn=tf.nn.relu), \
        slim.arg_scope([slim.fully_connected], activation_fn=tf.nn.relu):
      net = slim.conv2d(images, 64, [5, 5], scope='conv1')
      net = slim.max_pool2d(net, [2, 2], 2, scope='pool1')
      net = tf.nn.lrn(net, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
      net = slim.conv2d(net, 64, [5, 5], scope='conv2')
      net = tf.nn.lrn(net, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
      net = slim.max_pool2d(net, [2, 2], 2, scope='pool2')
      net = slim.flatten(net)
      net = slim.fully_connected(net, 384, scope='fc3')
      net = slim.fully_connected(net, 192, scope='fc4')
      return slim.fully_connected(net, num_classes, activation_fn=None,
                                  scope='logits')


def _lenet(images, num_classes):
  slim = import_tf_slim()
  with tf.compat.v1.variable_scope('LeNet'):
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        activation_fn=tf.nn.relu):
      net = slim.conv2d(images, 32, [5, 5], scope='conv1')
      net = slim.max_pool2d(net, [2, 2], 2, scope='pool1')
      net = slim.conv2d(net, 64, [5, 5], scope='conv2')
      net = slim.max_pool2d(net, [2, 2], 2, scope='pool2')
      net = slim.flatten(net)
      net = slim.fully_connected(net, 1024, scope='fc3')
      return slim.fully_connected(net, num_classes, activation_fn=None, scope='fc4')


REFERENCES = {
    'inception_v1': _inception_v1,
    'resnet_v1_50': _resnet_v1(50),
    'resnet_v1_101': _resnet_v1(101),
    'resnet_v1_152': _resnet_v1(152),
    'mobilenet_v1': _mobilenet_v1(1.0),
    'mobilenet_v1_075': _mobilenet_v1(0.75),
    'mobilenet_v1_050': _mobilenet_v1(0.50),
    'mobilenet_v1_025': _mobilenet_v1(0.25),
    'cifarnet': _cifarnet,
    'lenet': _lenet,
}


def _add_family_references():
  """Merges REFERENCES of the family modules beside this one (slim_reference_*.py).

  One module per net family keeps each reference next to its own helpers.
  """
  import glob
  import importlib
  import os
  here = os.path.dirname(os.path.abspath(__file__))
  if here not in sys.path:
    sys.path.insert(0, here)
  for path in sorted(glob.glob(os.path.join(here, 'slim_reference_*.py'))):
    module = importlib.import_module(os.path.basename(path)[:-3])
    clash = set(module.REFERENCES) & set(REFERENCES)
    if clash:
      raise ValueError('%s redefines references %s' % (path, sorted(clash)))
    REFERENCES.update(module.REFERENCES)


_add_family_references()


def random_value(name, shape, rng):
  """A value of the right scale for a variable of TF-Slim's name."""
  leaf = name.split('/')[-1].split(':')[0]
  if leaf == 'gamma' and '/conv3/' in name:
    # ResNet's residual branch ends small, as in trained nets, so that 50 to 152
    # units of random weights add up to logits of a sane size.
    return rng.uniform(0.05, 0.2, shape)
  if leaf in ('gamma', 'moving_variance'):
    return rng.uniform(0.5, 1.5, shape)
  if leaf in ('beta', 'biases', 'moving_mean'):
    return rng.normal(0.0, 0.1, shape)
  # A pointwise kernel [1, 1, in, out] reads `in` values, like a conv's weights.
  fan_in = (int(np.prod(shape[:-1])) if leaf in ('weights', 'pointwise_weights')
            else int(np.prod(shape[:2])))
  return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)


def randomiser(variables):
  """fn(session, rng) setting the variables to random_value()s in one run."""
  values = [tf.compat.v1.placeholder(v.dtype.base_dtype, v.shape) for v in variables]
  assign = [v.assign(p) for v, p in zip(variables, values)]

  def randomise(sess, rng):
    sess.run(assign, {p: random_value(v.name, v.shape.as_list(), rng)
                      for v, p in zip(variables, values)})
  return randomise


def save_random_checkpoint(name, prefix, image_size, num_classes, channels=3,
                           batch=2, seed=0, v1_format=False):
  """Builds TF-Slim's `name`, randomises it, saves prefix -> (images, logits)."""
  rng = np.random.RandomState(seed)
  images = rng.uniform(-1.0, 1.0, (batch, image_size, image_size, channels)).astype(
      np.float32)
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, images.shape)
    logits = REFERENCES[name](inputs, num_classes)
    variables = tf.compat.v1.global_variables()
    version = (tf.compat.v1.train.SaverDef.V1 if v1_format
               else tf.compat.v1.train.SaverDef.V2)
    saver = tf.compat.v1.train.Saver(variables, write_version=version)
    randomise = randomiser(variables)
    with tf.compat.v1.Session(graph=graph) as sess:
      randomise(sess, rng)
      out = sess.run(logits, {inputs: images})
      saver.save(sess, prefix, write_meta_graph=False)
  return images, out
