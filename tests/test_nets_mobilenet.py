"""MobileNet V2 and V3: TF-Slim's end points, depth rounding and names, the same
logits as TF-Slim's nets on a random checkpoint, the published parameter and
multiply-add counts, the _cifar stems, the published checkpoint table, export to
SavedModel and TFLite, and two training steps with the real training objects."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import functools  # noqa: E402
import http.server  # noqa: E402
import tarfile  # noqa: E402
import threading  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from conftest import train_config  # noqa: E402
import slim_reference  # noqa: E402
import slim_reference_mobilenet  # noqa: E402
from nets import complexity  # noqa: E402
from nets import conv_layers  # noqa: E402
from nets import mobilenet_blocks  # noqa: E402
from nets import nets_factory  # noqa: E402
from slimkit import checkpoints  # noqa: E402
from slimkit import loop  # noqa: E402
from slimkit import run_state  # noqa: E402
from slimkit import slim_checkpoint  # noqa: E402
from slimkit import step  # noqa: E402

M = 1e6


# 1001 classes, as TF-Slim's published nets (the README counts them so).
@functools.lru_cache(maxsize=None)
def _model(name, size=224, num_classes=1001, **kwargs):
  return nets_factory.build_model(name, num_classes, (size, size, 3), **kwargs)


def _shapes(model):
  return {k: tuple(v.shape[1:]) for k, v in model.output.items()}


def _conv_depths(model):
  """Output depths of the full (not depthwise) convs, as TF-Slim's tests collect."""
  return {l.filters for l in model.layers if isinstance(l, conv_layers.Conv2D)}


# ==============================================================================
# Structure: end points, depth rounding, names.
# ==============================================================================


def test_make_divisible_is_slims():
  # Rounds to the nearest multiple of 8, never more than 10 % down, never below 8.
  assert mobilenet_blocks.make_divisible(32 * 0.35) == 16
  assert mobilenet_blocks.make_divisible(16 * 0.75) == 16
  assert mobilenet_blocks.make_divisible(11) == 16  # 8 would be 27 % down
  assert mobilenet_blocks.make_divisible(1280 * 1.4) == 1792
  assert mobilenet_blocks.make_divisible(160 * 1.3) == 208
  assert mobilenet_blocks.make_divisible(0.32) == 8
  assert mobilenet_blocks.make_divisible(16 * 72 / 16.) == 72
  assert mobilenet_blocks.make_divisible(16 * 3, divisor=16, min_value=32) == 48
  assert mobilenet_blocks.make_divisible(16 * 1, divisor=1) == 16


def test_v2_end_points_224():
  shapes = _shapes(_model('mobilenet_v2'))
  depths = [32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160,
            160, 320, 1280]
  sizes = [112, 112, 56, 56, 28, 28, 28, 14, 14, 14, 14, 14, 14, 14, 7, 7, 7, 7, 7]
  for i, (d, s) in enumerate(zip(depths, sizes)):
    assert shapes['layer_%d' % (i + 1)] == (s, s, d)
  # TF-Slim's mobilenet_v2_test: every block exposes its depthwise output.
  for i in range(2, 19):
    assert 'layer_%d/depthwise_output' % i in shapes
    assert shapes['layer_%d/output' % i] == shapes['layer_%d' % i]
  assert 'layer_2/expansion_output' not in shapes  # expansion 1: no expand conv
  assert shapes['layer_3/expansion_output'] == (112, 112, 96)
  assert shapes['layer_3/depthwise_output'] == (56, 56, 96)
  assert shapes['global_pool'] == (1, 1, 1280)
  assert shapes['PreLogits'] == (1280,)
  assert shapes['Logits'] == shapes['Predictions'] == (1001,)


@pytest.mark.parametrize('size, last', [(192, 6), (96, 3)])
def test_v2_image_sizes(size, last):
  # mobilenet_v2_test.testImageSizes.
  model = _model('mobilenet_v2', size=size)
  assert model.output['layer_18/output'].shape[1:3] == (last, last)


