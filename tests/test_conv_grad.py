"""Conv gradients by alternative formulations (nets/conv_grad*.py, conv_layers.py).

Every formulation must give TensorFlow's gradients for every kernel size, stride,
padding and dilation the nets use; the automatic choice must measure once, cache
per machine, and leave training results unchanged.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import train_config
from common import tuning
from nets import conv_grad
from nets import conv_grad_auto
from nets import conv_layers
from nets import nets_factory
from slimkit import checkpoints
from slimkit import train

# (kernel, stride, padding, dilation, input size): the nets' convs, small.
CONVS = [
    (1, 1, 'SAME', 1, 5),    # bottlenecks, pointwise, Inception 1x1 branches
    (1, 2, 'SAME', 1, 7),    # ResNet projection shortcut of a strided unit
    (3, 1, 'SAME', 1, 6),    # most 3x3 convs
    (3, 2, 'SAME', 1, 7),    # MobileNet Conv2d_0
    (3, 2, 'VALID', 1, 9),   # ResNet conv2d_same (after explicit padding)
    (5, 1, 'SAME', 1, 6),    # CifarNet, LeNet
    (5, 1, 'VALID', 1, 8),   # LeNet
    (7, 2, 'SAME', 1, 9),    # Inception Conv2d_1a_7x7
    (7, 2, 'VALID', 1, 12),  # ResNet conv1 after its padding
    (7, 1, 'VALID', 1, 7),   # ResNet small_input conv1: 1x1 output
    (3, 1, 'SAME', 2, 7),    # dilated (Slim's atrous ResNets)
    (3, 1, 'SAME', 1, 1),    # a 1x1 feature map
]
DEPTHWISE = [(3, 1, 'SAME', 1, 6), (3, 2, 'SAME', 1, 7), (3, 1, 'SAME', 1, 2)]


def _reference(x, w, stride, padding, dilation, depthwise, dy):
  with tf.GradientTape() as tape:
    tape.watch([x, w])
    if depthwise:
      y = tf.nn.depthwise_conv2d(x, w, [1, stride, stride, 1], padding,
                                 dilations=[dilation, dilation])
    else:
      y = tf.nn.conv2d(x, w, stride, padding, dilations=dilation)
  return y, tape.gradient(y, [x, w], output_gradients=dy)


def _relative(a, b):
  a, b = (tf.cast(t, tf.float64).numpy() for t in (a, b))
  return np.abs(a - b).max() / np.abs(b).max()


def _grads(x, w, stride, padding, dilation, depthwise, dy, decision):
  with tf.GradientTape() as tape:
    tape.watch([x, w])
    y = conv_grad_auto.conv(x, w, (stride, stride), padding, (dilation, dilation),
                            depthwise=depthwise, decision=decision)
  return y, tape.gradient(y, [x, w], output_gradients=dy)


def _cases():
  for case in CONVS:
    yield pytest.param(False, *case, id='conv-k%d-s%d-%s-d%d-n%d' % case)
  for case in DEPTHWISE:
    yield pytest.param(True, *case, id='depthwise-k%d-s%d-%s-d%d-n%d' % case)


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
@pytest.mark.parametrize('depthwise,k,stride,padding,dilation,n', list(_cases()))
def test_every_formulation_gives_tensorflows_gradients(depthwise, k, stride, padding,
                                                       dilation, n, dtype):
  rng = np.random.default_rng(k * 100 + stride * 10 + n)
  cin, cout = 5, 1 if depthwise else 6
  x32 = tf.constant(rng.standard_normal((3, n, n, cin)), tf.float32)
  w32 = tf.constant(rng.standard_normal((k, k, cin, cout)), tf.float32)
  y32 = conv_grad_auto.conv(x32, w32, (stride, stride), padding,
                            (dilation, dilation), depthwise=depthwise,
                            decision={'dx': 'tf', 'dw': 'tf'})
  dy32 = tf.constant(rng.standard_normal(y32.shape), tf.float32)
  # The float32 gradients are the reference at both precisions: bf16 results
  # may differ from them by rounding, whoever computes them.
  _, (want_dx, want_dw) = _reference(x32, w32, stride, padding, dilation, depthwise,
                                     dy32)
  x, w, dy = (tf.cast(t, dtype) for t in (x32, w32, dy32))
  g = conv_grad.Geometry(depthwise, tuple(x.shape), tuple(w.shape), tuple(y32.shape),
                         (stride, stride), (dilation, dilation), padding, dtype)
  tolerance = 1e-5 if dtype == 'float32' else 2e-2
  dx_methods, dw_methods = conv_grad.candidates(g)
  assert len(dx_methods) > 1 and len(dw_methods) > 1
  for dx_method in dx_methods:
    for dw_method in dw_methods:
      _, (dx, dw) = _grads(x, w, stride, padding, dilation, depthwise, dy,
                           {'dx': dx_method, 'dw': dw_method})
      assert dx.dtype == x.dtype and dw.dtype == w.dtype
      assert _relative(dx, want_dx) <= tolerance, (dx_method, dw_method)
      assert _relative(dw, want_dw) <= tolerance, (dx_method, dw_method)


def _alternatives(g):
  """The last (never TF's) formulation of each gradient."""
  dx_methods, dw_methods = conv_grad.candidates(g)
  return {'dx': dx_methods[-1], 'dw': dw_methods[-1]}


def test_auto_measures_once_then_reads_the_machines_cache(tmp_path, monkeypatch):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path))
  conv_grad_auto.clear()
  g = conv_grad.Geometry(False, (4, 4, 4, 8), (3, 3, 8, 8), (4, 4, 4, 8), (1, 1),
                         (1, 1), 'SAME', 'float32')
  decision = conv_grad_auto.choose(g)
  dx_methods, dw_methods = conv_grad.candidates(g)
  assert decision['dx'] in dx_methods and decision['dw'] in dw_methods
  assert set(decision['ms']['dx']) == set(dx_methods)  # all correct, all timed
  with open(conv_grad_auto.cache().path) as f:
    stored = json.load(f)
  assert stored['schema'] == tuning.SCHEMA and stored['kind'] == 'conv_grad'
  assert stored['machine']['tensorflow'] == tf.__version__
  assert list(stored['entries'].values()) == [decision]
  # Another process (here: a cleared one) reuses the file without measuring.
  conv_grad_auto.clear()
  monkeypatch.setattr(conv_grad_auto, 'measure',
                      lambda g, grads: pytest.fail('measured'))
  assert conv_grad_auto.choose(g) == decision
  conv_grad_auto.clear()


