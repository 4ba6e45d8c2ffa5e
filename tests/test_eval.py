"""eval_image_classifier.py / slimkit.evaluate on a tiny model trained by the real trainer."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import glob
import hashlib
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from datasets import dataset_factory
from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import checkpoints
from slimkit import run_config as run_config_lib
from slimkit import evaluate
from slimkit import summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 6
SAVE_EVERY = 2
BATCH = 7  # does not divide the split: the last batch is partial


def _run(script, *args, timeout=240):
  return subprocess.run([sys.executable, os.path.join(ROOT, script)] + list(args),
                        cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _info(dataset_dir):
  with open(os.path.join(dataset_dir, 'dataset_info.json')) as f:
    return json.load(f)


def _data_flags(dataset_dir):
  return ['--dataset_name=%s' % _info(dataset_dir)['name'],
          '--dataset_dir=%s' % dataset_dir]


def _digest(directory):
  """{relative path: sha256} of every file under directory."""
  out = {}
  for path in sorted(glob.glob(os.path.join(directory, '**'), recursive=True)):
    if os.path.isfile(path):
      with open(path, 'rb') as f:
        out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.fixture(scope='module')
def run(tmp_path_factory, tiny_cifar_dir):
  """Trains custom_cnn (elu, EMA) with the real trainer while a continuous eval watches.

  The watcher starts first, on a train dir that does not exist yet, and must
  evaluate each checkpoint as it appears and stop by itself after the last step.
  """
  base = tmp_path_factory.mktemp('eval')
  train_dir, watch_dir = str(base / 'train'), str(base / 'watch_eval')
  # Files, not pipes: nobody reads the watcher's output while the trainer runs.
  out_file, err_file = open(base / 'watch.out', 'w+'), open(base / 'watch.err', 'w+')
  watcher = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'eval_image_classifier.py'),
       '--checkpoint_path=%s' % train_dir, '--eval_dir=%s' % watch_dir,
       '--model_name=custom_cnn', '--moving_average_decay=0.9',
       '--batch_size=%d' % BATCH, '--eval_interval_secs=1', '--timeout=150']
      + _data_flags(tiny_cifar_dir), cwd=ROOT, stdout=out_file, stderr=err_file,
      text=True)
  try:
    train = _run('train_image_classifier.py', '--train_dir=%s' % train_dir,
                 '--dataset_split_name=train', '--model_name=custom_cnn',
                 '--activation=elu', '--max_number_of_steps=%d' % STEPS,
                 '--save_interval_steps=%d' % SAVE_EVERY, '--batch_size=8',
                 '--optimizer=sgd', '--learning_rate=0.05', '--weight_decay=0',
                 '--moving_average_decay=0.9', '--random_seed=1',
                 *_data_flags(tiny_cifar_dir))
    assert train.returncode == 0, train.stderr[-3000:]
    watcher.wait(timeout=200)
  finally:
    if watcher.poll() is None:
      watcher.kill()
      watcher.wait()
  with out_file, err_file:
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read(), err_file.read()
  return {'train_dir': train_dir, 'watch_dir': watch_dir, 'base': base,
          'watch_code': watcher.returncode, 'watch_out': out, 'watch_err': err,
          'dataset_dir': tiny_cifar_dir}


def _saved_steps(train_dir):
  state = tf.train.get_checkpoint_state(train_dir)
  return sorted(checkpoints.step_of(os.path.join(train_dir, os.path.basename(p)))
                for p in state.all_model_checkpoint_paths)


@pytest.mark.slow
def test_continuous_eval_follows_training_and_stops_after_the_last_step(run):
  log = run['watch_out'][-2000:] + run['watch_err'][-3000:]
  assert run['watch_code'] == 0, log
  steps = _saved_steps(run['train_dir'])
  assert steps[-1] == STEPS and len(steps) >= 2
  written = sorted(int(os.path.basename(p)[5:-5]) for p in
                   glob.glob(os.path.join(run['watch_dir'], 'eval_*.json')))
  assert written == steps, log
  for step in steps:  # one table per checkpoint: none evaluated twice
    assert run['watch_out'].count('step %d on ' % step) == 1, log
  scalars = summaries.read_scalars(run['watch_dir'])
  assert [s for s, _ in scalars['eval/Accuracy']] == steps
  assert 'final step' in run['watch_err'], log


@pytest.mark.slow
def test_continuous_eval_skips_evaluated_checkpoints_and_times_out(run, tmp_path):
  config = {'checkpoint_path': run['train_dir'], 'eval_dir': run['watch_dir'],
            'model_name': 'custom_cnn', 'dataset_name': _info(run['dataset_dir'])['name'],
            'dataset_split_name': 'test', 'dataset_dir': run['dataset_dir'],
            'eval_interval_secs': 1, 'timeout': 2}
  before = _digest(run['watch_dir'])
  assert evaluate.run(config) == []  # all evaluated and the final step reached
  assert _digest(run['watch_dir']) == before
  # A run that has not reached its last step yet: wait, then give up at the timeout.
  unfinished = str(tmp_path / 'unfinished')
  shutil.copytree(run['train_dir'], unfinished)
  run_config = run_config_lib.read(unfinished)
  run_config['max_number_of_steps'] = 1000
  run_config_lib.write(unfinished, run_config)
  eval_dir = str(tmp_path / 'eval')
  shutil.copytree(run['watch_dir'], eval_dir)
  start = time.time()
  assert evaluate.run(dict(config, checkpoint_path=unfinished, eval_dir=eval_dir)) == []
  assert 2 <= time.time() - start < 15


def test_eval_dir_given_as_the_train_dir_goes_beside_its_checkpoints(run, tmp_path,
                                                                     absl_log):
  """TF-Slim's scripts pass --eval_dir equal to the train dir: results go to its eval/."""
  train_dir = str(tmp_path / 'train')
  shutil.copytree(run['train_dir'], train_dir)
  before = _digest(train_dir)
  config = {'checkpoint_path': train_dir, 'eval_dir': train_dir + os.sep,
            'model_name': 'custom_cnn', 'dataset_name': _info(run['dataset_dir'])['name'],
            'dataset_split_name': 'test', 'dataset_dir': run['dataset_dir'],
            'batch_size': BATCH}
  [result] = evaluate.run(config)
  eval_dir = os.path.join(train_dir, 'eval')
  assert result['step'] == STEPS
  assert os.listdir(train_dir).count('eval') == 1
  assert [os.path.basename(p) for p in glob.glob(os.path.join(eval_dir, 'eval_*.json'))
          ] == ['eval_%d.json' % STEPS]
  assert [s for s, _ in summaries.read_scalars(eval_dir)['eval/Accuracy']] == [STEPS]
  after = _digest(train_dir)
  assert {p: d for p, d in after.items() if not p.startswith('eval' + os.sep)} == before
  assert ('--eval_dir=%s is the train dir of --checkpoint_path, whose checkpoints stay '
          'untouched: writing the evaluation to %s' % (train_dir + os.sep, eval_dir)
          in absl_log.messages)


