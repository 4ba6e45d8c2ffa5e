"""ResNet v2, VGG, AlexNet v2 and OverFeat against TF-Slim's own code.

Each net is built once at its default size (module cache) and compared with
the tf_slim package's net built in TF1 graph mode: every variable name and
shape, the shared end points' shapes, the logits on a random TF-Slim
checkpoint (every variable and batch norm statistic random), the parameter
counts TF-Slim's README table gives and the papers' multiply-adds. Then the
size rules, the global_pool and fc_conv_padding options, and two training
steps per family with the project's training objects.
"""

import collections
import functools
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import slim_reference  # noqa: E402
import slim_reference_classic  # noqa: E402
from conftest import train_config  # noqa: E402
from nets import complexity  # noqa: E402
from nets import nets_factory  # noqa: E402
from nets import resnet_v2  # noqa: E402
from slimkit import checkpoints  # noqa: E402
from slimkit import loop  # noqa: E402
from slimkit import run_state  # noqa: E402
from slimkit import slim_checkpoint  # noqa: E402
from slimkit import step  # noqa: E402

NAMES = ['resnet_v2_50', 'resnet_v2_101', 'resnet_v2_152', 'resnet_v2_200',
         'vgg_a', 'vgg_16', 'vgg_19', 'alexnet_v2', 'overfeat']
# Classes as in TF-Slim's README table: ResNet v2 and AlexNet 1001, VGG 1000.
CLASSES = {name: 1000 if name.startswith(('vgg', 'overfeat')) else 1001
           for name in NAMES}
# The deeper ResNets' TF1 graphs take 6-14 s of CPU to build; VGG's and
# OverFeat's random checkpoints are 0.5 GB: these run at full size only in the
# slow set (and benchmarks/slim_parity.py).
DEEP = ('resnet_v2_101', 'resnet_v2_152', 'resnet_v2_200')
BIG = ('vgg_a', 'vgg_16', 'vgg_19', 'overfeat')


def _slow(names, slow):
  return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n
          for n in names]


@functools.lru_cache(maxsize=None)
def _model(name):
  """Our net at its default size with TF-Slim's class count (built once)."""
  return nets_factory.build_model(name, CLASSES[name])


def _size(name):
  return nets_factory.default_image_size(name)


@functools.lru_cache(maxsize=None)
def _slim_graph(name):
  """TF-Slim's ({variable: shape}, {end point: shape}) at the default size."""
  size = _size(name)
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [1, size, size, 3])
    _, end_points = slim_reference_classic.build(name, images, CLASSES[name])
    variables = {v.op.name: tuple(v.shape.as_list())
                 for v in tf.compat.v1.global_variables()}
    shapes = {k[len(name) + 1:]: tuple(v.shape.as_list()[1:])
              for k, v in end_points.items() if k.startswith(name + '/')}
  return variables, shapes


# The deeper ResNets repeat resnet_v2_50's units; their names are checked by
# restoring a TF-Slim checkpoint in test_logits_equal_tf_slims.
@pytest.mark.parametrize('name', [n for n in NAMES if n not in DEEP])
def test_variables_are_tf_slims(name):
  """Every variable maps to TF-Slim's name with its shape, and none is left out."""
  model = _model(name)
  names = slim_checkpoint.slim_names(model, model.name)
  ours = {names[v.path]: tuple(v.shape) for v in model.weights
          if v.path in names}
  theirs, _ = _slim_graph(name)
  assert ours == theirs
  assert slim_checkpoint.identify_model(model, model.name) == name


# resnet_v2_152 and _200 repeat resnet_v2_101's units, only more of them: their
# unit counts are checked against TF-Slim's block lists below, their logits in
# benchmarks/slim_parity.py.
REPEATS = ('resnet_v2_152', 'resnet_v2_200')
PARITY = [n for n in NAMES if n not in REPEATS]


@pytest.mark.parametrize('name', _slow(PARITY, DEEP))
def test_end_points_have_tf_slims_shapes(name):
  """TF-Slim's end points (outside the ResNet units, fc8 being our 'Logits')."""
  ours = {k: tuple(v.shape[1:]) for k, v in _model(name).output.items()}
  _, theirs = _slim_graph(name)
  theirs = {k: v for k, v in theirs.items()
            if '/unit_' not in k and k not in ('fc8', 'logits')}
  assert theirs and {k: ours.get(k) for k in theirs} == theirs
  classes = CLASSES[name]
  assert ours['Logits'] == ours['Predictions'] == (classes,)
  if name.startswith('resnet'):
    # Slim's pre-activation units leave block4 unnormalized: postnorm follows.
    assert ours['block4'] == ours['postnorm'] == (7, 7, 2048)
    assert ours['global_pool'] == (1, 1, 2048) and ours['PreLogits'] == (2048,)
  else:
    assert ours['fc7'] == (1, 1, 4096) and ours['PreLogits'] == (4096,)


