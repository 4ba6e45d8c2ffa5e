"""Inception V2 and V3: TF-Slim's end points, its logits and AuxLogits on a TF-Slim
checkpoint (default and small sizes), its variable and multiply-add counts, the
separable stem, the aux head, bad options, and two training steps with the
project's training objects.

TF-Slim's nets come from the tf_slim package (tests/slim_reference_inception.py),
every variable and batch norm statistic random, so a wrong name, padding, pool
or kernel shows in the logits.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import slim_reference_inception as reference  # noqa: E402
from conftest import train_config  # noqa: E402
from nets import complexity  # noqa: E402
from nets import nets_factory  # noqa: E402
from nets import scopes  # noqa: E402
from slimkit import checkpoints  # noqa: E402
from slimkit import loop  # noqa: E402
from slimkit import run_state  # noqa: E402
from slimkit import slim_checkpoint  # noqa: E402
from slimkit import step  # noqa: E402

CLASSES = 1001  # the published checkpoints' (background + 1000)
SIZES = {'inception_v2': 224, 'inception_v3': 299}
KEYS = {'inception_v2': ['Logits'], 'inception_v3': ['Logits', 'AuxLogits']}
# All variables (batch norm statistics included) of TF-Slim's nets at 1001
# classes: /work/shared/reference/tf-slim-zoo.md, checked below on the graph.
ZOO_VARIABLES = {'inception_v2': 11199137, 'inception_v3': 27182194}
# TF-Slim's testModelHasExpectedNumberOfParameters: the base's model variables.
BASE_VARIABLES = {'inception_v2': 10173112, 'inception_v3': 21802784}


@pytest.fixture(scope='module')
def nets():
  """Each net once, at its default size, as for the published checkpoints."""
  return {name: nets_factory.build_model(name, CLASSES) for name in SIZES}


@pytest.fixture(scope='module')
def references(tmp_path_factory):
  """{name: (checkpoint prefix, images, TF-Slim's end points, its graph)}."""
  out = {}
  for name, size in SIZES.items():
    prefix = str(tmp_path_factory.mktemp(name) / 'model.ckpt')
    images, values, graph = reference.save_random_end_points(
        name, prefix, size, CLASSES, KEYS[name])
    out[name] = prefix, images, values, graph
  return out


def _assert_close(ours, theirs):
  scale = np.abs(theirs).max()
  assert scale > 0
  assert np.abs(ours - theirs).max() <= 1e-4 * scale


def _shapes(model):
  return {k: tuple(v.shape[1:]) for k, v in model.output.items()}


def test_inception_v2_end_points_224(nets):
  # TF-Slim's inception_v2_test.testBuildAndCheckAllEndPointsUptoMixed5c.
  expected = {
      'Conv2d_1a_7x7': (112, 112, 64), 'MaxPool_2a_3x3': (56, 56, 64),
      'Conv2d_2b_1x1': (56, 56, 64), 'Conv2d_2c_3x3': (56, 56, 192),
      'MaxPool_3a_3x3': (28, 28, 192), 'Mixed_3b': (28, 28, 256),
      'Mixed_3c': (28, 28, 320), 'Mixed_4a': (14, 14, 576),
      'Mixed_4b': (14, 14, 576), 'Mixed_4c': (14, 14, 576),
      'Mixed_4d': (14, 14, 576), 'Mixed_4e': (14, 14, 576),
      'Mixed_5a': (7, 7, 1024), 'Mixed_5b': (7, 7, 1024),
      'Mixed_5c': (7, 7, 1024),
      'AvgPool_1a': (1, 1, 1024), 'PreLogits': (1024,),
      'Logits': (CLASSES,), 'Predictions': (CLASSES,),
  }
  assert _shapes(nets['inception_v2']) == expected


def test_inception_v3_end_points_299(nets):
  # TF-Slim's inception_v3_test.testBuildAndCheckAllEndPointsUptoMixed7c.
  expected = {
      'Conv2d_1a_3x3': (149, 149, 32), 'Conv2d_2a_3x3': (147, 147, 32),
      'Conv2d_2b_3x3': (147, 147, 64), 'MaxPool_3a_3x3': (73, 73, 64),
      'Conv2d_3b_1x1': (73, 73, 80), 'Conv2d_4a_3x3': (71, 71, 192),
      'MaxPool_5a_3x3': (35, 35, 192), 'Mixed_5b': (35, 35, 256),
      'Mixed_5c': (35, 35, 288), 'Mixed_5d': (35, 35, 288),
      'Mixed_6a': (17, 17, 768), 'Mixed_6b': (17, 17, 768),
      'Mixed_6c': (17, 17, 768), 'Mixed_6d': (17, 17, 768),
      'Mixed_6e': (17, 17, 768), 'Mixed_7a': (8, 8, 1280),
      'Mixed_7b': (8, 8, 2048), 'Mixed_7c': (8, 8, 2048),
      'AuxLogits': (CLASSES,),
      'AvgPool_1a': (1, 1, 2048), 'PreLogits': (2048,),
      'Logits': (CLASSES,), 'Predictions': (CLASSES,),
  }
  assert _shapes(nets['inception_v3']) == expected


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SIZES))
def test_logits_equal_tf_slims_at_default_size(nets, references, name):
  prefix, images, theirs, _ = references[name]
  model = nets[name]
  restored, _, missing = checkpoints.restore_model(model, prefix)
  assert restored and not missing
  ours = model(images, training=False)
  for key in KEYS[name]:  # AuxLogits too: TF-Slim computes it at inference
    _assert_close(ours[key].numpy(), theirs[key])
  assert slim_checkpoint.identify(prefix) == name


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SIZES))
def test_counts_equal_tf_slims(nets, references, name):
  graph = references[name][3]
  summary = complexity.summarize(nets[name])
  assert summary['all_params'] == reference.graph_params(graph)
  assert summary['all_params'] == ZOO_VARIABLES[name]
  assert summary['macs'] == reference.graph_macs(graph)
  heads = sum(int(np.prod(v.shape)) for v in nets[name].weights
              if v.path.split('.')[0] in ('Logits', 'AuxLogits'))
  assert summary['all_params'] - heads == BASE_VARIABLES[name]
  # Batch norm has beta only (no gamma) and every conv but the classifiers'
  # (and Inception V2's separable stem) has batch norm, hence no bias.
  names = [v.path for v in nets[name].weights]
  assert not [p for p in names if p.endswith('/gamma')]
  biases = sorted(p for p in names if p.endswith('/bias'))
  expected = {'inception_v2': ['Conv2d_1a_7x7/bias',
                               'Logits.Conv2d_1c_1x1/bias'],
              'inception_v3': ['AuxLogits.Conv2d_2b_1x1/bias',
                               'Logits.Conv2d_1c_1x1/bias']}
  assert biases == expected[name]


