"""TF-Slim's ResNet v2, VGG, AlexNet v2 and OverFeat, from the tf_slim package.

build(name, images, num_classes) makes one in TF1 graph mode under its own arg
scope, at inference, and returns ([batch, classes] logits, TF-Slim's
end_points); REFERENCES (merged into slim_reference.REFERENCES) gives the
logits. The package's resnet_v2 does not squeeze its 1x1 logits (the models
repository's does, spatial_squeeze=True): reshaped here. Its VGG, AlexNet and
OverFeat have neither `global_pool` nor `fc_conv_padding` (tensorflow/models
research/slim added both), so these are the nets' default form.
"""

import functools
import importlib

import tensorflow as tf

from slim_reference import import_tf_slim

# name -> (tf_slim.nets module, builder, arg scope function).
NETS = {
    'resnet_v2_50': ('resnet_v2', 'resnet_v2_50', 'resnet_arg_scope'),
    'resnet_v2_101': ('resnet_v2', 'resnet_v2_101', 'resnet_arg_scope'),
    'resnet_v2_152': ('resnet_v2', 'resnet_v2_152', 'resnet_arg_scope'),
    'resnet_v2_200': ('resnet_v2', 'resnet_v2_200', 'resnet_arg_scope'),
    'vgg_a': ('vgg', 'vgg_a', 'vgg_arg_scope'),
    'vgg_16': ('vgg', 'vgg_16', 'vgg_arg_scope'),
    'vgg_19': ('vgg', 'vgg_19', 'vgg_arg_scope'),
    'alexnet_v2': ('alexnet', 'alexnet_v2', 'alexnet_v2_arg_scope'),
    'overfeat': ('overfeat', 'overfeat', 'overfeat_arg_scope'),
}


def build(name, images, num_classes):
  """TF-Slim's net `name` on images -> (logits [batch, classes], end_points)."""
  slim = import_tf_slim()
  module_name, fn_name, arg_scope_name = NETS[name]
  module = importlib.import_module('tf_slim.nets.' + module_name)
  with slim.arg_scope(getattr(module, arg_scope_name)()):
    net, end_points = getattr(module, fn_name)(images, num_classes,
                                               is_training=False)
  return tf.reshape(net, [-1, num_classes]), end_points


def _logits(name, images, num_classes):
  return build(name, images, num_classes)[0]


REFERENCES = {name: functools.partial(_logits, name) for name in NETS}
