"""NASNet-A and PNASNet-5: TF-Slim's logits on TF-Slim checkpoints, end points and
counts against TF-Slim's tests and the papers, drop path as TF-Slim schedules it,
the aux head, training with the real training objects, and the export.

The references are TF-Slim's nets rebuilt in TF1 graph mode with tf_slim's layers
(tests/slim_reference_nasnet.py). The quick parity tests run them with fewer
cells (every stem, cell, reduction and aux-head path is still built); the
published depths' logits are benchmarks/slim_parity.py's.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import functools  # noqa: E402
import math  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import slim_reference  # noqa: E402  (first: it merges slim_reference_nasnet)
import slim_reference_nasnet  # noqa: E402
from conftest import train_config  # noqa: E402
from nets import complexity  # noqa: E402
from nets import nasnet_utils  # noqa: E402
from nets import net_utils  # noqa: E402
from nets import nets_factory  # noqa: E402
from nets import scopes  # noqa: E402
from slimkit import checkpoints  # noqa: E402
from slimkit import slim_checkpoint  # noqa: E402

NUM_CLASSES = 7


def _save_reference(prefix, name, size, seed=0, fc_scope='FC', **changes):
  """TF-Slim's net (hparams changed) with random weights and batch norm statistics,
  saved at prefix -> (images, logits, aux logits)."""
  rng = np.random.RandomState(seed)
  images = rng.uniform(-1.0, 1.0, (2, size, size, 3)).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, images.shape)
    logits, aux = slim_reference_nasnet.build(inputs, NUM_CLASSES, name,
                                              fc_scope=fc_scope, **changes)
    variables = tf.compat.v1.global_variables()
    saver = tf.compat.v1.train.Saver(variables)
    randomise = slim_reference.randomiser(variables)
    with tf.compat.v1.Session(graph=graph) as sess:
      randomise(sess, rng)
      theirs, theirs_aux = sess.run([logits, aux], {inputs: images})
      saver.save(sess, prefix, write_meta_graph=False)
  return images, theirs, theirs_aux


def _ours(name, prefix, images, **options):
  model = nets_factory.build_model(name, NUM_CLASSES, images.shape[1:], **options)
  restored, _, missing = checkpoints.restore_model(model, prefix)
  assert restored and not missing
  return model, model(images, training=False)


def assert_close(ours, theirs):
  scale = np.abs(theirs).max()
  assert np.isfinite(scale) and scale > 0
  assert np.abs(ours - theirs).max() <= 1e-4 * scale


# (name, size, hparam changes, the classifiers' scope in the checkpoint): fewer
# cells keep the stem, both reductions, the aux head (on the cell before the
# second reduction) and every kind of prev_layer. The CIFAR net also runs
# use_bounded_activation (relu6, clipping) and is saved with 'fully_connected'
# where ours says 'FC' (one upload of the published checkpoints did).
QUICK_PARITY = [
    ('nasnet_cifar', 32, dict(num_cells=3, num_conv_filters=8,
                              use_bounded_activation=True), 'fully_connected'),
    ('nasnet_mobile', 96, dict(num_cells=4), 'FC'),
    ('pnasnet_mobile', 96, dict(num_cells=3), 'FC'),
    # The large nets' own paths (NASNet's skip_reduction_layer_input, stem
    # multiplier 3) at fewer cells and filters; their published depths are checked
    # by the counts below and run in benchmarks/slim_parity.py.
    ('nasnet_large', 96, dict(num_cells=6, num_conv_filters=24), 'FC'),
    ('pnasnet_large', 96, dict(num_cells=3, num_conv_filters=24), 'FC'),
]


@pytest.mark.parametrize('name, size, changes, fc_scope', [
    p if p[0] == 'nasnet_cifar' else pytest.param(*p, marks=pytest.mark.slow)
    for p in QUICK_PARITY])
def test_logits_and_aux_logits_equal_tf_slims(tmp_path, name, size, changes,
                                              fc_scope):
  prefix = str(tmp_path / 'model.ckpt')
  images, theirs, theirs_aux = _save_reference(prefix, name, size,
                                               fc_scope=fc_scope, **changes)
  names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  assert 'final_layer/%s/weights' % fc_scope in names
  model, out = _ours(name, prefix, images, **changes)
  assert_close(out['Logits'].numpy(), theirs)
  assert_close(out['AuxLogits'].numpy(), theirs_aux)
  if 'num_conv_filters' not in changes:  # the filters tell the nets apart
    assert slim_checkpoint.identify(prefix) == name
    assert slim_checkpoint.identify_model(model, '') == name
  # The classes as export reads them: the classifier's, not the aux head's 768.
  spec = nets_factory.get_spec(name)
  assert slim_checkpoint.classifier_classes(prefix, spec.logits_scopes) == NUM_CLASSES


# The published depths repeat the cells above; their logits are checked by
# benchmarks/slim_parity.py (docs/nets.md), their structure by the counts below.


# ============================================================================
# End points and counts at the default sizes (construction only).


@functools.lru_cache(maxsize=None)
def _model(name, size=None, num_classes=1001, **options):
  size = size or nets_factory.default_image_size(name)
  return nets_factory.build_model(name, num_classes, (size, size, 3), **options)


def _shapes(model):
  return {k: tuple(v.shape[1:]) for k, v in model.output.items()}


def _cells(shapes_by_range):
  return {'Cell_%d' % n: shape for cells, shape in shapes_by_range
          for n in cells}


def test_nasnet_mobile_end_points_224():
  # TF-Slim's nasnet_test.testAllEndPointsShapesMobileModel (+ our PreLogits).
  expected = _cells([(range(0, 4), (28, 28, 264)), (range(4, 8), (14, 14, 528)),
                     (range(8, 12), (7, 7, 1056))])
  expected.update({'Stem': (28, 28, 88), 'Reduction_Cell_0': (14, 14, 352),
                   'Reduction_Cell_1': (7, 7, 704), 'global_pool': (1056,),
                   'PreLogits': (1056,), 'AuxLogits': (1001,), 'Logits': (1001,),
                   'Predictions': (1001,)})
  assert _shapes(_model('nasnet_mobile')) == expected


def test_pnasnet_mobile_end_points_224():
  # TF-Slim's pnasnet_test.testAllEndPointsShapesMobileModel: the stem's 135 =
  # 5 x 27, the odd filter count of filter_scaling 1/2.
  expected = _cells([(range(0, 3), (28, 28, 270)), (range(3, 6), (14, 14, 540)),
                     (range(6, 9), (7, 7, 1080))])
  expected.update({'Stem': (28, 28, 135), 'global_pool': (1080,),
                   'PreLogits': (1080,), 'AuxLogits': (1001,), 'Logits': (1001,),
                   'Predictions': (1001,)})
  assert _shapes(_model('pnasnet_mobile')) == expected
  stem = _model('pnasnet_mobile')
  assert stem.get_layer('cell_stem_1.path1_conv').kernel.shape[-1] == 13
  assert stem.get_layer('cell_stem_1.path2_conv').kernel.shape[-1] == 14


def test_nasnet_cifar_end_points_32():
  # TF-Slim's nasnet_test.testAllEndPointsShapesCifarModel.
  expected = _cells([(range(0, 6), (32, 32, 192)), (range(6, 12), (16, 16, 384)),
                     (range(12, 18), (8, 8, 768))])
  expected.update({'Stem': (32, 32, 96), 'Reduction_Cell_0': (16, 16, 256),
                   'Reduction_Cell_1': (8, 8, 512), 'global_pool': (768,),
                   'PreLogits': (768,), 'AuxLogits': (10,), 'Logits': (10,),
                   'Predictions': (10,)})
  assert _shapes(_model('nasnet_cifar', num_classes=10)) == expected


def _without_aux(variables):
  return [v for v in variables if not v.path.startswith('aux_') and
          not v.path.endswith('seed_generator_state')]


def _count(variables):
  return sum(math.prod(v.shape) for v in variables)


M = 1e6

# (name, TF-Slim's variables and parameters at inference (moving statistics
# included, 1001 classes, no aux head): tf-slim-zoo.md; with the aux head;
# the paper's parameters and mult-adds (NASNet Table 2, PNASNet Table 5).
COUNTS = [
    ('nasnet_mobile', 1126, 5327773, 1138, 5.3 * M, 564 * M),
    ('pnasnet_mobile', 933, 5099232, 945, 5.1 * M, 588 * M),
]


@pytest.mark.parametrize('name, variables, params, with_aux, paper_params, '
                         'paper_macs', COUNTS)
def test_counts_match_tf_slim_and_the_paper(name, variables, params, with_aux,
                                            paper_params, paper_macs):
  model = _model(name)
  weights = _without_aux(model.weights)
  assert len(weights) == variables and _count(weights) == params
  assert len([v for v in model.weights
              if not v.path.endswith('seed_generator_state')]) == with_aux
  trainable = _count(_without_aux(model.trainable_weights))
  assert abs(trainable - paper_params) <= 0.05 * M  # the paper's rounding
  macs = complexity.count_macs(model) - sum(
      complexity.layer_macs(l) for l in model.layers if l.name.startswith('aux_'))
  assert abs(macs - paper_macs) <= 0.02 * paper_macs


@pytest.mark.slow
@pytest.mark.parametrize('name, paper_params, paper_macs', [
    ('nasnet_large', 88.9 * M, 23.8e9), ('pnasnet_large', 86.1 * M, 25.0e9)])
def test_large_counts_match_the_paper(name, paper_params, paper_macs):
  model = _model(name)
  assert slim_checkpoint.identify_model(model, '') == name
  # NASNet-A Large's 88.9 M matches the count with the moving statistics
  # (88.95 M), PNASNet-5 Large's 86.1 M the trainable one (86.06 M): 2 % holds both.
  for weights in (model.weights, model.trainable_weights):
    assert abs(_count(_without_aux(weights)) - paper_params) <= 0.02 * paper_params
  macs = complexity.count_macs(model) - sum(
      complexity.layer_macs(l) for l in model.layers if l.name.startswith('aux_'))
  assert abs(macs - paper_macs) <= 0.02 * paper_macs


def test_names_are_tf_slims_and_the_classifier_scopes_select_the_heads():
  model = _model('nasnet_mobile')
  assert model.name == '' and nets_factory.get_spec('nasnet_mobile').model_scope == ''
  names = slim_checkpoint.slim_names(model, '')
  for path, slim in [
      ('conv0/kernel', 'conv0/weights'),
      ('conv0_bn/gamma', 'conv0_bn/gamma'),
      ('cell_stem_0.comb_iter_0.left.separable_5x5_1/depthwise_kernel',
       'cell_stem_0/comb_iter_0/left/separable_5x5_1/depthwise_weights'),
      ('cell_stem_0.comb_iter_0.left.separable_5x5_1/pointwise_kernel',
       'cell_stem_0/comb_iter_0/left/separable_5x5_1/pointwise_weights'),
      ('cell_stem_0.comb_iter_0.left.bn_sep_5x5_1/moving_mean',
       'cell_stem_0/comb_iter_0/left/bn_sep_5x5_1/moving_mean'),
      ('cell_stem_1.final_path_bn/beta', 'cell_stem_1/final_path_bn/beta'),
      ('cell_0.beginning_bn/moving_variance', 'cell_0/beginning_bn/moving_variance'),
      ('reduction_cell_0.comb_iter_4.right.max_pool_3x3', None),
      ('aux_7.aux_logits.Conv/kernel', 'aux_7/aux_logits/Conv/weights'),
      ('aux_7.aux_logits.FC/bias', 'aux_7/aux_logits/FC/biases'),
      ('final_layer.FC/kernel', 'final_layer/FC/weights')]:
    if slim is not None:
      assert names[path] == slim
  # The aux head's conv covers its whole 4x4 map at 224 (TF-Slim's shape).
  assert model.get_layer('aux_7.aux_logits.Conv').kernel.shape == (4, 4, 128, 768)
  spec = nets_factory.get_spec('nasnet_mobile')
  assert spec.logits_scopes == ('final_layer', 'aux_7')
  inside, outside, unmatched = scopes.select(model.weights, '',
                                             ','.join(spec.logits_scopes))
  assert not unmatched and len(inside) + len(outside) == len(model.weights)
  assert {v.path.split('.')[0].split('/')[0] for v in inside} == {
      'final_layer', 'aux_7'}
  assert all(not v.path.startswith(('final_layer', 'aux_7')) for v in outside)
  assert slim_checkpoint.identify_model(model, '') == 'nasnet_mobile'


# ============================================================================
# Drop path, the aux head, options.

# A small NASNet-A CIFAR net with drop path: 3 cells, reductions before cells 1
# and 2, so the true cell numbers are cell_0 0, reduction_cell_0 1, cell_1 2,
# reduction_cell_1 3, cell_2 4 of total_num_cells 3 + 2 = 5.
SMALL = dict(num_cells=3, num_conv_filters=8, drop_path_keep_prob=0.6)


@functools.lru_cache(maxsize=None)
def _small():
  keras.utils.set_random_seed(0)
  return nets_factory.build_model('nasnet_cifar', 5, (16, 16, 3), **SMALL)


def _drop_paths(model):
  return [l for l in model.layers if isinstance(l, nasnet_utils.DropPath)]


def test_drop_path_keep_prob_is_scaled_by_cell_position():
  model = _small()
  # Every operation but 'none': 8 in a normal cell, 9 in a reduction cell.
  assert len(_drop_paths(model)) == 3 * 8 + 2 * 9
  for layer, cell_num in [('cell_0.comb_iter_0.left.drop_path', 0),
                          ('reduction_cell_0.comb_iter_1.right.drop_path', 1),
                          ('cell_2.comb_iter_4.left.drop_path', 4)]:
    expected = 1.0 - (cell_num + 1) / 5.0 * (1.0 - 0.6)
    assert model.get_layer(layer).keep_prob == pytest.approx(expected)
  assert model.get_layer('cell_2.comb_iter_4.left.drop_path').keep_prob == \
      pytest.approx(0.6)
  # 'none' operations have none.
  assert 'cell_0.comb_iter_2.right.drop_path' not in {l.name for l in model.layers}


def test_drop_path_follows_the_training_progress():
  model = _small()
  layer = model.get_layer('cell_2.comb_iter_4.left.drop_path')  # keep 0.6
  ones = tf.ones((4000, 1, 1, 1))
  for progress, keep in [(0.0, 1.0), (0.5, 0.8), (1.0, 0.6)]:
    assert net_utils.set_training_progress(model, progress) == 42
    out = layer(ones, training=True).numpy().ravel()
    kept = out[out != 0]
    # Dropped examples are zero, kept ones scaled by 1 / keep.
    np.testing.assert_allclose(kept, 1.0 / keep, rtol=1e-6)
    assert abs(1.0 - kept.size / out.size - (1.0 - keep)) <= 0.035, progress
    np.testing.assert_array_equal(layer(ones, training=False).numpy(), ones.numpy())
  net_utils.set_training_progress(model, 0.0)


def test_drop_path_in_the_model_training_only():
  model = _small()
  images = tf.constant(np.random.default_rng(0).uniform(
      -1, 1, (4, 16, 16, 3)).astype(np.float32))
  net_utils.set_training_progress(model, 0.0)
  inference = model(images, training=False)['Logits'].numpy()
  net_utils.set_training_progress(model, 1.0)
  np.testing.assert_array_equal(model(images, training=False)['Logits'].numpy(),
                                inference)
  c = model(images, training=True)['Logits'].numpy()
  d = model(images, training=True)['Logits'].numpy()
  assert not np.allclose(c, d)  # paths dropped at random
  # Progress 0: keep probability 1 everywhere, training is deterministic.
  net_utils.set_training_progress(model, 0.0)
  a = model(images, training=True)['Logits'].numpy()
  b = model(images, training=True)['Logits'].numpy()
  np.testing.assert_array_equal(a, b)


def test_set_training_progress_in_a_tf_function_and_out_of_checkpoints():
  model = _small()
  progress = _drop_paths(model)[0].training_progress
  assert all(l.training_progress is progress for l in _drop_paths(model))

  @tf.function
  def set_progress(fraction):
    return net_utils.set_training_progress(model, fraction)

  assert set_progress(tf.constant(0.25)) == 42
  assert float(progress.numpy()) == 0.25
  set_progress(tf.constant(7.0))  # a tensor is clipped
  assert float(progress.numpy()) == 1.0
  with pytest.raises(ValueError, match=r'fraction: expected .* \[0, 1\], got 1.5'):
    net_utils.set_training_progress(model, 1.5)
  net_utils.set_training_progress(model, 0.0)
  # Not a weight: no checkpoint and no TF-Slim name sees it.
  assert all('progress' not in v.path for v in model.variables)
  assert all('progress' not in n for n in slim_checkpoint.slim_names(model, ''))
  # TF-Slim's mobile configs have no drop path (keep prob 1.0).
  assert net_utils.set_training_progress(_model('nasnet_mobile'), 1.0) == 0
  assert net_utils.set_training_progress(_model('pnasnet_mobile'), 1.0) == 0


def test_aux_head_shape_and_options():
  out = _small()(np.zeros((3, 16, 16, 3), np.float32), training=False)
  assert tuple(out['AuxLogits'].shape) == (3, 5)
  assert tuple(out['Logits'].shape) == (3, 5)
  no_aux = nets_factory.build_model('nasnet_cifar', 5, (16, 16, 3), num_cells=3,
                                    num_conv_filters=8, use_aux_head=False)
  assert 'AuxLogits' not in no_aux.output
  assert not [l for l in no_aux.layers if l.name.startswith('aux_')]
  features = nets_factory.build_model('pnasnet_mobile', 0, (32, 32, 3),
                                      num_cells=3)
  assert set(features.output) >= {'PreLogits', 'global_pool'}
  assert not {'Logits', 'Predictions', 'AuxLogits'} & set(features.output)
  assert tuple(features.output['PreLogits'].shape) == (None, 1080)
  # Under TF-Slim's 5x5 window (a 2x2 map at 32x32) the window shrinks to the map.
  small = nets_factory.build_model('nasnet_mobile', 4, (32, 32, 3), num_cells=4)
  assert tuple(small.output['AuxLogits'].shape) == (None, 4)
  assert small.get_layer('aux_1.aux_logits.Conv').kernel.shape[:2] == (1, 1)


def test_conv_gradients_auto_gives_tensorflows_gradients():
  """--conv_gradients=auto reaches the separable convs (forced to formulations
  other than TensorFlow's): same variables, the same gradients."""
  from nets import conv_grad  # pylint: disable=g-import-not-at-top
  from nets import conv_grad_auto  # pylint: disable=g-import-not-at-top

  traced = []

  def alternatives(g):
    traced.append(g)
    dx_methods, dw_methods = conv_grad.candidates(g)
    return {'dx': dx_methods[-1], 'dw': dw_methods[-1]}

  options = dict(num_cells=1, num_conv_filters=8, use_aux_head=False)
  models = {mode: nets_factory.build_model('nasnet_cifar', 3, (8, 8, 3),
                                           conv_gradients=mode, **options)
            for mode in ('tf', 'auto')}
  assert [v.path for v in models['tf'].weights] == [
      v.path for v in models['auto'].weights]
  layer = models['auto'].get_layer('cell_0.comb_iter_0.left.separable_5x5_1')
  assert layer.gradient_mode == 'auto'
  models['auto'].set_weights(models['tf'].get_weights())
  images = tf.constant(np.random.default_rng(0).standard_normal((2, 8, 8, 3)),
                       tf.float32)
  grads = {}
  for mode, model in models.items():
    with conv_grad_auto.forced(alternatives), tf.GradientTape() as tape:
      logits = model(images, training=True)['Logits']
      loss = tf.reduce_sum(logits * tf.range(3, dtype=tf.float32))
    grads[mode] = tape.gradient(loss, model.trainable_variables)
  # The separable convs' depthwise halves (5x5, 3x3) went through conv_grad_auto.
  assert {g.w_shape[:2] for g in traced if g.depthwise} >= {(5, 5), (3, 3)}
  for v, want, got in zip(models['tf'].trainable_variables, grads['tf'],
                          grads['auto']):
    want, got = np.asarray(want, np.float64), np.asarray(got, np.float64)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), v.path