def test_inception_v3_counts_against_the_paper(nets):
  # Szegedy et al. 2015: "5 billion multiply-adds per inference and ... less
  # than 25 million parameters" (without the aux head, used in training only).
  model = nets['inception_v3']
  summary = complexity.summarize(model)
  aux = [v for v in model.trainable_weights if v.path.startswith('AuxLogits.')]
  aux_params = sum(int(np.prod(v.shape)) for v in aux)
  assert summary['params'] - aux_params == 23819401 < 25e6
  # The aux head sees Mixed_6e pooled to 5x5: 1x1 conv to 128, a 5x5 conv to
  # 768 (on a 1x1 output), a 1x1 conv to the classes.
  aux_macs = sum(complexity.layer_macs(l) for l in model.layers
                 if l.name.startswith('AuxLogits.'))
  assert aux_macs == 25 * 768 * 128 + 25 * 128 * 768 + 768 * CLASSES
  # The abstract rounds the net's 5.71 B down to "5 billion" (other ports
  # count the same 5.7 B).
  assert abs(summary['macs'] - aux_macs - 5.713e9) < 1e6


# Small images: TF-Slim shrinks its fixed pools (and V3's aux 5x5 conv, to
# 'Conv2d_2a_1x1' here); ours pool globally and size the aux conv as it does.
# 107x107 is the smallest Inception V3 with its aux head.
@pytest.mark.parametrize('name, size', [
    ('inception_v2', 64),
    pytest.param('inception_v3', 107, marks=pytest.mark.slow),
])
def test_logits_equal_tf_slims_on_small_images(tmp_path, name, size):
  prefix = str(tmp_path / 'model.ckpt')
  images, theirs, _ = reference.save_random_end_points(
      name, prefix, size, 5, KEYS[name])
  model = nets_factory.build_model(name, 5, (size, size, 3))
  restored, _, missing = checkpoints.restore_model(model, prefix)
  assert restored and not missing
  ours = model(images, training=False)
  for key in KEYS[name]:
    _assert_close(ours[key].numpy(), theirs[key])
  if name == 'inception_v3':
    assert model.get_layer('AuxLogits.Conv2d_2a_1x1').kernel.shape == (
        1, 1, 128, 768)


