"""slimkit/checkpoints.py: name-keyed save/restore and clear mismatch errors."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from slimkit import checkpoints
from slimkit import run_config


def _net(num_classes, name='Net'):
  x = keras.Input((8, 8, 3))
  y = keras.layers.Conv2D(4, 3, use_bias=False, name='Conv2d_1a_3x3')(x)
  y = keras.layers.BatchNormalization(name='Conv2d_1a_3x3.BatchNorm')(y)
  y = keras.layers.GlobalAveragePooling2D()(y)
  y = keras.layers.Dense(num_classes, name='Logits.Conv2d_0c_1x1')(y)
  return keras.Model(x, {'Logits': y}, name=name)


@pytest.fixture
def saved(tmp_path):
  """A train dir with one real checkpoint at step 7 after one SGD step."""
  keras.utils.set_random_seed(1)
  model = _net(10)
  opt = keras.optimizers.SGD(0.1, momentum=0.9)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(np.ones((2, 8, 8, 3), 'float32'), training=True)['Logits'])
  opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                          model.trainable_variables))
  step = tf.Variable(7, dtype=tf.int64)
  ema = {v.path: tf.Variable(v * 0.5) for v in model.variables}
  manager = tf.train.CheckpointManager(
      checkpoints.make_checkpoint(model, step, opt, ema), str(tmp_path), max_to_keep=2,
      checkpoint_name=checkpoints.CHECKPOINT_NAME)
  manager.save(checkpoint_number=7)
  return tmp_path, model


def test_latest_accepts_dir_prefix_and_files(saved):
  train_dir, _ = saved
  prefix = str(train_dir / 'ckpt-7')
  assert checkpoints.latest(str(train_dir)) == prefix
  assert checkpoints.latest(prefix) == prefix
  assert checkpoints.latest(prefix + '.index') == prefix
  assert checkpoints.latest(prefix + '.data-00000-of-00001') == prefix
  assert checkpoints.latest(str(train_dir / 'ckpt-8')) is None
  assert checkpoints.step_of(prefix) == 7


def test_restore_by_name_gives_identical_weights(saved):
  train_dir, model = saved
  fresh = _net(10)
  restored, excluded, missing = checkpoints.restore_model(fresh, str(train_dir))
  assert len(restored) == len(model.variables) and not excluded and not missing
  for a, b in zip(model.variables, fresh.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_restore_ema_reads_the_shadow_values(saved):
  train_dir, model = saved
  fresh = _net(10)
  checkpoints.restore_model(fresh, str(train_dir), use_ema=True)
  np.testing.assert_allclose(fresh.variables[0].numpy(), model.variables[0].numpy() * 0.5)


def test_shape_mismatch_names_variables_and_the_scope_to_exclude(saved):
  train_dir, _ = saved
  with pytest.raises(ValueError) as err:
    checkpoints.restore_model(_net(5), str(train_dir))
  message = str(err.value)
  assert 'Net/Logits/Conv2d_0c_1x1/kernel checkpoint [4, 10] vs model [4, 5]' in message
  assert '--checkpoint_exclude_scopes=Net/Logits' in message
  assert '\n' not in message


def test_excluded_scope_keeps_fresh_values(saved):
  train_dir, model = saved
  fresh = _net(5)
  head_before = fresh.get_layer('Logits.Conv2d_0c_1x1').kernel.numpy().copy()
  _, excluded, _ = checkpoints.restore_model(fresh, str(train_dir),
                                             exclude_scopes='Net/Logits')
  assert sorted(excluded) == ['Logits.Conv2d_0c_1x1/bias', 'Logits.Conv2d_0c_1x1/kernel']
  np.testing.assert_array_equal(fresh.get_layer('Logits.Conv2d_0c_1x1').kernel.numpy(),
                                head_before)
  np.testing.assert_array_equal(fresh.get_layer('Conv2d_1a_3x3').kernel.numpy(),
                                model.get_layer('Conv2d_1a_3x3').kernel.numpy())


def test_unmatched_exclude_scope_lists_real_scopes(saved):
  train_dir, _ = saved
  with pytest.raises(ValueError, match='matched no variable.*Conv2d_1a_3x3, Logits'):
    checkpoints.restore_model(_net(5), str(train_dir), exclude_scopes='Net/Logit')


def test_missing_variables_need_ignore_missing_vars(saved, tmp_path):
  train_dir, _ = saved
  x = keras.Input((8, 8, 3))
  y = keras.layers.Conv2D(4, 3, use_bias=False, name='Conv2d_1a_3x3')(x)
  y = keras.layers.Conv2D(2, 1, name='Extra')(y)
  other = keras.Model(x, {'Logits': y}, name='Net')
  with pytest.raises(ValueError, match='lacks 2 variable.*Net/Extra/kernel'):
    checkpoints.restore_model(other, str(train_dir))
  restored, _, missing = checkpoints.restore_model(other, str(train_dir),
                                                   ignore_missing_vars=True)
  assert restored == ['Conv2d_1a_3x3/kernel'] and sorted(missing) == [
      'Extra/bias', 'Extra/kernel']


def test_no_checkpoint_is_one_clear_line(tmp_path):
  with pytest.raises(FileNotFoundError, match='no checkpoint in this directory yet'):
    checkpoints.require_latest(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='--checkpoint_path=.*no such checkpoint'):
    checkpoints.require_latest(str(tmp_path / 'ckpt-3'))


def test_run_config_is_written_atomically_and_read_from_prefix(tmp_path):
  run_config.write(str(tmp_path), {'model_name': 'lenet', 'num_classes': 10})
  assert os.listdir(tmp_path) == [run_config.FILE]
  assert run_config.read(str(tmp_path / 'ckpt-5'))['model_name'] == 'lenet'
  assert json.loads((tmp_path / run_config.FILE).read_text())['num_classes'] == 10
  assert run_config.read(str(tmp_path / 'nowhere' / 'ckpt-1')) is None
