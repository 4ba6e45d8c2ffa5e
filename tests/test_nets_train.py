"""Every net learns: a few optimizer steps on one fixed tiny batch lower the loss,
at 32x32 (CIFAR) and at the net's default size; small and grayscale inputs work;
batch norm follows the training flag; weight decay, mixed precision, CustomCNN
options and size."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from nets import custom_cnn  # noqa: E402
from nets import net_utils  # noqa: E402
from nets import nets_factory  # noqa: E402


def _batch(size, channels, batch=2, num_classes=10, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.uniform(-1, 1, (batch, size, size, channels)).astype('float32')
  labels = rng.integers(0, num_classes, batch)
  return tf.constant(images), tf.constant(labels)


def _train(model, images, labels, steps, learning_rate=1e-3):
  """Losses of `steps` Adam steps on one batch (eager: no tracing cost)."""
  optimizer = keras.optimizers.Adam(learning_rate)
  losses = []
  for _ in range(steps):
    with tf.GradientTape() as tape:
      logits = model(images, training=True)['Logits']
      loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
          labels, logits, from_logits=True))
      total = loss + tf.add_n(model.losses) if model.losses else loss
    grads = tape.gradient(total, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    losses.append(float(loss))
  return losses


# (name, image size, channels, batch, steps, Adam learning rate): each net at
# 32x32 (the big ones through their '_cifar' stem; test_grayscale_28x28 runs
# their plain stems on small images) and at its default size. LeNet's and
# CifarNet's dropout is off here (on 2-4 images it makes the training loss jump);
# test_nets_factory checks that it is on in training mode.
TRAIN_CASES = [
    ('lenet', 28, 1, 4, 6, 3e-4),
    ('lenet', 32, 3, 4, 6, 3e-4),
    ('cifarnet', 32, 3, 4, 6, 1e-3),
    ('custom_cnn', 32, 3, 4, 4, 1e-3),
    # The big builds (4-7 s each) in the slow set.
    pytest.param('inception_v1_cifar', 32, 3, 4, 3, 1e-3, marks=pytest.mark.slow),
    pytest.param('resnet_v1_50_cifar', 32, 3, 4, 3, 1e-3, marks=pytest.mark.slow),
    ('mobilenet_v1_cifar', 32, 3, 4, 3, 1e-3),
    pytest.param('inception_v1', 224, 3, 2, 3, 1e-3, marks=pytest.mark.slow),
    pytest.param('resnet_v1_50', 224, 3, 2, 3, 1e-3, marks=pytest.mark.slow),
    ('mobilenet_v1', 224, 3, 2, 3, 1e-3),
]


@pytest.mark.parametrize('name, size, channels, batch, steps, learning_rate',
                         TRAIN_CASES)
def test_loss_goes_down(name, size, channels, batch, steps, learning_rate):
  keras.utils.set_random_seed(1)
  options = {'dropout_keep_prob': 1.0} if name in ('lenet', 'cifarnet') else {}
  model = nets_factory.build_model(name, 10, (size, size, channels),
                                   weight_decay=1e-4, **options)
  images, labels = _batch(size, channels, batch)
  losses = _train(model, images, labels, steps, learning_rate)
  assert all(np.isfinite(losses)), losses
  assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize('name', [
    'lenet', 'cifarnet', 'custom_cnn', 'inception_v1', 'inception_v1_cifar',
    'resnet_v1_50', 'resnet_v1_50_cifar', 'mobilenet_v1_025',
    'mobilenet_v1_cifar'])
def test_grayscale_28x28(name):
  # MNIST-size grayscale input: no 'Negative dimension size' anywhere.
  model = nets_factory.build_model(name, 10, (28, 28, 1))
  images, _ = _batch(28, 1)
  out = model(images, training=False)
  assert tuple(out['Logits'].shape) == (2, 10)
  assert np.allclose(np.sum(out['Predictions'].numpy(), axis=1), 1.0,
                     atol=1e-5)


@pytest.mark.parametrize('name, size', [
    ('inception_v1', 7), ('resnet_v1_50', 1), ('mobilenet_v1', 3),
    ('custom_cnn', 2), ('lenet', 4), ('cifarnet', 5)])
def test_tiny_inputs(name, size):
  model = nets_factory.build_model(name, 3, (size, size, 3))
  out = model(np.zeros((1, size, size, 3), 'float32'), training=False)
  assert tuple(out['Logits'].shape) == (1, 3)


@pytest.mark.parametrize('name, size', [('lenet', 3), ('cifarnet', 2)])
def test_too_small_input_is_a_clear_error(name, size):
  with pytest.raises(ValueError, match='input_shape: height and width must be '
                     'at least 4'):
    nets_factory.build_model(name, 3, (size, size, 3))


def test_small_input_stem_keeps_resolution():
  # The _cifar variants drop two stride-2 stages: output stride 8, not 32.
  for name, end_point, stride_32, stride_8 in [
      ('inception_v1', 'Mixed_5c', 1, 4),
      ('resnet_v1_50', 'block4', 1, 4),
      ('mobilenet_v1', 'Conv2d_13_pointwise', 1, 4)]:
    plain = nets_factory.build_model(name, 10, (32, 32, 3))
    small = nets_factory.build_model(name + '_cifar', 10, (32, 32, 3))
    assert plain.output[end_point].shape[1] == stride_32
    assert small.output[end_point].shape[1] == stride_8
    # Same weights (an ImageNet checkpoint still loads), fewer pools.
    assert [v.shape for v in plain.weights] == [v.shape for v in small.weights]


def test_batch_norm_follows_training_flag():
  keras.utils.set_random_seed(2)
  model = nets_factory.build_model('custom_cnn', 10, (16, 16, 3),
                                   batch_norm_decay=0.5, dropout_rate=0.0)
  bn = model.get_layer('block1.conv1.BatchNorm')
  assert bn.momentum == 0.5
  images, _ = _batch(16, 3, batch=4)
  before = bn.moving_mean.numpy().copy()
  eval_1 = model(images, training=False)['Logits'].numpy()
  np.testing.assert_array_equal(before, bn.moving_mean.numpy())
  train = model(images, training=True)['Logits'].numpy()
  after = bn.moving_mean.numpy()
  # decay 0.5: the moving mean moves half way to the batch mean.
  assert not np.allclose(before, after)
  assert not np.allclose(eval_1, train)
  eval_2 = model(images, training=False)['Logits'].numpy()
  assert not np.allclose(eval_1, eval_2)  # Uses the updated statistics.
  np.testing.assert_allclose(
      eval_2, model(images, training=False)['Logits'].numpy(), rtol=1e-6)


@pytest.mark.parametrize('scale', [False, True])
def test_fused_batch_norm_matches_keras(scale):
  x = np.random.default_rng(4).normal(2.0, 3.0, (4, 5, 5, 6)).astype('float32')
  ours = net_utils.BatchNorm(momentum=0.9, epsilon=1e-3, scale=scale)
  ref = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3,
                                        scale=scale)
  ours.build(x.shape)
  ref.build(x.shape)
  rng = np.random.default_rng(5)
  weights = [rng.normal(size=w.shape).astype('float32') for w in ref.weights]
  weights[-1] = np.abs(weights[-1])  # moving_variance
  ours.set_weights(weights)
  ref.set_weights(weights)
  for training in (False, True):
    np.testing.assert_allclose(ours(x, training=training).numpy(),
                               ref(x, training=training).numpy(),
                               rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(ours.moving_mean.numpy(), ref.moving_mean.numpy(),
                             rtol=1e-5, atol=1e-5)
  # Slim's fused batch norm averages the Bessel-corrected batch variance.
  n = 4 * 5 * 5
  batch_var = x.reshape(-1, 6).var(axis=0)
  np.testing.assert_allclose(
      ours.moving_variance.numpy(),
      weights[-1] * 0.9 + batch_var * n / (n - 1) * 0.1, rtol=1e-4)


@pytest.mark.parametrize('name, decay, epsilon, scale', [
    ('inception_v1_cifar', 0.9997, 0.001, False),  # inception_v3_arg_scope
    pytest.param('resnet_v1_50_cifar', 0.997, 1e-5, True,  # resnet_arg_scope
                 marks=pytest.mark.slow),
    ('mobilenet_v1_cifar', 0.9997, 0.001, True),   # mobilenet_v1_arg_scope
])
def test_batch_norm_defaults_are_slims(name, decay, epsilon, scale):
  model = nets_factory.build_model(name, 10, (8, 8, 3))
  norms = [l for l in model.layers
           if isinstance(l, keras.layers.BatchNormalization)]
  assert norms and all(l.name.endswith('.BatchNorm') for l in norms)
  assert {(l.momentum, l.epsilon, l.scale, l.center) for l in norms} == {
      (decay, epsilon, scale, True)}
  faster = nets_factory.build_model(name, 10, (8, 8, 3), batch_norm_decay=0.9)
  assert {l.momentum for l in faster.layers
          if isinstance(l, keras.layers.BatchNormalization)} == {0.9}


def _decayed(name, path):
  """Which kernels Slim's arg_scopes regularize, per net."""
  if not path.endswith('/kernel'):
    return False  # Never biases, BatchNorm beta/gamma or statistics.
  if name.startswith('mobilenet'):
    return '_depthwise/' not in path  # regularize_depthwise=False.
  if name == 'cifarnet':
    return path.split('/')[0] in ('fc3', 'fc4')  # Not convs, not logits.
  return True