def test_v2_depth_rounding_as_slims_tests():
  # mobilenet_v2_test.testDivisibleBy: divisible_by=16, min_depth=32.
  model = _model('mobilenet_v2', divisible_by=16, min_depth=32)
  assert _conv_depths(model) == {32, 64, 96, 160, 192, 320, 384, 576, 960, 1280,
                                 1001}
  # testFineGrained: depth_multiplier 0.01 keeps Conv_1 at 1280.
  model = _model('mobilenet_v2', depth_multiplier=0.01,
                 finegrain_classification_mode=True)
  assert _conv_depths(model) == {8, 48, 1280, 1001}


def test_v3_end_points_224():
  shapes = _shapes(_model('mobilenet_v3_large'))
  # mobilenet_v3_test: layer_17 [7, 7, 960], layer_19 [1, 1, 1280] (after the pool).
  assert shapes['layer_17'] == (7, 7, 960)
  assert shapes['layer_18'] == (1, 1, 960)
  assert shapes['layer_19'] == (1, 1, 1280)
  assert shapes['layer_5/expansion_output'] == (56, 56, 72)
  assert shapes['layer_5/depthwise_output'] == (28, 28, 72)
  assert shapes['PreLogits'] == (1280,) and shapes['Logits'] == (1001,)
  small = _shapes(_model('mobilenet_v3_small'))
  assert small['layer_13'] == (7, 7, 576) and small['layer_15'] == (1, 1, 1024)
  assert small['layer_2'] == (56, 56, 16)  # the first block strides, with SE


def _slim_shapes(name):
  model = _model(name)
  names = slim_checkpoint.slim_names(model, model.name)
  return {names[v.path]: tuple(v.shape) for v in model.weights if v.path in names}


def test_v2_variable_names_and_counts():
  shapes = _slim_shapes('mobilenet_v2')
  assert shapes['MobilenetV2/Conv/weights'] == (3, 3, 3, 32)
  assert shapes['MobilenetV2/expanded_conv/depthwise/depthwise_weights'] == (
      3, 3, 32, 1)
  assert 'MobilenetV2/expanded_conv/expand/weights' not in shapes
  assert shapes['MobilenetV2/expanded_conv_1/expand/BatchNorm/gamma'] == (96,)
  assert shapes['MobilenetV2/expanded_conv_16/project/weights'] == (1, 1, 960, 320)
  assert shapes['MobilenetV2/Conv_1/weights'] == (1, 1, 320, 1280)
  assert shapes['MobilenetV2/Logits/Conv2d_1c_1x1/biases'] == (1001,)
  assert not any(n.endswith('/biases') for n in shapes if '/Logits/' not in n)
  # tf-slim-zoo.md, built from TF-Slim's code: 262 variables, 3,540,265 values
  # (6,158,505 for the 1.4 net), batch norm statistics included.
  assert len(shapes) == 262
  assert sum(np.prod(s) for s in shapes.values()) == 3540265
  assert sum(np.prod(s) for s in _slim_shapes('mobilenet_v2_140').values()) == 6158505
  assert _slim_shapes('mobilenet_v2_035')['MobilenetV2/Conv_1/weights'] == (
      1, 1, 112, 1280)  # finegrain_classification_mode


def test_v3_variable_names_and_counts():
  shapes = _slim_shapes('mobilenet_v3_large')
  se = 'MobilenetV3/expanded_conv_3/squeeze_excite/'
  assert shapes[se + 'Conv/weights'] == (1, 1, 72, 24)
  assert shapes[se + 'Conv/biases'] == (24,)
  assert shapes[se + 'Conv_1/weights'] == (1, 1, 24, 72)
  assert shapes[se + 'Conv_1/biases'] == (72,)
  assert shapes['MobilenetV3/expanded_conv_3/depthwise/depthwise_weights'] == (
      5, 5, 72, 1)
  assert shapes['MobilenetV3/Conv_1/BatchNorm/beta'] == (960,)
  assert shapes['MobilenetV3/Conv_2/weights'] == (1, 1, 960, 1280)
  assert shapes['MobilenetV3/Conv_2/biases'] == (1280,)
  assert not any(n.startswith('MobilenetV3/Conv_2/BatchNorm') for n in shapes)
  # tf-slim-zoo.md: 266 variables, 5,508,713 values.
  assert len(shapes) == 266
  assert sum(np.prod(s) for s in shapes.values()) == 5508713
  minimal = _slim_shapes('mobilenet_v3_large_minimalistic')
  assert not any('squeeze_excite' in n for n in minimal)
  assert {s[0] for n, s in minimal.items() if n.endswith('depthwise_weights')} == {3}
  # The published 0.75 nets keep Conv_2 at full width.
  assert _slim_shapes('mobilenet_v3_large_075')['MobilenetV3/Conv_2/weights'] == (
      1, 1, 720, 1280)


