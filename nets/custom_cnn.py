"""CustomCNN: the project's compact, fast net for small images (CIFAR-10, MNIST).

Blocks of 3x3 conv + batch norm + activation. In each block the first conv runs
at the block's input resolution and is followed by a 3x3 stride-2 max pool, the
block's other convs run at the pooled resolution (as in airbench's conv groups,
this halves the cost of a conv-conv-pool block), then dropout. A global average
pool and a dense classifier end the net (a global max pool there made SGD at
learning rates >= 0.1 stall at chance on CIFAR-10; the average does not).

Defaults: widths (64, 128, 256), 2 convs per block: 1.15 M parameters (4.6 MB of
float32 weights) and 68 M multiply-adds for a 32x32 image.
"""

import keras

from nets import net_utils
from nets import scopes

MODEL_SCOPE = 'CustomCNN'

# --activation choices -> Keras activation names.
ACTIVATIONS = {
    'relu': 'relu',
    'elu': 'elu',
    'tanh': 'tanh',
    'sigmoid': 'sigmoid',
    'swish': 'silu',
    'leaky_relu': 'leaky_relu',
}


def _parse_widths(widths):
  if isinstance(widths, str):
    widths = [w for w in widths.replace(' ', '').split(',') if w]
  try:
    widths = tuple(int(w) for w in widths)
  except (TypeError, ValueError):
    widths = ()
  if not widths or min(widths) < 1:
    raise ValueError('widths: expected positive channel counts such as '
                     '(64, 128, 256) or "64,128,256"')
  return widths


def custom_cnn(num_classes=10, input_shape=(32, 32, 3), weight_decay=5e-4,
               widths=(64, 128, 256), convs_per_block=2, activation='relu',
               dropout_rate=0.15, batch_norm_decay=0.9,
               batch_norm_epsilon=1e-3):
  """Builds CustomCNN; the model's call returns the end_points dict.

  Args:
    num_classes: classes of the 'Logits' dense layer; 0 or None builds no
      classifier and the features are end_points['PreLogits'].
    input_shape: (height, width, channels); any size of at least 1 pixel.
    weight_decay: L2 on conv and dense kernels with Slim's scale.
    widths: channels of each block; len(widths) is the number of blocks.
    convs_per_block: 3x3 convs per block (>= 1).
    activation: one of ACTIVATIONS (relu, elu, tanh, sigmoid, swish,
      leaky_relu).
    dropout_rate: dropout after each block.
    batch_norm_decay, batch_norm_epsilon: batch norm momentum and epsilon.

  Returns:
    keras.Model named 'CustomCNN'.
  """
  widths = _parse_widths(widths)
  if activation not in ACTIVATIONS:
    raise ValueError('activation: expected one of %s, got %r'
                     % (', '.join(sorted(ACTIVATIONS)), activation))
  if int(convs_per_block) < 1:
    raise ValueError('convs_per_block: expected an integer >= 1, got %r'
                     % (convs_per_block,))
  if not 0.0 <= dropout_rate < 1.0:
    raise ValueError('dropout_rate: expected a value in [0, 1), got %r'
                     % (dropout_rate,))
  bn = net_utils.batch_norm_params(batch_norm_decay, batch_norm_epsilon,
                                   scale=True)
  act = ACTIVATIONS[activation]

  def conv(x, filters, scope):
    return net_utils.conv2d(x, filters, 3, scope, activation_fn=act, bn=bn,
                            weight_decay=weight_decay)

  inputs = net_utils.input_layer(input_shape)
  end_points = {}
  net = inputs
  for b, width in enumerate(widths):
    scope = 'block%d' % (b + 1)
    net = conv(net, width, scope + '/conv1')
    net = keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                    name=scopes.layer_name(scope, 'pool'))(net)
    for c in range(1, int(convs_per_block)):
      net = conv(net, width, '%s/conv%d' % (scope, c + 1))
    if dropout_rate:
      net = net_utils.Dropout(dropout_rate, name=scopes.layer_name(
          scope, 'dropout'))(net)
    end_points[scope] = net

  net = keras.layers.GlobalAveragePooling2D(name='global_pool')(net)
  end_points['global_pool'] = end_points['PreLogits'] = net
  if num_classes:
    logits = keras.layers.Dense(
        num_classes, kernel_initializer='he_normal',
        kernel_regularizer=net_utils.l2_regularizer(weight_decay),
        name='Logits', dtype='float32')(net)
    end_points['Logits'] = logits
    end_points['Predictions'] = net_utils.predictions(logits)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


custom_cnn.model_scope = MODEL_SCOPE