def assert_same_logits(ours, theirs):
  scale = np.abs(theirs).max()
  assert scale > 0
  assert np.abs(ours - theirs).max() <= 1e-4 * scale, (
      np.abs(ours - theirs).max(), scale)


@pytest.mark.parametrize('name', _slow(PARITY, DEEP + BIG))
def test_logits_equal_tf_slims(tmp_path, name):
  prefix = str(tmp_path / 'model.ckpt')
  images, theirs = slim_reference.save_random_checkpoint(
      name, prefix, _size(name), CLASSES[name], batch=2)
  model = _model(name)
  restored, _, missing = checkpoints.restore_model(model, prefix)
  assert restored and not missing
  assert_same_logits(model(images, training=False)['Logits'].numpy(), theirs)


M = 1e6

# TF-Slim's README-side figures (tf-slim-zoo.md): every variable incl. batch
# norm statistics, at CLASSES.
SLIM_COUNTS = {'resnet_v2_50': 25615849, 'resnet_v2_101': 44677609,
               'vgg_16': 138357544, 'vgg_19': 143667240,
               'alexnet_v2': 50308009}


@pytest.mark.parametrize('name', _slow(sorted(SLIM_COUNTS), DEEP))
def test_parameter_counts_are_tf_slims(name):
  all_params = complexity.count_params(_model(name), trainable_only=False)
  assert all_params == SLIM_COUNTS[name]
  if not name.startswith('resnet'):
    assert all_params == complexity.count_params(_model(name))  # no batch norm


def _within(ours, published, unit):
  """Within 2 %, or within half the published figure's last digit."""
  return abs(ours - published) <= max(0.02 * published, unit / 2.0)


@pytest.mark.parametrize('name, params, macs', [
    # Simonyan and Zisserman, Table 2: A 133 M, D 138 M, E 144 M weights.
    # Multiply-adds: D 15.3 B (MobileNet paper, Table 8), E 19.6 B (He et al.
    # 2015, section 3.3).
    ('vgg_a', 133 * M, None),
    ('vgg_16', 138 * M, 15.3e9),
    ('vgg_19', 144 * M, 19.6e9),
])
def test_vgg_counts_match_paper(name, params, macs):
  summary = complexity.summarize(_model(name))
  assert _within(summary['params'], params, M), summary
  if macs:
    assert _within(summary['macs'], macs, 0.1e9), summary


def _paper_layout_macs(model, blocks, unit='bottleneck_v2'):
  """MACs with each block's stride-2 in the next block's first unit (the
  paper's layout): the last unit's conv2 and conv3 would run at 4x the area."""
  extra = 0
  for block, _, num_units, stride in blocks:
    if stride > 1:
      scope = '%s.unit_%d.%s' % (block, num_units, unit)
      extra += 3 * sum(complexity.layer_macs(model.get_layer(scope + '.' + c))
                       for c in ('conv2', 'conv3'))
  return complexity.count_macs(model) + extra


@pytest.mark.parametrize('depth, params, macs', [
    (50, 25.6 * M, 3.8e9),    # He et al. 2015, Table 1 ("FLOPs" = mult-adds).
    pytest.param(101, 44.5 * M, 7.6e9, marks=pytest.mark.slow),
    pytest.param(152, 60.2 * M, 11.3e9, marks=pytest.mark.slow),
])
def test_resnet_v2_counts_match_paper(depth, params, macs):
  """v2 keeps v1's convs (a bias on conv1, shortcut and conv3 added, a gamma
  and beta per preact): same multiply-adds as v1, weights within rounding."""
  model = _model('resnet_v2_%d' % depth)
  assert _within(complexity.count_params(model), params, 0.1 * M)
  assert _within(_paper_layout_macs(model, resnet_v2.BLOCKS[depth]), macs,
                 0.1e9)