def test_v3_activations():
  model = _model('mobilenet_v3_large')
  layers = {l.name: l for l in model.layers}
  assert isinstance(layers['Conv.hard_swish'], mobilenet_blocks.HardSwish)
  assert layers['expanded_conv_1.expand.Relu'].activation is keras.activations.relu
  assert 'expanded_conv_6.depthwise.hard_swish' in layers
  assert isinstance(layers['Conv_2.hard_swish'], mobilenet_blocks.HardSwish)
  x = np.linspace(-5, 5, 11).astype('float32')
  np.testing.assert_allclose(mobilenet_blocks.HardSwish()(x),
                             x * np.clip(x + 3, 0, 6) / 6, atol=1e-6)
  np.testing.assert_allclose(mobilenet_blocks.HardSigmoid()(x),
                             np.clip(x + 3, 0, 6) * 0.16667, atol=1e-6)
  minimal = _model('mobilenet_v3_large_minimalistic')
  assert not any(isinstance(l, (mobilenet_blocks.HardSwish,
                                mobilenet_blocks.HardSigmoid))
                 for l in minimal.layers)


@pytest.mark.parametrize('kwargs, message', [
    (dict(depth_multiplier=0), 'depth_multiplier: expected a value > 0, got 0'),
    (dict(depth_multiplier=-0.5), 'depth_multiplier: expected a value > 0'),
    (dict(min_depth=0), 'min_depth: expected an integer >= 1, got 0'),
    (dict(divisible_by=2.5), 'divisible_by: expected an integer >= 1'),
])
def test_bad_options_are_one_line(kwargs, message):
  with pytest.raises(ValueError, match=message) as info:
    nets_factory.build_model('mobilenet_v2', 10, (32, 32, 3), **kwargs)
  assert '\n' not in str(info.value)


def test_bad_v3_options_are_one_line():
  with pytest.raises(ValueError, match="conv_defs: expected one of large, small, "
                     "large_minimalistic, small_minimalistic, got 'medium'"):
    nets_factory.build_model('mobilenet_v3_large', 10, (32, 32, 3),
                             conv_defs='medium')
  with pytest.raises(ValueError, match='depth_multiplier: expected a value > 0'):
    nets_factory.build_model('mobilenet_v3_small', 10, (32, 32, 3),
                             depth_multiplier=0)
  with pytest.raises(ValueError, match='input_shape: height and width must be at '
                     'least 1'):
    nets_factory.build_model('mobilenet_v3_small', 10, (0, 32, 3))


def test_weight_decay_is_training_scopes():
  # slim.l2_regularizer(wd) on every slim.conv2d kernel (squeeze-excite, Conv_2
  # and the classifier too), none on depthwise kernels, biases or batch norm.
  wd = 0.01
  model = nets_factory.build_model('mobilenet_v3_small_cifar', 10, (16, 16, 3),
                                   weight_decay=wd)
  kernels = [v for v in model.trainable_weights if v.path.endswith('/kernel')
             and '.depthwise/' not in v.path]
  assert any('squeeze_excite.Conv_1/' in v.path for v in kernels)
  expected = wd * sum(np.sum(np.square(v.numpy())) for v in kernels) / 2.0
  np.testing.assert_allclose(float(tf.add_n(model.losses)), expected, rtol=1e-4)
  assert len(model.losses) == len(kernels)