@pytest.mark.parametrize('name, options, message', [
    ('nasnet_mobile', {'input_shape': (2, 2, 3)},
     'input_shape: height and width must be at least 3'),
    ('nasnet_cifar', {'drop_path_keep_prob': 0.0},
     r'drop_path_keep_prob: expected a probability in \(0, 1\], got 0.0'),
    ('pnasnet_large', {'dense_dropout_keep_prob': 1.5},
     'dense_dropout_keep_prob: expected a probability'),
    ('nasnet_large', {'data_format': 'NCHW'},
     "data_format: only 'NHWC' is supported, got 'NCHW'"),
    ('nasnet_mobile', {'num_conv_filters': 4},
     'num_conv_filters: 4 gives 1 filter.* expected at least 2'),
    ('pnasnet_mobile', {'num_cells': 0}, 'num_cells: expected a value > 0'),
])
def test_bad_options_are_one_line(name, options, message):
  options = dict(options)
  shape = options.pop('input_shape', (32, 32, 3))
  with pytest.raises(ValueError, match=message) as info:
    nets_factory.build_model(name, 3, shape, **options)
  assert '\n' not in str(info.value)


# ============================================================================
# Training and export with the project's real objects.


def _memory_dataset(batch_size, size=32, num_classes=10):
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (4 * batch_size, size, size, 3)).astype(np.float32)
  labels = (np.arange(4 * batch_size) % num_classes).astype(np.int64)
  dataset = tf.data.Dataset.from_tensor_slices((images, labels))
  return dataset.repeat().batch(batch_size, drop_remainder=True)