def test_unset_eval_dir_is_derived_from_the_checkpoint_path(tmp_path, monkeypatch):
  train_dir = tmp_path / 'train'
  os.makedirs(train_dir)
  (train_dir / run_config_lib.FILE).write_text('{}')
  slim_dir = tmp_path / 'checkpoints'  # TF-Slim's layout: several nets in one dir
  os.makedirs(slim_dir)
  (slim_dir / 'inception_v1.ckpt').write_bytes(b'')
  (slim_dir / 'resnet_v1_50.ckpt.index').write_bytes(b'')
  (slim_dir / 'checkpoint').write_text('model_checkpoint_path: "resnet_v1_50.ckpt"\n')
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  monkeypatch.chdir(tmp_path)
  cases = {
      str(train_dir): train_dir / 'eval',
      str(train_dir / 'ckpt-6'): train_dir / 'eval',
      str(slim_dir / 'inception_v1.ckpt'): slim_dir / 'inception_v1_eval',
      str(slim_dir / 'resnet_v1_50.ckpt.index'): slim_dir / 'resnet_v1_50_eval',
      str(slim_dir / 'model.ckpt-2000'): slim_dir / 'model_eval',
      str(slim_dir): slim_dir / 'eval',
      'inception_v1': tmp_path / 'cache' / 'eval' / 'inception_v1',
  }
  for checkpoint_path, expected in cases.items():
    eval_dir, why = evaluate.resolve_eval_dir({'checkpoint_path': checkpoint_path,
                                               'eval_dir': None})
    assert eval_dir == str(expected)
    assert why == '--eval_dir unset: writing the evaluation to %s' % expected
  # Polled, the train dir may not exist yet; a given eval dir elsewhere is kept.
  later = str(tmp_path / 'later')
  assert evaluate.resolve_eval_dir({'checkpoint_path': later, 'eval_interval_secs': 1,
                                    'eval_dir': None})[0] == os.path.join(later, 'eval')
  assert evaluate.resolve_eval_dir({'checkpoint_path': later, 'eval_interval_secs': 1,
                                    'eval_dir': later})[0] == os.path.join(later, 'eval')
  elsewhere = str(tmp_path / 'elsewhere')
  assert evaluate.resolve_eval_dir({'checkpoint_path': str(train_dir),
                                    'eval_dir': elsewhere}) == (elsewhere, None)


