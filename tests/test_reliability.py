"""Shared machines and laptops: a full disk, two writers, bad metadata, a huge batch,
SIGTERM. Each case ends in one line and a non-zero exit with nothing good lost, and
the same command succeeds once the fault is gone.

The scripts' error path runs in-process (slimkit.cli.call, what cli.run does after
parsing the flags); full disks are small tmpfs mounts (root only: skipped elsewhere);
a lock's other holder is a real process, killed with SIGKILL.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import contextlib
import glob
import json
import re
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from common import locks
from conftest import eval_config
from conftest import train_config
from datasets import convert
from datasets import dataset_factory
from datasets import dataset_info
from nets import nets_factory
from slimkit import checkpoints
from slimkit import cli
from slimkit import evaluate
from slimkit import export
from slimkit import memory
from slimkit import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1 << 20


def outcome(capsys, script, fn):
  """(exit code, the lines on stderr) of fn run as script's main by cli.call."""
  argv0, sys.argv[0] = sys.argv[0], script
  try:
    cli.call(lambda argv: fn(), [script])
    code = 0
  except SystemExit as e:
    code = e.code
  finally:
    sys.argv[0] = argv0
  lines = capsys.readouterr().err.splitlines()
  assert not any('Traceback' in line for line in lines), lines[-5:]
  return code, lines


def error_line(capsys, script, fn):
  """The one error line of fn run as script, which must exit 1."""
  code, lines = outcome(capsys, script, fn)
  errs = [l for l in lines if l.startswith(script + ': error: ')]
  assert code == 1 and len(errs) == 1, lines[-5:]
  return errs[0][len(script + ': error: '):]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_mnist_dir):
  """A LeNet train dir with ckpt-2 and ckpt-4."""
  train_dir = str(tmp_path_factory.mktemp('reliability') / 'train')
  train.run(train_config(train_dir, tiny_mnist_dir, max_number_of_steps=4,
                         save_interval_steps=2))
  return train_dir


def _names(directory):
  return sorted(os.listdir(directory))


# ==============================================================================
# One writer per directory.
# ==============================================================================


@contextlib.contextmanager
def holder(directory, work):
  """Another process holding directory's lock; killed (SIGKILL) at the end."""
  code = ('import sys, time\nfrom common import locks\n'
          'locks.acquire(sys.argv[1], "--x", sys.argv[2])\nprint("held", flush=True)\n'
          'time.sleep(600)')
  process = subprocess.Popen([sys.executable, '-c', code, directory, work], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
  try:
    assert process.stdout.readline() == 'held\n'
    yield process
  finally:
    process.kill()
    process.wait()
    process.stdout.close()


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
  directory = str(tmp_path / 'new')
  with holder(directory, 'training') as other:
    with open(os.path.join(directory, locks.FILE)) as f:
      assert f.read().split()[0] == str(other.pid)
    with pytest.raises(ValueError) as info:
      locks.acquire(directory, '--train_dir', 'training')
    assert str(info.value) == (
        '--train_dir=%s is in use: training (pid %d) holds its lock; wait for it to '
        'end or stop it, or pass another --train_dir' % (directory, other.pid))
  # SIGKILL left the file, not the lock.
  assert os.path.exists(os.path.join(directory, locks.FILE))
  lock = locks.acquire(directory, '--train_dir', 'training')
  with pytest.raises(ValueError, match=r'training \(pid %d\) holds' % os.getpid()):
    locks.acquire(directory, '--train_dir', 'training')  # one per open file: also here
  lock.release()
  assert _names(directory) == []
  with locks.exclusive(str(tmp_path / 'made'), '--dataset_dir', 'a conversion'):
    assert _names(tmp_path / 'made') == [locks.FILE]
  assert not os.path.exists(tmp_path / 'made')  # made here, left empty: removed


def test_a_second_training_on_a_train_dir_is_refused_until_the_first_is_gone(
    trained, tiny_mnist_dir, tmp_path, capsys):
  train_dir = str(shutil.copytree(trained, tmp_path / 'train'))
  before = _names(train_dir)
  config = train_config(train_dir, tiny_mnist_dir, max_number_of_steps=6,
                        save_interval_steps=2)
  with holder(train_dir, 'training') as other:
    line = error_line(capsys, 'train_image_classifier.py', lambda: train.run(config))
    assert line == ('--train_dir=%s is in use: training (pid %d) holds its lock; wait '
                    'for it to end or stop it, or pass another --train_dir'
                    % (train_dir, other.pid))
    assert _names(train_dir) == sorted(before + [locks.FILE])  # nothing touched
    # Readers never take the lock: evaluation reads the newest finished checkpoint.
    [result] = evaluate.run(eval_config(train_dir, tiny_mnist_dir, tmp_path / 'eval'))
    assert result['step'] == 4
  result = train.run(config)  # the holder was killed: no stale lock
  assert result['step'] == 6 and result['checkpoint'] == os.path.join(train_dir, 'ckpt-6')
  assert not os.path.exists(os.path.join(train_dir, locks.FILE))


def test_readers_skip_a_checkpoint_still_being_written(trained, tiny_mnist_dir,
                                                       tmp_path, capsys):
  train_dir = str(shutil.copytree(trained, tmp_path / 'train'))
  # A save of step 6 in progress: its temporary directory and a first file.
  os.makedirs(os.path.join(train_dir, 'ckpt-6_temp'))
  shutil.copy(os.path.join(train_dir, 'ckpt-4.index'),
              os.path.join(train_dir, 'ckpt-6.index'))
  [result] = evaluate.run(eval_config(train_dir, tiny_mnist_dir, tmp_path / 'eval'))
  assert result['step'] == 4  # the 'checkpoint' file names only finished ones
  prefix = os.path.join(train_dir, 'ckpt-6')
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(prefix, tiny_mnist_dir, tmp_path / 'eval6')))
  assert line == ('--checkpoint_path=%s: checkpoint %s is still being written '
                  '(ckpt-6_temp exists; if no training runs there, its save was cut '
                  'short); pass the train dir for its newest finished checkpoint'
                  % (prefix, prefix))
  # The next training (holding the lock) clears what the cut save left.
  train.run(train_config(train_dir, tiny_mnist_dir, max_number_of_steps=4))
  assert not os.path.exists(os.path.join(train_dir, 'ckpt-6_temp'))


