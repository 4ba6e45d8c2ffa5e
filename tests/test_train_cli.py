"""train_image_classifier.py as a command: the thesis command line, resume, signals,
one-line errors. Each test runs the real script in a subprocess."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import signal
import subprocess
import sys
import time

import pytest

from slimkit import checkpoints
from slimkit import summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_image_classifier.py')


def command(*args):
  return [sys.executable, SCRIPT] + list(args)


def run(*args, timeout=180):
  return subprocess.run(command(*args), cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


def error_lines(stderr):
  return [l for l in stderr.splitlines() if 'train_image_classifier.py: error:' in l]


@pytest.mark.slow
def test_thesis_command_line_trains_writes_events_and_resumes(tmp_path, tiny_cifar_dir):
  train_dir = str(tmp_path / 'thesis')

  def thesis(max_steps):
    # The thesis' command unchanged, but for the step count and a 32x32 input.
    return run('--train_dir=%s' % train_dir, '--dataset_name=cifar10',
               '--dataset_split_name=train', '--dataset_dir=%s' % tiny_cifar_dir,
               '--model_name=mobilenet_v1', '--preprocessing_name=mobilenet_v1',
               '--max_number_of_steps=%d' % max_steps, '--batch_size=50',
               '--learning_rate=0.01', '--save_interval_secs=60',
               '--save_summaries_secs=60', '--log_every_n_steps=100', '--optimizer=sgd',
               '--learning_rate_decay_type=fixed', '--weight_decay=0',
               '--train_image_size=32')

  first = thesis(2)
  assert first.returncode == 0, first.stderr[-3000:]
  assert 'from scratch' in first.stderr and 'step 2/2: loss' in first.stderr
  assert '\r' not in first.stderr  # not a terminal: log lines, no progress bar
  assert checkpoints.step_of(checkpoints.latest(train_dir)) == 2
  scalars = summaries.read_scalars(train_dir)
  assert {'total_loss', 'losses/cross_entropy', 'losses/regularization_loss',
          'learning_rate', 'accuracy'} <= set(scalars)
  assert scalars['learning_rate'][-1][1] == pytest.approx(0.01)
  assert scalars['losses/regularization_loss'][-1][1] == 0.0  # --weight_decay=0

  second = thesis(4)
  assert second.returncode == 0, second.stderr[-3000:]
  assert 'resumed from %s at step 2' % os.path.join(train_dir, 'ckpt-2') in second.stderr
  assert checkpoints.step_of(checkpoints.latest(train_dir)) == 4
  assert max(step for step, _ in summaries.read_scalars(train_dir)['total_loss']) == 4


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, tiny_mnist_dir):
  train_dir = str(tmp_path / 'forever')
  proc = subprocess.Popen(
      command('--train_dir=%s' % train_dir, '--dataset_name=mnist',
              '--dataset_dir=%s' % tiny_mnist_dir, '--model_name=lenet',
              '--batch_size=8', '--optimizer=sgd', '--log_every_n_steps=1'),
      cwd=ROOT, stderr=subprocess.PIPE, text=True)
  lines = []
  deadline = time.time() + 120
  for line in proc.stderr:  # train forever: no --max_number_of_steps
    lines.append(line)
    if 'first step done' in line or time.time() > deadline:
      break
  time.sleep(1.0)
  proc.send_signal(signal.SIGTERM)
  rest = proc.communicate(timeout=60)[1]
  stderr = ''.join(lines) + rest
  assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
  assert 'SIGTERM received' in stderr and 'stopped by SIGTERM at step' in stderr
  prefix = checkpoints.latest(train_dir)
  assert prefix is not None and checkpoints.step_of(prefix) >= 1


def test_missing_dataset_dir_is_slims_one_line_error(tmp_path):
  result = run('--train_dir=%s' % tmp_path, '--model_name=lenet')
  assert result.returncode == 1
  assert error_lines(result.stderr) == [
      'train_image_classifier.py: error: You must supply the dataset directory with '
      '--dataset_dir']
  assert 'Traceback' not in result.stderr


def test_unknown_model_is_one_line_naming_the_choices(tmp_path, tiny_mnist_dir):
  result = run('--train_dir=%s' % tmp_path, '--dataset_name=mnist',
               '--dataset_dir=%s' % tiny_mnist_dir, '--model_name=squeezenet',
               '--quantize_delay=-1')
  assert result.returncode == 1
  lines = error_lines(result.stderr)
  assert len(lines) == 1 and "unknown network 'squeezenet'" in lines[0]
  assert 'lenet' in lines[0] and 'Traceback' not in result.stderr