def test_inception_v2_separable_stem(nets):
  model = nets['inception_v2']
  stem = model.get_layer('Conv2d_1a_7x7')
  assert isinstance(stem, keras.layers.SeparableConv2D)
  names = slim_checkpoint.slim_names(model, 'InceptionV2')
  shapes = {names[v.path]: tuple(v.shape) for v in stem.weights}
  assert shapes == {'InceptionV2/Conv2d_1a_7x7/depthwise_weights': (7, 7, 3, 8),
                    'InceptionV2/Conv2d_1a_7x7/pointwise_weights': (1, 1, 24, 64),
                    'InceptionV2/Conv2d_1a_7x7/biases': (64,)}
  # TF-Slim's arg scope decays conv2d kernels only, not the separable stem.
  decayed = nets_factory.build_model('inception_v2', 5, (32, 32, 3),
                                     weight_decay=4e-5)
  convs = [l for l in decayed.layers if isinstance(l, keras.layers.Conv2D)
           and not isinstance(l, keras.layers.SeparableConv2D)]
  assert len(decayed.losses) == len(convs) == 69
  assert decayed.get_layer('Conv2d_1a_7x7').depthwise_regularizer is None


def test_inception_v2_options():
  thin = nets_factory.build_model('inception_v2', 5, (32, 32, 3),
                                  depth_multiplier=0.25, use_separable_conv=False)
  stem = thin.get_layer('Conv2d_1a_7x7')
  assert not isinstance(stem, keras.layers.SeparableConv2D)
  assert stem.kernel.shape == (7, 7, 3, 16)  # max(int(64 * 0.25), min_depth 16)
  assert 'Conv2d_1a_7x7.BatchNorm' in {l.name for l in thin.layers}
  # Mixed_5c: 352, 320, 224, 128 -> 88 + 80 + 56 + 32.
  assert thin.output['Mixed_5c'].shape[-1] == 256
  # The separable stem's depthwise multiplier follows: int(16 / 3) = 5.
  separable = nets_factory.build_model('inception_v2', 5, (32, 32, 3),
                                       depth_multiplier=0.25)
  assert separable.get_layer('Conv2d_1a_7x7').depthwise_kernel.shape == (
      7, 7, 3, 5)


def test_inception_v3_aux_head(nets):
  model = nets['inception_v3']
  layers = {l.name: l for l in model.layers if l.name.startswith('AuxLogits.')}
  pool = layers['AuxLogits.AvgPool_1a_5x5']
  assert (pool.pool_size, pool.strides, pool.padding) == ((5, 5), (3, 3),
                                                         'valid')
  assert layers['AuxLogits.Conv2d_1b_1x1'].kernel.shape == (1, 1, 768, 128)
  conv = layers['AuxLogits.Conv2d_2a_5x5']
  assert conv.kernel.shape == (5, 5, 128, 768) and conv.padding == 'valid'
  assert conv.kernel_initializer.stddev == 0.01
  logits = layers['AuxLogits.Conv2d_2b_1x1']
  assert logits.kernel.shape == (1, 1, 768, CLASSES) and logits.use_bias
  assert logits.kernel_initializer.stddev == 0.001
  assert 'AuxLogits.Conv2d_2b_1x1.BatchNorm' not in layers
  assert 'AuxLogits.Conv2d_2a_5x5.BatchNorm' in layers
  # TF-Slim's odd scope names, kept so the published checkpoint loads.
  names = {l.name for l in model.layers}
  assert {'Mixed_5c.Branch_1.Conv2d_0b_1x1', 'Mixed_5c.Branch_1.Conv_1_0c_5x5',
          'Mixed_6a.Branch_0.Conv2d_1a_1x1', 'Mixed_7b.Branch_1.Conv2d_0b_3x1',
          'Mixed_7c.Branch_1.Conv2d_0c_3x1'} <= names
  assert model.get_layer('Mixed_6a.Branch_0.Conv2d_1a_1x1').kernel.shape[:2] == (
      3, 3)