def test_a_second_conversion_into_a_dataset_dir_is_refused(mnist_source, tmp_path,
                                                           capsys):
  dataset_dir = str(tmp_path / 'mnist')
  with holder(dataset_dir, 'a conversion') as other:
    line = error_line(capsys, 'download_and_convert_data.py', lambda: convert.run(
        'mnist', dataset_dir, source=mnist_source.path, progress=False))
    assert line == ('--dataset_dir=%s is in use: a conversion (pid %d) holds its lock; '
                    'wait for it to end or stop it, or pass another --dataset_dir'
                    % (dataset_dir, other.pid))
    assert _names(dataset_dir) == [locks.FILE]
  info = convert.run('mnist', dataset_dir, source=mnist_source.path, progress=False)
  assert info['splits']['train']['num_samples'] == 64
  assert locks.FILE not in _names(dataset_dir)


# ==============================================================================
# A full disk.
# ==============================================================================


@pytest.fixture
def small_disk(tmp_path):
  """mount(size) -> a new tmpfs of size bytes; grow(size) makes it larger."""
  if os.geteuid() != 0:
    pytest.skip('mounting a tmpfs needs root')
  mounted = []

  def mount(size):
    path = str(tmp_path / ('disk%d' % len(mounted)))
    os.makedirs(path)
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%d' % size, 'tmpfs',
                           path], capture_output=True, text=True)
    if done.returncode:
      pytest.skip('cannot mount a tmpfs here: %s' % done.stderr.strip())
    mounted.append(path)
    return path

  def grow(path, size):
    subprocess.run(['mount', '-o', 'remount,size=%d' % size, path], check=True)

  mount.grow = grow
  yield mount
  for path in mounted:
    subprocess.run(['umount', '-l', path], check=False)


def _leftovers(directory):
  """Temporary files and directories of unfinished writes under directory."""
  found = []
  for root, dirs, names in os.walk(directory):
    found += [n for n in dirs + names if re.search(r'_temp$|\.tmp|^\.[^.]', n)]
  return found


