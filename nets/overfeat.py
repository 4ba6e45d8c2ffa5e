"""OverFeat (the 'fast' model), as TF-Slim's overfeat.py.

Sermanet et al., "OverFeat: Integrated Recognition, Localization and Detection
using Convolutional Networks", arXiv:1312.6229, in TF-Slim's form (conv1 has
64 filters where the paper has 96): 'conv1' 11x11 stride 4 'VALID', 2x2 max
pools, 'conv2' 5x5 'VALID', conv3-5 3x3 'SAME'; 'fc6' a 6x6 'VALID' conv of
3072, 'fc7' 1x1 4096, 'fc8' 1x1 classes, dropout before fc7 and fc8. ReLU,
biases, no batch norm; the input is 231x231. Conv biases start at 0, fc6/fc7's
at 0.1; fc kernels truncated normal 0.005, the others Xavier; weight decay
5e-4 (overfeat_arg_scope).
"""

import keras

from nets import net_utils
from nets import vgg

MODEL_SCOPE = 'overfeat'

# (kernel, stride, padding) of the spatial ops up to fc6, for the size rule.
_OPS = [(11, 4, 'valid'), (2, 2, 'valid'), (5, 1, 'valid'), (2, 2, 'valid'),
        (3, 1, 'same'), (3, 1, 'same'), (3, 1, 'same'), (2, 2, 'valid'),
        (6, 1, 'valid')]


def overfeat(num_classes=1000, input_shape=(231, 231, 3), weight_decay=5e-4,
             dropout_keep_prob=0.5, global_pool=False):
  """Builds OverFeat; the model's call returns the end_points dict.

  Args:
    num_classes: classes of 'fc8'; 0 or None builds no classifier and the
      features are end_points['PreLogits'] (fc7, [batch, 4096]).
    input_shape: (height, width, channels), 231 to 262 pixels (fc6's 6x6
      'VALID' window on pool5 must give 1x1); any size from 231 with
      global_pool.
    weight_decay: L2 on all kernels with Slim's scale (5e-4).
    dropout_keep_prob: keep probability of dropout6 and dropout7.
    global_pool: average fc7 over its map before fc8 (the tensorflow/models
      version of overfeat.py).

  Returns:
    keras.Model named 'overfeat'.
  """
  shape = vgg.check_head_input(MODEL_SCOPE, input_shape, _OPS, global_pool)

  def conv(x, filters, kernel, scope, stride=1, padding='same'):
    return vgg.conv(x, filters, kernel, scope, stride=stride, padding=padding,
                    weight_decay=weight_decay)

  inputs = net_utils.input_layer(shape)
  end_points = {}
  net = end_points['conv1'] = conv(inputs, 64, 11, 'conv1', stride=4,
                                   padding='valid')
  net = end_points['pool1'] = vgg.max_pool(net, 2, 2, 'pool1')
  net = end_points['conv2'] = conv(net, 256, 5, 'conv2', padding='valid')
  net = end_points['pool2'] = vgg.max_pool(net, 2, 2, 'pool2')
  net = end_points['conv3'] = conv(net, 512, 3, 'conv3')
  net = end_points['conv4'] = conv(net, 1024, 3, 'conv4')
  net = end_points['conv5'] = conv(net, 1024, 3, 'conv5')
  net = end_points['pool5'] = vgg.max_pool(net, 2, 2, 'pool5')
  fc_init = net_utils.truncated_normal(0.005)
  vgg.fc_head(net, end_points, num_classes, (3072, 6, 'VALID'), 4096,
              dropout_keep_prob, global_pool, weight_decay,
              initializer=fc_init,
              bias_initializer=keras.initializers.Constant(0.1),
              fc8_initializer=fc_init)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


overfeat.model_scope = MODEL_SCOPE
