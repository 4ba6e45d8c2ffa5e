"""Inception V4 and Inception-ResNet-v2: TF-Slim's logits AND auxiliary logits
from TF-Slim's checkpoints (tests/slim_reference_inception4.py), the variable
names and shapes, end points, the smallest inputs, weight decay, and two real
training steps. One build of each net at 107x107 (the smallest input with the
auxiliary head) serves most tests; 299x299 counts are @slow."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import slim_reference  # noqa: E402
import slim_reference_inception4  # noqa: E402
from nets import complexity  # noqa: E402
from nets import conv_layers  # noqa: E402
from nets import inception_resnet_v2  # noqa: E402
from nets import inception_v4  # noqa: E402
from nets import nets_factory  # noqa: E402
from nets import scopes  # noqa: E402
from slimkit import checkpoints  # noqa: E402
from slimkit import slim_checkpoint  # noqa: E402

SIZE = 107
CLASSES = 7
WEIGHT_DECAY = 0.01
NETS = ['inception_v4', 'inception_resnet_v2']


def save_reference(build, prefix, size, num_classes, batch=2, seed=0):
  """TF-Slim's net (TF1), every variable random, saved -> (images, logits, aux)."""
  rng = np.random.RandomState(seed)
  images = rng.uniform(-1.0, 1.0, (batch, size, size, 3)).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, images.shape)
    logits = build(inputs, num_classes)
    aux, = tf.compat.v1.get_collection(slim_reference_inception4.AUX_COLLECTION)
    variables = tf.compat.v1.global_variables()
    saver = tf.compat.v1.train.Saver(variables)
    randomise = slim_reference.randomiser(variables)
    with tf.compat.v1.Session(graph=graph) as sess:
      randomise(sess, rng)
      theirs, theirs_aux = sess.run([logits, aux], {inputs: images})
      saver.save(sess, prefix, write_meta_graph=False)
  return images, theirs, theirs_aux


def assert_same(ours, theirs):
  scale = np.abs(theirs).max()
  assert scale > 0
  assert np.abs(ours - theirs).max() <= 1e-4 * scale, (
      np.abs(ours - theirs).max(), scale)


class Checked(object):
  """Our net restored from TF-Slim's checkpoint, and TF-Slim's outputs."""

  def __init__(self, name, model, prefix, images, logits, aux, restored):
    self.name, self.model, self.prefix = name, model, prefix
    self.images, self.logits, self.aux, self.restored = (images, logits, aux,
                                                         restored)


# The references take 11-16 s to build: slow set only.
@pytest.fixture(scope='module', params=[
    pytest.param(n, marks=pytest.mark.slow) for n in NETS])
def checked(request, tmp_path_factory):
  name = request.param
  prefix = str(tmp_path_factory.mktemp(name) / 'model.ckpt')
  images, logits, aux = save_reference(
      slim_reference.REFERENCES[name], prefix, SIZE, CLASSES)
  # Weight decay changes no output; the decay test reads model.losses.
  model = nets_factory.build_model(name, CLASSES, (SIZE, SIZE, 3),
                                   weight_decay=WEIGHT_DECAY)
  restored, _, missing = checkpoints.restore_model(model, prefix)
  assert not missing
  return Checked(name, model, prefix, images, logits, aux, restored)


def test_logits_and_aux_logits_equal_tf_slims(checked):
  out = checked.model(checked.images, training=False)
  assert_same(out['Logits'].numpy(), checked.logits)
  assert_same(out['AuxLogits'].numpy(), checked.aux)