def test_a_full_disk_during_a_save_names_the_newest_complete_checkpoint(
    small_disk, tiny_mnist_dir, trained, capsys):
  size = os.path.getsize(os.path.join(trained, 'ckpt-2.data-00000-of-00001'))
  disk = small_disk(size * 3 // 2)  # room for one checkpoint, not two
  train_dir = os.path.join(disk, 'train')
  config = train_config(train_dir, tiny_mnist_dir, max_number_of_steps=4,
                        save_interval_steps=2)
  line = error_line(capsys, 'train_image_classifier.py', lambda: train.run(config))
  assert line == (
      '%s/ckpt-4: the disk is full (No space left on device); training stopped, newest '
      'complete checkpoint: %s/ckpt-2; free space, then run the same command to resume '
      'from it' % (train_dir, train_dir))
  assert _leftovers(train_dir) == []
  assert not glob.glob(os.path.join(train_dir, 'ckpt-4*'))
  assert checkpoints.latest(train_dir) == os.path.join(train_dir, 'ckpt-2')
  assert checkpoints.verify(os.path.join(train_dir, 'ckpt-2')) is None
  small_disk.grow(disk, size * 3)
  result = train.run(config)
  assert result['step'] == 4 and checkpoints.verify(result['checkpoint']) is None


def test_a_full_disk_stops_a_conversion_without_a_complete_looking_shard(
    small_disk, mnist_source, tiny_mnist_dir, capsys):
  shards = {name: os.path.getsize(os.path.join(tiny_mnist_dir, name))
            for name in os.listdir(tiny_mnist_dir) if name.endswith('.tfrecord')}
  disk = small_disk(max(shards.values()) + 8192)  # the train shard fits, not both
  dataset_dir = os.path.join(disk, 'mnist')
  line = error_line(capsys, 'download_and_convert_data.py', lambda: convert.run(
      'mnist', dataset_dir, source=mnist_source.path, progress=False))
  test_shard = os.path.join(dataset_dir, 'mnist_test-00000-of-00001.tfrecord')
  assert line == ('%s: the disk is full (No space left on device); free space, then '
                  'run the same command again' % test_shard)
  assert _names(dataset_dir) == ['mnist_train-00000-of-00001.tfrecord']  # complete
  with pytest.raises(FileNotFoundError, match='holds no converted dataset'):
    dataset_factory.get_split('mnist', 'train', dataset_dir)
  small_disk.grow(disk, 2 * sum(shards.values()) + 65536)
  convert.run('mnist', dataset_dir, source=mnist_source.path, progress=False)
  assert dataset_factory.get_split('mnist', 'test', dataset_dir).num_samples == 32


def test_a_full_disk_in_evaluation_and_export_writes_nothing(
    small_disk, trained, tiny_mnist_dir, capsys):
  disk = small_disk(64 * 1024)
  eval_dir = os.path.join(disk, 'eval')
  with open(os.path.join(disk, 'filler'), 'wb') as f:  # leaves one page or so
    f.write(b'\0' * (60 * 1024))
  config = eval_config(trained, tiny_mnist_dir, eval_dir)
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(config))
  assert line.startswith(eval_dir + '/') and \
      ': the disk is full (No space left on device)' in line, line
  assert not glob.glob(os.path.join(eval_dir, 'eval_*.json')) and \
      _leftovers(eval_dir) == []
  output = os.path.join(disk, 'export')
  export_config = {'model_name': 'lenet', 'checkpoint_path': trained,
                   'output_file': output, 'dataset_dir': tiny_mnist_dir,
                   'explicit_flags': []}
  line = error_line(capsys, 'export_inference_graph.py',
                    lambda: export.run(export_config))
  assert line == ('%s: the disk is full (No space left on device); free space, then '
                  'export again' % output)
  assert sorted(os.listdir(disk)) == ['eval', 'filler']  # no SavedModel, no temporary
  os.remove(os.path.join(disk, 'filler'))
  small_disk.grow(disk, 64 * MB)
  [result] = evaluate.run(config)
  assert os.path.isfile(os.path.join(eval_dir, 'eval_%d.json' % result['step']))
  assert os.path.isfile(export.run(export_config)['saved_model'] + '/saved_model.pb')


# ==============================================================================
# Files the project reads name themselves.
# ==============================================================================


def _bad_labels_line(rng, number):
  """A labels.txt line that is not '<id>:<name>'."""
  return [lambda: 'cat', lambda: 'x:cat', lambda: '%d.5:cat' % number,
          lambda: '-%d:cat' % number, lambda: ':cat', lambda: '%d cat' % number,
          lambda: '0:zero'][int(rng.integers(0, 7))]()


