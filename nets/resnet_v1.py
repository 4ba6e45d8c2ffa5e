"""ResNet v1 (bottleneck, batch norm after every conv), as TF-Slim's resnet_v1.py.

He et al., "Deep Residual Learning for Image Recognition", arXiv:1512.03385, in
TF-Slim's form: the stride-2 of a block sits in the 3x3 conv ('conv2') of its
LAST unit (the paper strides the first unit of the next block), strided convs
pad explicitly then run 'VALID' (Slim's conv2d_same), projection shortcuts only
where the depth changes, the classifier is a 1x1 conv named 'logits'.
"""

import keras

from nets import net_utils
from nets import scopes

# (scope, base_depth, num_units, stride): unit depth is 4 * base_depth.
BLOCKS = {
    50: [('block1', 64, 3, 2), ('block2', 128, 4, 2), ('block3', 256, 6, 2),
         ('block4', 512, 3, 1)],
    101: [('block1', 64, 3, 2), ('block2', 128, 4, 2), ('block3', 256, 23, 2),
          ('block4', 512, 3, 1)],
    152: [('block1', 64, 3, 2), ('block2', 128, 8, 2), ('block3', 256, 36, 2),
          ('block4', 512, 3, 1)],
}


def conv2d_same(x, filters, kernel_size, stride, scope, conv):
  """Slim's resnet_utils.conv2d_same: 'SAME' output size, input-size independent.

  A strided 'SAME' conv pads depending on the input size; padding by
  (kernel - 1) explicitly and convolving 'VALID' gives the same alignment for
  every size.
  """
  if stride == 1:
    return conv(x, filters, kernel_size, scope)
  pad_total = kernel_size - 1
  pad_beg = pad_total // 2
  pad_end = pad_total - pad_beg
  x = keras.layers.ZeroPadding2D(((pad_beg, pad_end), (pad_beg, pad_end)),
                                 name=scopes.layer_name(scope, 'Pad'))(x)
  return conv(x, filters, kernel_size, scope, stride=stride, padding='valid')


def bottleneck(x, depth, depth_bottleneck, stride, scope, conv):
  """Slim's bottleneck_v1 unit: relu(shortcut + conv3(conv2(conv1(x))))."""
  if x.shape[-1] == depth:
    shortcut = x
    if stride > 1:  # Slim's subsample: a 1x1 max pool with the stride.
      shortcut = keras.layers.MaxPooling2D(
          1, strides=stride, name=scopes.layer_name(scope, 'shortcut'))(x)
  else:
    shortcut = conv(x, depth, 1, scope + '/shortcut', stride=stride,
                    activation_fn=None)
  residual = conv(x, depth_bottleneck, 1, scope + '/conv1')
  residual = conv2d_same(residual, depth_bottleneck, 3, stride,
                         scope + '/conv2', conv)
  residual = conv(residual, depth, 1, scope + '/conv3', activation_fn=None)
  net = keras.layers.Add(name=scopes.layer_name(scope, 'add'))(
      [shortcut, residual])
  return keras.layers.Activation('relu', name=scopes.layer_name(
      scope, 'Relu'))(net)


def resnet_v1(blocks, num_classes=1000, input_shape=(224, 224, 3),
              weight_decay=1e-4, small_input=False, batch_norm_decay=0.997,
              batch_norm_epsilon=1e-5, batch_norm_scale=True,
              model_scope='resnet_v1'):
  """Builds a ResNet v1 from a list of (scope, base_depth, num_units, stride).

  Args:
    blocks: the block table, e.g. BLOCKS[50].
    num_classes: classes of the 'logits' conv; 0 or None builds no classifier
      and the features are end_points['PreLogits'] ([batch, 2048]).
    input_shape: (height, width, channels); any size of at least 1 pixel.
    weight_decay: L2 on conv kernels with Slim's scale (resnet_arg_scope: 1e-4).
    small_input: for 32x32 images: 'conv1' gets stride 1 and 'pool1' is left
      out (output stride 8 instead of 32); weight shapes do not change.
    batch_norm_decay, batch_norm_epsilon, batch_norm_scale: Slim's
      resnet_arg_scope defaults (0.997, 1e-5, with gamma).
    model_scope: the model's name, e.g. 'resnet_v1_50'.

  Returns:
    keras.Model whose call returns the end_points dict.
  """
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   batch_norm_scale)

  def conv(x, filters, kernel, scope, stride=1, padding='same',
           activation_fn='relu'):
    return net_utils.conv2d(x, filters, kernel, scope, stride=stride,
                            padding=padding, activation_fn=activation_fn,
                            bn=bn, weight_decay=weight_decay)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  net = conv2d_same(inputs, 64, 7, 1 if small_input else 2, 'conv1', conv)
  end_points['conv1'] = net
  if not small_input:
    net = keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                    name='pool1')(net)
    end_points['pool1'] = net
  for block_scope, base_depth, num_units, stride in blocks:
    for i in range(num_units):
      unit_stride = stride if i == num_units - 1 else 1
      net = bottleneck(net, 4 * base_depth, base_depth, unit_stride,
                       '%s/unit_%d/bottleneck_v1' % (block_scope, i + 1), conv)
    end_points[block_scope] = net

  net_utils.slim_head(net, num_classes, end_points, '', 'pool5', 'global_pool',
                      'logits', predictions_scope='predictions',
                      weight_decay=weight_decay)
  return net_utils.end_points_model(inputs, end_points, model_scope)


def _resnet_v1_depth(depth):
  """The builder of one depth, with resnet_v1's keyword arguments."""
  model_scope = 'resnet_v1_%d' % depth

  def builder(num_classes=1000, input_shape=(224, 224, 3), weight_decay=1e-4,
              small_input=False, batch_norm_decay=0.997,
              batch_norm_epsilon=1e-5, batch_norm_scale=True):
    return resnet_v1(BLOCKS[depth], num_classes, input_shape,
                     weight_decay=weight_decay, small_input=small_input,
                     batch_norm_decay=batch_norm_decay,
                     batch_norm_epsilon=batch_norm_epsilon,
                     batch_norm_scale=batch_norm_scale,
                     model_scope=model_scope)

  builder.__name__ = model_scope
  builder.__doc__ = 'ResNet-%d v1 (%r); arguments as resnet_v1.' % (
      depth, model_scope)
  builder.model_scope = model_scope
  return builder


resnet_v1_50 = _resnet_v1_depth(50)
resnet_v1_101 = _resnet_v1_depth(101)
resnet_v1_152 = _resnet_v1_depth(152)
