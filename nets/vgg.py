"""VGG 11 / 16 / 19 (configurations A, D, E), as TF-Slim's vgg.py.

Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv:1409.1556: five stages of 3x3 'SAME' convs ('conv1/conv1_1'
...), each followed by a 2x2 max pool ('pool1'..'pool5'), then the fully
connected layers as convolutions: 'fc6' 7x7 'VALID' 4096, 'fc7' 1x1 4096, 'fc8'
1x1 classes, dropout before fc7 and fc8. ReLU, biases, no batch norm; Xavier
initialization and weight decay 5e-4 (vgg_arg_scope).

Also the fully convolutional head that AlexNet v2 and OverFeat share
(`fc_head`) and the size rule of such heads (`check_head_input`): with
fc6 'VALID', the last pool must be at least fc6's kernel, and without
global_pool exactly that size, so the logits are 1x1 (Slim's spatial_squeeze).
"""

import keras

from nets import conv_layers
from nets import net_utils
from nets import scopes

# Convs per stage; the stages have 64, 128, 256, 512, 512 channels.
REPEATS = {'vgg_a': (1, 1, 2, 2, 2), 'vgg_16': (2, 2, 3, 3, 3),
           'vgg_19': (2, 2, 4, 4, 4)}
DEPTHS = (64, 128, 256, 512, 512)

FC_CONV_PADDINGS = ('VALID', 'SAME')


def conv(x, filters, kernel, scope, stride=1, padding='same',
         activation='relu', weight_decay=0.0, initializer='glorot_uniform',
         bias_initializer='zeros'):
  """Slim's conv2d without normalizer: conv + bias + activation in one layer."""
  return conv_layers.Conv2D(
      filters, kernel, strides=stride, padding=padding, use_bias=True,
      activation=activation, kernel_initializer=initializer,
      bias_initializer=bias_initializer,
      kernel_regularizer=net_utils.l2_regularizer(weight_decay),
      name=scopes.layer_name(scope))(x)


def max_pool(x, kernel, stride, scope):
  """Slim's max_pool2d with the 'VALID' padding of these nets' arg scopes."""
  return keras.layers.MaxPooling2D(kernel, strides=stride, padding='valid',
                                   name=scopes.layer_name(scope))(x)


