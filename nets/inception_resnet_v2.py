"""Inception-ResNet-v2, as TF-Slim's nets/inception_resnet_v2.py.

Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning", arXiv:1602.07261, in TF-Slim's form: a 'VALID' stem
(299 -> 35x35), Mixed_5b, 10 Block35 units ('Repeat/block35_N', scale 0.17),
Mixed_6a, 20 Block17 ('Repeat_1/block17_N', 0.10), Mixed_7a, 9 Block8
('Repeat_2/block8_N', 0.20) and a last 'Block8' (scale 1.0, no activation),
Conv2d_7b_1x1. Each unit adds `scale` times a 1x1 up-projection 'Conv2d_1x1'
(with biases, no batch norm) of its concatenated branches to its input. Fully
connected classifiers 'Logits/Logits' and 'AuxLogits/Logits'.
"""

import keras

from nets import conv_layers
from nets import inception_v4
from nets import net_utils
from nets import scopes

Op = inception_v4.Op

MODEL_SCOPE = 'InceptionResnetV2'

_MIXED_5B = [
    [Op('Conv2d_1x1', 96, 1)],
    [Op('Conv2d_0a_1x1', 48, 1), Op('Conv2d_0b_5x5', 64, 5)],
    [Op('Conv2d_0a_1x1', 64, 1), Op('Conv2d_0b_3x3', 96, 3),
     Op('Conv2d_0c_3x3', 96, 3)],
    [Op('AvgPool_0a_3x3', None, 3), Op('Conv2d_0b_1x1', 64, 1)],
]
_MIXED_6A = [
    [Op('Conv2d_1a_3x3', 384, 3, 2, 'valid')],
    [Op('Conv2d_0a_1x1', 256, 1), Op('Conv2d_0b_3x3', 256, 3),
     Op('Conv2d_1a_3x3', 384, 3, 2, 'valid')],
    [Op('MaxPool_1a_3x3', None, 3, 2, 'valid')],
]
_MIXED_7A = [
    [Op('Conv2d_0a_1x1', 256, 1), Op('Conv2d_1a_3x3', 384, 3, 2, 'valid')],
    [Op('Conv2d_0a_1x1', 256, 1), Op('Conv2d_1a_3x3', 288, 3, 2, 'valid')],
    [Op('Conv2d_0a_1x1', 256, 1), Op('Conv2d_0b_3x3', 288, 3),
     Op('Conv2d_1a_3x3', 320, 3, 2, 'valid')],
    [Op('MaxPool_1a_3x3', None, 3, 2, 'valid')],
]
_BLOCK35 = [
    [Op('Conv2d_1x1', 32, 1)],
    [Op('Conv2d_0a_1x1', 32, 1), Op('Conv2d_0b_3x3', 32, 3)],
    [Op('Conv2d_0a_1x1', 32, 1), Op('Conv2d_0b_3x3', 48, 3),
     Op('Conv2d_0c_3x3', 64, 3)],
]
_BLOCK17 = [
    [Op('Conv2d_1x1', 192, 1)],
    [Op('Conv2d_0a_1x1', 128, 1), Op('Conv2d_0b_1x7', 160, (1, 7)),
     Op('Conv2d_0c_7x1', 192, (7, 1))],
]
_BLOCK8 = [
    [Op('Conv2d_1x1', 192, 1)],
    [Op('Conv2d_0a_1x1', 192, 1), Op('Conv2d_0b_1x3', 224, (1, 3)),
     Op('Conv2d_0c_3x1', 256, (3, 1))],
]

