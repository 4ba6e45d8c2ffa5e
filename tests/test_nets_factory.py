"""nets_factory: names, errors, get_network_fn, preprocessing map, Slim layer
names and the classifier scopes used by --checkpoint_exclude_scopes; and the
MAC counter on layers whose cost is known by hand."""

import os
import re

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nets import complexity  # noqa: E402
from nets import nets_factory  # noqa: E402
from nets import scopes  # noqa: E402

NAMES = [
    'alexnet_v2',
    'cifarnet', 'custom_cnn', 'custom_cnn_wide', 'inception_resnet_v2',
    'inception_v1', 'inception_v1_cifar',
    'inception_v2', 'inception_v3', 'inception_v4', 'lenet',
    'mobilenet_v1', 'mobilenet_v1_025', 'mobilenet_v1_050', 'mobilenet_v1_075',
    'mobilenet_v1_cifar', 'mobilenet_v2', 'mobilenet_v2_035', 'mobilenet_v2_050',
    'mobilenet_v2_075', 'mobilenet_v2_130', 'mobilenet_v2_140', 'mobilenet_v2_cifar',
    'mobilenet_v3_large', 'mobilenet_v3_large_075', 'mobilenet_v3_large_cifar',
    'mobilenet_v3_large_minimalistic', 'mobilenet_v3_small', 'mobilenet_v3_small_075',
    'mobilenet_v3_small_cifar', 'mobilenet_v3_small_minimalistic', 'nasnet_cifar',
    'nasnet_large', 'nasnet_mobile', 'overfeat', 'pnasnet_large', 'pnasnet_mobile',
    'resnet_v1_101', 'resnet_v1_152', 'resnet_v1_50',
    'resnet_v1_50_cifar', 'resnet_v2_101', 'resnet_v2_152', 'resnet_v2_200',
    'resnet_v2_50', 'vgg_16', 'vgg_19', 'vgg_a']


def test_list_networks():
  assert nets_factory.list_networks() == NAMES
  assert sorted(nets_factory.networks_map) == NAMES


def test_builder_defaults_merge_the_names_fixed_options():
  assert nets_factory.builder_defaults('custom_cnn_wide')['widths'] == (96, 192, 384)
  assert nets_factory.builder_defaults('custom_cnn')['widths'] == (64, 128, 256)
  assert nets_factory.builder_defaults('resnet_v1_50')['batch_norm_decay'] == 0.997
  assert nets_factory.builder_defaults('inception_v1_cifar')['small_input'] is True
  assert 'batch_norm_decay' not in nets_factory.builder_defaults('lenet')


def test_unknown_name_lists_the_choices():
  with pytest.raises(ValueError) as info:
    nets_factory.get_network_fn('inception_v9', 10)
  message = str(info.value)
  assert 'inception_v9' in message and '\n' not in message
  assert all(name in message for name in NAMES)


def test_unknown_option_names_the_accepted_ones():
  with pytest.raises(ValueError, match=r"unknown option\(s\) activation for "
                     r"network 'resnet_v1_50'; it accepts: .*batch_norm_decay"):
    nets_factory.build_model('resnet_v1_50', 10, activation='elu')
  with pytest.raises(ValueError, match='depth_multiplierr'):
    nets_factory.get_network_fn('mobilenet_v1', 10, depth_multiplierr=0.5)


def test_none_options_keep_the_defaults():
  model = nets_factory.build_model('lenet', 10, activation=None,
                                   dropout_keep_prob=None)
  assert model.get_layer('dropout3').rate == 0.5


@pytest.mark.parametrize('name, size, preprocessing, scope', [
    ('inception_v1', 224, 'inception', 'InceptionV1'),
    ('inception_v1_cifar', 32, 'cifar', 'InceptionV1'),
    ('mobilenet_v1', 224, 'inception', 'MobilenetV1'),
    ('mobilenet_v1_050', 224, 'inception', 'MobilenetV1'),
    ('mobilenet_v1_cifar', 32, 'cifar', 'MobilenetV1'),
    ('resnet_v1_50', 224, 'vgg', 'resnet_v1_50'),
    ('resnet_v1_152', 224, 'vgg', 'resnet_v1_152'),
    ('resnet_v1_50_cifar', 32, 'cifar', 'resnet_v1_50'),
    ('resnet_v2_200', 224, 'vgg', 'resnet_v2_200'),
    ('vgg_19', 224, 'vgg', 'vgg_19'),
    ('overfeat', 231, 'vgg', 'overfeat'),
    ('cifarnet', 32, 'cifarnet', 'CifarNet'),
    ('lenet', 28, 'lenet', 'LeNet'),
    ('custom_cnn', 32, 'cifar', 'CustomCNN'),
])
def test_spec_follows_slims_maps(name, size, preprocessing, scope):
  spec = nets_factory.get_spec(name)
  assert spec.default_image_size == size
  assert nets_factory.default_image_size(name) == size
  assert nets_factory.preprocessing_name(name) == preprocessing
  assert spec.model_scope == scope
  assert nets_factory.get_network_fn(name, 10).default_image_size == size