def test_variables_are_tf_slims_one_for_one(checked):
  """Every checkpoint variable has exactly one of ours, same shape."""
  model = checked.model
  names = slim_checkpoint.slim_names(model, model.name)
  shapes = tf.train.load_checkpoint(checked.prefix).get_variable_to_shape_map()
  assert sorted(names.values()) == sorted(shapes)
  assert len(checked.restored) == len(shapes)
  for v in model.weights:
    if v.path in names:
      assert list(v.shape) == shapes[names[v.path]], v.path
  assert not any(n.endswith('/gamma') for n in shapes)  # scale=False in both
  assert slim_checkpoint.identify(checked.prefix) == checked.name
  # The classes of the main classifier, not the aux head's 128-deep 1x1 conv.
  assert slim_checkpoint.classifier_classes(
      checked.prefix, nets_factory.logits_scopes(checked.name)) == CLASSES
  top = model.name
  if checked.name == 'inception_v4':
    fully_connected = {'Logits/Logits': [1536, CLASSES],
                       'AuxLogits/Aux_logits': [768, CLASSES]}
  else:
    fully_connected = {'Logits/Logits': [1536, CLASSES],
                       'AuxLogits/Logits': [768, CLASSES]}
    # slim.repeat's scopes, the last unit's own scope, biased up-projections.
    for scope, depth in [('Repeat/block35_10', 320), ('Repeat_1/block17_20', 1088),
                         ('Repeat_2/block8_9', 2080), ('Block8', 2080)]:
      assert shapes['%s/%s/Conv2d_1x1/biases' % (top, scope)] == [depth]
      assert '%s/%s/Conv2d_1x1/BatchNorm/beta' % (top, scope) not in shapes
    assert '%s/Repeat/block35_11/Conv2d_1x1/biases' % top not in shapes
    assert '%s/Block8/Conv2d_1x1/weights' % top in shapes
  for scope, shape in fully_connected.items():
    assert shapes['%s/%s/weights' % (top, scope)] == shape
    assert shapes['%s/%s/biases' % (top, scope)] == [CLASSES]


# At 107x107 (5x5 where 299 gives 17x17, 2x2 where it gives 8x8).
V4_107 = {
    'Conv2d_1a_3x3': (53, 53, 32), 'Conv2d_2a_3x3': (51, 51, 32),
    'Conv2d_2b_3x3': (51, 51, 64), 'Mixed_3a': (25, 25, 160),
    'Mixed_4a': (23, 23, 192), 'Mixed_5a': (11, 11, 384),
    'Mixed_6a': (5, 5, 1024), 'Mixed_7a': (2, 2, 1536),
    'AuxLogits': (CLASSES,), 'global_pool': (1, 1, 1536), 'PreLogits': (1536,),
    'PreLogitsFlatten': (1536,), 'Logits': (CLASSES,), 'Predictions': (CLASSES,),
}
V4_107.update({'Mixed_5' + c: (11, 11, 384) for c in 'bcde'})
V4_107.update({'Mixed_6' + c: (5, 5, 1024) for c in 'bcdefgh'})
V4_107.update({'Mixed_7' + c: (2, 2, 1536) for c in 'bcd'})
IRV2_107 = {
    'Conv2d_1a_3x3': (53, 53, 32), 'Conv2d_2a_3x3': (51, 51, 32),
    'Conv2d_2b_3x3': (51, 51, 64), 'MaxPool_3a_3x3': (25, 25, 64),
    'Conv2d_3b_1x1': (25, 25, 80), 'Conv2d_4a_3x3': (23, 23, 192),
    'MaxPool_5a_3x3': (11, 11, 192), 'Mixed_5b': (11, 11, 320),
    'Mixed_6a': (5, 5, 1088), 'PreAuxLogits': (5, 5, 1088),
    'Mixed_7a': (2, 2, 2080), 'Conv2d_7b_1x1': (2, 2, 1536),
    'AuxLogits': (CLASSES,), 'global_pool': (1, 1, 1536), 'PreLogits': (1536,),
    'PreLogitsFlatten': (1536,), 'Logits': (CLASSES,), 'Predictions': (CLASSES,),
}