# Every 'valid' here becomes 'same' with align_feature_maps (TF-Slim's option).
# 299x299 gives 149, 147, 147, 73, 73, 71, 35 (Mixed_5b), 17 (Mixed_6a), 8.
STEM = [
    Op('Conv2d_1a_3x3', 32, 3, 2, 'valid'),
    Op('Conv2d_2a_3x3', 32, 3, 1, 'valid'),
    Op('Conv2d_2b_3x3', 64, 3),
    Op('MaxPool_3a_3x3', None, 3, 2, 'valid'),
    Op('Conv2d_3b_1x1', 80, 1, 1, 'valid'),
    Op('Conv2d_4a_3x3', 192, 3, 1, 'valid'),
    Op('MaxPool_5a_3x3', None, 3, 2, 'valid'),
]

# (repeat scope, unit name, units, scale, block): slim.repeat's scopes
# 'Repeat', 'Repeat_1', 'Repeat_2' hold units '<unit>_1' ... '<unit>_<units>'.
# The residual units keep the map size, so the size checks skip them.
BODY = STEM + [
    ('Mixed_5b', _MIXED_5B),
    ('Repeat', 'block35', 10, 0.17, _BLOCK35),
    ('Mixed_6a', _MIXED_6A),
    ('Repeat_1', 'block17', 20, 0.10, _BLOCK17),
    ('Mixed_7a', _MIXED_7A),
    ('Repeat_2', 'block8', 9, 0.20, _BLOCK8),
]
_SIZE_BODY = [e for e in BODY if isinstance(e, Op) or len(e) == 2]

# The auxiliary head reads PreAuxLogits (the output of Repeat_1), the size of
# Mixed_6a.
AUX_SIZE_END_POINT = 'Mixed_6a'


@keras.saving.register_keras_serializable(package='nets')
class ScaledResidual(keras.layers.Layer):
  """net + scale * up, TF-Slim's `net += scaled_up` of the Inception-ResNet units.

  With a relu6 net TF-Slim clips scale * up to [-6, 6] first ("bandpass
  activation"); clip is that bound, or None. Kept for fidelity: the unit's input
  is a relu6 output in [0, 6], so the relu6 after the sum hides the clip.
  """

  def __init__(self, scale, clip=None, **kwargs):
    super().__init__(**kwargs)
    self.scale = float(scale)
    self.clip = None if clip is None else float(clip)

  def call(self, inputs):
    net, up = inputs
    scaled = up * keras.ops.cast(self.scale, up.dtype)
    if self.clip is not None:
      scaled = keras.ops.clip(scaled, -self.clip, self.clip)
    return net + scaled

  def compute_output_shape(self, input_shape):
    return input_shape[0]

  def get_config(self):
    config = super().get_config()
    config.update(scale=self.scale, clip=self.clip)
    return config


def _check_activation(activation_fn):
  try:
    if not isinstance(activation_fn, str):
      raise ValueError
    keras.activations.get(activation_fn)
  except (ValueError, TypeError):
    raise ValueError('activation_fn: expected a Keras activation name such as '
                     'relu (TF-Slim\'s default) or relu6, got %r'
                     % (activation_fn,)) from None


