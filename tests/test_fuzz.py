"""Seeded fuzz: flipped or cut bytes in a shard, a checkpoint and a SavedModel.

Each trial damages a fresh copy and runs the script's path in-process (slimkit.cli.call,
what cli.run does after parsing the flags); two trials run the real scripts. The
outcome must be one clean line and exit 1, or a run whose figures equal the
undamaged ones: never a traceback, a hang or a silently different figure.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import glob
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import eval_config
from conftest import train_config
from common import files
from slimkit import cli
from slimkit import evaluate
from slimkit import export
from slimkit import run_config as run_config_lib
from slimkit import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIALS = 8  # per kind of file
sys.path.insert(0, ROOT)
import classify_image  # pylint: disable=g-import-not-at-top,wrong-import-position


def damage(path, rng):
  """Flips 1-3 random bits, or cuts the file at a random length; returns what it did."""
  size = os.path.getsize(path)
  with open(path, 'r+b') as f:
    if rng.random() < 0.5 and size > 1:
      length = int(rng.integers(0, size))
      f.truncate(length)
      return 'cut %s at %d of %d' % (path, length, size)
    offsets = sorted(set(int(o) for o in rng.integers(0, size, int(rng.integers(1, 4)))))
    for offset in offsets:
      f.seek(offset)
      byte = f.read(1)[0]
      f.seek(offset)
      f.write(bytes([byte ^ (1 << int(rng.integers(0, 8)))]))
    return 'flipped %s at %s' % (path, offsets)


def outcome(capsys, script, fn):
  """(exit code, the error line or None, fn's result) of fn as script's main."""
  argv0, sys.argv[0] = sys.argv[0], script
  result = []
  try:
    cli.call(lambda argv: result.append(fn()), [script])
    code = 0
  except SystemExit as e:
    code = e.code
  finally:
    sys.argv[0] = argv0
  err = capsys.readouterr().err
  assert 'Traceback' not in err
  lines = [l for l in err.splitlines() if l.startswith(script + ': error: ')]
  assert len(lines) == (code != 0) and code in (0, 1), err[-2000:]
  return code, (lines[0] if lines else None), (result[0] if result else None)


@pytest.fixture(scope='module')
def made(tmp_path_factory, tiny_mnist_dir):
  """A trained LeNet, its clean evaluation, and its export."""
  base = tmp_path_factory.mktemp('fuzz')
  train_dir = str(base / 'train')
  train.run(train_config(train_dir, tiny_mnist_dir, max_number_of_steps=2))
  clean = evaluate.run(eval_config(train_dir, tiny_mnist_dir, base / 'eval'))[0]
  saved = str(base / 'export')
  export.run({'model_name': 'lenet', 'checkpoint_path': train_dir, 'output_file': saved,
              'dataset_dir': tiny_mnist_dir, 'explicit_flags': []})
  return {'train_dir': train_dir, 'data': tiny_mnist_dir, 'clean': clean,
          'export': saved}


def _same_figures(result, clean):
  return (result['num_samples'] == clean['num_samples'] and
          result['metrics'] == clean['metrics'] and
          result['confusion_matrix'] == clean['confusion_matrix'])


def test_damaged_shards_and_checkpoints_in_evaluation(made, tmp_path, capsys):
  rng = np.random.default_rng(15)
  errors_seen = 0
  for trial in range(2 * TRIALS):
    trial_dir = tmp_path / str(trial)
    data, train_dir = made['data'], made['train_dir']
    if trial < TRIALS:  # a test shard
      data = str(shutil.copytree(made['data'], trial_dir / 'data'))
      target = sorted(glob.glob(os.path.join(data, '*_test-*.tfrecord')))[0]
    else:  # the checkpoint's .data or .index
      train_dir = str(shutil.copytree(made['train_dir'], trial_dir / 'train'))
      target = sorted(glob.glob(os.path.join(train_dir, 'ckpt-2.*')))[trial % 2]
    what = damage(target, rng)
    code, line, result = outcome(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
        eval_config(train_dir, data, trial_dir / 'eval')))
    if code:
      errors_seen += 1
      assert target in line or os.path.dirname(target) in line, (what, line)
    else:
      assert _same_figures(result[0], made['clean']), what
  assert errors_seen >= TRIALS  # most damage is found, not read around


def test_damaged_saved_model_in_classify(made, tmp_path, capsys):
  image = tmp_path / 'digit.png'
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(np.tile(np.arange(28, dtype=np.uint8)[:, None] * 9, (1, 28))).save(image)
  images = classify_image.read_images([str(image)])

  def classify(directory):
    model, serve, _, batch = classify_image.load(directory)
    probabilities = classify_image.classify(serve, images, batch)
    del model
    return probabilities

  clean = classify(made['export'])
  rng = np.random.default_rng(16)
  for trial in range(TRIALS + TRIALS // 2):
    saved = str(shutil.copytree(made['export'], tmp_path / str(trial)))
    paths = sorted(p for p in glob.glob(os.path.join(saved, '**'), recursive=True)
                   if os.path.isfile(p))
    if trial >= TRIALS:  # an export without digests: TensorFlow's own checks
      paths = [p for p in paths if '%svariables%s' % (os.sep, os.sep) in p]
      record = export.read_export_config(saved)
      del record['files']
      files.write_json_atomic(os.path.join(saved, export.CONFIG_FILE), record)
    target = paths[int(rng.integers(0, len(paths)))]
    what = damage(target, rng)
    code, line, result = outcome(capsys, 'classify_image.py', lambda: classify(saved))
    if code:
      assert target in line or saved in line, (what, line)
    else:
      np.testing.assert_array_equal(result, clean, err_msg=what)


@pytest.mark.slow
def test_the_scripts_print_one_line(made, tmp_path):
  """The real scripts, once each, on a cut checkpoint and a flipped SavedModel."""
  train_dir = str(shutil.copytree(made['train_dir'], tmp_path / 'train'))
  with open(os.path.join(train_dir, 'ckpt-2.data-00000-of-00001'), 'r+b') as f:
    f.truncate(100)
  saved = str(shutil.copytree(made['export'], tmp_path / 'export'))
  damage(os.path.join(saved, 'saved_model.pb'), np.random.default_rng(3))
  image = tmp_path / 'digit.png'
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
  runs = {
      'eval_image_classifier.py': [
          '--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % (tmp_path / 'eval'),
          '--dataset_name=mnist', '--dataset_dir=%s' % made['data'],
          '--model_name=lenet'],
      'classify_image.py': ['--saved_model=%s' % saved, str(image)],
  }
  running = {script: subprocess.Popen(
      [sys.executable, os.path.join(ROOT, script)] + args, cwd=ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for script, args in runs.items()}
  for script, process in running.items():
    _, err = process.communicate(timeout=240)
    lines = [l for l in err.splitlines() if ': error: ' in l]
    assert process.returncode == 1 and 'Traceback' not in err, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith(script + ': error: '), lines
  assert not os.path.exists(tmp_path / 'eval')