@pytest.mark.parametrize('name', ['lenet', 'cifarnet', 'custom_cnn',
                                  'inception_v1_cifar', 'resnet_v1_50_cifar',
                                  'mobilenet_v1_cifar'])
def test_weight_decay_is_slims_l2_on_kernels(name):
  wd = 0.01
  model = nets_factory.build_model(name, 10, (16, 16, 3), weight_decay=wd)
  expected = sum(np.sum(np.square(v.numpy())) for v in model.trainable_weights
                 if _decayed(name, v.path))
  # slim.l2_regularizer(wd)(w) = wd * tf.nn.l2_loss(w) = wd * sum(w**2) / 2.
  got = float(tf.add_n(model.losses))
  np.testing.assert_allclose(got, wd * expected / 2.0, rtol=1e-4)
  assert not nets_factory.build_model(name, 10, (16, 16, 3)).losses


@pytest.mark.parametrize('name, kwargs', [
    ('lenet', {}), ('cifarnet', {}), ('custom_cnn', {}),
    ('mobilenet_v1_cifar', {'depth_multiplier': 0.25})])
def test_mixed_bfloat16(name, kwargs):
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    keras.utils.set_random_seed(3)
    model = nets_factory.build_model(name, 10, (32, 32, 3), **kwargs)
    images, labels = _batch(32, 3, batch=4)
    out = model(images, training=False)
    assert out['Logits'].dtype == tf.float32
    assert out['Predictions'].dtype == tf.float32
    assert out['PreLogits'].dtype == tf.bfloat16  # The body runs in bfloat16.
    losses = _train(model, images, labels, steps=3)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
  finally:
    keras.mixed_precision.set_global_policy('float32')


