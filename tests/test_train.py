"""slimkit.train.run on tiny converted datasets: checkpoints, summaries, resume,
fine-tuning, safety. In-process; the command line is in test_train_cli.py."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import train_config
from deployment import cpu
from slimkit import checkpoints
from slimkit import run_config
from slimkit import summaries
from slimkit import train

SCALARS = {'total_loss', 'losses/cross_entropy', 'losses/regularization_loss',
           'learning_rate', 'accuracy', 'images_per_sec'}



@pytest.fixture(scope='module')
def first_run(tmp_path_factory, tiny_mnist_dir):
  """8 steps of LeNet with moving averages and exponential decay every 2 steps."""
  train_dir = tmp_path_factory.mktemp('first_run')
  # 64 samples / batch 16 = 4 steps per epoch; 0.5 epochs per decay = 2 steps.
  config = train_config(train_dir, tiny_mnist_dir, max_number_of_steps=8,
                       moving_average_decay=0.9, learning_rate_decay_type='exponential',
                       learning_rate_decay_factor=0.5, num_epochs_per_decay=0.5,
                       weight_decay=0.0004)
  return config, train.run(config)


def test_run_writes_checkpoint_with_step_ema_and_optimizer(first_run):
  config, result = first_run
  assert result == {'step': 8, 'checkpoint': os.path.join(config['train_dir'], 'ckpt-8'),
                    'signal': None}
  prefix = checkpoints.latest(config['train_dir'])
  assert checkpoints.step_of(prefix) == 8
  model, ema = (checkpoints.read_variables(prefix, group) for group in ('model', 'ema'))
  assert set(model) == set(ema) and 'fc4/kernel' in model
  assert not np.allclose(model['fc4/kernel'], ema['fc4/kernel'])  # averaged, not equal
  keys = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  assert any(k.startswith('optimizer/') for k in keys)  # momentum slots


def test_run_writes_summaries_and_run_config(first_run):
  config, _ = first_run
  scalars = summaries.read_scalars(config['train_dir'])
  assert SCALARS <= set(scalars)
  assert scalars['total_loss'][-1][0] == 8
  assert scalars['losses/regularization_loss'][-1][1] > 0  # weight decay is on
  # The rate at step 8 after decays at 2, 4, 6 and 8 (global steps).
  assert scalars['learning_rate'][-1][1] == pytest.approx(0.01 * 0.5 ** 4)
  with open(os.path.join(config['train_dir'], run_config.FILE)) as f:
    record = json.load(f)
  assert record['model_name'] == 'lenet' and record['model_scope'] == 'LeNet'
  assert (record['num_classes'], record['image_size'], record['channels']) == (10, 28, 1)
  assert record['preprocessing_name'] == 'lenet' and record['dataset_name'] == 'mnist'
  assert record['global_batch_size'] == 16 and record['moving_average_decay'] == 0.9


def test_run_writes_train_stats_with_each_checkpoints_time(first_run):
  config, _ = first_run
  with open(os.path.join(config['train_dir'], 'train_stats.json')) as f:
    stats = json.load(f)
  assert (stats['start_step'], stats['end_step']) == (0, 8)
  assert [c['step'] for c in stats['checkpoints']] == [8]
  # The first (traced) step is timed apart from the steady ones.
  assert stats['steady_steps'] == 7 and stats['steady_secs'] > 0
  assert stats['steady_images_per_sec'] == pytest.approx(
      7 * 16 / stats['steady_secs'])
  assert 0 < stats['time_to_first_step'] <= stats['checkpoints'][0]['seconds'] <= \
      stats['seconds']
  assert stats['mixed_precision'] == 'float32' and 'CPU' in stats['device']
  assert stats['onednn'] == cpu.onednn_enabled()  # which kernels timed the run
  assert stats['jit_compile'] is False  # auto: 8 steps are too few to try XLA


def test_rerun_resumes_then_stops_at_max_steps(first_run, tmp_path):
  config, _ = first_run
  resumed = dict(config, train_dir=str(tmp_path / 'resumed'))
  tf.io.gfile.makedirs(resumed['train_dir'])
  for name in tf.io.gfile.listdir(config['train_dir']):
    tf.io.gfile.copy(os.path.join(config['train_dir'], name),
                     os.path.join(resumed['train_dir'], name))
  result = train.run(dict(resumed, max_number_of_steps=12))
  assert result['step'] == 12  # continued from 8, not restarted
  scalars = summaries.read_scalars(resumed['train_dir'])
  # The schedule continues from the restored step: decays at 10 and 12 too.
  assert scalars['learning_rate'][-1] == (12, pytest.approx(0.01 * 0.5 ** 6))
  assert sorted(checkpoints.step_of(p) for p in tf.train.get_checkpoint_state(
      resumed['train_dir']).all_model_checkpoint_paths) == [8, 12]
  again = train.run(dict(resumed, max_number_of_steps=12))
  assert again['step'] == 12 and again['checkpoint'].endswith('ckpt-12')


def test_warm_start_restores_all_but_excluded_and_trains_only_given_scopes(
    first_run, tmp_path, tiny_mnist_dir, absl_log):
  source_config, _ = first_run
  source = checkpoints.read_variables(checkpoints.latest(source_config['train_dir']))
  config = train_config(tmp_path / 'tuned', tiny_mnist_dir, max_number_of_steps=3,
                       checkpoint_path=source_config['train_dir'],
                       checkpoint_exclude_scopes='LeNet/fc4', trainable_scopes='LeNet/fc4')
  train.run(config)
  tuned = checkpoints.read_variables(checkpoints.latest(config['train_dir']))
  for path in ('conv1/kernel', 'conv2/bias', 'fc3/kernel'):
    np.testing.assert_array_equal(tuned[path], source[path])  # restored and frozen
  assert tuned['fc4/kernel'].shape == source['fc4/kernel'].shape
  assert not np.allclose(tuned['fc4/kernel'], source['fc4/kernel'])  # fresh, trained
  # The train dir now has a checkpoint: --checkpoint_path is ignored, as Slim.
  train.run(dict(config, max_number_of_steps=4))
  expected = '--checkpoint_path=%s ignored' % source_config['train_dir']
  assert any(expected in message for message in absl_log.messages), absl_log.messages


def test_warm_start_into_another_head_names_the_variables(first_run, tmp_path,
                                                          tiny_mnist_dir):
  source_config, _ = first_run
  config = train_config(tmp_path / 'offset', tiny_mnist_dir, max_number_of_steps=1,
                       labels_offset=5, checkpoint_path=source_config['train_dir'])
  with pytest.raises(ValueError, match=r'LeNet/fc4/kernel checkpoint \[1024, 10\] vs '
                     r'model \[1024, 5\].*--checkpoint_exclude_scopes=LeNet/fc4'):
    train.run(config)
  assert checkpoints.latest(config['train_dir']) is None


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                  tiny_mnist_dir):
  config = train_config(tmp_path / 'nan', tiny_mnist_dir, max_number_of_steps=4,
                       optimizer='sgd')
  train.run(config)
  # An infinite rate turns the weights to nan after step 5; step 6's loss is nan.
  with pytest.raises(FloatingPointError, match=r'loss is nan at step 6: stopped '
                     r'without saving .* last good checkpoint: .*ckpt-4'):
    train.run(dict(config, max_number_of_steps=40, learning_rate=float('inf')))
  assert checkpoints.latest(config['train_dir']).endswith('ckpt-4')


def test_adamw_skips_the_l2_loss_and_bfloat16_keeps_float32_weights(tmp_path,
                                                                     tiny_cifar_dir):
  config = train_config(tmp_path / 'adamw', tiny_cifar_dir, dataset_name='cifar10',
                       model_name='cifarnet', max_number_of_steps=2, optimizer='adamw',
                       weight_decay=0.01, mixed_precision='bfloat16', batch_size=8,
                       log_every_n_steps=1)
  result = train.run(config)
  assert result['step'] == 2
  scalars = summaries.read_scalars(config['train_dir'])
  assert scalars['losses/regularization_loss'][-1][1] == 0.0
  assert np.isfinite(scalars['total_loss'][-1][1])
  weights = checkpoints.read_variables(result['checkpoint'])
  assert {w.dtype for w in weights.values()} == {np.dtype('float32')}
  assert keras.mixed_precision.global_policy().name == 'float32'  # restored


@pytest.mark.parametrize('changes, message', [
    ({'model_name': 'alexnet'}, "unknown network 'alexnet'"),
    ({'trainable_scopes': 'LeNet/fc9'}, '--trainable_scopes: LeNet/fc9 matched no'),
    ({'optimizer': 'sgd', 'activation': 'elu'}, "unknown option.*activation"),
    ({'dataset_dir': '/nonexistent/dir'}, 'holds no converted dataset'),
    ({'batch_norm_decay': 1.0}, r'--batch_norm_decay must be in \(0, 1\), got 1'),
])
def test_bad_input_fails_before_training(tmp_path, tiny_mnist_dir, changes, message):
  config = train_config(tmp_path / 'bad', tiny_mnist_dir, max_number_of_steps=1)
  config.update(changes)
  with pytest.raises((ValueError, FileNotFoundError), match=message):
    train.run(config)
  assert checkpoints.latest(config['train_dir']) is None


def _batch_norm_momenta(config):
  data = train.training_input(config)
  state = train.build_state(config, tf.distribute.get_strategy(), data)
  return {l.momentum for l in state.model.layers
          if isinstance(l, keras.layers.BatchNormalization)}


def test_batch_norm_decay_reaches_every_batch_norm_layer(tmp_path, tiny_cifar_dir):
  common = dict(dataset_name='cifar10', model_name='mobilenet_v1_cifar')
  assert _batch_norm_momenta(train_config(tmp_path / 'a', tiny_cifar_dir,
                                          **common)) == {0.9997}  # Slim's default
  assert _batch_norm_momenta(train_config(tmp_path / 'b', tiny_cifar_dir,
                                          batch_norm_decay=0.95, **common)) == {0.95}


def test_batch_norm_decay_is_ignored_by_nets_without_batch_norm(tmp_path, tiny_mnist_dir,
                                                                absl_log):
  config = train_config(tmp_path / 'lenet', tiny_mnist_dir, batch_norm_decay=0.9)
  assert _batch_norm_momenta(config) == set()
  assert '--batch_norm_decay=0.9 ignored: lenet has no batch norm' in absl_log.messages
