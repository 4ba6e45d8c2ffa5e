"""TF-Slim's Inception V2 and V3 from the tf_slim package, for slim_reference.

REFERENCES (merged into slim_reference.REFERENCES) build the logits under
TF-Slim's own arg scopes at inference. save_random_end_points() is
slim_reference.save_random_checkpoint returning more end points than the
logits (Inception V3's AuxLogits).
"""

import numpy as np
import tensorflow as tf


def _slim():
  import slim_reference  # here, not at the top: it imports this module
  return slim_reference.import_tf_slim()


def _inception_v2(images, num_classes, end_points=None):
  slim = _slim()
  from tf_slim.nets import inception_v2
  with slim.arg_scope(inception_v2.inception_v2_arg_scope()):
    logits, points = inception_v2.inception_v2(images, num_classes,
                                               is_training=False)
  if end_points is not None:
    end_points.update(points)
  return logits


def _inception_v3(images, num_classes, end_points=None):
  slim = _slim()
  from tf_slim.nets import inception_v3
  with slim.arg_scope(inception_v3.inception_v3_arg_scope()):
    logits, points = inception_v3.inception_v3(images, num_classes,
                                               is_training=False)
  if end_points is not None:
    end_points.update(points)
  return logits


REFERENCES = {
    'inception_v2': _inception_v2,
    'inception_v3': _inception_v3,
}


def reference_graph(name, image_size, num_classes, batch=2):
  """(graph, images placeholder, end points) of TF-Slim's net, not run."""
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.compat.v1.placeholder(tf.float32,
                                      (batch, image_size, image_size, 3))
    end_points = {}
    REFERENCES[name](inputs, num_classes, end_points)
  return graph, inputs, end_points


def save_random_end_points(name, prefix, image_size, num_classes, keys,
                           batch=2, seed=0):
  """Builds TF-Slim's `name`, randomises it, saves prefix.

  As slim_reference.save_random_checkpoint (same random values for the same
  seed), with the end points named by `keys` computed in the same run.
  Returns (images, {key: value}, the graph for graph_params / graph_macs).
  """
  import slim_reference
  rng = np.random.RandomState(seed)
  images = rng.uniform(-1.0, 1.0, (batch, image_size, image_size, 3)).astype(
      np.float32)
  graph, inputs, end_points = reference_graph(name, image_size, num_classes,
                                              batch)
  with graph.as_default():
    variables = tf.compat.v1.global_variables()
    saver = tf.compat.v1.train.Saver(variables)
    randomise = slim_reference.randomiser(variables)
    with tf.compat.v1.Session(graph=graph) as sess:
      randomise(sess, rng)
      values = sess.run({k: end_points[k] for k in keys}, {inputs: images})
      saver.save(sess, prefix, write_meta_graph=False)
  return images, values, graph


def graph_macs(graph):
  """Multiply-adds per image of the convs and matmuls of a TF1 graph.

  Conv2D: output elements x kernel height x width x input channels;
  DepthwiseConv2dNative (a separable conv's first half): output elements x
  kernel height x width; MatMul: rows x columns of the weights. Divided by the
  batch.
  """
  total = 0
  batch = None
  for op in graph.get_operations():
    if op.type not in ('Conv2D', 'DepthwiseConv2dNative', 'MatMul'):
      continue
    out = op.outputs[0].shape.as_list()
    weights = op.inputs[1].shape.as_list()
    batch = out[0]
    if op.type == 'Conv2D':
      total += int(np.prod(out)) * int(np.prod(weights[:3]))
    elif op.type == 'DepthwiseConv2dNative':
      total += int(np.prod(out)) * int(np.prod(weights[:2]))
    else:
      total += int(np.prod(out)) * int(weights[0])
  return total // (batch or 1)


def graph_params(graph):
  """All variables of a TF1 graph (batch norm statistics included)."""
  with graph.as_default():
    return sum(int(np.prod(v.shape.as_list()))
               for v in tf.compat.v1.global_variables())