def test_labels_txt_errors_name_the_file_and_line(trained, tiny_mnist_dir, tmp_path,
                                                   capsys):
  rng = np.random.default_rng(21)
  for trial in range(8):
    data = str(shutil.copytree(tiny_mnist_dir, tmp_path / str(trial)))
    path = os.path.join(data, dataset_info.LABELS_FILE)
    with open(path) as f:
      lines = f.read().splitlines()
    number = int(rng.integers(1, len(lines)))  # 1-based; line 1 keeps id 0
    lines[number] = _bad_labels_line(rng, number)
    with open(path, 'w') as f:
      f.write('\n'.join(lines) + '\n')
    with pytest.raises(ValueError) as info:
      dataset_factory.get_split('mnist', 'train', data)
    message = str(info.value)
    assert message.startswith('%s line %d: ' % (path, number + 1)), (lines[number],
                                                                     message)
    if lines[number] == '0:zero':
      assert 'id 0 again (first on line 1)' in message
    else:
      assert "is not '<id>:<name>'" in message and json.dumps(lines[number]) in message
  with open(path, 'wb') as f:
    f.write(b'0:caf\xe9\n')
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(trained, data, tmp_path / 'eval')))
  assert line.startswith('%s is not UTF-8 text' % path), line


def test_dataset_info_errors_name_the_file_and_overwrite_repairs_it(
    mnist_source, tmp_path):
  data = str(tmp_path / 'mnist')
  convert.run('mnist', data, source=mnist_source.path, progress=False)
  path = os.path.join(data, dataset_info.INFO_FILE)
  with open(path) as f:
    good = json.load(f)
  rng = np.random.default_rng(22)
  damages = [
      lambda d: d.pop('num_classes'), lambda d: d.update(num_classes='10'),
      lambda d: d.update(channels=4), lambda d: d.update(encoding='gif'),
      lambda d: d.update(image_shape=[28, 28]), lambda d: d.update(splits=[]),
      lambda d: d['splits']['train'].update(num_shards=0),
      lambda d: d['splits']['test'].pop('num_samples')]
  for damage in rng.permutation(len(damages)):
    broken = json.loads(json.dumps(good))
    damages[damage](broken)
    with open(path, 'w') as f:
      json.dump(broken, f)
    with pytest.raises(ValueError) as info:
      dataset_factory.get_split('mnist', 'train', data)
    assert str(info.value).startswith(path + ': ') and str(info.value).endswith(
        'convert the dataset again with --overwrite'), str(info.value)
  for text in ('[1, 2]', '{"name": "mn'):
    with open(path, 'w') as f:
      f.write(text)
    with pytest.raises(ValueError, match='^%s is damaged' % re.escape(path)):
      dataset_factory.get_split('mnist', 'train', data)
  convert.run('mnist', data, source=mnist_source.path, progress=False, overwrite=True)
  assert dataset_factory.get_split('mnist', 'train', data).num_samples == 64


def test_run_config_errors_name_the_file(trained, tiny_mnist_dir, tmp_path, capsys):
  for trial, (key, value) in enumerate([('image_size', '28'), ('num_classes', 0),
                                        ('model_name', 7), ('channels', True)]):
    train_dir = str(shutil.copytree(trained, tmp_path / str(trial)))
    path = os.path.join(train_dir, 'run_config.json')
    with open(path) as f:
      record = json.load(f)
    record[key] = value
    with open(path, 'w') as f:
      json.dump(record, f)
    line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
        eval_config(train_dir, tiny_mnist_dir, tmp_path / 'eval')))
    assert line.startswith('%s is damaged ("%s" is %s, expected ' % (
        path, key, json.dumps(value))), line


def test_a_skipped_image_is_named_with_what_is_wrong(image_folder_source, tmp_path,
                                                     absl_log):
  convert.run('image_folder', str(tmp_path / 'photos'), source=image_folder_source.path,
              progress=False)
  skipped = sorted(m for m in absl_log.messages if m.startswith('skipped '))
  assert skipped[-1] == ("skipped dog/notes.txt: is not an image in a format read here "
                         "(JPEG, PNG, BMP, GIF, TIFF, WebP): it starts with b'not an i'")
  assert skipped[0].startswith('skipped cat/broken.jpg: ')
  assert not any('BytesIO' in m for m in skipped)


# ==============================================================================
# Resource limits before work.
# ==============================================================================


def test_activation_size_is_the_sum_of_the_layer_outputs():
  model = nets_factory.build_model('lenet', 10, (28, 28, 1))
  # input, conv1, pool1, conv2, pool2, flatten, fc3, dropout3, fc4, predictions
  floats = (784 + 28 * 28 * 32 + 14 * 14 * 32 + 14 * 14 * 64 + 7 * 7 * 64 * 2 + 1024 * 2
            + 10 * 2)
  assert memory.activation_bytes(model) == 4 * floats


