"""A newcomer's first runs, as the README has them, on tiny data: what the scripts
print (our lines, one per one-time measurement, no library chatter) and the
mistakes they catch (a train dir that holds a dataset, a classifier for other
classes, a .pb export path, one class for every image)."""

import glob
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import re
import subprocess
import sys

import pytest

from common import errors
from slimkit import run_config
from slimkit import train

import slim_reference
from conftest import train_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# absl's line: level letter, date, time, thread, file:line]
ABSL_LINE = re.compile(r'^([IWEF])\d{4} [\d:.]+ +\d+ ([^:\s]+):\d+\] (.*)$')
OUR_FILES = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, '*', '*.py'))}


def test_a_train_dir_holding_a_dataset_is_refused(tiny_mnist_dir, tmp_path):
  with pytest.raises(errors.UserError, match=r'--train_dir=%s holds a converted dataset '
                     r'\(dataset_info.json and \d+ more\); pass a directory of its own'
                     % re.escape(tiny_mnist_dir)):
    train.check_not_a_dataset(tiny_mnist_dir)
  slim_records = tmp_path / 'imagenet'
  slim_records.mkdir()
  (slim_records / 'train-00000-of-01024').write_bytes(b'')
  with pytest.raises(errors.UserError, match='train-00000-of-01024'):
    train.check_not_a_dataset(str(slim_records))
  train.check_not_a_dataset(str(tmp_path / 'new'))  # not there yet: fine
  (tmp_path / 'train').mkdir()
  (tmp_path / 'train' / 'ckpt-1.index').write_bytes(b'')
  train.check_not_a_dataset(str(tmp_path / 'train'))


def test_run_config_records_the_preprocessing_the_net_resolves_to(tmp_path,
                                                                   tiny_cifar_dir):
  config = train_config(tmp_path / 'cnn', tiny_cifar_dir, model_name='custom_cnn',
                        dataset_name='cifar10', max_number_of_steps=1, batch_size=8,
                        conv_gradients='tf')
  train.run(config)
  with open(os.path.join(config['train_dir'], run_config.FILE)) as f:
    assert json.load(f)['preprocessing_name'] == 'cifar'  # docs/nets.md's column


