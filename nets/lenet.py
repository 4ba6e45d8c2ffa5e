"""LeNet, as TF-Slim's nets/lenet.py (a variant of LeCun et al. 1998).

conv1 32 5x5 -> pool1 2x2 -> conv2 64 5x5 -> pool2 2x2 -> fc3 1024 -> dropout3
-> fc4 (the logits). ReLU, no batch norm; convs 'SAME', pools 'VALID'.
"""

import keras

from nets import net_utils

MODEL_SCOPE = 'LeNet'


def lenet(num_classes=10, input_shape=(28, 28, 1), weight_decay=0.0,
          dropout_keep_prob=0.5):
  """Builds LeNet; the model's call returns the end_points dict.

  Args:
    num_classes: classes of 'fc4'; 0 or None builds no classifier and the
      features are end_points['PreLogits'] (fc3, [batch, 1024]).
    input_shape: (height, width, channels), at least 4x4 (two 2x2 pools).
    weight_decay: L2 on all kernels with Slim's scale (lenet_arg_scope: 0).
    dropout_keep_prob: keep probability of dropout3.

  Returns:
    keras.Model named 'LeNet'.
  """
  init = net_utils.truncated_normal(0.1)
  reg = net_utils.l2_regularizer(weight_decay)

  def fc(x, units, scope, activation='relu', dtype=None):
    return keras.layers.Dense(units, activation=activation,
                              kernel_initializer=init, kernel_regularizer=reg,
                              name=scope, dtype=dtype)(x)

  def pool(x, scope):
    return keras.layers.MaxPooling2D(2, strides=2, padding='valid',
                                     name=scope)(x)

  inputs = net_utils.input_layer(input_shape, min_size=4, allow_unknown=False)
  end_points = {}
  net = end_points['conv1'] = net_utils.conv2d(
      inputs, 32, 5, 'conv1', weight_decay=weight_decay, initializer=init)
  net = end_points['pool1'] = pool(net, 'pool1')
  net = end_points['conv2'] = net_utils.conv2d(
      net, 64, 5, 'conv2', weight_decay=weight_decay, initializer=init)
  net = end_points['pool2'] = pool(net, 'pool2')
  net = end_points['Flatten'] = net_utils.flatten(net, 'Flatten')
  net = end_points['fc3'] = fc(net, 1024, 'fc3')
  end_points['PreLogits'] = net
  if num_classes:
    net = end_points['dropout3'] = net_utils.dropout(
        net, dropout_keep_prob, 'dropout3')
    logits = fc(net, num_classes, 'fc4', activation=None, dtype='float32')
    end_points['Logits'] = logits
    end_points['Predictions'] = net_utils.predictions(logits)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


lenet.model_scope = MODEL_SCOPE
