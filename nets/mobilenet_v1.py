"""MobileNet V1, as TF-Slim's nets/mobilenet_v1.py.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv:1704.04861: a stride-2 3x3 conv 'Conv2d_0', then 13
depthwise-separable layers 'Conv2d_<i>_depthwise' + 'Conv2d_<i>_pointwise', each
conv followed by batch norm and ReLU6; any input resolution; the width
multiplier is `depth_multiplier` (Slim's name).
"""

from nets import net_utils

MODEL_SCOPE = 'MobilenetV1'

# ('conv' | 'sep', stride, depth): Slim's MOBILENETV1_CONV_DEFS, 3x3 kernels.
CONV_DEFS = [
    ('conv', 2, 32),
    ('sep', 1, 64),
    ('sep', 2, 128),
    ('sep', 1, 128),
    ('sep', 2, 256),
    ('sep', 1, 256),
    ('sep', 2, 512),
    ('sep', 1, 512),
    ('sep', 1, 512),
    ('sep', 1, 512),
    ('sep', 1, 512),
    ('sep', 1, 512),
    ('sep', 2, 1024),
    ('sep', 1, 1024),
]

# small_input: these layers run with stride 1 (output stride 8 instead of 32).
_SMALL_INPUT_STRIDE_1 = (0, 2)


def mobilenet_v1(num_classes=1000, input_shape=(224, 224, 3),
                 weight_decay=4e-5, dropout_keep_prob=0.999,
                 depth_multiplier=1.0, min_depth=8, small_input=False,
                 batch_norm_decay=0.9997, batch_norm_epsilon=0.001,
                 regularize_depthwise=False):
  """Builds MobileNet V1; the model's call returns the end_points dict.

  Args:
    num_classes: classes of Logits/Conv2d_1c_1x1; 0 or None builds no classifier
      and the features are end_points['PreLogits'].
    input_shape: (height, width, channels); any size of at least 1 pixel.
    weight_decay: L2 on conv kernels with Slim's scale; depthwise kernels only
      when regularize_depthwise (Slim's default leaves them out).
    dropout_keep_prob: keep probability of Logits/Dropout_1b (Slim: 0.999).
    depth_multiplier: the paper's width multiplier alpha: every layer has
      max(int(depth * alpha), min_depth) channels.
    min_depth: the smallest channel count.
    small_input: for 32x32 images: Conv2d_0 and Conv2d_2_depthwise get stride 1
      (output stride 8 instead of 32); weight shapes do not change.
    batch_norm_decay, batch_norm_epsilon: Slim's mobilenet_v1_arg_scope
      defaults (0.9997, 0.001, with gamma). Use about 0.9 to 0.99 for short
      from-scratch runs.
    regularize_depthwise: also decay the depthwise kernels.

  Returns:
    keras.Model named 'MobilenetV1'.
  """
  if depth_multiplier <= 0:
    raise ValueError('depth_multiplier: expected a value > 0, got %r'
                     % (depth_multiplier,))
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   scale=True)
  init = net_utils.truncated_normal(0.09)

  def depth(d):
    return max(int(d * depth_multiplier), min_depth)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  net = inputs
  for i, (kind, stride, filters) in enumerate(CONV_DEFS):
    if small_input and i in _SMALL_INPUT_STRIDE_1:
      stride = 1
    scope = 'Conv2d_%d' % i
    if kind == 'conv':
      net = net_utils.conv2d(net, depth(filters), 3, scope, stride=stride,
                             activation_fn='relu6', bn=bn,
                             weight_decay=weight_decay, initializer=init)
      end_points[scope] = net
      continue
    net = net_utils.depthwise_conv2d(
        net, 3, scope + '_depthwise', stride=stride, activation_fn='relu6',
        bn=bn, weight_decay=weight_decay if regularize_depthwise else 0.0,
        initializer=init)
    end_points[scope + '_depthwise'] = net
    net = net_utils.conv2d(net, depth(filters), 1, scope + '_pointwise',
                           activation_fn='relu6', bn=bn,
                           weight_decay=weight_decay, initializer=init)
    end_points[scope + '_pointwise'] = net

  net_utils.slim_head(net, num_classes, end_points, 'Logits', 'AvgPool_1a',
                      'AvgPool_1a', 'Conv2d_1c_1x1', dropout_scope='Dropout_1b',
                      dropout_keep_prob=dropout_keep_prob,
                      weight_decay=weight_decay, initializer=init)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


mobilenet_v1.model_scope = MODEL_SCOPE
