"""AlexNet v2, as TF-Slim's alexnet.py.

Krizhevsky, "One weird trick for parallelizing convolutional neural networks",
arXiv:1404.5997 (cuda-convnet2's single-GPU layers), in TF-Slim's form: no LRN,
no groups; 'conv1' 64 11x11 stride 4 'VALID', 3x3 stride-2 'VALID' max pools
after conv1, conv2 and conv5; 'fc6' a 5x5 'VALID' conv of 4096, 'fc7' 1x1
4096, 'fc8' 1x1 classes, dropout before fc7 and fc8. ReLU, biases, no batch
norm; biases start at 0.1 (fc8's at 0), fc kernels truncated normal 0.005,
the others Xavier; weight decay 5e-4 (alexnet_v2_arg_scope).
"""

import keras

from nets import net_utils
from nets import vgg

MODEL_SCOPE = 'alexnet_v2'

# (kernel, stride, padding) of the spatial ops up to fc6, for the size rule.
_OPS = [(11, 4, 'valid'), (3, 2, 'valid'), (5, 1, 'same'), (3, 2, 'valid'),
        (3, 1, 'same'), (3, 1, 'same'), (3, 1, 'same'), (3, 2, 'valid'),
        (5, 1, 'valid')]


def alexnet_v2(num_classes=1000, input_shape=(224, 224, 3), weight_decay=5e-4,
               dropout_keep_prob=0.5, global_pool=False):
  """Builds AlexNet v2; the model's call returns the end_points dict.

  Args:
    num_classes: classes of 'fc8'; 0 or None builds no classifier and the
      features are end_points['PreLogits'] (fc7, [batch, 4096]).
    input_shape: (height, width, channels), 195 to 226 pixels (fc6's 5x5
      'VALID' window on pool5 must give 1x1); any size from 195 with
      global_pool.
    weight_decay: L2 on all kernels with Slim's scale (5e-4).
    dropout_keep_prob: keep probability of dropout6 and dropout7.
    global_pool: average fc7 over its map before fc8 (the tensorflow/models
      version of alexnet.py).

  Returns:
    keras.Model named 'alexnet_v2'.
  """
  shape = vgg.check_head_input(MODEL_SCOPE, input_shape, _OPS, global_pool)
  bias = 0.1

  def conv(x, filters, kernel, scope, stride=1, padding='same'):
    return vgg.conv(x, filters, kernel, scope, stride=stride, padding=padding,
                    weight_decay=weight_decay,
                    bias_initializer=keras.initializers.Constant(bias))

  inputs = net_utils.input_layer(shape)
  end_points = {}
  net = end_points['conv1'] = conv(inputs, 64, 11, 'conv1', stride=4,
                                   padding='valid')
  net = end_points['pool1'] = vgg.max_pool(net, 3, 2, 'pool1')
  net = end_points['conv2'] = conv(net, 192, 5, 'conv2')
  net = end_points['pool2'] = vgg.max_pool(net, 3, 2, 'pool2')
  net = end_points['conv3'] = conv(net, 384, 3, 'conv3')
  net = end_points['conv4'] = conv(net, 384, 3, 'conv4')
  net = end_points['conv5'] = conv(net, 256, 3, 'conv5')
  net = end_points['pool5'] = vgg.max_pool(net, 3, 2, 'pool5')
  fc_init = net_utils.truncated_normal(0.005)
  vgg.fc_head(net, end_points, num_classes, (4096, 5, 'VALID'), 4096,
              dropout_keep_prob, global_pool, weight_decay,
              initializer=fc_init,
              bias_initializer=keras.initializers.Constant(bias),
              fc8_initializer=fc_init)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


alexnet_v2.model_scope = MODEL_SCOPE