def _train_two_steps(tmp_path, **changes):
  """Two steps of the trainer's own state, step runner and loop; the last
  step's metrics and how many trained variables changed."""
  from slimkit import loop  # pylint: disable=g-import-not-at-top
  from slimkit import run_state  # pylint: disable=g-import-not-at-top
  from slimkit import step  # pylint: disable=g-import-not-at-top
  config = train_config(tmp_path / 'train', '(in memory)', model_name='nasnet_cifar',
                        batch_size=4, learning_rate=0.01, **changes)
  state = run_state.RunState(config, tf.distribute.get_strategy(), num_classes=10,
                             input_shape=(32, 32, 3), num_samples=64)
  runner = step.Runner(state, jit_compile=config['jit_compile'])
  before = [v.numpy() for v in state.variables_to_train]
  steps = loop.Loop(runner, max_steps=1, steps_per_call=1)
  dataset = _memory_dataset(config['batch_size'])
  assert steps.run(dataset) == 1  # a non-finite loss would raise here
  metrics = dict(zip(step.METRICS, runner(runner.iterator(dataset), 1)))
  assert state.current_step() == 2
  after = [v.numpy() for v in state.variables_to_train]
  changed = sum(not np.array_equal(a, b) for a, b in zip(before, after))
  return state, changed, metrics


