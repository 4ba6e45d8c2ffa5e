"""NASNet-A (CIFAR, Mobile, Large), as TF-Slim's nets/nasnet/nasnet.py.

Zoph et al., "Learning Transferable Architectures for Scalable Image
Recognition", arXiv:1707.07012. A stem, then num_cells normal cells
('cell_<n>') with a reduction cell ('reduction_cell_<k>', stride 2, filters x
filter_scaling_rate) before the cells calc_reduction_layers picks; an auxiliary
head ('aux_<n>') on the cell before the second reduction; 'final_layer'. The
ImageNet stem is conv0 + two reduction cells ('cell_stem_0', 'cell_stem_1');
CIFAR's is one 3x3 conv.

TF-Slim's nets have no model scope: the Keras model's name is '' and its
variables carry TF-Slim's names directly ('cell_0/comb_iter_0/left/
separable_5x5_1/depthwise_weights', 'final_layer/FC/weights').
"""

from nets import nasnet_utils
from nets import net_utils

MODEL_SCOPE = ''


def build_nasnet(num_classes, input_shape, weight_decay, hp, stem_type,
                 batch_norm_decay, batch_norm_epsilon):
  """TF-Slim's _build_nasnet_base with the aux head built whenever it is used.

  The published checkpoints hold the aux head's variables (TF-Slim builds it
  for training only), so it is built whenever num_classes and use_aux_head:
  end_points['AuxLogits']. At inference it does not change 'Logits'.
  """
  imagenet = stem_type == 'imagenet'
  nasnet_utils.check_filters(hp, 2 if imagenet else 0)
  layers = nasnet_utils.Layers(weight_decay, batch_norm_decay, batch_norm_epsilon,
                               hp.use_bounded_activation)
  # Drop path scales by position among all cells: + 2 reductions (+ 2 stem).
  total_num_cells = hp.num_cells + 2 + (2 if imagenet else 0)
  progress = (nasnet_utils.progress_variable()
              if hp.drop_path_keep_prob < 1.0 else None)

  def cell(spec):
    return nasnet_utils.Cell(spec, hp.num_conv_filters, hp.drop_path_keep_prob,
                             total_num_cells, hp.total_training_steps, layers,
                             progress)

  normal_cell = cell(nasnet_utils.NASNET_A_NORMAL)
  reduction_cell = cell(nasnet_utils.NASNET_A_REDUCTION)

  # The ImageNet stem's VALID 3x3 conv needs 3 pixels; the rest pools globally.
  inputs = net_utils.input_layer(input_shape, min_size=3 if imagenet else 1,
                                 allow_unknown=False)
  end_points = {}
  if imagenet:
    net, cell_outputs = nasnet_utils.imagenet_stem(layers, inputs, hp,
                                                   reduction_cell)
  else:
    net, cell_outputs = nasnet_utils.cifar_stem(layers, inputs, hp)
  end_points['Stem'] = net

  reduction_indices = nasnet_utils.calc_reduction_layers(
      hp.num_cells, hp.num_reduction_layers)
  aux_head_cells = ([reduction_indices[1] - 1] if len(reduction_indices) >= 2
                    else [])
  filter_scaling = 1.0
  true_cell_num = 2 if imagenet else 0  # counts the stem cells
  prev_layer = None
  for cell_num in range(hp.num_cells):
    if hp.skip_reduction_layer_input:
      prev_layer = cell_outputs[-2]
    if cell_num in reduction_indices:
      filter_scaling *= hp.filter_scaling_rate
      k = reduction_indices.index(cell_num)
      net = reduction_cell(net, 'reduction_cell_%d' % k,
                           filter_scaling=filter_scaling, stride=2,
                           prev_layer=cell_outputs[-2], cell_num=true_cell_num)
      end_points['Reduction_Cell_%d' % k] = net
      true_cell_num += 1
      cell_outputs.append(net)
    if not hp.skip_reduction_layer_input:
      prev_layer = cell_outputs[-2]
    net = normal_cell(net, 'cell_%d' % cell_num, filter_scaling=filter_scaling,
                      stride=1, prev_layer=prev_layer, cell_num=true_cell_num)
    end_points['Cell_%d' % cell_num] = net
    true_cell_num += 1
    if hp.use_aux_head and cell_num in aux_head_cells and num_classes:
      nasnet_utils.aux_head(layers, net, end_points, num_classes,
                            'aux_%d' % cell_num)
    cell_outputs.append(net)

  nasnet_utils.final_layer(layers, net, end_points, num_classes,
                           hp.dense_dropout_keep_prob)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


def nasnet_cifar(num_classes=10, input_shape=(32, 32, 3), weight_decay=5e-4,
                 num_cells=18, num_conv_filters=32, stem_multiplier=3.0,
                 filter_scaling_rate=2.0, num_reduction_layers=2,
                 drop_path_keep_prob=0.6, dense_dropout_keep_prob=1.0,
                 use_aux_head=True, skip_reduction_layer_input=False,
                 total_training_steps=937500, use_bounded_activation=False,
                 data_format='NHWC', batch_norm_decay=0.9,
                 batch_norm_epsilon=1e-5):
  """NASNet-A for CIFAR (TF-Slim's cifar_config and nasnet_cifar_arg_scope).

  The options are TF-Slim's hparams (drop_path_keep_prob: the last cell's keep
  probability at the end of training; total_training_steps: 600 epochs at batch
  32) and arg-scope settings. Returns a keras.Model named ''.
  """
  hp = nasnet_utils.hparams_from(locals())
  return build_nasnet(num_classes, input_shape, weight_decay, hp, 'cifar',
                      batch_norm_decay, batch_norm_epsilon)


def nasnet_mobile(num_classes=1001, input_shape=(224, 224, 3), weight_decay=4e-5,
                  num_cells=12, num_conv_filters=44, stem_multiplier=1.0,
                  filter_scaling_rate=2.0, num_reduction_layers=2,
                  drop_path_keep_prob=1.0, dense_dropout_keep_prob=0.5,
                  use_aux_head=True, skip_reduction_layer_input=False,
                  total_training_steps=250000, use_bounded_activation=False,
                  data_format='NHWC', batch_norm_decay=0.9997,
                  batch_norm_epsilon=1e-3):
  """NASNet-A Mobile, '4 @ 1056' (mobile_imagenet_config, nasnet_mobile_arg_scope)."""
  hp = nasnet_utils.hparams_from(locals())
  return build_nasnet(num_classes, input_shape, weight_decay, hp, 'imagenet',
                      batch_norm_decay, batch_norm_epsilon)


def nasnet_large(num_classes=1001, input_shape=(331, 331, 3), weight_decay=5e-5,
                 num_cells=18, num_conv_filters=168, stem_multiplier=3.0,
                 filter_scaling_rate=2.0, num_reduction_layers=2,
                 drop_path_keep_prob=0.7, dense_dropout_keep_prob=0.5,
                 use_aux_head=True, skip_reduction_layer_input=True,
                 total_training_steps=250000, use_bounded_activation=False,
                 data_format='NHWC', batch_norm_decay=0.9997,
                 batch_norm_epsilon=1e-3):
  """NASNet-A Large, '6 @ 4032' (large_imagenet_config, nasnet_large_arg_scope)."""
  hp = nasnet_utils.hparams_from(locals())
  return build_nasnet(num_classes, input_shape, weight_decay, hp, 'imagenet',
                      batch_norm_decay, batch_norm_epsilon)


for _fn in (nasnet_cifar, nasnet_mobile, nasnet_large):
  _fn.model_scope = MODEL_SCOPE