def test_a_batch_that_cannot_fit_is_refused_with_one_that_fits():
  model = nets_factory.build_model('lenet', 10, (28, 28, 1))
  per_image = memory.activation_bytes(model)
  available = 1000 * per_image
  memory.check_batch(model, 1000, available=available)  # fits: no error
  with pytest.raises(ValueError) as info:
    memory.check_batch(model, 2000, available=available)
  suggest = int(re.search(r'use --batch_size=(\d+) or less$', str(info.value)).group(1))
  assert suggest * per_image * memory.SUGGEST_FACTOR <= available < \
      2 * suggest * per_image * memory.SUGGEST_FACTOR
  # Half the batch on this host, 3 replicas: 512 images fit, the multiple of 3 below.
  with pytest.raises(ValueError, match=r'use --batch_size=510 or less$'):
    memory.check_batch(model, 8000, share=0.5, replicas=3, available=available)
  with pytest.raises(ValueError, match='even one image does not fit'):
    memory.check_batch(model, 10, available=per_image)


def test_a_huge_batch_is_refused_before_any_work(tiny_mnist_dir, tmp_path, capsys):
  train_dir = str(tmp_path / 'train')
  config = train_config(train_dir, tiny_mnist_dir, batch_size=10000000)
  line = error_line(capsys, 'train_image_classifier.py', lambda: train.run(config))
  assert re.fullmatch(
      r'--batch_size=10000000: a training step of LeNet on 28x28x1 images needs at '
      r'least [\d.]+ TB of memory \(212\.1 KB of layer outputs per image\), but '
      r'[\d.]+ [MGT]B is available; use --batch_size=\d+ or less', line), line
  assert not os.path.exists(train_dir)


# ==============================================================================
# Signals.
# ==============================================================================


def test_sigterm_during_evaluation_says_no_result_was_written(
    trained, tiny_mnist_dir, tmp_path, capsys, monkeypatch):
  if threading.current_thread() is not threading.main_thread():
    pytest.skip('signal handlers run in the main thread only')
  config = eval_config(trained, tiny_mnist_dir, tmp_path / 'eval')
  update = evaluate.Metrics.update

  def update_then_term(self, logits, labels):
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` mid-pass
    return update(self, logits, labels)

  monkeypatch.setattr(evaluate.Metrics, 'update', update_then_term)
  code, lines = outcome(capsys, 'eval_image_classifier.py',
                        lambda: evaluate.run(config))
  assert code == 128 + signal.SIGTERM
  assert lines[-1] == ('eval_image_classifier.py: stopped by SIGTERM while evaluating '
                       '%s: no result was written for it' % os.path.join(trained,
                                                                         'ckpt-4'))
  assert not glob.glob(str(tmp_path / 'eval' / 'eval_*.json'))
  monkeypatch.setattr(evaluate.Metrics, 'update', update)
  assert evaluate.run(config)[0]['step'] == 4
  assert os.path.isfile(tmp_path / 'eval' / 'eval_4.json')


@pytest.mark.slow
def test_two_training_processes_on_one_train_dir(tiny_mnist_dir, tmp_path):
  """The real script: the second exits at once in one line; after kill -9 of the
  first, the same command runs (no stale lock)."""
  train_dir = str(tmp_path / 'train')
  args = [sys.executable, os.path.join(ROOT, 'train_image_classifier.py'),
          '--train_dir=%s' % train_dir, '--dataset_name=mnist',
          '--dataset_dir=%s' % tiny_mnist_dir, '--model_name=lenet', '--batch_size=16',
          '--optimizer=sgd']
  first = subprocess.Popen(args + ['--max_number_of_steps=1000000'], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  try:
    for line in first.stderr:  # training has begun: the lock is held
      if 'first step done' in line:
        break
    first.send_signal(signal.SIGSTOP)  # holds the lock, leaves the CPU to the second
    second = subprocess.run(args + ['--max_number_of_steps=2'], cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
  finally:
    first.kill()
    first.wait()
    first.stderr.close()
  assert second.returncode == 1 and 'Traceback' not in second.stderr
  [line] = [l for l in second.stderr.splitlines() if ': error: ' in l]
  assert line == ('train_image_classifier.py: error: --train_dir=%s is in use: training '
                  '(pid %d) holds its lock; wait for it to end or stop it, or pass '
                  'another --train_dir' % (train_dir, first.pid))
  third = subprocess.run(args + ['--max_number_of_steps=2'], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
  assert third.returncode == 0, third.stderr[-2000:]