def _stored(entries, schema):
  with open(conv_grad_auto.cache().path, 'w') as f:
    json.dump({'schema': schema, 'kind': 'conv_grad', 'machine': {},
               'entries': entries}, f)


@pytest.mark.parametrize('damage', ['renamed method', 'missing field', 'old schema',
                                    'not json'])
def test_a_stale_or_damaged_cache_entry_is_measured_again(tmp_path, monkeypatch,
                                                          damage):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path))
  conv_grad_auto.clear()
  g = conv_grad.Geometry(False, (2, 4, 4, 8), (1, 1, 8, 8), (2, 4, 4, 8), (1, 1),
                         (1, 1), 'SAME', 'float32')
  key = '%s on %s' % (g.key(), conv_grad_auto.device_kind())
  good = {'dx': 'tf', 'dw': 'tf', 'ms': {'dx': {}, 'dw': {}}}
  os.makedirs(os.path.dirname(conv_grad_auto.cache().path))
  if damage == 'renamed method':
    _stored({key: dict(good, dx='matmul_v0')}, tuning.SCHEMA)
  elif damage == 'missing field':
    _stored({key: {'dx': 'tf', 'ms': {}}}, tuning.SCHEMA)
  elif damage == 'old schema':
    _stored({key: good}, tuning.SCHEMA - 1)
  else:
    with open(conv_grad_auto.cache().path, 'w') as f:
      f.write('{"schema": 1, "entr')
  measured = []
  monkeypatch.setattr(conv_grad_auto, 'measure',
                      lambda geometry, grads: measured.append(geometry) or good)
  assert conv_grad_auto.choose(g) == good
  assert len(measured) == 1
  assert conv_grad_auto.cache().get(key) == good  # the file is whole again
  conv_grad_auto.clear()