def _output_size(size, ops):
  """Height (or width) after ops of (kernel, stride, 'valid' | 'same'); 0 if
  some op gets less than its kernel."""
  for kernel, stride, padding in ops:
    if padding == 'same':
      size = -(-size // stride)
    elif size < kernel:
      return 0
    else:
      size = (size - kernel) // stride + 1
  return size


def check_head_input(name, input_shape, ops, global_pool):
  """input_shape as a tuple, or a one-line ValueError naming the valid sizes.

  ops: (kernel, stride, padding) of every spatial op up to and including fc6.
  Without global_pool the 1x1 fc8 must see a 1x1 map, so fc6's output must be
  1x1; with it, any size where fc6 fits.
  """
  shape = net_utils.check_input_shape(input_shape, allow_unknown=False)
  smallest = next(s for s in range(1, 4096) if _output_size(s, ops) >= 1)
  largest = max(s for s in range(smallest, smallest + 1024)
                if _output_size(s, ops) == 1)
  if min(shape[:2]) < smallest:
    raise ValueError('input_shape: %s needs height and width of at least %d '
                     '(fc6 is a %dx%d %r conv after the last pool), got %r'
                     % (name, smallest, ops[-1][0], ops[-1][0],
                        ops[-1][2].upper(), shape))
  if not global_pool and max(shape[:2]) > largest:
    raise ValueError('input_shape: %s needs height and width from %d to %d so '
                     'that its logits are 1x1, got %r; pass global_pool=True '
                     'for larger images' % (name, smallest, largest, shape))
  return shape


def fc_head(net, end_points, num_classes, fc6, fc7, dropout_keep_prob,
            global_pool, weight_decay, initializer='glorot_uniform',
            bias_initializer='zeros', fc8_initializer='glorot_uniform'):
  """fc6 -> dropout6 -> fc7 [-> global_pool] -> dropout7 -> fc8 -> squeeze.

  fc6: (filters, kernel, padding); fc7: filters. end_points gets 'fc6', 'fc7',
  'global_pool' (if pooled), 'PreLogits' ([batch, fc7]), 'Logits' and
  'Predictions'; fc8 has a zero bias in all three nets.
  """

  def fc(x, filters, kernel, scope, padding='same'):
    return conv(x, filters, kernel, scope, padding=padding,
                weight_decay=weight_decay, initializer=initializer,
                bias_initializer=bias_initializer)

  filters, kernel, padding = fc6
  net = end_points['fc6'] = fc(net, filters, kernel, 'fc6', padding.lower())
  net = net_utils.dropout(net, dropout_keep_prob, 'dropout6')
  net = end_points['fc7'] = fc(net, fc7, 1, 'fc7')
  if global_pool:
    net = end_points['global_pool'] = net_utils.global_avg_pool(
        net, 'global_pool')
  end_points['PreLogits'] = net_utils.flatten(net, 'PreLogits')
  if not num_classes:
    return end_points
  net = net_utils.dropout(net, dropout_keep_prob, 'dropout7')
  logits = net_utils.conv_logits(net, num_classes, 'fc8', 'fc8/squeezed',
                                 weight_decay=weight_decay,
                                 initializer=fc8_initializer)
  end_points['Logits'] = logits
  end_points['Predictions'] = net_utils.predictions(logits)
  return end_points


def vgg(repeats, num_classes=1000, input_shape=(224, 224, 3),
        weight_decay=5e-4, dropout_keep_prob=0.5, fc_conv_padding='VALID',
        global_pool=False, model_scope='vgg'):
  """Builds a VGG; the model's call returns the end_points dict.

  Args:
    repeats: convs per stage, e.g. REPEATS['vgg_16'].
    num_classes: classes of 'fc8'; 0 or None builds no classifier and the
      features are end_points['PreLogits'] (fc7, [batch, 4096]).
    input_shape: (height, width, channels). With the defaults 224 to 255
      pixels (fc6's 7x7 'VALID' window on pool5 = input / 32 must give 1x1).
    weight_decay: L2 on all kernels with Slim's scale (vgg_arg_scope: 5e-4).
    dropout_keep_prob: keep probability of dropout6 and dropout7.
    fc_conv_padding: 'VALID' (Slim's default) or 'SAME' (fc6 keeps pool5's
      size: 32 to 63 pixels, or any size from 32 with global_pool).
    global_pool: average fc7 over its map before fc8, for larger inputs (the
      tensorflow/models version of vgg.py; not in the original VGG).
    model_scope: 'vgg_a', 'vgg_16' or 'vgg_19'.

  Returns:
    keras.Model named model_scope.
  """
  padding = str(fc_conv_padding).upper()
  if padding not in FC_CONV_PADDINGS:
    raise ValueError('fc_conv_padding: expected VALID or SAME, got %r'
                     % (fc_conv_padding,))
  ops = [(2, 2, 'valid')] * len(repeats) + [(7, 1, padding.lower())]
  shape = check_head_input(model_scope, input_shape, ops, global_pool)
  inputs = net_utils.input_layer(shape)
  end_points = {}
  net = inputs
  for stage, (count, depth) in enumerate(zip(repeats, DEPTHS), 1):
    for i in range(1, count + 1):
      scope = 'conv%d/conv%d_%d' % (stage, stage, i)
      net = end_points[scope] = conv(net, depth, 3, scope,
                                     weight_decay=weight_decay)
    net = end_points['pool%d' % stage] = max_pool(net, 2, 2,
                                                  'pool%d' % stage)
  fc_head(net, end_points, num_classes, (4096, 7, padding), 4096,
          dropout_keep_prob, global_pool, weight_decay)
  return net_utils.end_points_model(inputs, end_points, model_scope)


def _vgg_config(model_scope, doc):
  """The builder of one configuration, with vgg's keyword arguments."""

  def builder(num_classes=1000, input_shape=(224, 224, 3), weight_decay=5e-4,
              dropout_keep_prob=0.5, fc_conv_padding='VALID',
              global_pool=False):
    return vgg(REPEATS[model_scope], num_classes, input_shape,
               weight_decay=weight_decay, dropout_keep_prob=dropout_keep_prob,
               fc_conv_padding=fc_conv_padding, global_pool=global_pool,
               model_scope=model_scope)

  builder.__name__ = model_scope
  builder.__doc__ = '%s (%r); arguments as vgg.' % (doc, model_scope)
  builder.model_scope = model_scope
  return builder


vgg_a = _vgg_config('vgg_a', 'VGG configuration A, 11 layers')
vgg_16 = _vgg_config('vgg_16', 'VGG configuration D, 16 layers')
vgg_19 = _vgg_config('vgg_19', 'VGG configuration E, 19 layers')
