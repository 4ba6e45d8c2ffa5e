"""MobileNet V3, as TF-Slim's nets/mobilenet/mobilenet_v3.py.

Howard et al., "Searching for MobileNetV3", arXiv:1905.02244: MobileNet V2's
inverted residual blocks with squeeze-excite ('squeeze_excite/Conv' and
'Conv_1', biases, a relu6(x + 3) * 0.16667 gate) in some blocks, hard-swish
x * relu6(x + 3) / 6 in the later layers, 5x5 depthwise kernels; after 'Conv_1'
an average pool to 1x1, then 'Conv_2' (biases, no batch norm) and the head
'Logits/Conv2d_1c_1x1'. The minimalistic variants have no squeeze-excite, no
hard-swish and only 3x3 kernels. Model scope 'MobilenetV3' for all four.
"""

from nets import mobilenet_blocks as blocks
from nets import net_utils

MODEL_SCOPE = 'MobilenetV3'

HS = 'hard_swish'


def _b(expansion, num_outputs, kernel, stride=1, activation='relu', se=False):
  """TF-Slim's mbv3_op(ef, n, k, s, act) / mbv3_op_se."""
  return blocks.block(num_outputs, expansion, kernel, stride, activation, se)


# TF-Slim's V3_LARGE, V3_SMALL and their minimalistic forms.
V3_LARGE = [
    blocks.conv(16, kernel=3, stride=2, activation=HS),
    _b(1, 16, 3),
    _b(4, 24, 3, 2),
    _b(3, 24, 3),
    _b(3, 40, 5, 2, se=True),
    _b(3, 40, 5, se=True),
    _b(3, 40, 5, se=True),
    _b(6, 80, 3, 2, HS),
    _b(2.5, 80, 3, 1, HS),
    _b(184 / 80., 80, 3, 1, HS),
    _b(184 / 80., 80, 3, 1, HS),
    _b(6, 112, 3, 1, HS, se=True),
    _b(6, 112, 3, 1, HS, se=True),
    _b(6, 160, 5, 2, HS, se=True),
    _b(6, 160, 5, 1, HS, se=True),
    _b(6, 160, 5, 1, HS, se=True),
    blocks.conv(960, activation=HS),
    blocks.Pool(),
    blocks.conv(1280, activation=HS, batch_norm=False),
]

V3_LARGE_MINIMALISTIC = [
    blocks.conv(16, kernel=3, stride=2, activation='relu'),
    _b(1, 16, 3),
    _b(4, 24, 3, 2),
    _b(3, 24, 3),
    _b(3, 40, 3, 2),
    _b(3, 40, 3),
    _b(3, 40, 3),
    _b(6, 80, 3, 2),
    _b(2.5, 80, 3),
    _b(184 / 80., 80, 3),
    _b(184 / 80., 80, 3),
    _b(6, 112, 3),
    _b(6, 112, 3),
    _b(6, 160, 3, 2),
    _b(6, 160, 3),
    _b(6, 160, 3),
    blocks.conv(960, activation='relu'),
    blocks.Pool(),
    blocks.conv(1280, activation='relu', batch_norm=False),
]

V3_SMALL = [
    blocks.conv(16, kernel=3, stride=2, activation=HS),
    _b(1, 16, 3, 2, se=True),
    _b(72. / 16, 24, 3, 2),
    _b(88. / 24, 24, 3),
    _b(4, 40, 5, 2, HS, se=True),
    _b(6, 40, 5, 1, HS, se=True),
    _b(6, 40, 5, 1, HS, se=True),
    _b(3, 48, 5, 1, HS, se=True),
    _b(3, 48, 5, 1, HS, se=True),
    _b(6, 96, 5, 2, HS, se=True),
    _b(6, 96, 5, 1, HS, se=True),
    _b(6, 96, 5, 1, HS, se=True),
    blocks.conv(576, activation=HS),
    blocks.Pool(),
    blocks.conv(1024, activation=HS, batch_norm=False),
]

V3_SMALL_MINIMALISTIC = [
    blocks.conv(16, kernel=3, stride=2, activation='relu'),
    _b(1, 16, 3, 2),
    _b(72. / 16, 24, 3, 2),
    _b(88. / 24, 24, 3),
    _b(4, 40, 3, 2),
    _b(6, 40, 3),
    _b(6, 40, 3),
    _b(3, 48, 3),
    _b(3, 48, 3),
    _b(6, 96, 3, 2),
    _b(6, 96, 3),
    _b(6, 96, 3),
    blocks.conv(576, activation='relu'),
    blocks.Pool(),
    blocks.conv(1024, activation='relu', batch_norm=False),
]

CONV_DEFS = {'large': V3_LARGE, 'small': V3_SMALL,
             'large_minimalistic': V3_LARGE_MINIMALISTIC,
             'small_minimalistic': V3_SMALL_MINIMALISTIC}


def mobilenet_v3(num_classes=1001, input_shape=(224, 224, 3), weight_decay=4e-5,
                 conv_defs='large', depth_multiplier=1.0,
                 finegrain_classification_mode=False, dropout_keep_prob=0.8,
                 small_input=False, batch_norm_decay=0.997,
                 batch_norm_epsilon=0.001, regularize_depthwise=False):
  """Builds MobileNet V3; the model's call returns the end_points dict.

  Args:
    num_classes: classes of Logits/Conv2d_1c_1x1; 0 or None builds no classifier
      and the features are end_points['PreLogits'] (Conv_2's output).
    input_shape: (height, width, channels); any size of at least 1 pixel (the
      pool before 'Conv_2' is a global mean).
    weight_decay: L2 on conv kernels with Slim's scale (training_scope: 4e-5),
      squeeze-excite and 'Conv_2' included; depthwise kernels only when
      regularize_depthwise.
    conv_defs: 'large', 'small', 'large_minimalistic' or 'small_minimalistic'.
    depth_multiplier: width multiplier, depths rounded to multiples of 8.
    finegrain_classification_mode: leave 'Conv_2' unscaled.
    dropout_keep_prob: keep probability of Logits/Dropout (training_scope: 0.8).
    small_input: for 32x32 images: the first two strided layers get stride 1
      (output stride 8 instead of 32); weight shapes do not change.
    batch_norm_decay, batch_norm_epsilon: training_scope's 0.997 and 0.001.
    regularize_depthwise: also decay the depthwise kernels.

  Returns:
    keras.Model named 'MobilenetV3'.
  """
  if conv_defs not in CONV_DEFS:
    raise ValueError('conv_defs: expected one of %s, got %r'
                     % (', '.join(CONV_DEFS), conv_defs))
  blocks.check_options(depth_multiplier, 8, 8)
  spec = blocks.apply_depth_multiplier(CONV_DEFS[conv_defs], depth_multiplier,
                                       keep_last=finegrain_classification_mode)
  options = {'bn': net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                               scale=True),
             'weight_decay': weight_decay,
             'initializer': net_utils.truncated_normal(0.09),
             'regularize_depthwise': regularize_depthwise}
  inputs = net_utils.input_layer(input_shape)
  net, end_points = blocks.build(spec, inputs, options, small_input)
  blocks.head(net, num_classes, end_points, dropout_keep_prob, options)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


mobilenet_v3.model_scope = MODEL_SCOPE