def test_custom_cnn_weights_under_5_mb(tmp_path):
  model = nets_factory.build_model('custom_cnn', 10)
  path = str(tmp_path / 'custom_cnn.weights.h5')
  model.save_weights(path)
  size = os.path.getsize(path)
  assert 4e6 < size < 5 * 1024 * 1024, size


@pytest.mark.parametrize('activation', sorted(custom_cnn.ACTIVATIONS))
def test_custom_cnn_activations(activation):
  model = nets_factory.build_model('custom_cnn', 10, (8, 8, 3),
                                   activation=activation, widths=(8, 16))
  names = [l.name for l in model.layers]
  assert 'block2.conv2.BatchNorm' in names and 'block3.conv1' not in names
  acts = [l for l in model.layers if isinstance(l, keras.layers.Activation)]
  assert len(acts) == 4 and all(
      l.activation is keras.activations.get(custom_cnn.ACTIVATIONS[activation])
      for l in acts)
  out = model(np.ones((1, 8, 8, 3), 'float32'), training=False)
  assert np.all(np.isfinite(out['Logits'].numpy()))


def test_custom_cnn_depth_and_width_options():
  model = nets_factory.build_model('custom_cnn', 10, (32, 32, 3),
                                   widths='16,32,32,64', convs_per_block=3)
  convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
  assert len(convs) == 12
  assert [c.filters for c in convs[::3]] == [16, 32, 32, 64]
  assert tuple(model.output['block4'].shape[1:]) == (2, 2, 64)


@pytest.mark.parametrize('kwargs, message', [
    (dict(activation='gelu'), 'activation: expected one of elu, leaky_relu, '
     'relu, sigmoid, swish, tanh'),
    (dict(widths=(64, 0)), 'widths: expected positive'),
    (dict(convs_per_block=0), 'convs_per_block'),
])
def test_custom_cnn_bad_options(kwargs, message):
  with pytest.raises(ValueError, match=message):
    nets_factory.build_model('custom_cnn', 10, **kwargs)