def _numpy_reference(dataset_dir, prefix, split_name='test'):
  """Logits of the restored EMA model on the split, batched as the eval, and labels."""
  info = _info(dataset_dir)
  split = dataset_factory.get_split(info['name'], split_name, dataset_dir)
  run_config = run_config_lib.read(prefix)
  model = nets_factory.build_model('custom_cnn', split.num_classes,
                                   (run_config['image_size'],) * 2 + (3,),
                                   activation='elu')
  checkpoints.restore_model(model, prefix, use_ema=True)
  preprocess = preprocessing_factory.get_preprocessing('custom_cnn', is_training=False)
  size = run_config['image_size']
  images, labels = [], []
  for image, label in split.read():
    images.append(preprocess(image, size, size).numpy())
    labels.append(int(label))
  images, labels = np.stack(images), np.array(labels)
  logits = np.concatenate([
      model(images[i:i + BATCH], training=False)['Logits'].numpy()
      for i in range(0, len(images), BATCH)])
  return logits.astype(np.float64), labels, split


@pytest.mark.slow
def test_one_shot_eval_matches_numpy_and_leaves_the_train_dir_alone(run):
  train_dir = run['train_dir']
  prefix = os.path.join(train_dir, 'ckpt-%d' % (STEPS - SAVE_EVERY))  # not the newest
  eval_dir = str(run['base'] / 'one_shot_eval')
  before = _digest(train_dir)
  result = _run('eval_image_classifier.py', '--checkpoint_path=%s.index' % prefix,
                '--eval_dir=%s' % eval_dir, '--model_name=custom_cnn',
                '--moving_average_decay=0.9', '--batch_size=%d' % BATCH,
                *_data_flags(run['dataset_dir']))
  assert result.returncode == 0, result.stderr[-3000:]
  assert _digest(train_dir) == before
  step = STEPS - SAVE_EVERY
  with open(os.path.join(eval_dir, 'eval_%d.json' % step)) as f:
    written = json.load(f)

  logits, labels, split = _numpy_reference(run['dataset_dir'], prefix)
  n, k = logits.shape
  assert written['num_samples'] == n == split.num_samples
  assert written['num_batches'] == -(-n // BATCH) and n % BATCH
  predicted = logits.argmax(axis=1)
  top5 = np.argsort(-logits, axis=1)[:, :5]
  accuracy = np.mean(predicted == labels)
  recall_5 = np.mean([labels[i] in top5[i] for i in range(n)])
  log_softmax = logits - logits.max(1, keepdims=True)
  log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
  loss = -np.mean(log_softmax[np.arange(n), labels])
  confusion = np.zeros((k, k), int)
  for t, p in zip(labels, predicted):
    confusion[t, p] += 1
  assert written['step'] == step
  assert written['checkpoint_path'] == prefix
  assert written['moving_average'] is True
  assert written['metrics']['accuracy'] == pytest.approx(accuracy, abs=1e-12)
  assert written['metrics']['recall_5'] == pytest.approx(recall_5, abs=1e-12)
  assert written['metrics']['loss'] == pytest.approx(loss, rel=1e-4)
  assert written['confusion_matrix'] == confusion.tolist()
  names = [split.labels_to_names[i] for i in range(k)]
  per_class = written['per_class_accuracy']
  assert [c['name'] for c in per_class] == names == written['class_names']
  for c in per_class:
    row = confusion[c['class_id']]
    assert c['num_samples'] == row.sum()
    assert c['accuracy'] == (pytest.approx(row[c['class_id']] / row.sum())
                             if row.sum() else None)
  # The rate is the images evaluated over the seconds it took.
  assert written['seconds'] > 0
  assert written['images_per_sec'] == pytest.approx(
      written['num_samples'] / written['seconds'], rel=1e-3)
  # The same numbers in TensorBoard, at the checkpoint's step, and on stdout.
  scalars = summaries.read_scalars(eval_dir)
  assert scalars['eval/Accuracy'] == [(step, pytest.approx(accuracy, abs=1e-6))]
  assert scalars['eval/Recall_5'] == [(step, pytest.approx(recall_5, abs=1e-6))]
  assert scalars['eval/Loss'] == [(step, pytest.approx(loss, rel=1e-4))]
  assert 'eval/Accuracy  %.4f' % accuracy in result.stdout
  assert 'images/s' in result.stdout
  for name in names:
    assert name in result.stdout


def test_unset_flags_take_the_train_run_settings(tiny_cifar_dir):
  config = {'model_name': 'custom_cnn', 'dataset_dir': tiny_cifar_dir,
            'dataset_name': _info(tiny_cifar_dir)['name'], 'dataset_split_name': 'test',
            'use_grayscale': False, 'grayscale_formula': 'rec601', 'explicit_flags': []}
  trained = {'model_name': 'custom_cnn', 'num_classes': 10, 'image_size': 24,
             'use_grayscale': True, 'grayscale_formula': 'mean', 'activation': 'tanh',
             'preprocessing_name': 'cifar'}
  setup = evaluate.resolve(config, trained)
  assert (setup.image_size, setup.channels) == (24, 1)
  assert setup.preprocess_options['grayscale_formula'] == 'mean'
  assert setup.net_options == {'activation': 'tanh'}
  assert setup.preprocessing_name == 'cifar'
  # Flags given on the command line win; without a run_config, the net's defaults.
  given = dict(config, eval_image_size=40, explicit_flags=['use_grayscale',
                                                           'eval_image_size'])
  setup = evaluate.resolve(given, trained)
  assert (setup.image_size, setup.channels) == (40, 3)
  setup = evaluate.resolve(config, None)
  assert (setup.image_size, setup.channels, setup.net_options) == (32, 3, {})
  assert setup.preprocessing_name == 'cifar'  # custom_cnn's, as the preset it names


def test_metrics_count_ties_in_top_k_and_every_label():
  metrics = evaluate.Metrics(6, k=5)
  logits = np.array([[5, 4, 3, 2, 1, 1],     # label 5 ties 5th place: a hit
                     [0, 1, 2, 3, 4, 5],     # label 0 is last: a miss
                     [1, 1, 1, 1, 1, 1]],    # all tied: argmax 0, in top 5
                    np.float32)
  metrics.update(logits, np.array([5, 0, 0]))
  result = metrics.result()
  assert result['recall_5'] == pytest.approx(2 / 3)
  assert result['accuracy'] == pytest.approx(1 / 3)
  assert result['per_class_accuracy'] == [0.5, None, None, None, None, 0.0]
  with pytest.raises(ValueError, match='labels_offset'):
    metrics.update(logits[:1], np.array([6]))


def _error_line(result):
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 1, result.stderr[-2000:]
  assert lines and lines[-1].startswith('eval_image_classifier.py: error: ')
  return lines[-1]


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_1(run, tmp_path):
  """No checkpoint, another model, another class count, a missing split (in parallel)."""
  train_dir = run['train_dir']
  common = ['--eval_dir=%s' % (tmp_path / 'eval')] + _data_flags(run['dataset_dir'])
  os.makedirs(tmp_path / 'empty')
  alone = tmp_path / 'alone'  # a checkpoint without its run_config.json
  os.makedirs(alone)
  for path in glob.glob(os.path.join(train_dir, 'ckpt-%d.*' % STEPS)):
    shutil.copy(path, alone)
  cases = {
      'no checkpoint in this directory yet': [
          '--checkpoint_path=%s' % (tmp_path / 'empty'), '--model_name=custom_cnn'],
      'pass --model_name=custom_cnn': [
          '--checkpoint_path=%s' % train_dir, '--model_name=lenet'],
      'differ in shape': [  # restore_model names the Logits variables
          '--checkpoint_path=%s' % (alone / ('ckpt-%d' % STEPS)),
          '--model_name=custom_cnn', '--labels_offset=1'],
      'no_such_split': [
          '--checkpoint_path=%s' % train_dir, '--model_name=custom_cnn',
          '--dataset_split_name=no_such_split'],
  }
  script = os.path.join(ROOT, 'eval_image_classifier.py')
  running = {expect: subprocess.Popen([sys.executable, script] + args + common, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
             for expect, args in cases.items()}
  for expect, process in running.items():
    out, err = process.communicate(timeout=240)
    line = _error_line(subprocess.CompletedProcess(process.args, process.returncode,
                                                   out, err))
    assert expect in line
    # Advice names only flags this script has (these are training's).
    assert '--checkpoint_exclude_scopes' not in line and '--ignore_missing' not in line
  assert not os.path.exists(tmp_path / 'eval')


def test_unsupported_flags_are_named(run, tmp_path):
  config = {'checkpoint_path': run['train_dir'], 'eval_dir': str(tmp_path / 'eval'),
            'model_name': 'custom_cnn', 'dataset_dir': run['dataset_dir'],
            'dataset_name': _info(run['dataset_dir'])['name'],
            'dataset_split_name': 'test'}
  for extra, message in [({'quantize': True}, '--quantize is not supported'),
                         ({'master': 'grpc://x:1'}, '--master'),
                         ({'timeout': 5}, '--timeout only applies'),
                         ({'checkpoint_path': run['train_dir'] + '/checkpoint',
                           'eval_interval_secs': 1}, 'must be the train dir')]:
    with pytest.raises(ValueError, match=message):
      evaluate.run(dict(config, **extra))
  assert not os.path.exists(tmp_path / 'eval')