# ==============================================================================
# The same logits as TF-Slim's nets (tests/slim_reference_mobilenet.py).
# ==============================================================================


def _parity(tmp_path, name, size, num_classes=1001):
  prefix = str(tmp_path / name / 'model.ckpt')
  images, theirs = slim_reference.save_random_checkpoint(name, prefix, size,
                                                         num_classes)
  model = nets_factory.build_model(name, num_classes, (size, size, 3))
  restored, _, missing = checkpoints.restore_model(model, prefix)
  assert restored and not missing
  ours = model(images, training=False)['Logits'].numpy()
  scale = np.abs(theirs).max()
  assert scale > 0
  assert np.abs(ours - theirs).max() <= 1e-4 * scale


# Building a TF-Slim graph costs ~8 s here (TF1 variable creation), so the quick
# run checks one net per kind of block; the others are slow.
@pytest.mark.parametrize('name', [
    'mobilenet_v2_035',                 # V2 blocks, rounding, Conv_1 kept at 1280
    'mobilenet_v3_large_075',           # SE, hard-swish, 5x5, Conv_2 kept
    pytest.param('mobilenet_v3_small_minimalistic', marks=pytest.mark.slow),
    pytest.param('mobilenet_v2', marks=pytest.mark.slow),
    pytest.param('mobilenet_v2_140', marks=pytest.mark.slow),
    pytest.param('mobilenet_v3_large', marks=pytest.mark.slow),
    pytest.param('mobilenet_v3_small', marks=pytest.mark.slow),
    pytest.param('mobilenet_v3_large_minimalistic', marks=pytest.mark.slow),
])
def test_logits_equal_tf_slims(tmp_path, name):
  _parity(tmp_path, name, 96)


# ==============================================================================
# Parameters and multiply-adds.
# ==============================================================================


def _within(ours, published, unit):
  """Within 2 %, or within the rounding of the published figure."""
  return abs(ours - published) <= max(0.02 * published, unit / 2.0)


# (name, size, params, params unit, MACs) from TF-Slim's nets/mobilenet/README.md.
README = [
    ('mobilenet_v2', 224, 3.47 * M, 0.01 * M, 300 * M),
    ('mobilenet_v2', 192, 3.47 * M, 0.01 * M, 221 * M),
    ('mobilenet_v2', 160, 3.47 * M, 0.01 * M, 154 * M),
    ('mobilenet_v2', 128, 3.47 * M, 0.01 * M, 99 * M),
    ('mobilenet_v2', 96, 3.47 * M, 0.01 * M, 56 * M),
    ('mobilenet_v2_140', 224, 6.06 * M, 0.01 * M, 582 * M),
    ('mobilenet_v2_130', 224, 5.34 * M, 0.01 * M, 509 * M),
    ('mobilenet_v2_075', 224, 2.61 * M, 0.01 * M, 209 * M),
    ('mobilenet_v2_050', 224, 1.95 * M, 0.01 * M, 97 * M),
    ('mobilenet_v2_035', 224, 1.66 * M, 0.01 * M, 59 * M),
    ('mobilenet_v3_large', 224, 5.4 * M, 0.1 * M, 217 * M),
    ('mobilenet_v3_large_075', 224, 4.0 * M, 0.1 * M, 155 * M),
    ('mobilenet_v3_large_minimalistic', 224, 3.9 * M, 0.1 * M, 209 * M),
]


@pytest.mark.parametrize('name, size, params, unit, macs', README)
def test_counts_match_the_mobilenet_readme(name, size, params, unit, macs):
  summary = complexity.summarize(_model(name, size))
  assert _within(summary['params'], params, unit), summary
  assert _within(summary['macs'], macs, 1 * M), summary