def test_inception_v3_logits_scopes_select_both_heads(nets):
  model = nets['inception_v3']
  spec = nets_factory.get_spec('inception_v3')
  assert spec.logits_scopes == ('InceptionV3/Logits', 'InceptionV3/AuxLogits')
  inside, _, unmatched = scopes.select(model.weights, spec.model_scope,
                                       ','.join(spec.logits_scopes))
  assert not unmatched
  paths = {v.path for v in inside}
  assert paths == {v.path for v in model.weights
                   if v.path.split('.')[0] in ('Logits', 'AuxLogits')}
  # Logits' kernel and bias; the aux head's two convs with batch norm (kernel,
  # beta, moving mean and variance) and its classifier's kernel and bias.
  assert len(paths) == 2 + 2 * 4 + 2


def test_inception_v3_without_the_aux_head():
  # 75x75: the smallest the 'VALID' stem takes (the aux pool needs 107).
  model = nets_factory.build_model('inception_v3', 3, (75, 75, 3),
                                   create_aux_logits=False)
  assert 'AuxLogits' not in model.output
  assert not [l for l in model.layers if l.name.startswith('AuxLogits')]
  assert tuple(model.output['Mixed_7c'].shape[1:]) == (1, 1, 2048)
  out = model(np.zeros((2, 75, 75, 3), 'float32'), training=False)
  assert tuple(out['Logits'].shape) == (2, 3)
  features = nets_factory.build_model('inception_v3', 0, (75, 75, 3))
  assert set(features.output) >= {'PreLogits', 'Mixed_7c'}
  assert not {'Logits', 'AuxLogits'} & set(features.output)


@pytest.mark.parametrize('name, options, message', [
    ('inception_v3', dict(input_shape=(106, 106, 3)),
     r'input_shape: inception_v3 needs .* at least 107 .*AuxLogits.*'
     r'create_aux_logits=False.* 75'),
    ('inception_v3', dict(input_shape=(74, 200, 3), create_aux_logits=False),
     r'input_shape: inception_v3 needs .* at least 75, got \(74, 200, 3\)'),
    ('inception_v3', dict(depth_multiplier=0.0), 'depth_multiplier: expected'),
    ('inception_v2', dict(depth_multiplier=-1), 'depth_multiplier: expected'),
    ('inception_v2', dict(min_depth=0), 'min_depth: expected'),
    ('inception_v2', dict(data_format='NCHW'), "data_format: expected 'NHWC'"),
])
def test_bad_options_are_one_line_errors(name, options, message):
  with pytest.raises(ValueError, match=message) as info:
    nets_factory.build_model(name, 5, **options)
  assert '\n' not in str(info.value)


class _Metrics(object):
  """A loop hook keeping each call's metrics (one step per call here)."""

  every_steps = 1

  def __init__(self):
    self.values = []

  def begin(self, unused_loop):
    pass

  def after_call(self, unused_loop, call):
    self.values.append(dict(zip(step.METRICS, call.metrics)))

  def end(self, unused_loop, unused_call):
    pass


# Sizes with a last map of 2x2 or more: batch norm over batch 2 x 1x1 pixels
# normalizes two values per channel, whose gradients explode.
@pytest.mark.parametrize('name, size', [
    pytest.param('inception_v2', 64, marks=pytest.mark.slow),
    pytest.param('inception_v3', 107, marks=pytest.mark.slow),
])
def test_two_training_steps(tmp_path, name, size):
  keras.utils.set_random_seed(0)
  config = train_config(tmp_path / 'train', '(in memory)', model_name=name,
                        batch_size=2, weight_decay=4e-5, conv_gradients='tf',
                        jit_compile='false')
  state = run_state.RunState(config, tf.distribute.get_strategy(),
                             num_classes=5, input_shape=(size, size, 3),
                             num_samples=4)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (4, size, size, 3)).astype('float32')
  dataset = tf.data.Dataset.from_tensor_slices(
      (images, np.arange(4, dtype=np.int64) % 5)).repeat().batch(2)
  before = [v.numpy() for v in state.variables_to_train]
  metrics = _Metrics()
  steps = loop.Loop(step.Runner(state, jit_compile=config['jit_compile']), [metrics], max_steps=2,
                    steps_per_call=1)
  assert steps.run(dataset) == 2
  assert len(metrics.values) == 2
  for values in metrics.values:
    assert all(np.isfinite(list(values.values()))), values
    assert values['cross_entropy'] > 0 and values['regularization_loss'] > 0
    # Inception V3's AuxLogits adds 0.4 x its cross-entropy, as TF-Slim.
    assert (values['aux_loss'] > 0) == (name == 'inception_v3')
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(before, state.variables_to_train)]
  assert all(changed)  # the aux head too: its loss reaches it
  if name == 'inception_v3':
    assert any(v.path.startswith('AuxLogits.') for v in state.variables_to_train)
