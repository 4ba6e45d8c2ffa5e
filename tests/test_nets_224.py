"""ImageNet-size nets: end-point shapes (TF-Slim's test tables) and the parameter
and multiply-add counts against the published ones. Construction only: shapes
and counts are static, so no forward pass of a 224x224 batch is needed."""

import functools
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nets import complexity  # noqa: E402
from nets import nets_factory  # noqa: E402
from nets import resnet_v1  # noqa: E402


@functools.lru_cache(maxsize=None)
def _model(name, size=224, num_classes=1000):
  return nets_factory.build_model(name, num_classes, (size, size, 3))


@functools.lru_cache(maxsize=None)
def _summary(name, size=224):
  return complexity.summarize(_model(name, size))


def _shapes(model):
  return {k: tuple(v.shape[1:]) for k, v in model.output.items()}


def test_inception_v1_end_points_224():
  shapes = _shapes(_model('inception_v1'))
  # TF-Slim's inception_v1_test.testBuildAndCheckAllEndPointsUptoMixed5c.
  expected = {
      'Conv2d_1a_7x7': (112, 112, 64),
      'MaxPool_2a_3x3': (56, 56, 64),
      'Conv2d_2b_1x1': (56, 56, 64),
      'Conv2d_2c_3x3': (56, 56, 192),
      'MaxPool_3a_3x3': (28, 28, 192),
      'Mixed_3b': (28, 28, 256),
      'Mixed_3c': (28, 28, 480),
      'MaxPool_4a_3x3': (14, 14, 480),
      'Mixed_4b': (14, 14, 512),
      'Mixed_4c': (14, 14, 512),
      'Mixed_4d': (14, 14, 512),
      'Mixed_4e': (14, 14, 528),
      'Mixed_4f': (14, 14, 832),
      'MaxPool_5a_2x2': (7, 7, 832),
      'Mixed_5b': (7, 7, 832),
      'Mixed_5c': (7, 7, 1024),
      'AvgPool_0a_7x7': (1, 1, 1024),
      'PreLogits': (1024,),
      'Logits': (1000,),
      'Predictions': (1000,),
  }
  assert shapes == expected
  assert 'AuxLogits' not in shapes  # Slim's inception_v1 has no aux head.


def test_resnet_v1_50_end_points_224():
  shapes = _shapes(_model('resnet_v1_50'))
  # Slim strides the LAST unit of blocks 1-3, so block1 already ends at 28x28.
  expected = {
      'conv1': (112, 112, 64),
      'pool1': (56, 56, 64),
      'block1': (28, 28, 256),
      'block2': (14, 14, 512),
      'block3': (7, 7, 1024),
      'block4': (7, 7, 2048),
      'global_pool': (1, 1, 2048),
      'PreLogits': (2048,),
      'Logits': (1000,),
      'Predictions': (1000,),
  }
  assert shapes == expected


def test_mobilenet_v1_end_points_224():
  shapes = _shapes(_model('mobilenet_v1'))
  # TF-Slim's mobilenet_v1_test.testBuildAndCheckAllEndPointsUptoConv2d_13.
  expected = {
      'Conv2d_0': (112, 112, 32),
      'Conv2d_1_depthwise': (112, 112, 32),
      'Conv2d_1_pointwise': (112, 112, 64),
      'Conv2d_2_depthwise': (56, 56, 64),
      'Conv2d_2_pointwise': (56, 56, 128),
      'Conv2d_3_depthwise': (56, 56, 128),
      'Conv2d_3_pointwise': (56, 56, 128),
      'Conv2d_4_depthwise': (28, 28, 128),
      'Conv2d_4_pointwise': (28, 28, 256),
      'Conv2d_5_depthwise': (28, 28, 256),
      'Conv2d_5_pointwise': (28, 28, 256),
      'Conv2d_6_depthwise': (14, 14, 256),
      'Conv2d_6_pointwise': (14, 14, 512),
      'Conv2d_12_depthwise': (7, 7, 512),
      'Conv2d_12_pointwise': (7, 7, 1024),
      'Conv2d_13_depthwise': (7, 7, 1024),
      'Conv2d_13_pointwise': (7, 7, 1024),
      'AvgPool_1a': (1, 1, 1024),
      'PreLogits': (1024,),
      'Logits': (1000,),
      'Predictions': (1000,),
  }
  for i in range(7, 12):
    expected['Conv2d_%d_depthwise' % i] = (14, 14, 512)
    expected['Conv2d_%d_pointwise' % i] = (14, 14, 512)
  assert shapes == expected


@pytest.mark.parametrize('name, end_point, shape', [
    ('inception_v1', 'Mixed_5c', (4, 4, 1024)),
    ('resnet_v1_50', 'block4', (4, 4, 2048)),
    ('mobilenet_v1', 'Conv2d_13_pointwise', (4, 4, 1024)),
])
def test_half_size_images(name, end_point, shape):
  model = _model(name, size=112, num_classes=5)
  assert tuple(model.output[end_point].shape[1:]) == shape
  out = model(np.zeros((1, 112, 112, 3), 'float32'), training=False)
  assert tuple(out['Logits'].shape) == (1, 5)