def test_v3_small_counts_are_tf_slims_and_the_papers():
  """The README's small rows (66 M / 2.9 M, 0.75: 44 M / 2.4 M, minimalistic
  65 M / 2.0 M) do not fit TF-Slim's V3_SMALL; its graph gives 56.5 M / 2.54 M,
  what the MobileNetV3 paper (Table 3) lists: 56 M / 2.5 M, 0.75: 44 M / 2.0 M."""
  params, macs, _ = slim_reference_mobilenet.graph_counts('mobilenet_v3_small',
                                                          num_classes=1001)
  summary = complexity.summarize(_model('mobilenet_v3_small'))
  # Our counter sees every conv of TF-Slim's graph, squeeze-excite's on 1x1 maps too.
  assert (summary['params'], summary['macs']) == (params, macs) == (2543881, 56511424)
  assert _within(macs, 56 * M, 1 * M) and _within(params, 2.5 * M, 0.1 * M)
  small_075 = complexity.summarize(_model('mobilenet_v3_small_075'))
  assert _within(small_075['macs'], 44 * M, 1 * M)
  assert _within(small_075['params'], 2.0 * M, 0.1 * M)
  minimal = complexity.summarize(_model('mobilenet_v3_small_minimalistic'))
  assert _within(minimal['params'], 2.0 * M, 0.1 * M)
  assert abs(minimal['macs'] - 52.3 * M) < 0.1 * M  # README: 65 M


# ==============================================================================
# The _cifar stems.
# ==============================================================================


# (name, ImageNet name, the last end point before the head's pooling)
@pytest.mark.parametrize('name, plain, last', [
    ('mobilenet_v2_cifar', 'mobilenet_v2', 'layer_19'),
    ('mobilenet_v3_large_cifar', 'mobilenet_v3_large', 'layer_17'),
    ('mobilenet_v3_small_cifar', 'mobilenet_v3_small', 'layer_13'),
])
def test_cifar_stems_keep_resolution_and_weights(name, plain, last):
  small = _model(name, size=32)
  ordinary = _model(plain)  # 224 -> 7x7 there, so 32 -> 1x1 without small_input
  assert nets_factory.default_image_size(name) == 32
  assert nets_factory.preprocessing_name(name) == 'cifar'
  assert small.output[last].shape[1] == 4 and ordinary.output[last].shape[1] == 7
  assert [v.shape for v in small.weights] == [v.shape for v in ordinary.weights]
  # Same residuals as the ImageNet net: V3 small's first block (16 -> 16) loses
  # its stride but gains no shortcut.
  adds = lambda m: sorted(l.name for l in m.layers if isinstance(l, keras.layers.Add))
  assert adds(small) == adds(ordinary)
  out = small(np.zeros((2, 32, 32, 3), 'float32'), training=False)
  assert tuple(out['Logits'].shape) == (2, 1001)


# ==============================================================================
# Published checkpoints: the table, naming the net, the download.
# ==============================================================================


def test_published_table_rows():
  rows = {k: v for k, v in slim_checkpoint.PUBLISHED.items()
          if k.startswith('mobilenet_v2') or k.startswith('mobilenet_v3')}
  assert len(rows) == 28  # 22 V2 archives, 6 V3 float ones
  assert rows['mobilenet_v2'].archive == (
      'https://storage.googleapis.com/mobilenet_v2/checkpoints/mobilenet_v2_1.0_224.tgz')
  assert rows['mobilenet_v2_0.35_96'].image_size == 96
  assert rows['mobilenet_v3_small_075'].archive == (
      'https://storage.googleapis.com/mobilenet_v3/checkpoints/'
      'v3-small_224_0.75_float.tgz')
  for key, row in rows.items():
    assert (row.num_classes, row.labels_offset, row.preprocessing) == (
        1001, 0, 'inception')
    assert key in nets_factory.networks_map or not key.startswith('mobilenet_v3')
  assert slim_checkpoint.archive_url(rows['mobilenet_v2'], 'http://mirror/x/') == (
      'http://mirror/x/mobilenet_v2/checkpoints/mobilenet_v2_1.0_224.tgz')


