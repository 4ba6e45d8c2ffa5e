"""The training loop's public pieces on in-memory data (as benchmarks use them):
run state + step runner + host loop, and the progress hook on a terminal or not."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import fcntl
import logging
import pty
import select
import struct
import termios

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import train_config
from nets import nets_factory
from slimkit import checkpoints
from slimkit import hooks
from slimkit import jit_trial
from slimkit import loop
from slimkit import run_state
from slimkit import step

NUM_IMAGES = 32


def memory_dataset(batch_size):
  """MNIST-like bars: class k is a bright column pair, as conftest.mnist_like."""
  rng = np.random.default_rng(0)
  labels = np.arange(NUM_IMAGES) % 10
  images = rng.uniform(0.0, 0.2, (NUM_IMAGES, 28, 28, 1)).astype(np.float32)
  for image, label in zip(images, labels):
    image[4:24, 2 * label + 4:2 * label + 6] = 1.0
  dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
  return dataset.repeat().batch(batch_size, drop_remainder=True)


def make_steps(tmp_path, loop_hooks=(), **loop_args):
  config = train_config(tmp_path / 'train', '(in memory)', learning_rate=0.05)
  state = run_state.RunState(config, tf.distribute.get_strategy(), num_classes=10,
                             input_shape=(28, 28, 1), num_samples=NUM_IMAGES)
  return config, loop.Loop(step.Runner(state, jit_compile=config['jit_compile']), loop_hooks, **loop_args)


def test_loop_trains_on_a_dataset_it_is_given_and_saves_nothing_without_hooks(
    tmp_path):
  config, steps = make_steps(tmp_path, max_steps=3)
  dataset = memory_dataset(config['batch_size'])
  before = [v.numpy() for v in steps.state.variables_to_train]
  assert steps.run(dataset) == 3
  assert steps.stats['start_step'] == 0 and steps.stats['time_to_first_step'] > 0
  steps.max_steps = 8
  assert steps.run(dataset) == 8  # a second run goes on from the step reached
  assert steps.stats['start_step'] == 3
  # Steady: all but the first call (one step: calls adapt from one step up).
  assert steps.stats['steady_steps'] == 4 and steps.stats['steady_secs'] > 0
  after = [v.numpy() for v in steps.state.variables_to_train]
  assert all(not np.allclose(a, b) for a, b in zip(before, after))
  assert checkpoints.latest(config['train_dir']) is None
  assert not os.path.exists(config['train_dir'])


def _lines(absl_log):
  return [m for m in absl_log.messages if m.startswith('step ')]


def test_progress_without_a_terminal_logs_plain_lines(tmp_path, absl_log):
  # Every 2 steps a call; log period 100: only the last step is due by count.
  read_end, write_end = os.pipe()
  with os.fdopen(write_end, 'w') as pipe, os.fdopen(read_end) as _:
    quiet = hooks.Progress(log_every=100, stream=pipe, plain_secs=3600)
    config, steps = make_steps(tmp_path, [quiet], max_steps=6, steps_per_call=2)
    steps.run(memory_dataset(config['batch_size']))
    assert [l.split(':')[0] for l in _lines(absl_log)] == ['step 6/6']
    absl_log.clear()
    # Long steps: a plain line after every call that took plain_secs or more.
    chatty = hooks.Progress(log_every=100, stream=pipe, plain_secs=0)
    steps.hooks = [chatty]
    steps.max_steps = 12
    steps.run(memory_dataset(config['batch_size']))
    assert [l.split(':')[0] for l in _lines(absl_log)] == [
        'step 8/12', 'step 10/12', 'step 12/12']
    assert all('images/s' in l and 'ETA' in l for l in _lines(absl_log))
    assert quiet.bar is None and chatty.bar is None


def _read_all(fd):
  out = b''
  while select.select([fd], [], [], 0.5)[0]:
    chunk = os.read(fd, 65536)
    if not chunk:
      break
    out += chunk
  return out.decode(errors='replace')


def test_progress_on_a_terminal_draws_a_bar_with_rate_loss_and_eta(tmp_path, absl_log):
  master, slave = pty.openpty()
  fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 120, 0, 0))
  terminal = os.fdopen(slave, 'w')
  try:
    progress = hooks.Progress(log_every=100, stream=terminal)
    config, steps = make_steps(tmp_path, [progress], max_steps=6, steps_per_call=2)
    steps.run(memory_dataset(config['batch_size']))
    terminal.flush()
    shown = _read_all(master)
  finally:
    terminal.close()
    os.close(master)
  assert '\r' in shown and 'train:' in shown
  assert 'images/s' in shown and 'loss ' in shown
  assert '6/6 [' in shown and '<00:00' in shown  # steps done/total [elapsed<ETA
  assert [l.split(':')[0] for l in _lines(absl_log)] == ['step 6/6']  # logs still go
  assert progress.bar is None  # closed at the end


# ---------------------------------------------------------------- --jit_compile


def jit_steps(tmp_path, jit_compile, max_steps, name='train'):
  config = train_config(tmp_path / name, '(in memory)', learning_rate=0.05,
                        jit_compile=jit_compile)
  state = run_state.RunState(config, tf.distribute.get_strategy(), num_classes=10,
                             input_shape=(28, 28, 1), num_samples=NUM_IMAGES)
  runner = step.Runner(state, jit_compile=config['jit_compile'])
  return config, runner, loop.Loop(runner, max_steps=max_steps, steps_per_call=1)


TRIAL_STEPS = 20  # the trial's threshold in these tests, to keep them short


def test_jit_auto_trains_with_both_variants_then_keeps_and_caches_one(
    tmp_path, monkeypatch, absl_log):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  monkeypatch.setattr(jit_trial, 'JIT_TRIAL_MIN_STEPS', TRIAL_STEPS)
  # From step 2 on fewer steps remain than a run needs to try XLA: the trial, once
  # begun, still completes.
  config, runner, steps = jit_steps(tmp_path, 'auto', max_steps=TRIAL_STEPS)
  assert steps.run(memory_dataset(config['batch_size'])) == TRIAL_STEPS
  # Both step functions ran (each traced once); the trial steps were real steps.
  assert set(runner.loop_fns) == {False, True} and runner.trial.decided is not None
  assert runner.jit in (False, True)
  # Steady state leaves out the two tracing calls (one step each).
  assert steps.stats['steady_steps'] == TRIAL_STEPS - 2
  cached = jit_trial.cache().get(runner.trial.key)
  assert cached['jit'] == runner.jit
  assert set(cached['secs_per_step']) == {'False', 'True'}
  assert any(m.startswith('--jit_compile=auto: ') and 'measured' in m
             for m in absl_log.messages)
  # The next run of the same net, batch and precision reads the decision.
  _, again, more = jit_steps(tmp_path, 'auto', max_steps=3, name='again')
  more.run(memory_dataset(config['batch_size']))
  assert set(again.loop_fns) == {runner.jit} and again.jit == runner.jit


def test_jit_auto_skips_xla_in_a_short_run_and_caches_nothing(tmp_path, monkeypatch):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  monkeypatch.setattr(jit_trial, 'JIT_TRIAL_MIN_STEPS', TRIAL_STEPS)
  config, runner, steps = jit_steps(tmp_path, 'auto', max_steps=TRIAL_STEPS - 1)
  steps.run(memory_dataset(config['batch_size']))
  assert set(runner.loop_fns) == {False} and runner.jit is False
  assert jit_trial.cache().get(runner.trial.key) is None


def test_jit_true_and_false_train_the_same_weights(tmp_path, monkeypatch):
  # LeNet without its dropout (whose masks XLA draws differently), same init.
  lenet = nets_factory.networks_map['lenet']
  monkeypatch.setitem(nets_factory.networks_map, 'lenet', lenet._replace(
      kwargs=dict(lenet.kwargs, dropout_keep_prob=1.0)))
  weights = {}
  for jit in ('true', 'false'):
    keras.utils.set_random_seed(3)
    config, runner, steps = jit_steps(tmp_path, jit, max_steps=2, name=jit)
    steps.run(memory_dataset(config['batch_size']))
    assert set(runner.loop_fns) == {jit == 'true'}
    weights[jit] = [v.numpy() for v in steps.state.variables_to_train]
  for a, b in zip(weights['true'], weights['false']):
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-4)  # summation order only


@pytest.mark.parametrize('value,setting', [
    ('auto', 'auto'), ('true', True), ('false', False), (True, True), (None, False)])
def test_jit_setting_reads_the_flag_and_older_run_configs(value, setting):
  assert jit_trial.setting(value) == setting


# ------------------------------------------------- heads and schedules of the zoo


def test_training_feeds_drop_path_its_progress_and_the_aux_head_its_loss(
    tmp_path, monkeypatch):
  """NASNet's drop path reads step / total_training_steps (TF-Slim's hparam) from
  the training step; its auxiliary head adds 0.4 of its cross-entropy."""
  nasnet = nets_factory.networks_map['nasnet_cifar']  # 3 cells, not 18: fast
  monkeypatch.setitem(nets_factory.networks_map, 'nasnet_cifar', nasnet._replace(
      kwargs=dict(nasnet.kwargs, num_cells=3, num_conv_filters=8)))
  config = train_config(tmp_path / 'train', '(in memory)', model_name='nasnet_cifar',
                        batch_size=2, jit_compile='false', conv_gradients='tf')
  state = run_state.RunState(config, tf.distribute.get_strategy(), num_classes=10,
                             input_shape=(32, 32, 3), num_samples=NUM_IMAGES)
  assert state.has_aux and state.drop_path_steps == 937500
  state.step.assign(468750)  # half way through TF-Slim's schedule
  images = tf.random.stateless_uniform((2, 32, 32, 3), [1, 2], -1.0, 1.0)
  labels = tf.constant([1, 7], tf.int64)
  metrics = tf.function(lambda: step.train_step(state, images, labels))().numpy()
  progress = {float(l.training_progress.numpy()) for l in state.model.layers
              if hasattr(l, 'training_progress')}
  assert progress == {0.5}
  values = dict(zip(step.METRICS, metrics))
  assert values['aux_loss'] > 0
  assert values['total_loss'] == pytest.approx(
      values['cross_entropy'] + values['aux_loss'] + values['regularization_loss'],
      rel=1e-5)


def test_jit_trial_decides_after_one_timed_call_when_one_variant_is_far_slower(
    tmp_path, monkeypatch):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  far = jit_trial.Trial(['far'])
  far.record(False, 1.0, 1)
  assert far.decided is None  # XLA not timed yet
  far.record(True, 2.5, 1)  # 2.5x slower: no second call of each
  assert far.decided is False
  assert jit_trial.cache().get(far.key)['secs_per_step'] == {'False': 1.0, 'True': 2.5}
  near = jit_trial.Trial(['near'])
  near.record(False, 1.0, 1)
  near.record(True, 0.9, 1)  # close: both get JIT_TRIAL_CALLS timed calls
  assert near.decided is None
  near.record(False, 1.0, 1)
  near.record(True, 0.9, 1)
  assert near.decided is True
  fast = jit_trial.Trial(['fast'])
  fast.record(False, 1.0, 2)
  fast.record(True, 0.8, 4)  # per step: 0.5 vs 0.2
  assert fast.decided is True