def _start(script, *args, cache=None):
  env = dict(os.environ)
  if cache:
    env['SLIMKIT_CACHE'] = cache
  return subprocess.Popen([sys.executable, os.path.join(ROOT, script)] + list(args),
                          cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _finish(process):
  out, err = process.communicate(timeout=600)
  return process.returncode, out, err


def _log(err):
  """[(level, file, message)] of the absl lines, after checking that every INFO line
  is ours: no library chatter ('Sharding callback duration', 'Assets written')."""
  lines = [ABSL_LINE.match(l).groups() for l in err.splitlines() if ABSL_LINE.match(l)]
  chatter = [l for l in lines if l[0] == 'I' and l[1] not in OUR_FILES]
  assert not chatter and 'INFO:tensorflow' not in err, chatter or err
  assert '\r' not in err  # not a terminal: plain lines, no progress bar
  return lines


def _messages(err, level):
  return [message for lvl, _, message in _log(err) if lvl == level]


@pytest.mark.slow
def test_first_runs_say_what_matters_in_one_line_each(tmp_path, tiny_mnist_dir,
                                                      tiny_cifar_dir):
  mnist = ['--dataset_name=mnist', '--dataset_dir=%s' % tiny_mnist_dir]
  lenet = ['--model_name=lenet', '--batch_size=8', '--optimizer=sgd',
           '--random_seed=0', '--num_readers=1']
  base = str(tmp_path / 'train' / 'lenet')
  # The first run on a machine measures the conv gradients: one line.
  code, _, err = _finish(_start('train_image_classifier.py', '--train_dir=%s' % base,
                                '--max_number_of_steps=2', *mnist, *lenet,
                                cache=str(tmp_path / 'cache1')))
  assert code == 0, err[-3000:]
  info = _messages(err, 'I')
  assert len([m for m in info if m.startswith('conv gradients: measured')]) == 1, info
  assert info[-1].startswith('done at step 2')

  thesis = str(tmp_path / 'train' / 'thesis')
  runs = {
      # A new head on a frozen body: no conv gradient is needed, none is measured.
      'head': _start('train_image_classifier.py',
                     '--train_dir=%s' % (tmp_path / 'train' / 'head'),
                     '--checkpoint_path=%s' % base, '--trainable_scopes=LeNet/fc4',
                     '--max_number_of_steps=2', *mnist, *lenet,
                     cache=str(tmp_path / 'cache2')),
      # The README converts flowers to /tmp/flowers; a train dir there is refused.
      'train_dir': _start('train_image_classifier.py', '--train_dir=%s' % tiny_mnist_dir,
                          '--max_number_of_steps=2', *mnist, *lenet),
      # The thesis command, briefly: Slim's batch norm decay has no time to settle.
      'thesis': _start('train_image_classifier.py', '--train_dir=%s' % thesis,
                       '--dataset_name=cifar10', '--dataset_split_name=train',
                       '--dataset_dir=%s' % tiny_cifar_dir, '--model_name=mobilenet_v1',
                       '--preprocessing_name=mobilenet_v1', '--max_number_of_steps=2',
                       '--batch_size=50', '--learning_rate=0.01',
                       '--save_interval_secs=60', '--save_summaries_secs=60',
                       '--log_every_n_steps=100', '--optimizer=sgd',
                       '--learning_rate_decay_type=fixed', '--weight_decay=0',
                       '--train_image_size=32', '--random_seed=0',
                       '--conv_gradients=tf'),
  }
  results = {name: _finish(p) for name, p in runs.items()}
  code, _, err = results['head']
  assert code == 0, err[-3000:]
  assert not any('conv gradients' in m for m in _messages(err, 'I')), err
  code, _, err = results['train_dir']
  assert code == 1 and err.strip().splitlines()[-1] == (
      'train_image_classifier.py: error: --train_dir=%s holds a converted dataset '
      '(dataset_info.json and 2 more); pass a directory of its own, e.g. '
      '--train_dir=%s' % (tiny_mnist_dir, os.path.join(
          os.path.dirname(tiny_mnist_dir), 'train', os.path.basename(tiny_mnist_dir))))
  assert results['thesis'][0] == 0, results['thesis'][2][-3000:]

  slim_1001 = str(tmp_path / 'slim' / 'model.ckpt')
  slim_reference.save_random_checkpoint('lenet', slim_1001, 28, 1001, channels=1)
  runs = {
      'thesis_eval': _start('eval_image_classifier.py', '--checkpoint_path=%s' % thesis,
                            '--eval_dir=%s' % (tmp_path / 'eval' / 'thesis'),
                            '--dataset_name=cifar10', '--dataset_dir=%s' % tiny_cifar_dir,
                            '--model_name=mobilenet_v1'),
      # A TF-Slim ImageNet checkpoint on a 10-class dataset.
      'slim_eval': _start('eval_image_classifier.py', '--checkpoint_path=%s' % slim_1001,
                          '--eval_dir=%s' % (tmp_path / 'eval' / 'slim'), *mnist,
                          '--model_name=lenet'),
      'export': _start('export_inference_graph.py', '--model_name=lenet',
                       '--checkpoint_path=%s' % base, '--dataset_dir=%s' % tiny_mnist_dir,
                       '--output_file=%s' % (tmp_path / 'lenet.pb')),
  }
  results = {name: _finish(p) for name, p in runs.items()}
  code, out, err = results['thesis_eval']
  assert code == 0, err[-3000:]
  warning, = _messages(err, 'W')
  assert re.match(r'\d+ % of the 32 images were given class \d+ \(\w+\): the batch norm '
                  r'moving averages still hold mostly their initial values \(decay '
                  r'0.9997 averages over about 3333 steps; this checkpoint is at step '
                  r'2\); train longer, or with --batch_norm_decay=0.99 or less$',
                  warning), warning
  code, _, err = results['slim_eval']
  assert code == 1
  line = err.strip().splitlines()[-1]
  assert line.startswith('eval_image_classifier.py: error: ') and (
      'The checkpoint has 1001 classes, the net 10' in line)
  assert ('fine-tune one for this dataset first: train_image_classifier.py '
          '--checkpoint_path=%s --checkpoint_exclude_scopes=LeNet/fc4 '
          '--trainable_scopes=LeNet/fc4' % slim_1001) in line
  assert 'labels_offset by' not in line
  code, out, err = results['export']
  assert code == 0, err[-3000:]
  assert _messages(err, 'W') == [
      '--output_file=%s: a SavedModel is a directory, so that is the name of a '
      'directory (saved_model.pb and the weights inside); no frozen GraphDef file is '
      'written' % (tmp_path / 'lenet.pb')]
  assert os.path.isfile(tmp_path / 'lenet.pb' / 'saved_model.pb')