@pytest.mark.parametrize('name', [
    'mobilenet_v2', 'mobilenet_v2_140', 'mobilenet_v2_130', 'mobilenet_v2_075',
    'mobilenet_v2_050', 'mobilenet_v2_035', 'mobilenet_v3_large',
    'mobilenet_v3_large_075', 'mobilenet_v3_small', 'mobilenet_v3_small_075',
    'mobilenet_v3_large_minimalistic', 'mobilenet_v3_small_minimalistic'])
def test_identify_names_each_published_net(name):
  model = _model(name)
  assert slim_checkpoint.identify_model(model, model.name) == name


def save_slim_checkpoint(prefix, values):
  """A TF1 name-based checkpoint of {TF-Slim name: value}, as TF-Slim's Saver writes."""
  os.makedirs(os.path.dirname(prefix), exist_ok=True)
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.Variable(v, name=n) for n, v in values.items()]
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saver.save(sess, prefix, write_meta_graph=False)


def _random_slim_values(model, seed):
  """{TF-Slim name: value} of random weights and batch norm statistics."""
  rng = np.random.RandomState(seed)
  names = slim_checkpoint.slim_names(model, model.name)
  return {names[v.path]: slim_reference.random_value(
      names[v.path], list(v.shape), rng).astype(np.float32)
          for v in model.weights if v.path in names}


class _Quiet(http.server.SimpleHTTPRequestHandler):
  def log_message(self, *args):
    pass


