"""MobileNet V2, as TF-Slim's nets/mobilenet/mobilenet_v2.py.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
arXiv:1801.04381: a stride-2 3x3 'Conv', 17 inverted residual blocks
('expanded_conv', 'expanded_conv_1', ...: 1x1 'expand' to 6x the input depth,
3x3 'depthwise', linear 1x1 'project', a residual where shapes allow), a 1x1
'Conv_1' to 1280 and the head 'Logits/Conv2d_1c_1x1'. Batch norm with gamma
after every conv, ReLU6. Depths scale by `depth_multiplier`, rounded to
multiples of 8 as TF-Slim does.
"""

from nets import mobilenet_blocks as blocks
from nets import net_utils

MODEL_SCOPE = 'MobilenetV2'

_b = blocks.block
# TF-Slim's V2_DEF spec. The first block keeps its depth (expansion 1, not
# rounded to 8), so it has no 'expand' conv.
V2_DEF = [
    blocks.conv(32, kernel=3, stride=2),
    _b(16, expansion=1, expansion_divisor=1),
    _b(24, stride=2), _b(24),
    _b(32, stride=2), _b(32), _b(32),
    _b(64, stride=2), _b(64), _b(64), _b(64),
    _b(96), _b(96), _b(96),
    _b(160, stride=2), _b(160), _b(160),
    _b(320),
    blocks.conv(1280),
]


def conv_defs(depth_multiplier=1.0, min_depth=8, divisible_by=8,
              finegrain_classification_mode=False):
  """V2_DEF with depths multiplied, as TF-Slim's mobilenet_v2.mobilenet."""
  spec = list(V2_DEF)
  if finegrain_classification_mode and depth_multiplier < 1:
    # TF-Slim divides the last depth first, so 'Conv_1' stays 1280 (what the
    # published 0.75 / 0.5 / 0.35 checkpoints have).
    spec[-1] = spec[-1]._replace(num_outputs=spec[-1].num_outputs / depth_multiplier)
  return blocks.apply_depth_multiplier(spec, depth_multiplier, divisible_by,
                                       min_depth)


def mobilenet_v2(num_classes=1001, input_shape=(224, 224, 3), weight_decay=4e-5,
                 depth_multiplier=1.0, min_depth=8, divisible_by=8,
                 finegrain_classification_mode=False, dropout_keep_prob=0.8,
                 small_input=False, batch_norm_decay=0.997,
                 batch_norm_epsilon=0.001, regularize_depthwise=False):
  """Builds MobileNet V2; the model's call returns the end_points dict.

  Args:
    num_classes: classes of Logits/Conv2d_1c_1x1; 0 or None builds no classifier
      and the features are end_points['PreLogits'].
    input_shape: (height, width, channels); any size of at least 1 pixel.
    weight_decay: L2 on conv kernels with Slim's scale (training_scope: 4e-5);
      depthwise kernels only when regularize_depthwise.
    depth_multiplier: width multiplier; each depth d becomes
      make_divisible(d * depth_multiplier, divisible_by, min_depth).
    min_depth, divisible_by: TF-Slim's rounding (8, 8).
    finegrain_classification_mode: keep 'Conv_1' at 1280 when
      depth_multiplier < 1 (TF-Slim's mobilenet_v2_035 / _050 set it).
    dropout_keep_prob: keep probability of Logits/Dropout (training_scope: 0.8).
    small_input: for 32x32 images: 'Conv' and 'expanded_conv_1' get stride 1
      (output stride 8 instead of 32); weight shapes do not change.
    batch_norm_decay, batch_norm_epsilon: training_scope's 0.997 and Slim's
      batch_norm default 0.001, with gamma.
    regularize_depthwise: also decay the depthwise kernels.

  Returns:
    keras.Model named 'MobilenetV2'.
  """
  blocks.check_options(depth_multiplier, min_depth, divisible_by)
  spec = conv_defs(depth_multiplier, min_depth, divisible_by,
                   finegrain_classification_mode)
  options = {'bn': net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                               scale=True),
             'weight_decay': weight_decay,
             'initializer': net_utils.truncated_normal(0.09),
             'regularize_depthwise': regularize_depthwise}
  inputs = net_utils.input_layer(input_shape)
  net, end_points = blocks.build(spec, inputs, options, small_input)
  blocks.head(net, num_classes, end_points, dropout_keep_prob, options)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


mobilenet_v2.model_scope = MODEL_SCOPE