def test_inception_v1_base_matches_slim_variable_count():
  # TF-Slim's testModelHasExpectedNumberOfParameters: all model variables of
  # inception_v1_base (kernels, BatchNorm beta, moving mean and variance).
  base = _model('inception_v1', num_classes=0)
  assert complexity.count_params(base, trainable_only=False) == 5607184
  assert not any(v.path.endswith('gamma') for v in base.variables)


def _within(ours, published, unit):
  """Within 2 %, or within the rounding of the published figure (half its last
  digit: the MobileNet paper gives 0.5M for a net with 0.47M weights)."""
  return abs(ours - published) <= max(0.02 * published, unit / 2.0)


M = 1e6

# (name, input size, published params, params unit, published MACs, MACs unit)
# MobileNet V1: Howard et al. 2017, Tables 6 and 7 (1000 classes).
PUBLISHED = [
    ('mobilenet_v1', 224, 4.2 * M, 0.1 * M, 569 * M, M),
    ('mobilenet_v1_075', 224, 2.6 * M, 0.1 * M, 325 * M, M),
    ('mobilenet_v1_050', 224, 1.3 * M, 0.1 * M, 149 * M, M),
    ('mobilenet_v1_025', 224, 0.5 * M, 0.1 * M, 41 * M, M),
    ('mobilenet_v1', 192, 4.2 * M, 0.1 * M, 418 * M, M),
    ('mobilenet_v1', 160, 4.2 * M, 0.1 * M, 290 * M, M),
    ('mobilenet_v1', 128, 4.2 * M, 0.1 * M, 186 * M, M),
]


@pytest.mark.parametrize('name, size, params, params_unit, macs, macs_unit',
                         PUBLISHED)
def test_mobilenet_v1_counts_match_paper(name, size, params, params_unit, macs,
                                         macs_unit):
  summary = _summary(name, size)
  assert _within(summary['params'], params, params_unit), summary
  assert _within(summary['macs'], macs, macs_unit), summary


def test_inception_v1_counts():
  summary = _summary('inception_v1')
  # "1.5 billion multiply-adds" (Szegedy et al. 2014). Slim's net has 3x3 convs
  # where GoogLeNet has 5x5 (Branch_2: -84 M MACs) while the paper's Table 1
  # undercounts conv1 (34 M listed, 118 M by its shapes): the two nearly cancel.
  assert _within(summary['macs'], 1.5e9, 0.1e9)
  model = _model('inception_v1')
  branch_2 = [l for l in model.layers
              if '.Branch_2.Conv2d_0' in l.name and l.name.endswith('_3x3')]
  assert len(branch_2) == 9
  macs_3x3 = sum(complexity.layer_macs(l) for l in branch_2)
  params_3x3 = sum(l.kernel.shape.num_elements() for l in branch_2)
  assert abs(macs_3x3 * 16 / 9 - 84.3e6) < 0.1e6
  # GoogLeNet's 5x5 would add 16/9 of those weights: 6.998 M for the paper's
  # layer shapes, whose Table 1 sums to 6.8 M; Slim's net has exactly 6,617,624.
  assert summary['params'] == 6617624
  assert summary['params'] + params_3x3 * 16 // 9 == 6998552


def _paper_layout_macs(model, blocks):
  """MACs if each block's stride-2 sat in the first unit of the next block, as
  in the paper: the strided last unit's conv2 and conv3 would run at 4x the
  area (its conv1 and the next block's first unit cost the same either way)."""
  extra = 0
  for block, _, num_units, stride in blocks:
    if stride == 1:
      continue
    unit = '%s.unit_%d.bottleneck_v1' % (block, num_units)
    for conv in ('conv2', 'conv3'):
      extra += 3 * complexity.layer_macs(model.get_layer(unit + '.' + conv))
  return complexity.count_macs(model) + extra


@pytest.mark.parametrize('depth, params, macs', [
    (50, 25.6 * M, 3.8e9),     # He et al. 2015, Table 1 ("FLOPs" = mult-adds).
    pytest.param(101, 44.5 * M, 7.6e9,  # 152 (60.2 M, 11.3e9): see nets_table.py.
                 marks=pytest.mark.slow),
])
def test_resnet_v1_counts(depth, params, macs):
  name = 'resnet_v1_%d' % depth
  summary = _summary(name)
  model = _model(name)
  assert _within(summary['params'], params, 0.1 * M), summary
  paper_layout = _paper_layout_macs(model, resnet_v1.BLOCKS[depth])
  assert _within(paper_layout, macs, 0.1e9), paper_layout
  # Slim's layout itself is 376 M MACs (3 x 125 M) cheaper than the paper's.
  assert abs(paper_layout - summary['macs'] - 375.7e6) < 0.5e6