def inception_resnet_v2(num_classes=1001, input_shape=(299, 299, 3),
                        weight_decay=4e-5, dropout_keep_prob=0.8,
                        create_aux_logits=True, activation_fn='relu',
                        align_feature_maps=False, batch_norm_decay=0.9997,
                        batch_norm_epsilon=0.001, batch_norm_scale=False):
  """Builds Inception-ResNet-v2; the model's call returns the end_points dict.

  Args:
    num_classes: classes of both classifiers; 0 or None builds neither and the
      features are end_points['PreLogits'] ([batch, 1536]).
    input_shape: (height, width, channels); at least 107x107 with the auxiliary
      head (its pool needs PreAuxLogits at 5x5 or more), 75x75 without; with
      align_feature_maps 65x65 and 1x1.
    weight_decay: L2 with Slim's scale on conv and fully connected weights AND
      biases (inception_resnet_v2_arg_scope sets biases_regularizer too: the
      units' Conv2d_1x1 and both classifiers).
    dropout_keep_prob: keep probability of Logits/Dropout.
    create_aux_logits: build end_points['AuxLogits'] ([batch, num_classes]) from
      PreAuxLogits, as TF-Slim; training adds 0.4 x its cross-entropy.
    activation_fn: the convs' and the units' activation (TF-Slim passes one
      function to both the arg scope and the net); 'relu6' also clips each
      unit's scaled residual to [-6, 6], as TF-Slim.
    align_feature_maps: TF-Slim's option: every 'VALID' conv and pool of the
      body becomes 'SAME' (299 -> 150, 75, 38, 19, 10); weight shapes are kept.
    batch_norm_decay, batch_norm_epsilon, batch_norm_scale: Slim's
      inception_resnet_v2_arg_scope defaults (0.9997, 0.001, no gamma). Use
      about 0.9 to 0.99 for short from-scratch runs.

  Returns:
    keras.Model named 'InceptionResnetV2'.
  """
  _check_activation(activation_fn)
  create_aux_logits = bool(create_aux_logits and num_classes)
  valid = 'same' if align_feature_maps else 'valid'
  shape = inception_v4.check_input(input_shape, _SIZE_BODY, AUX_SIZE_END_POINT,
                                   create_aux_logits, 'inception_resnet_v2',
                                   valid)
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   batch_norm_scale)
  # inception_resnet_v2_arg_scope sets no initializer: Slim's conv2d default is
  # Xavier (Glorot uniform).
  init = 'glorot_uniform'
  regularizer = net_utils.l2_regularizer(weight_decay)

  def conv(x, filters, kernel, scope, stride=1, padding='same'):
    return net_utils.conv2d(x, filters, kernel, scope, stride=stride,
                            padding=padding, activation_fn=activation_fn,
                            bn=bn, weight_decay=weight_decay, initializer=init)

  def unit(x, scope, block, scale, activation):
    mixed = inception_v4.mixed(x, scope, block, conv)
    up = conv_layers.Conv2D(
        x.shape[-1], 1, use_bias=True, kernel_initializer=init,
        kernel_regularizer=regularizer, bias_regularizer=regularizer,
        name=scopes.layer_name(scope, 'Conv2d_1x1'))(mixed)
    clip = 6.0 if activation == 'relu6' else None
    net = ScaledResidual(scale, clip, name=scopes.layer_name(scope, 'add'))(
        [x, up])
    if activation:
      net = net_utils.activation(net, scope, activation)
    return net

  inputs = net_utils.input_layer(shape)
  end_points = {}
  net = inputs
  for entry in BODY:
    if isinstance(entry, Op):
      net = end_points[entry.scope] = inception_v4.run_op(net, entry, '', conv,
                                                          valid)
    elif len(entry) == 2:
      scope, block = entry
      net = end_points[scope] = inception_v4.mixed(net, scope, block, conv, valid)
    else:
      repeat, name, units, scale, block = entry
      for i in range(units):
        net = unit(net, '%s/%s_%d' % (repeat, name, i + 1), block, scale,
                   activation_fn)
      if repeat == 'Repeat_1':
        end_points['PreAuxLogits'] = net
  net = unit(net, 'Block8', _BLOCK8, 1.0, None)
  net = end_points['Conv2d_7b_1x1'] = conv(net, 1536, 1, 'Conv2d_7b_1x1')

  if create_aux_logits:
    end_points['AuxLogits'] = inception_v4.aux_head(
        end_points['PreAuxLogits'], num_classes, conv,
        ('Conv2d_1a_3x3', 'Conv2d_1b_1x1', 'Conv2d_2a_5x5', 'Logits'),
        weight_decay, regularize_biases=True)
  inception_v4.logits_head(net, num_classes, end_points,
                           ('AvgPool_1a_8x8', 'Flatten', 'Dropout'),
                           dropout_keep_prob, weight_decay,
                           regularize_biases=True)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


inception_resnet_v2.model_scope = MODEL_SCOPE