def test_only_the_gradients_a_tape_needs_are_measured(tmp_path, monkeypatch):
  """A frozen conv (filter not trained, input from frozen layers) measures nothing;
  a frozen conv after a trained layer measures its input gradient only."""
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path))
  conv_grad_auto.clear()
  asked = []
  real = conv_grad_auto.measure
  monkeypatch.setattr(conv_grad_auto, 'measure',
                      lambda g, grads: asked.append(tuple(grads)) or real(g, grads))
  rng = np.random.default_rng(0)
  x = tf.constant(rng.standard_normal((2, 8, 8, 4)), tf.float32)
  w = tf.Variable(rng.standard_normal((3, 3, 4, 4)).astype(np.float32))

  def gradients(watched):
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(watched)
      y = conv_grad_auto.conv(x, w, (1, 1), 'SAME', (1, 1))
      loss = tf.reduce_sum(y * y)
    return tape.gradient(loss, watched)

  assert gradients([]) == [] and asked == []
  dx, = gradients([x])
  assert asked == [('dx',)]
  with tf.GradientTape() as tape:
    tape.watch(x)
    want = tape.gradient(tf.reduce_sum(tf.nn.conv2d(x, w, 1, 'SAME') ** 2), x)
  assert _relative(dx, want) <= 1e-5
  gradients([x, w])
  assert asked == [('dx',), ('dw',)]  # dx is known by now
  assert set(conv_grad_auto.cache().entries().popitem()[1]) == {'dx', 'dw', 'ms'}
  conv_grad_auto.clear()


def test_measurement_of_a_huge_batch_runs_on_a_bounded_sample(monkeypatch):
  seen = []
  monkeypatch.setattr(conv_grad_auto, '_measure',
                      lambda g, x, w, dy, grads: seen.append((g, x.shape, dy.shape)))
  # 10 million images of 32x32x3: 123 GB as float32; only a sample is made.
  g = conv_grad.Geometry(False, (10000000, 32, 32, 3), (3, 3, 3, 8),
                         (10000000, 32, 32, 8), (1, 1), (1, 1), 'SAME', 'float32')
  conv_grad_auto.measure(g)
  (small, x_shape, dy_shape), = seen
  assert x_shape[0] == dy_shape[0] == small.x_shape[0] == conv_grad_auto.MEASURE_BATCH
  assert tuple(x_shape[1:]) == g.x_shape[1:] and small.w_shape == g.w_shape


def test_layers_keep_names_and_variables_and_give_tensorflows_gradients():
  images = tf.constant(np.random.default_rng(0).standard_normal((2, 32, 32, 3)),
                       tf.float32)
  models = {}
  for mode in ('tf', 'auto'):
    tf.keras.utils.set_random_seed(0)
    models[mode] = nets_factory.build_model('mobilenet_v1_cifar', 10, (32, 32, 3),
                                            conv_gradients=mode)
  paths = [[v.path for v in m.weights] for m in models.values()]
  assert paths[0] == paths[1]
  models['auto'].set_weights(models['tf'].get_weights())
  grads = {}
  for mode, model in models.items():
    with conv_grad_auto.forced(_alternatives), tf.GradientTape() as tape:
      logits = model(images, training=True)['Logits']
      loss = tf.reduce_sum(logits * tf.range(10, dtype=tf.float32))
    grads[mode] = tape.gradient(loss, model.trainable_variables)
  for v, want, got in zip(models['tf'].trainable_variables, grads['tf'],
                          grads['auto']):
    assert _relative(got, want) <= 1e-4, v.path


def test_short_training_runs_match_tensorflows_gradients(tmp_path, tiny_cifar_dir,
                                                         monkeypatch):
  """--conv_gradients=auto (forced to the alternatives, then measured) vs tf."""
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  conv_grad_auto.clear()
  # CifarNet has no batch norm: short runs of MobileNet on this tiny data turn
  # 1e-6 weight differences into 10 % gradient differences even with TF's own
  # gradients, so nets with batch norm are compared gradient by gradient above.
  changes = dict(model_name='cifarnet', dataset_name='cifar10',
                 max_number_of_steps=3, batch_size=8)

  def final_weights(mode, conv_gradients):
    config = train_config(tmp_path / mode, tiny_cifar_dir,
                          conv_gradients=conv_gradients, **changes)
    return checkpoints.read_variables(train.run(config)['checkpoint'])

  want = final_weights('tf', 'tf')
  with conv_grad_auto.forced(_alternatives):
    alternatives = final_weights('alternatives', 'auto')
  measured = final_weights('measured', 'auto')
  assert os.listdir(tmp_path / 'cache')  # decisions measured and stored
  conv_grad_auto.clear()
  for got in (alternatives, measured):
    assert set(got) == set(want)
    for path, value in want.items():
      scale = max(np.abs(value).max(), 1e-6)
      assert np.abs(got[path] - value).max() <= 1e-4 * scale, path