def test_v3_archive_downloads_by_name_and_reads_ema(tmp_path, monkeypatch):
  """A V3 archive as published (ema/model-N beside pristine/model.ckpt-N) served
  by a local mirror of storage.googleapis.com, fetched by its short name."""
  model = nets_factory.build_model('mobilenet_v3_small', 1001, (32, 32, 3))
  ema, pristine = _random_slim_values(model, 1), _random_slim_values(model, 2)
  stem = 'v3-small_224_1.0_float'
  save_slim_checkpoint(str(tmp_path / stem / 'ema' / 'model-388500'), ema)
  save_slim_checkpoint(str(tmp_path / stem / 'pristine' / 'model.ckpt-388500'),
                       pristine)
  served = tmp_path / 'served'
  archive_path = served / 'mobilenet_v3' / 'checkpoints' / (stem + '.tgz')
  archive_path.parent.mkdir(parents=True)
  with tarfile.open(archive_path, 'w:gz') as tar:
    tar.add(str(tmp_path / stem), arcname=stem)
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  server = http.server.ThreadingHTTPServer(
      ('127.0.0.1', 0), functools.partial(_Quiet, directory=str(served)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    monkeypatch.setenv('SLIMKIT_MODELS_URL',
                       'http://127.0.0.1:%d/' % server.server_address[1])
    restored, _, missing = checkpoints.restore_model(model, 'mobilenet_v3_small')
  finally:
    server.shutdown()
    server.server_close()
    thread.join()
  assert restored and not missing
  names = slim_checkpoint.slim_names(model, model.name)
  for v in model.weights:
    if v.path in names:
      np.testing.assert_array_equal(v.numpy(), ema[names[v.path]], err_msg=v.path)
  assert (tmp_path / 'cache' / 'downloads' / (stem + '.tgz')).is_file()


# ==============================================================================
# Export for phones, and training.
# ==============================================================================


@pytest.mark.parametrize('name', [
    pytest.param('mobilenet_v2_035', marks=pytest.mark.slow),  # 11-20 s each
    pytest.param('mobilenet_v3_small', marks=pytest.mark.slow)])
def test_export_saved_model_and_tflite_agree(tmp_path, name):
  """export.run from a TF-Slim checkpoint alone; classify_image's top-1 from the
  SavedModel equals the TFLite model's; hard-swish and SE need no TF ops."""
  import classify_image  # pylint: disable=g-import-not-at-top
  from preprocessing import preprocessing_factory  # pylint: disable=g-import-not-at-top
  from slimkit import export  # pylint: disable=g-import-not-at-top
  size = 32
  model = nets_factory.build_model(name, 5, (size, size, 3))
  prefix = str(tmp_path / 'slim' / 'model.ckpt')
  save_slim_checkpoint(prefix, _random_slim_values(model, 0))
  output = tmp_path / 'exported'
  export.run({'model_name': name, 'checkpoint_path': prefix, 'image_size': size,
              'output_file': str(output), 'tflite': True})
  rng = np.random.default_rng(0)
  paths = []
  for i in range(3):
    path = str(tmp_path / ('image_%d.png' % i))
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    paths.append(path)
  images = classify_image.read_images(paths)
  loaded, serve, _, batch = classify_image.load(str(output))
  served = np.array(classify_image.classify(serve, images, batch))
  del loaded
  preprocess = preprocessing_factory.get_preprocessing(
      nets_factory.preprocessing_name(name), is_training=False)
  pixels = np.stack([preprocess(tf.io.decode_image(data, channels=3), size,
                                size).numpy() for _, data in images])
  interpreter = tf.lite.Interpreter(model_path=str(output / export.TFLITE_FILE))
  ops = {op['op_name'] for op in interpreter._get_ops_details()}  # pylint: disable=protected-access
  assert not any(op.startswith('Flex') for op in ops), ops
  if 'v3' in name:
    assert 'HARD_SWISH' in ops, ops
  lite = interpreter.get_signature_runner('predict_images')(images=pixels)
  assert served.argmax(1).tolist() == lite['classes'].tolist()
  np.testing.assert_allclose(lite['probabilities'], served, atol=1e-4)


class _Recorder(object):
  """A hook keeping each call's metrics."""
  every_steps = None

  def __init__(self):
    self.metrics = []

  def begin(self, steps):
    pass

  def after_call(self, steps, call):
    self.metrics.append(dict(zip(step.METRICS, call.metrics)))

  def end(self, steps, call):
    pass


@pytest.mark.parametrize('name', [
    'mobilenet_v2_cifar', pytest.param('mobilenet_v3_small_cifar', marks=pytest.mark.slow)])
def test_two_training_steps(tmp_path, name):
  config = train_config(tmp_path / 'train', '(in memory)', model_name=name,
                        batch_size=4, weight_decay=4e-5, learning_rate=0.05,
                        conv_gradients='tf', jit_compile='false')
  state = run_state.RunState(config, tf.distribute.get_strategy(), num_classes=10,
                             input_shape=(32, 32, 3), num_samples=8)
  assert all(isinstance(l, (conv_layers.Conv2D, conv_layers.DepthwiseConv2D))
             for l in state.model.layers if isinstance(l, keras.layers.Conv2D))
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
  labels = np.arange(8) % 10
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(4)
  before = [v.numpy() for v in state.variables_to_train]
  recorder = _Recorder()
  steps = loop.Loop(step.Runner(state, jit_compile=config['jit_compile']), [recorder], max_steps=2,
                    steps_per_call=1)
  assert steps.run(dataset) == 2
  assert len(recorder.metrics) == 2
  for m in recorder.metrics:
    assert np.isfinite(m['total_loss']) and m['regularization_loss'] > 0
  changed = {v.path: not np.allclose(v.numpy(), b)
             for v, b in zip(state.variables_to_train, before)}
  # Every kernel moves. (Not every beta: batch statistics downstream cancel a
  # shift of a residual branch's output, so some get ~1e-9 gradients.)
  kernels = [p for p in changed if p.endswith('kernel')]
  assert len(kernels) > 50 and all(changed[p] for p in kernels)
  assert sum(changed.values()) > 0.9 * len(changed)


def test_mixed_bfloat16_forward():
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = nets_factory.build_model('mobilenet_v3_small_cifar', 10, (32, 32, 3))
    out = model(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(
        'float32'), training=False)
  finally:
    keras.mixed_precision.set_global_policy('float32')
  assert out['layer_2'].dtype == tf.bfloat16  # hard-swish and SE in bfloat16
  assert out['Logits'].dtype == out['Predictions'].dtype == tf.float32
  assert np.all(np.isfinite(out['Logits'].numpy()))