def test_end_points(checked):
  expected = V4_107 if checked.name == 'inception_v4' else IRV2_107
  assert {k: tuple(v.shape[1:]) for k, v in checked.model.output.items()} == expected
  # The aux conv's kernel is the pooled map's own size: 1x1 here, 5x5 at 299.
  conv_768 = {'inception_v4': 'AuxLogits.Conv2d_2a',
              'inception_resnet_v2': 'AuxLogits.Conv2d_2a_5x5'}[checked.name]
  assert checked.model.get_layer(conv_768).kernel.shape == (1, 1, 128, 768)


def test_convs_take_the_gradient_option(checked):
  convs = [l for l in checked.model.layers if isinstance(l, keras.layers.Conv2D)]
  assert len(convs) > 100
  assert all(isinstance(l, conv_layers.Conv2D) for l in convs)


def test_logits_scopes_select_both_classifiers(checked):
  spec = nets_factory.get_spec(checked.name)
  assert spec.default_image_size == 299 and spec.preprocessing == 'inception'
  model = checked.model
  inside, _, unmatched = scopes.select(model.weights, model.name,
                                       ','.join(spec.logits_scopes))
  assert not unmatched
  sized = {v.path for v in model.weights if v.shape[-1] == CLASSES}
  assert len(sized) == 4  # two fully connected layers
  assert sized <= {v.path for v in inside}
  assert {v.path.split('.')[0] for v in inside} == {'Logits', 'AuxLogits'}


def test_weight_decay_is_slims(checked):
  """Slim's L2 (wd * sum(w**2) / 2) on kernels; IRv2's arg scope decays biases too."""
  model = checked.model
  decays_biases = checked.name == 'inception_resnet_v2'
  decayed = [v for v in model.trainable_weights if v.path.endswith('/kernel') or
             (decays_biases and v.path.endswith('/bias'))]
  assert not [v for v in decayed if 'BatchNorm' in v.path]
  expected = sum(float(np.sum(np.square(v.numpy()))) for v in decayed)
  np.testing.assert_allclose(float(tf.add_n(model.losses)),
                             WEIGHT_DECAY * expected / 2.0, rtol=1e-4)
  # The two classifiers' biases, and IRv2's 40 up-projections'.
  biases = [v for v in model.trainable_weights if v.path.endswith('/bias')]
  assert len(biases) == (42 if decays_biases else 2)


@pytest.mark.parametrize('name, kwargs, size, message', [
    ('inception_v4', {}, SIZE - 1, 'at least 107 for inception_v4 with '
     r'create_aux_logits=True \(75 without\)'),
    ('inception_v4', {'create_aux_logits': False}, 74, 'at least 75 for '
     'inception_v4, got'),
    ('inception_resnet_v2', {}, SIZE - 1, 'at least 107 for inception_resnet_v2'),
    ('inception_resnet_v2', {'align_feature_maps': True}, 64, 'at least 65 for '
     r'inception_resnet_v2 with create_aux_logits=True \(1 without\)'),
])
def test_too_small_input_is_one_line(name, kwargs, size, message):
  with pytest.raises(ValueError, match='input_shape: height and width must be '
                     + message) as info:
    nets_factory.build_model(name, CLASSES, (size, size, 3), **kwargs)
  assert '\n' not in str(info.value)


def test_smallest_inputs_follow_the_layer_arithmetic():
  # 75 -> 37, 35, 17, 15, 7, 3 (Mixed_6*), 1 (Mixed_7*); the aux pool needs the
  # Mixed_6 map at 5x5: 107 -> 53, 51, 25, 23, 11, 5.
  sizes = inception_v4.body_sizes((75, 75), inception_v4.BODY)
  assert sizes['Mixed_6h'] == (3, 3) and sizes['Mixed_7d'] == (1, 1)
  assert inception_v4.body_sizes((74, 74), inception_v4.BODY) is None
  assert inception_v4.body_sizes((299, 299), inception_v4.BODY)['Mixed_7d'] == (8, 8)
  assert inception_v4.smallest_input(inception_v4.BODY, 'Mixed_6h', True) == 107
  # Non-square images are checked per side.
  with pytest.raises(ValueError, match='got \\(107, 106, 3\\)'):
    nets_factory.build_model('inception_resnet_v2', CLASSES, (107, 106, 3))