def _check_training(state, changed, metrics):
  assert all(np.isfinite(v) for v in metrics.values()), metrics
  # The aux head trains too (its variables change: no weight decay here). After
  # one step on 4 images its loss may round to 0 in float32, so only >= 0.
  assert metrics['aux_loss'] >= 0 and metrics['cross_entropy'] > 0
  assert state.has_aux and changed == len(state.variables_to_train)


@pytest.mark.slow
def test_two_training_steps_of_a_small_nasnet_cifar(tmp_path, monkeypatch):
  # Fewer cells and filters: the same code, a fraction of the tracing time.
  spec = nets_factory.get_spec('nasnet_cifar')
  monkeypatch.setitem(nets_factory.networks_map, 'nasnet_cifar', spec._replace(
      kwargs=dict(num_cells=3, num_conv_filters=8)))
  # TensorFlow's conv gradients: measuring each conv shape's fastest gradients
  # (--conv_gradients=auto, the default the slow test keeps) takes long here.
  state, changed, metrics = _train_two_steps(tmp_path, conv_gradients='tf')
  assert 'cell_2.1x1' in {l.name for l in state.model.layers}
  _check_training(state, changed, metrics)


def _export_keeps_the_top_1(tmp_path):
  """nasnet_mobile on 32x32 images through export_inference_graph's code: the
  SavedModel and the TFLite model predict the Keras model's classes."""
  from slimkit import export  # pylint: disable=g-import-not-at-top
  from slimkit import run_config  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(3)
  model = nets_factory.build_model('nasnet_mobile', 5, (32, 32, 3))
  rng = np.random.default_rng(0)
  for v in model.weights:  # batch norm that is not the identity
    if v.path.endswith(('/moving_mean', '/beta')):
      v.assign(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
    elif v.path.endswith(('/moving_variance', '/gamma')):
      v.assign(rng.uniform(0.5, 1.5, v.shape).astype(np.float32))
  train_dir = str(tmp_path / 'train')
  tf.train.CheckpointManager(
      checkpoints.make_checkpoint(model, tf.Variable(1, dtype=tf.int64)), train_dir,
      max_to_keep=1, checkpoint_name=checkpoints.CHECKPOINT_NAME).save(
          checkpoint_number=1)
  run_config.write(train_dir, {
      'model_name': 'nasnet_mobile', 'num_classes': 5, 'image_size': 32,
      'channels': 3, 'preprocessing_name': 'inception', 'use_grayscale': False,
      'max_number_of_steps': 1})
  output = str(tmp_path / 'exported')
  paths = export.run({'model_name': 'nasnet_mobile', 'checkpoint_path': train_dir,
                      'output_file': output, 'tflite': True})
  images = rng.uniform(-1.0, 1.0, (6, 32, 32, 3)).astype(np.float32)
  expected = model(images, training=False)['Logits'].numpy()
  top1 = expected.argmax(1).tolist()
  served = tf.saved_model.load(output).signatures['predict_images'](
      images=tf.constant(images))
  assert_close(served['logits'].numpy(), expected)
  assert served['classes'].numpy().tolist() == top1
  runner = tf.lite.Interpreter(model_path=paths['tflite']).get_signature_runner(
      'predict_images')
  lite = runner(images=images)
  assert lite['classes'].tolist() == top1
  assert np.abs(lite['logits'] - expected).max() <= 1e-3 * np.abs(expected).max()


@pytest.mark.slow
def test_export_of_a_small_nasnet_mobile_keeps_the_top_1(tmp_path, monkeypatch):
  # Two cells (both after a reduction, the aux head on cell 0): the same
  # builder, stem, cells and heads as the full net, whose export's tracing and
  # TFLite conversion take minutes here.
  spec = nets_factory.get_spec('nasnet_mobile')
  monkeypatch.setitem(nets_factory.networks_map, 'nasnet_mobile',
                      spec._replace(kwargs=dict(num_cells=2)))
  _export_keeps_the_top_1(tmp_path)