# One name per builder; the other names share its builder and classifier.
DISTINCT = {'cifarnet': [], 'lenet': [], 'custom_cnn': ['custom_cnn_wide'],
            'inception_v1': ['inception_v1_cifar'],
            'inception_v2': [], 'inception_v3': [],
            'inception_v4': [], 'inception_resnet_v2': [],
            'resnet_v1_50': ['resnet_v1_50_cifar', 'resnet_v1_101',
                             'resnet_v1_152'],
            'resnet_v2_50': ['resnet_v2_101', 'resnet_v2_152', 'resnet_v2_200'],
            'vgg_a': ['vgg_16', 'vgg_19'], 'alexnet_v2': [], 'overfeat': [],
            'mobilenet_v1_025': ['mobilenet_v1', 'mobilenet_v1_050',
                                 'mobilenet_v1_075', 'mobilenet_v1_cifar'],
            'mobilenet_v2_035': ['mobilenet_v2', 'mobilenet_v2_050',
                                 'mobilenet_v2_075', 'mobilenet_v2_130',
                                 'mobilenet_v2_140', 'mobilenet_v2_cifar'],
            'mobilenet_v3_small': ['mobilenet_v3_large', 'mobilenet_v3_large_075',
                                   'mobilenet_v3_large_cifar',
                                   'mobilenet_v3_large_minimalistic',
                                   'mobilenet_v3_small_075',
                                   'mobilenet_v3_small_cifar',
                                   'mobilenet_v3_small_minimalistic'],
            # No model scope; the aux head's scope is its cell's: aux_11 both.
            'nasnet_cifar': ['nasnet_large'], 'nasnet_mobile': [],
            'pnasnet_mobile': [], 'pnasnet_large': []}


def test_distinct_covers_every_name():
  assert sorted(sum(([k] + v for k, v in DISTINCT.items()), [])) == NAMES
  for name, others in DISTINCT.items():
    spec = nets_factory.get_spec(name)
    for other in others:
      other_spec = nets_factory.get_spec(other)
      assert other_spec.fn.__module__ == spec.fn.__module__
      assert other_spec.logits_scopes == tuple(
          other_spec.model_scope + s[len(spec.model_scope):]
          for s in spec.logits_scopes)
  assert nets_factory.logits_scopes('resnet_v1_101') == (
      'resnet_v1_101/logits',)


# The large builds (4-9 s each) run in the slow set only.
LARGE = ('pnasnet_large', 'nasnet_cifar', 'nasnet_mobile', 'overfeat',
         'inception_resnet_v2', 'inception_v4')


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n
    for n in sorted(DISTINCT)])
def test_logits_scopes_select_exactly_the_classifier(name):
  spec = nets_factory.get_spec(name)
  size = {'lenet': 28, 'cifarnet': 28, 'inception_v3': 107, 'inception_v4': 107,
          'inception_resnet_v2': 107, 'vgg_a': 224, 'alexnet_v2': 195,
          'overfeat': 231}.get(name, 8)
  model = nets_factory.build_model(name, 7, (size, size, 3))
  assert model.name == spec.model_scope
  # The classifier's kernel and bias: the only weights sized by num_classes=7;
  # and the whole auxiliary head where there is one (a classifier too).
  classifier = {v.path for v in model.weights if v.shape[-1] == 7}
  aux = {v.path for v in model.weights
         if re.match(r'(AuxLogits|aux_\d+)\.', v.path)}  # NASNet: aux_<cell>
  assert len(classifier) == (4 if aux else 2)
  inside, outside, unmatched = scopes.select(
      model.weights, spec.model_scope, ','.join(spec.logits_scopes))
  assert {v.path for v in inside} == classifier | aux
  assert not unmatched and len(outside) == len(model.weights) - len(inside)
  # Every variable path is the same in every build (no auto-numbered names).
  again = nets_factory.build_model(name, 7, (size, size, 3))
  assert [v.path for v in again.variables] == [
      v.path for v in model.variables]


def test_num_classes_0_gives_pre_logits_only():
  model = nets_factory.build_model('inception_v1_cifar', 0, (8, 8, 3))
  assert 'Logits' not in model.output and 'Predictions' not in model.output
  assert tuple(model.output['PreLogits'].shape) == (None, 1024)
  assert not [l for l in model.layers if l.name.startswith('Logits.Conv')]