def test_unknown_size_needs_no_aux_head():
  with pytest.raises(ValueError, match="input_shape: inception_v4's auxiliary "
                     'head needs a known height and width'):
    nets_factory.build_model('inception_v4', CLASSES, (None, None, 3))


def test_bad_activation_is_one_line():
  with pytest.raises(ValueError, match="activation_fn: expected a Keras "
                     "activation name .* got 'relu7'"):
    nets_factory.build_model('inception_resnet_v2', CLASSES, activation_fn='relu7')


def test_smallest_input_without_classifier_gives_features():
  # 75x75 with no classes: no heads at all (TF-Slim skips the aux head too).
  model = nets_factory.build_model('inception_v4', 0, (75, 75, 3))
  assert 'Logits' not in model.output and 'AuxLogits' not in model.output
  assert not [l for l in model.layers if l.name.startswith(('Logits.Logits',
                                                            'AuxLogits'))]
  features = model(np.zeros((1, 75, 75, 3), 'float32'), training=False)
  assert tuple(features['PreLogits'].shape) == (1, 1536)
  assert tuple(features['Mixed_7d'].shape) == (1, 1, 1, 1536)


# ==============================================================================
# Slow: the other IRv2 options, 299x299 counts, training.
# ==============================================================================


@pytest.mark.slow
def test_relu6_and_aligned_maps_equal_tf_slims(tmp_path):
  """activation_fn='relu6' (also clipping each scaled residual to [-6, 6]) and
  align_feature_maps ('SAME' everywhere: 65 -> 33, 17, 9, 5, 3) as TF-Slim's."""
  prefix = str(tmp_path / 'model.ckpt')
  build = slim_reference_inception4.VARIANTS['inception_resnet_v2_relu6_aligned']
  images, logits, aux = save_reference(build, prefix, 65, CLASSES)
  model = nets_factory.build_model('inception_resnet_v2', CLASSES, (65, 65, 3),
                                   activation_fn='relu6', align_feature_maps=True)
  assert tuple(model.output['Conv2d_7b_1x1'].shape[1:3]) == (3, 3)
  checkpoints.restore_model(model, prefix)
  out = model(images, training=False)
  assert_same(out['Logits'].numpy(), logits)
  assert_same(out['AuxLogits'].numpy(), aux)
  units = [l for l in model.layers
           if isinstance(l, inception_resnet_v2.ScaledResidual)]
  # TF-Slim clips in the 39 relu6 units, not in the last Block8 (no activation).
  assert len(units) == 40 and [l.name for l in units if l.clip != 6.0] == [
      'Block8.add']
  assert model.get_layer('Repeat_1.block17_3.add').scale == pytest.approx(0.10)


def test_scaled_residual_clips_only_when_asked():
  # The clip changes no forward value of the relu6 net (each unit's input is
  # already in [0, 6], so relu6 saturates either way), hence this direct check.
  net = np.full((1, 1, 1, 3), 0.5, 'float32')
  up = np.array([[[[100.0, -100.0, 10.0]]]], 'float32')
  clipped = inception_resnet_v2.ScaledResidual(0.2, clip=6.0)([net, up])
  np.testing.assert_allclose(clipped.numpy().ravel(), [6.5, -5.5, 2.5])
  plain = inception_resnet_v2.ScaledResidual(0.2)([net, up])
  np.testing.assert_allclose(plain.numpy().ravel(), [20.5, -19.5, 2.5])


