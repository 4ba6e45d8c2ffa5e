"""Inception V1 (GoogLeNet with batch norm), as TF-Slim's nets/inception_v1.py.

Szegedy et al., "Going deeper with convolutions", arXiv:1409.4842, in TF-Slim's
form: no conv biases, batch norm (beta only) after every conv, and, like Slim,
3x3 convs in the branch the paper gives 5x5 ('Branch_2'), no auxiliary heads.
"""

import keras

from nets import net_utils
from nets import scopes

MODEL_SCOPE = 'InceptionV1'

# Mixed blocks as data: (Branch_0 1x1, Branch_1 1x1 -> 3x3, Branch_2 1x1 -> 3x3,
# Branch_3 3x3 max pool -> 1x1); pools between them as (name, kernel).
_BODY = [
    ('Mixed_3b', (64, 96, 128, 16, 32, 32)),
    ('Mixed_3c', (128, 128, 192, 32, 96, 64)),
    ('MaxPool_4a_3x3', 3),
    ('Mixed_4b', (192, 96, 208, 16, 48, 64)),
    ('Mixed_4c', (160, 112, 224, 24, 64, 64)),
    ('Mixed_4d', (128, 128, 256, 24, 64, 64)),
    ('Mixed_4e', (112, 144, 288, 32, 64, 64)),
    ('Mixed_4f', (256, 160, 320, 32, 128, 128)),
    ('MaxPool_5a_2x2', 2),
    ('Mixed_5b', (256, 160, 320, 32, 128, 128)),
    ('Mixed_5c', (384, 192, 384, 48, 128, 128)),
]

# Slim names this one conv 'Conv2d_0a_3x3' (not 0b); kept so checkpoints match.
_BRANCH_2_CONV = {'Mixed_5b': 'Conv2d_0a_3x3'}


def _mixed(x, scope, widths, conv):
  b0, b1a, b1b, b2a, b2b, b3 = widths
  branch_0 = conv(x, b0, 1, scope + '/Branch_0/Conv2d_0a_1x1')
  branch_1 = conv(x, b1a, 1, scope + '/Branch_1/Conv2d_0a_1x1')
  branch_1 = conv(branch_1, b1b, 3, scope + '/Branch_1/Conv2d_0b_3x3')
  branch_2 = conv(x, b2a, 1, scope + '/Branch_2/Conv2d_0a_1x1')
  branch_2 = conv(branch_2, b2b, 3, scope + '/Branch_2/' +
                  _BRANCH_2_CONV.get(scope, 'Conv2d_0b_3x3'))
  branch_3 = keras.layers.MaxPooling2D(
      3, strides=1, padding='same',
      name=scopes.layer_name(scope, 'Branch_3/MaxPool_0a_3x3'))(x)
  branch_3 = conv(branch_3, b3, 1, scope + '/Branch_3/Conv2d_0b_1x1')
  return keras.layers.Concatenate(axis=-1, name=scopes.layer_name(
      scope, 'concat'))([branch_0, branch_1, branch_2, branch_3])


def inception_v1(num_classes=1000, input_shape=(224, 224, 3),
                 weight_decay=4e-5, dropout_keep_prob=0.8, small_input=False,
                 batch_norm_decay=0.9997, batch_norm_epsilon=0.001,
                 batch_norm_scale=False):
  """Builds Inception V1; the model's call returns the end_points dict.

  Args:
    num_classes: classes of the classifier; 0 or None builds no classifier and
      the features are end_points['PreLogits'] ([batch, 1024]).
    input_shape: (height, width, channels); any size of at least 1 pixel.
    weight_decay: L2 on conv kernels with Slim's scale (see net_utils).
    dropout_keep_prob: keep probability of Logits/Dropout_0b.
    small_input: for 32x32 images: Conv2d_1a_7x7 gets stride 1 and
      MaxPool_2a_3x3 is left out (output stride 8 instead of 32). No weight
      shape changes, so ImageNet checkpoints still load.
    batch_norm_decay, batch_norm_epsilon, batch_norm_scale: Slim's
      inception_v3_arg_scope defaults (0.9997, 0.001, no gamma). A decay of
      0.9997 needs ~10k steps to forget the initial moving averages; use about
      0.9 to 0.99 for short from-scratch runs.

  Returns:
    keras.Model named 'InceptionV1'.
  """
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   batch_norm_scale)
  init = net_utils.truncated_normal(0.01)

  def conv(x, filters, kernel, scope, stride=1):
    return net_utils.conv2d(x, filters, kernel, scope, stride=stride, bn=bn,
                            weight_decay=weight_decay, initializer=init)

  def max_pool(x, kernel, scope):
    return keras.layers.MaxPooling2D(kernel, strides=2, padding='same',
                                     name=scopes.layer_name(scope))(x)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  net = conv(inputs, 64, 7, 'Conv2d_1a_7x7', stride=1 if small_input else 2)
  end_points['Conv2d_1a_7x7'] = net
  if not small_input:
    net = end_points['MaxPool_2a_3x3'] = max_pool(net, 3, 'MaxPool_2a_3x3')
  net = end_points['Conv2d_2b_1x1'] = conv(net, 64, 1, 'Conv2d_2b_1x1')
  net = end_points['Conv2d_2c_3x3'] = conv(net, 192, 3, 'Conv2d_2c_3x3')
  net = end_points['MaxPool_3a_3x3'] = max_pool(net, 3, 'MaxPool_3a_3x3')
  for scope, spec in _BODY:
    if isinstance(spec, int):
      net = max_pool(net, spec, scope)
    else:
      net = _mixed(net, scope, spec, conv)
    end_points[scope] = net

  net_utils.slim_head(net, num_classes, end_points, 'Logits', 'AvgPool_0a_7x7',
                      'AvgPool_0a_7x7', 'Conv2d_0c_1x1', dropout_scope='Dropout_0b',
                      dropout_keep_prob=dropout_keep_prob,
                      weight_decay=weight_decay, initializer=init)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


inception_v1.model_scope = MODEL_SCOPE