def test_overfeat_counts_match_paper():
  """Sermanet et al. 2014, the fast model: 145 M weights, 2.81 B
  multiply-adds ("connections"). TF-Slim's conv1 has 64 filters, the paper's 96: conv1's and
  conv2's multiply-adds are 1.5x ours there."""
  model = _model('overfeat')
  summary = complexity.summarize(model)
  assert _within(summary['params'], 145 * M, M)
  conv12 = sum(complexity.layer_macs(model.get_layer(n))
               for n in ('conv1', 'conv2'))
  assert _within(summary['macs'] + conv12 // 2, 2.81e9, 0.01e9)


# ==============================================================================
# Sizes and options.
# ==============================================================================


@pytest.mark.parametrize('name, size, message', [
    ('vgg_16', 223, 'vgg_16 needs height and width of at least 224'),
    ('vgg_a', 256, r'vgg_a needs height and width from 224 to 255 so that its '
     r'logits are 1x1, got \(256, 256, 3\); pass global_pool=True'),
    ('alexnet_v2', 194, 'alexnet_v2 needs height and width of at least 195'),
    ('alexnet_v2', 227, 'alexnet_v2 needs height and width from 195 to 226'),
    ('overfeat', 230, 'overfeat needs height and width of at least 231'),
    ('overfeat', 263, 'overfeat needs height and width from 231 to 262'),
])
def test_fixed_heads_name_the_sizes_they_take(name, size, message):
  with pytest.raises(ValueError, match='^input_shape: ' + message) as info:
    nets_factory.build_model(name, 5, (size, size, 3))
  assert '\n' not in str(info.value)


def test_fc_conv_padding_is_checked():
  with pytest.raises(ValueError, match="^fc_conv_padding: expected VALID or "
                     "SAME, got 'FULL'$"):
    nets_factory.build_model('vgg_16', 5, fc_conv_padding='FULL')
  with pytest.raises(ValueError, match='vgg_16 needs height and width of at '
                     'least 32'):
    nets_factory.build_model('vgg_16', 5, (31, 31, 3), fc_conv_padding='SAME')


def test_same_fc6_and_global_pool_on_small_images():
  """fc_conv_padding='SAME' + global_pool (tensorflow/models' vgg.py) at 64x64:
  fc6's 7x7 window is centred on each pool5 pixel, and fc8 sees the mean of
  fc7 - both recomputed here in numpy from the model's own weights."""
  model = nets_factory.build_model('vgg_a', 3, (64, 64, 3),
                                   fc_conv_padding='SAME', global_pool=True)
  images = np.random.RandomState(0).uniform(-1, 1, (2, 64, 64, 3))
  out = {k: v.numpy().astype(np.float64)
         for k, v in model(images.astype(np.float32), training=False).items()}
  pool5, fc7 = out['pool5'], out['fc7']
  assert pool5.shape[1:3] == (2, 2) and fc7.shape[1:3] == (2, 2)
  kernel, bias = [w.numpy().astype(np.float64)
                  for w in model.get_layer('fc6').weights]
  fc6 = np.zeros(out['fc6'].shape)
  for i in range(2):
    for j in range(2):
      for p in range(2):
        for q in range(2):
          fc6[:, i, j] += pool5[:, p, q] @ kernel[3 + p - i, 3 + q - j]
  fc6 = np.maximum(fc6 + bias, 0.0)
  assert np.allclose(out['fc6'], fc6, rtol=1e-4, atol=1e-4 * np.abs(fc6).max())
  kernel, bias = [w.numpy().astype(np.float64)
                  for w in model.get_layer('fc8').weights]
  logits = fc7.mean(axis=(1, 2)) @ kernel[0, 0] + bias
  assert np.allclose(out['Logits'], logits, atol=1e-4 * np.abs(logits).max())
  assert out['global_pool'].shape[1:] == (1, 1, 4096)


def test_num_classes_zero_gives_features():
  model = nets_factory.build_model('alexnet_v2', 0)
  assert 'Logits' not in model.output and 'fc8' not in [l.name for l in
                                                         model.layers]
  assert tuple(model.output['PreLogits'].shape[1:]) == (4096,)


def test_published_resnet_v2_rows_say_299_and_inception():
  for depth, top1 in ((50, 75.6), (101, 77.0), (152, 77.8)):
    row = slim_checkpoint.PUBLISHED['resnet_v2_%d' % depth]
    assert row.archive == 'resnet_v2_%d_2017_04_14.tar.gz' % depth
    assert (row.num_classes, row.labels_offset, row.image_size,
            row.preprocessing, row.top1) == (1001, 0, 299, 'inception', top1)
  for depth, top1 in ((16, 71.5), (19, 71.1)):
    row = slim_checkpoint.PUBLISHED['vgg_%d' % depth]
    assert (row.archive, row.num_classes, row.labels_offset, row.image_size,
            row.preprocessing, row.top1) == (
                'vgg_%d_2016_08_28.tar.gz' % depth, 1000, 1, 224, 'vgg', top1)


# TF-Slim's resnet_v2.py: units per block.
SLIM_UNITS = {'resnet_v2_50': (3, 4, 6, 3), 'resnet_v2_101': (3, 4, 23, 3),
              'resnet_v2_152': (3, 8, 36, 3), 'resnet_v2_200': (3, 24, 36, 3)}


@pytest.mark.parametrize('name', _slow(sorted(SLIM_UNITS), REPEATS))
def test_resnet_v2_units_per_block_are_tf_slims(name):
  model = nets_factory.build_model(name, CLASSES[name], (64, 64, 3))
  names = slim_checkpoint.slim_names(model, model.name).values()
  units = collections.Counter(
      n.split('/')[1] for n in names if n.endswith('/bottleneck_v2/conv1/weights'))
  assert tuple(units['block%d' % b] for b in range(1, 5)) == SLIM_UNITS[name]
  assert slim_checkpoint.identify_model(model, model.name) == name


def _unit_names(scope, block2, block3):
  return {'%s/%s/unit_%d/bottleneck_v2/conv1/weights' % (scope, block, i): [1]
          for block, units in (('block2', block2), ('block3', block3))
          for i in range(1, units + 1)}


def _conv_names(scope, repeats):
  return {'%s/conv%d/conv%d_%d/weights' % (scope, s, s, i): [1]
          for s, n in enumerate(repeats, 1) for i in range(1, n + 1)}


@pytest.mark.parametrize('shapes, expected', [
    (_unit_names('resnet_v2_50', 4, 6), 'resnet_v2_50'),
    (_unit_names('resnet_v2_152', 24, 36), 'resnet_v2_200'),
    (_conv_names('vgg_16', (2, 2, 4, 4, 4)), 'vgg_19'),
    (_conv_names('vgg_19', (1, 1, 2, 2, 2)), 'vgg_a'),
])
def test_identify_counts_units_and_convs(shapes, expected):
  """By the structure, not the scope name: a renamed scope still reads right."""
  assert slim_checkpoint._identify(shapes) == expected


# ==============================================================================
# Training: two steps per family with the project's run state, step and loop.
# ==============================================================================


class _Record(object):
  """A hook that keeps each call's metrics."""
  every_steps = 1

  def __init__(self):
    self.metrics = []

  def begin(self, unused_loop):
    pass

  def after_call(self, unused_loop, call):
    self.metrics.append(np.asarray(call.metrics))

  def end(self, unused_loop, unused_call):
    pass


# (name, image size, spec options): the smallest sizes the heads take; VGG at
# 32x32 through fc_conv_padding='SAME' (its 'VALID' fc6 needs 224).
TRAIN_CASES = [
    pytest.param('resnet_v2_50', 32, {}, marks=pytest.mark.slow),
    pytest.param('alexnet_v2', 195, {}, marks=pytest.mark.slow),
    pytest.param('vgg_a', 32, {'fc_conv_padding': 'SAME'},
                 marks=pytest.mark.slow),
    pytest.param('overfeat', 231, {}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize('name, size, options', TRAIN_CASES)
def test_two_training_steps(tmp_path, monkeypatch, name, size, options):
  spec = nets_factory.get_spec(name)
  monkeypatch.setitem(nets_factory.networks_map, name, spec._replace(
      kwargs=dict(spec.kwargs, **options), default_image_size=size))
  config = train_config(tmp_path / 'train', '(in memory)', model_name=name,
                        batch_size=2, learning_rate=0.01, weight_decay=1e-4)
  state = run_state.RunState(config, tf.distribute.get_strategy(),
                             num_classes=5, input_shape=(size, size, 3),
                             num_samples=8)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (4, size, size, 3)).astype(np.float32)
  labels = np.arange(4) % 5
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(2)
  before = [v.numpy() for v in state.variables_to_train]
  record = _Record()
  assert loop.Loop(step.Runner(state, jit_compile=config['jit_compile']), [record], max_steps=2).run(
      dataset) == 2
  losses = [m[step.METRICS.index('total_loss')] for m in record.metrics]
  assert len(losses) == 2 and np.all(np.isfinite(losses)), losses
  regularization = record.metrics[-1][step.METRICS.index('regularization_loss')]
  assert regularization > 0  # --weight_decay reached the kernels
  after = [v.numpy() for v in state.variables_to_train]
  changed = sum(not np.array_equal(a, b) for a, b in zip(before, after))
  assert changed == len(after)