def _reference_counts(build, size, num_classes):
  """(variables, parameters, conv + matmul multiply-adds per image) of TF-Slim's graph."""
  graph = tf.Graph()
  with graph.as_default():
    build(tf.compat.v1.placeholder(tf.float32, (1, size, size, 3)), num_classes)
    variables = tf.compat.v1.global_variables()
    macs = 0
    for op in graph.get_operations():
      if op.type == 'Conv2D':
        kh, kw, cin, _ = op.inputs[1].shape.as_list()
        macs += np.prod(op.outputs[0].shape.as_list()) * kh * kw * cin
      elif op.type == 'MatMul':
        macs += np.prod(op.inputs[1].shape.as_list())
  return (len(variables), sum(int(np.prod(v.shape.as_list())) for v in variables),
          int(macs))


# TF-Slim's code at 299 (docs/tf-slim-zoo.md): variables and parameters incl.
# batch norm statistics, with and without the auxiliary head; 1001 classes.
ZOO = {'inception_v4': (608, 46074066, 42712937),
       'inception_resnet_v2': (908, 59244594, 55875273)}


@pytest.mark.slow
@pytest.mark.parametrize('name', NETS)
def test_counts_at_299_are_tf_slims(name):
  model = nets_factory.build_model(name, 1001)
  variables, params, without_aux = ZOO[name]
  summary = complexity.summarize(model)
  assert len(model.weights) == variables
  assert summary['all_params'] == params
  aux = sum(int(np.prod(v.shape)) for v in model.weights
            if v.path.startswith('AuxLogits'))
  assert params - aux == without_aux
  # The same graph in TF-Slim's code: variables, parameters and multiply-adds.
  reference = _reference_counts(slim_reference.REFERENCES[name], 299, 1001)
  assert reference == (variables, params, summary['macs'])
  # The paper's figures: 8x8x1536 before the pool (Figures 9 and 15).
  last = 'Mixed_7d' if name == 'inception_v4' else 'Conv2d_7b_1x1'
  assert tuple(model.output[last].shape[1:]) == (8, 8, 1536)
  assert tuple(model.output['AuxLogits'].shape[1:]) == (1001,)


@pytest.mark.slow
@pytest.mark.parametrize('name', NETS)
def test_two_training_steps(tmp_path, name):
  """The project's RunState, Runner and Loop: the aux loss counts, weights move."""
  from conftest import train_config
  from slimkit import run_state
  from slimkit import step
  config = train_config(tmp_path / 'train', '(in memory)', model_name=name,
                        batch_size=2, optimizer='momentum', learning_rate=0.01,
                        weight_decay=4e-5, conv_gradients='tf', jit_compile='false',
                        batch_norm_decay=0.9)
  state = run_state.RunState(config, tf.distribute.get_strategy(),
                             num_classes=5, input_shape=(SIZE, SIZE, 3),
                             num_samples=8)
  assert 'AuxLogits' in state.model.output
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (8, SIZE, SIZE, 3)).astype(np.float32)
  labels = np.arange(8, dtype=np.int64) % 5
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(2)
  before = [v.numpy() for v in state.variables_to_train]
  runner = step.Runner(state, jit_compile=config['jit_compile'])
  metrics = dict(zip(step.METRICS, runner(runner.iterator(dataset), 2)))
  assert state.current_step() == 2
  assert all(np.isfinite(v) for v in metrics.values()), metrics
  assert metrics['aux_loss'] > 0 and metrics['regularization_loss'] > 0
  assert metrics['total_loss'] == pytest.approx(
      metrics['cross_entropy'] + metrics['aux_loss'] +
      metrics['regularization_loss'], rel=1e-5)
  after = [v.numpy() for v in state.variables_to_train]
  moved = [v.path for v, a, b in zip(state.variables_to_train, before, after)
           if not np.array_equal(a, b)]
  assert len(moved) == len(before)
  # Batch norm statistics moved too (training mode, decay 0.9).
  bn = state.model.get_layer('Conv2d_1a_3x3.BatchNorm')
  assert not np.allclose(bn.moving_mean.numpy(), 0.0)
