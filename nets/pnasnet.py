"""PNASNet-5 (Mobile, Large), as TF-Slim's nets/nasnet/pnasnet.py.

Liu et al., "Progressive Neural Architecture Search", arXiv:1712.00559. One
cell type for everything: the ImageNet stem's two cells and the reductions are
the normal cell with stride 2 (all cells are 'cell_<n>'); aux head and
'final_layer' as NASNet's (nets/nasnet_utils.py). The stem's filter_scaling
1/4 and 1/2 of 54 gives 13 and 27 filters: an odd count, whose factorized
reduction gives path 2 the extra filter. No model scope (the model's name is '').
"""

from nets import nasnet_utils
from nets import net_utils

MODEL_SCOPE = ''

PNASNET_5 = nasnet_utils.CellSpec(
    ['separable_5x5_2', 'max_pool_3x3', 'separable_7x7_2', 'max_pool_3x3',
     'separable_5x5_2', 'separable_3x3_2', 'separable_3x3_2', 'max_pool_3x3',
     'separable_3x3_2', 'none'],
    [1, 1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 4, 0, 1, 0])


def build_pnasnet(num_classes, input_shape, weight_decay, hp, batch_norm_decay,
                  batch_norm_epsilon):
  """TF-Slim's _build_pnasnet_base, the aux head built whenever it is used."""
  nasnet_utils.check_filters(hp, 2)
  layers = nasnet_utils.Layers(weight_decay, batch_norm_decay, batch_norm_epsilon,
                               hp.use_bounded_activation)
  # No separate reduction cells: the cells plus the two stem cells.
  total_num_cells = hp.num_cells + 2
  progress = (nasnet_utils.progress_variable()
              if hp.drop_path_keep_prob < 1.0 else None)
  cell = nasnet_utils.Cell(PNASNET_5, hp.num_conv_filters, hp.drop_path_keep_prob,
                           total_num_cells, hp.total_training_steps, layers,
                           progress)

  inputs = net_utils.input_layer(input_shape, min_size=3, allow_unknown=False)
  end_points = {}
  net, cell_outputs = nasnet_utils.imagenet_stem(layers, inputs, hp, cell)
  end_points['Stem'] = net

  reduction_indices = nasnet_utils.calc_reduction_layers(
      hp.num_cells, hp.num_reduction_layers)
  aux_head_cells = ([reduction_indices[1] - 1] if len(reduction_indices) >= 2
                    else [])
  filter_scaling = 1.0
  true_cell_num = 2
  prev_layer = None
  for cell_num in range(hp.num_cells):
    is_reduction = cell_num in reduction_indices
    if is_reduction:
      filter_scaling *= hp.filter_scaling_rate
    if hp.skip_reduction_layer_input or not is_reduction:
      prev_layer = cell_outputs[-2]
    net = cell(net, 'cell_%d' % cell_num, filter_scaling=filter_scaling,
               stride=2 if is_reduction else 1, prev_layer=prev_layer,
               cell_num=true_cell_num)
    end_points['Cell_%d' % cell_num] = net
    true_cell_num += 1
    cell_outputs.append(net)
    if hp.use_aux_head and cell_num in aux_head_cells and num_classes:
      nasnet_utils.aux_head(layers, net, end_points, num_classes,
                            'aux_%d' % cell_num)

  nasnet_utils.final_layer(layers, net, end_points, num_classes,
                           hp.dense_dropout_keep_prob)
  return net_utils.end_points_model(inputs, end_points, MODEL_SCOPE)


def pnasnet_mobile(num_classes=1001, input_shape=(224, 224, 3),
                   weight_decay=4e-5, num_cells=9, num_conv_filters=54,
                   stem_multiplier=1.0, filter_scaling_rate=2.0,
                   num_reduction_layers=2, drop_path_keep_prob=1.0,
                   dense_dropout_keep_prob=0.5, use_aux_head=True,
                   skip_reduction_layer_input=True, total_training_steps=250000,
                   use_bounded_activation=False, data_format='NHWC',
                   batch_norm_decay=0.9997, batch_norm_epsilon=1e-3):
  """PNASNet-5 Mobile (mobile_imagenet_config, pnasnet_mobile_arg_scope)."""
  hp = nasnet_utils.hparams_from(locals())
  return build_pnasnet(num_classes, input_shape, weight_decay, hp,
                       batch_norm_decay, batch_norm_epsilon)


def pnasnet_large(num_classes=1001, input_shape=(331, 331, 3), weight_decay=4e-5,
                  num_cells=12, num_conv_filters=216, stem_multiplier=3.0,
                  filter_scaling_rate=2.0, num_reduction_layers=2,
                  drop_path_keep_prob=0.6, dense_dropout_keep_prob=0.5,
                  use_aux_head=True, skip_reduction_layer_input=True,
                  total_training_steps=250000, use_bounded_activation=False,
                  data_format='NHWC', batch_norm_decay=0.9997,
                  batch_norm_epsilon=1e-3):
  """PNASNet-5 Large (large_imagenet_config, pnasnet_large_arg_scope)."""
  hp = nasnet_utils.hparams_from(locals())
  return build_pnasnet(num_classes, input_shape, weight_decay, hp,
                       batch_norm_decay, batch_norm_epsilon)


for _fn in (pnasnet_mobile, pnasnet_large):
  _fn.model_scope = MODEL_SCOPE
