"""Pieces of training without a run: schedules, optimizers, presets, losses, EMA."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import train_config
from slimkit import learning_rate as lr_lib
from slimkit import loop
from slimkit import optimizers
from slimkit import presets
from slimkit import run_state
from slimkit import step
from slimkit import train


# ------------------------------------------------------------------------------
# Learning rates.
# ------------------------------------------------------------------------------


# The flags' defaults (TF-Slim's): the one place they are written is slimkit/flags.py.
FLAGS = train_config('/unused', '/unused')
LR_FLAGS = {'decay_type': FLAGS['learning_rate_decay_type'],
            'learning_rate': FLAGS['learning_rate'],
            'learning_rate_decay_factor': FLAGS['learning_rate_decay_factor'],
            'num_epochs_per_decay': FLAGS['num_epochs_per_decay'],
            'end_learning_rate': FLAGS['end_learning_rate'],
            'warmup_epochs': FLAGS['warmup_epochs'], 'max_number_of_steps': None}


def _schedule(num_samples, batch_size, decay_type, **changes):
  return lr_lib.configure_learning_rate(
      num_samples, batch_size, **dict(LR_FLAGS, decay_type=decay_type, **changes))


def _optimizer(name, learning_rate, **changes):
  return optimizers.configure_optimizer(name, learning_rate, dict(FLAGS, **changes))


def _rates(schedule, steps):
  return [lr_lib.value_at(schedule, s) for s in steps]


def test_exponential_is_staircase_over_global_batches():
  # 1000 samples, global batch 100: 10 steps per epoch; decay every 2 epochs = 20.
  schedule = _schedule(
      1000, 100, 'exponential', learning_rate=0.1, learning_rate_decay_factor=0.5,
      num_epochs_per_decay=2.0)
  np.testing.assert_allclose(_rates(schedule, [0, 19, 20, 39, 40]),
                             [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)


def test_decay_steps_follow_the_global_batch_not_replicas():
  # The same global batch gives the same schedule, however it is split.
  assert lr_lib.decay_steps_for(50000, 128, 2.0) == 781
  assert lr_lib.decay_steps_for(50000, 256, 2.0) == 390
  assert lr_lib.steps_per_epoch(50000, 128) == pytest.approx(390.625)


def test_polynomial_reaches_end_and_stays():
  schedule = _schedule(
      1000, 100, 'polynomial', learning_rate=0.1, end_learning_rate=0.01,
      num_epochs_per_decay=2.0)
  np.testing.assert_allclose(_rates(schedule, [0, 10, 20, 100]),
                             [0.1, 0.055, 0.01, 0.01], rtol=1e-5)


def test_cosine_runs_over_max_steps_to_end_learning_rate():
  schedule = _schedule(
      1000, 100, 'cosine', learning_rate=0.1, end_learning_rate=0.001,
      max_number_of_steps=200)
  np.testing.assert_allclose(_rates(schedule, [0, 100, 200]),
                             [0.1, 0.0505, 0.001], rtol=1e-4)
  with pytest.raises(ValueError, match='max_number_of_steps'):
    _schedule(1000, 100, 'cosine')


def test_warmup_is_slims_min_of_ramp_and_schedule():
  # 10 steps per epoch, 2 warm-up epochs: lr * step / 20 until it meets the schedule.
  schedule = _schedule(
      1000, 100, 'fixed', learning_rate=0.2, warmup_epochs=2)
  np.testing.assert_allclose(_rates(schedule, [0, 5, 10, 20, 50]),
                             [0.0, 0.05, 0.1, 0.2, 0.2], rtol=1e-6)
  assert 'warm-up over 20 steps' in lr_lib.describe(schedule)


def test_fixed_and_unknown_decay_type():
  assert _rates(_schedule(10, 2, 'fixed', learning_rate=0.3), [0, 99]) == \
      pytest.approx([0.3, 0.3])
  with pytest.raises(ValueError, match='learning_rate_decay_type'):
    _schedule(10, 2, 'linear')


# ------------------------------------------------------------------------------
# Optimizers.
# ------------------------------------------------------------------------------


def _one_update(optimizer, value, gradient):
  var = keras.Variable(np.array(value, np.float32))
  optimizer.build([var])
  optimizer.apply([tf.constant(gradient, tf.float32)], [var])
  return var.numpy()


def test_rmsprop_matches_tf1_with_accumulator_starting_at_one():
  # TF1: ms = 0.9 * 1 + 0.1 g^2; mom = 0.9 * 0 + lr g / sqrt(ms + eps); w -= mom.
  g, lr, eps = 2.0, 0.1, 1.0
  got = _one_update(_optimizer('rmsprop', lr), [1.0], [g])
  expected = 1.0 - lr * g / np.sqrt(0.9 + 0.1 * g * g + eps)
  np.testing.assert_allclose(got, [expected], rtol=1e-6)


def test_slim_parameters_reach_the_optimizers():
  adam = _optimizer('adam', 0.1)
  assert adam.epsilon == 1.0 and adam.beta_1 == 0.9  # Slim's opt_epsilon default
  momentum = _optimizer('momentum', 0.1, momentum=0.8)
  assert isinstance(momentum, keras.optimizers.SGD) and momentum.momentum == 0.8
  assert _optimizer('sgd', 0.1).momentum == 0.0
  ftrl = _optimizer('ftrl', 0.1, ftrl_l1=0.5)
  assert ftrl.l1_regularization_strength == 0.5
  adadelta = _optimizer('adadelta', 0.1, adadelta_rho=0.5)
  assert adadelta.rho == 0.5
  adagrad = _optimizer('adagrad', 0.1)
  assert adagrad.initial_accumulator_value == 0.1
  with pytest.raises(ValueError, match='--optimizer'):
    _optimizer('lamb', 0.1)


def test_adamw_decays_kernels_only():
  optimizer = _optimizer('adamw', 0.1, weight_decay=0.5)
  assert optimizers.decoupled_weight_decay('adamw')
  assert not optimizers.decoupled_weight_decay('adam')
  layer = keras.layers.Dense(1, kernel_initializer='ones', bias_initializer='ones')
  layer.build((None, 1))
  optimizers.exclude_from_decay(optimizer, layer.trainable_variables)
  optimizer.build(layer.trainable_variables)
  zero = [tf.zeros_like(v) for v in layer.trainable_variables]
  optimizer.apply(zero, layer.trainable_variables)
  # Zero gradients: only the decay moves the kernel (1 - lr * wd); the bias stays.
  np.testing.assert_allclose(layer.kernel.numpy(), [[0.95]], rtol=1e-6)
  np.testing.assert_allclose(layer.bias.numpy(), [1.0])


# ------------------------------------------------------------------------------
# Presets.
# ------------------------------------------------------------------------------


def test_preset_sets_defaults_and_explicit_flags_win():
  config = {'preset': 'thesis', 'optimizer': 'rmsprop', 'learning_rate': 0.01,
            'learning_rate_decay_type': 'exponential', 'batch_size': 32,
            'weight_decay': 4e-5, 'max_number_of_steps': None,
            'save_interval_secs': 600, 'save_summaries_secs': 600,
            'log_every_n_steps': 10}
  out = presets.resolve(config, explicit={'batch_size', 'max_number_of_steps'})
  assert out['optimizer'] == 'sgd' and out['learning_rate_decay_type'] == 'fixed'
  assert out['weight_decay'] == 0.0 and out['save_interval_secs'] == 60
  assert out['batch_size'] == 32 and out['max_number_of_steps'] is None
  assert config['optimizer'] == 'rmsprop'  # the input is not changed
  assert presets.resolve(dict(config, preset=None)) == dict(config, preset=None)


def test_preset_errors_name_the_problem():
  with pytest.raises(ValueError, match="--preset: unknown 'nope'"):
    presets.resolve({'preset': 'nope'})
  with pytest.raises(ValueError, match="sets 'bogus', which is not a flag"):
    presets.resolve({'preset': 'x'}, presets={'x': {'bogus': 1}})


@pytest.mark.parametrize('name', sorted(presets.PRESETS))
def test_every_preset_sets_train_flags_only(tmp_path, name):
  config = train_config(tmp_path, '(unused)', preset=name)
  out = presets.resolve(config)
  assert {k: out[k] for k in presets.PRESETS[name]} == presets.PRESETS[name]


def test_thesis_net_presets_train_the_imagenet_net_at_64_on_cifar10():
  for net in ('inception_v1', 'resnet_v1_50', 'mobilenet_v1'):
    preset = presets.PRESETS[net + '_cifar10']
    assert (preset['model_name'], preset['dataset_name'], preset['train_image_size'],
            preset['preprocessing_name']) == (net, 'cifar10', 64, 'cifar')
    fast = {k: v for k, v in presets.PRESETS['cifar_fast'].items()
            if k != 'max_number_of_steps'}
    assert {k: preset[k] for k in fast} == fast


# ------------------------------------------------------------------------------
# Losses, moving averages, loop boundaries, config checks.
# ------------------------------------------------------------------------------


def _softmax_ce(targets, logits):
  logits = logits - logits.max(-1, keepdims=True)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  return -(targets * log_p).sum(-1)


def test_losses_smooth_labels_and_scale_by_global_batch():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal((4, 5)).astype(np.float32)
  labels = np.array([0, 1, 2, 4])
  targets = step.targets_for(tf.constant(labels), 5, label_smoothing=0.1).numpy()
  np.testing.assert_allclose(targets[0], [0.92, 0.02, 0.02, 0.02, 0.02], rtol=1e-6)
  losses = step.compute_losses({'Logits': logits}, targets,
                               [tf.constant(0.5)], global_batch_size=8)
  # This replica holds 4 of a global batch of 8: its share is sum / 8.
  ce = _softmax_ce(targets, logits).sum() / 8
  np.testing.assert_allclose(losses['cross_entropy'], ce, rtol=1e-5)
  np.testing.assert_allclose(losses['regularization_loss'], 0.5)
  np.testing.assert_allclose(losses['total_loss'], ce + 0.5, rtol=1e-5)


def test_soft_targets_pass_through():
  soft = tf.constant([[0.25, 0.75]])
  np.testing.assert_allclose(step.targets_for(soft, 2), soft)


def test_moving_average_decay_ramps_up_as_slims():
  variable = keras.Variable(np.zeros(2, np.float32))
  ema = run_state.MovingAverages([variable], decay=0.99)
  variable.assign([10.0, 10.0])
  ema.update(0)  # decay = min(0.99, 1/10) = 0.1: shadow = 0.1*0 + 0.9*10
  np.testing.assert_allclose(ema.shadows[variable.path].numpy(), [9.0, 9.0], rtol=1e-6)
  ema.update(1000)  # decay = 0.99
  np.testing.assert_allclose(ema.shadows[variable.path].numpy(), [9.01, 9.01],
                             rtol=1e-6)
  ema.reset()
  np.testing.assert_allclose(ema.shadows[variable.path].numpy(), [10.0, 10.0])


def test_steps_to_boundary_stops_on_logs_saves_and_max():
  assert loop.steps_to_boundary(0, 1000, None, 10, None, None) == 10
  assert loop.steps_to_boundary(7, 1000, None, 10, None, None) == 3
  assert loop.steps_to_boundary(7, 2, None, 10, None, None) == 2
  assert loop.steps_to_boundary(0, 1000, 25, 100, 15, None) == 15
  assert loop.steps_to_boundary(20, 1000, 25, 100, 15, 7) == 1
  assert loop.steps_to_boundary(24, 1000, 25, 100, None, None) == 1


@pytest.mark.parametrize('change, message', [
    ({'dataset_dir': None},
     'You must supply the dataset directory with --dataset_dir'),
    ({'quantize_delay': 0}, 'quantization-aware training is not supported'),
    ({'moving_average_decay': 1.5}, '--moving_average_decay must be in'),
    ({'label_smoothing': 1.0}, '--label_smoothing must be in'),
])
def test_check_config_names_the_flag(change, message):
  config = {'dataset_dir': '/data', 'train_dir': '/tmp/t', 'quantize_delay': -1}
  config.update(change)
  with pytest.raises(ValueError, match=message):
    train.check_config(config)

