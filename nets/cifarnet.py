"""CifarNet, as TF-Slim's nets/cifarnet.py (after the cuda-convnet CIFAR-10 net).

conv1 64 5x5 -> pool1 2x2 -> norm1 (LRN) -> conv2 64 5x5 -> norm2 -> pool2 2x2
-> fc3 384 -> dropout3 -> fc4 192 -> logits. ReLU, no batch norm.
"""

import keras

from nets import net_utils

MODEL_SCOPE = 'CifarNet'


def cifarnet(num_classes=10, input_shape=(32, 32, 3), weight_decay=0.004,
             dropout_keep_prob=0.5):
  """Builds CifarNet; the model's call returns the end_points dict.

  Args:
    num_classes: classes of 'logits'; 0 or None builds no classifier and the
      features are end_points['PreLogits'] (fc4, [batch, 192]).
    input_shape: (height, width, channels), at least 4x4 (two 2x2 pools).
    weight_decay: as Slim's cifarnet_arg_scope: L2 with Slim's scale on the
      kernels of fc3 and fc4 only (not the convs, not the logits).
    dropout_keep_prob: keep probability of dropout3.

  Returns:
    keras.Model named 'CifarNet'.
  """
  conv_init = net_utils.truncated_normal(5e-2)
  reg = net_utils.l2_regularizer(weight_decay)

  def fc(x, units, scope):
    return keras.layers.Dense(
        units, activation='relu', kernel_initializer=net_utils.truncated_normal(
            0.04), bias_initializer=keras.initializers.Constant(0.1),
        kernel_regularizer=reg, name=scope)(x)

  def pool(x, scope):
    return keras.layers.MaxPooling2D(2, strides=2, padding='valid',
                                     name=scope)(x)

  inputs = net_utils.input_layer(input_shape, min_size=4, allow_unknown=False)
  end_points = {}
  net = end_points['conv1'] = net_utils.conv2d(inputs, 64, 5, 'conv1',
                                               initializer=conv_init)
  net = end_points['pool1'] = pool(net, 'pool1')
  net = net_utils.lrn(net, 'norm1')
  net = end_points['conv2'] = net_utils.conv2d(net, 64, 5, 'conv2',
                                               initializer=conv_init)
  net = net_utils.lrn(net, 'norm2')
  net = end_points['pool2'] = pool(net, 'pool2')
  net = end_points['Flatten'] = net_utils.flatten(net, 'Flatten')
  net = end_points['fc3'] = fc(net, 384, 'fc3')
  net = net_utils.dropout(net, dropout_keep_prob, 'dropout3')
  net = end_points['fc4'] = fc(net, 192, 'fc4')
  end_points['PreLogits'] = net
  if num_classes:
    logits = keras.layers.Dense(
        num_classes, kernel_initializer=net_utils.truncated_normal(1 / 192.0),
        bias_initializer='zeros', name='logits', dtype='float32')(net)
    end_points['Logits'] = logits
    end_points['Predictions'] = net_utils.predictions(logits)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


cifarnet.model_scope = MODEL_SCOPE