def test_slim_layer_names():
  inception = nets_factory.build_model('inception_v1_cifar', 10, (8, 8, 3))
  names = {l.name for l in inception.layers}
  for name in ['Conv2d_1a_7x7', 'Conv2d_1a_7x7.BatchNorm',
               'Mixed_3b.Branch_1.Conv2d_0b_3x3',
               'Mixed_3b.Branch_1.Conv2d_0b_3x3.BatchNorm',
               'Mixed_3b.Branch_3.MaxPool_0a_3x3',
               'Mixed_5b.Branch_2.Conv2d_0a_3x3',  # Slim's own name, kept.
               'Logits.Conv2d_0c_1x1', 'Predictions']:
    assert name in names, name
  assert inception.get_layer(
      'Logits.Conv2d_0c_1x1').kernel.shape == (1, 1, 1024, 10)
  inside, _, _ = scopes.select(inception.variables, 'InceptionV1',
                               'InceptionV1/Mixed_5c/Branch_3')
  assert {v.path for v in inside} == {
      'Mixed_5c.Branch_3.Conv2d_0b_1x1/kernel',
      'Mixed_5c.Branch_3.Conv2d_0b_1x1.BatchNorm/beta',
      'Mixed_5c.Branch_3.Conv2d_0b_1x1.BatchNorm/moving_mean',
      'Mixed_5c.Branch_3.Conv2d_0b_1x1.BatchNorm/moving_variance'}

  resnet = nets_factory.build_model('resnet_v1_50_cifar', 10, (8, 8, 3))
  names = {l.name for l in resnet.layers}
  for name in ['conv1', 'conv1.BatchNorm', 'block1.unit_1.bottleneck_v1.conv1',
               'block1.unit_1.bottleneck_v1.shortcut',
               'block1.unit_3.bottleneck_v1.conv2.BatchNorm',
               'block4.unit_3.bottleneck_v1.conv3', 'logits']:
    assert name in names, name
  # Stride in the last unit's 3x3 conv; identity shortcut subsampled there.
  assert resnet.get_layer('block1.unit_3.bottleneck_v1.conv2').strides == (2, 2)
  assert resnet.get_layer('block1.unit_1.bottleneck_v1.conv2').strides == (1, 1)
  assert resnet.get_layer('block1.unit_3.bottleneck_v1.shortcut').strides == (
      2, 2)

  mobilenet = nets_factory.build_model('mobilenet_v1_cifar', 10, (8, 8, 3))
  layer = mobilenet.get_layer('Conv2d_1_depthwise')
  assert isinstance(layer, keras.layers.DepthwiseConv2D)
  assert mobilenet.get_layer('Conv2d_1_pointwise').kernel_size == (1, 1)
  assert 'Conv2d_13_pointwise.BatchNorm' in {l.name for l in mobilenet.layers}


def test_get_network_fn_builds_on_first_call():
  fn = nets_factory.get_network_fn('lenet', 10, weight_decay=0.01)
  assert fn.model is None and fn.default_image_size == 28
  assert fn.logits_scopes == ('LeNet/fc4',)
  images = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(
      'float32')
  logits, end_points = fn(images)
  assert fn.model.name == 'LeNet' and tuple(logits.shape) == (3, 10)
  assert set(end_points) >= {'conv1', 'pool2', 'fc3', 'Logits', 'Predictions'}
  assert len(fn.model.losses) == 4  # Weight decay on the four kernels.
  # is_training=False: dropout off, the same images give the same logits.
  np.testing.assert_array_equal(logits.numpy(), fn(images)[0].numpy())
  with pytest.raises(ValueError, match=r'images: lenet was built for images '
                     r'of shape \(28, 28, 1\), got \(32, 32, 1\)'):
    fn(np.zeros((1, 32, 32, 1), 'float32'))


def test_get_network_fn_training_mode_and_pre_logits():
  train_fn = nets_factory.get_network_fn('lenet', 10, is_training=True)
  images = np.ones((2, 28, 28, 1), 'float32')
  a, _ = train_fn(images)
  b, _ = train_fn(images)
  assert not np.allclose(a.numpy(), b.numpy())  # Dropout is on.
  features_fn = nets_factory.get_network_fn('mobilenet_v1_025', 0)
  features, end_points = features_fn(np.ones((1, 64, 64, 3), 'float32'))
  assert tuple(features.shape) == (1, 256) and 'Logits' not in end_points


def test_count_macs_by_hand():
  inputs = keras.Input((10, 8, 6))
  x = keras.layers.Conv2D(4, 3, strides=2, padding='same')(inputs)   # 5x4x4
  x = keras.layers.DepthwiseConv2D(3, padding='same')(x)             # 5x4x4
  x = keras.layers.Conv2D(8, 1, groups=2)(x)                         # 5x4x8
  x = keras.layers.BatchNormalization()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  x = keras.layers.Dense(3)(x)
  model = keras.Model(inputs, x)
  expected = (5 * 4 * 4 * 3 * 3 * 6 + 5 * 4 * 4 * 3 * 3 + 5 * 4 * 8 * 2 +
              8 * 3)
  assert complexity.count_macs(model) == expected
  params = complexity.summarize(model)
  assert params['params'] == (3 * 3 * 6 * 4 + 4) + (3 * 3 * 4 + 4) + (
      2 * 8 + 8) + 2 * 8 + (8 * 3 + 3)
  assert params['all_params'] == params['params'] + 2 * 8


def test_count_macs_needs_a_known_size():
  model = nets_factory.build_model('custom_cnn', 10, (None, None, 3))
  with pytest.raises(ValueError, match="cannot count multiply-adds of layer "
                     "'block1.conv1'"):
    complexity.count_macs(model)
