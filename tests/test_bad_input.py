"""Damaged files, bad labels and wrong paths: one line naming the file, exit 1, work kept.

Runs the scripts' error path in-process (slimkit.cli.call, what cli.run does after
parsing the flags) on a LeNet trained here by the real trainer, and the real
train_image_classifier.py once, on a cut shard.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import glob
import re
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import eval_config
from conftest import train_config
from datasets import image_tree
from slimkit import checkpoints
from slimkit import cli
from common import errors
from slimkit import evaluate
from slimkit import export
from slimkit import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def call(script, fn):
  """(exit code, stderr's error lines) of fn run as script's main by cli.call."""
  argv0, sys.argv[0] = sys.argv[0], script
  try:
    cli.call(lambda argv: fn(), [script])
    return 0, []
  except SystemExit as e:
    return e.code, None
  finally:
    sys.argv[0] = argv0


def error_line(capsys, script, fn):
  code, _ = call(script, fn)
  lines = capsys.readouterr().err.splitlines()
  errs = [l for l in lines if l.startswith(script + ': error: ')]
  assert code == 1 and len(errs) == 1, lines[-5:]
  assert not any('Traceback' in l for l in lines)
  return errs[0][len(script + ': error: '):]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_mnist_dir):
  """A LeNet train dir with ckpt-2 and ckpt-4."""
  train_dir = str(tmp_path_factory.mktemp('bad_input') / 'train')
  train.run(train_config(train_dir, tiny_mnist_dir, max_number_of_steps=4,
                         save_interval_steps=2))
  return train_dir


def _copy(src, dst):
  shutil.copytree(src, dst)
  return str(dst)


def _train_shard(dataset_dir):
  return sorted(glob.glob(os.path.join(dataset_dir, '*_train-*.tfrecord')))[0]


def _relabel(dataset_dir, split, index, label=None, encoded=None):
  """Rewrites record `index` of the split's first shard with another label or image."""
  shard = sorted(glob.glob(os.path.join(dataset_dir, '*_%s-*.tfrecord' % split)))[0]
  records = [r.numpy() for r in tf.data.TFRecordDataset(shard)]
  example = tf.train.Example.FromString(records[index])
  feature = example.features.feature
  if label is not None:
    feature['image/class/label'].int64_list.value[:] = [label]
  if encoded is not None:
    feature['image/encoded'].bytes_list.value[:] = [encoded]
  records[index] = example.SerializeToString()
  with tf.io.TFRecordWriter(shard) as writer:
    for record in records:
      writer.write(record)
  return shard


@pytest.mark.slow
def test_cut_shard_stops_training_in_one_line_and_keeps_the_checkpoints(
    trained, tiny_mnist_dir, tmp_path):
  data = _copy(tiny_mnist_dir, tmp_path / 'data')
  shard = _train_shard(data)
  with open(shard, 'r+b') as f:
    f.truncate(os.path.getsize(shard) * 2 // 3)
  train_dir = _copy(trained, tmp_path / 'train')
  before = sorted(os.listdir(train_dir))
  process = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'train_image_classifier.py'),
       '--train_dir=%s' % train_dir, '--dataset_name=mnist', '--dataset_dir=%s' % data,
       '--model_name=lenet', '--optimizer=momentum', '--batch_size=16',
       '--max_number_of_steps=20',
       '--save_interval_steps=2'], cwd=ROOT, capture_output=True, text=True,
      timeout=240)
  assert process.returncode == 1, process.stderr[-2000:]
  assert 'Traceback' not in process.stderr
  [line] = [l for l in process.stderr.splitlines() if ': error: ' in l]
  assert re.fullmatch(
      r'train_image_classifier.py: error: %s: damaged or truncated at record \d+ '
      r'\(.*\); re-run download_and_convert_data.py for this dataset; training stopped '
      r'without saving, last good checkpoint: %s' % (
          re.escape(shard), re.escape(os.path.join(train_dir, 'ckpt-4'))), line), line
  assert checkpoints.latest(train_dir) == os.path.join(train_dir, 'ckpt-4')
  assert [n for n in sorted(os.listdir(train_dir)) if n.startswith('ckpt-')] == \
      [n for n in before if n.startswith('ckpt-')]


def test_a_label_outside_the_classes_stops_training_and_evaluation(
    trained, tiny_mnist_dir, tmp_path, capsys):
  data = _copy(tiny_mnist_dir, tmp_path / 'data')
  expect = ('%s: record 5 has label 99; with --labels_offset=0 the labels must be in '
            '[0, 10) for 10 classes; ')
  shard = _relabel(data, 'test', 5, 99)
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(trained, data, tmp_path / 'eval')))
  assert line.startswith(expect % shard), line
  shard = _relabel(data, 'train', 5, 99)
  config = train_config(str(tmp_path / 'train'), data, max_number_of_steps=4)
  line = error_line(capsys, 'train_image_classifier.py', lambda: train.run(config))
  assert line.startswith(expect % shard), line
  assert line.endswith('last good checkpoint: none')
  assert checkpoints.latest(str(tmp_path / 'train')) is None


def test_an_image_that_does_not_decode_is_named(trained, tiny_mnist_dir, tmp_path,
                                                capsys):
  data = _copy(tiny_mnist_dir, tmp_path / 'data')
  shard = _relabel(data, 'test', 9, encoded=b'\x89PNG\r\n\x1a\n cut short')
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(trained, data, tmp_path / 'eval')))
  assert re.fullmatch(r'%s: record 9 cannot be read as an image and label \(.+\); '
                      r're-run download_and_convert_data.py for this dataset'
                      % re.escape(shard), line), line


def test_resume_skips_a_cut_checkpoint_and_keeps_it(trained, tiny_mnist_dir, tmp_path,
                                                    absl_log):
  train_dir = _copy(trained, tmp_path / 'train')
  data = os.path.join(train_dir, 'ckpt-4.data-00000-of-00001')
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)
  size = os.path.getsize(data)
  result = train.run(train_config(train_dir, tiny_mnist_dir, max_number_of_steps=6,
                                  save_interval_steps=2, max_checkpoints_to_keep=1))
  assert result['step'] == 6
  skipped = [m for m in absl_log.messages if 'resume: skipped' in m]
  assert skipped == ['resume: skipped %s, damaged or truncated (Read less bytes than '
                     'requested); its files are kept as %s.damaged.*' % (
                         os.path.join(train_dir, 'ckpt-4'),
                         os.path.join(train_dir, 'ckpt-4'))]
  assert any('resumed from %s at step 2' % os.path.join(train_dir, 'ckpt-2') in m
             for m in absl_log.messages)
  assert os.path.getsize(os.path.join(train_dir, 'ckpt-4.damaged.data-00000-of-00001')) \
      == size  # kept, not deleted by rotation (max_checkpoints_to_keep=1)
  assert checkpoints.verify(os.path.join(train_dir, 'ckpt-6')) is None


def test_damaged_checkpoint_path_is_one_line_in_eval_and_export(
    trained, tiny_mnist_dir, tmp_path, capsys):
  train_dir = _copy(trained, tmp_path / 'train')
  data = os.path.join(train_dir, 'ckpt-4.data-00000-of-00001')
  with open(data, 'r+b') as f:
    f.seek(os.path.getsize(data) // 2)
    byte = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([byte[0] ^ 1]))
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(train_dir, tiny_mnist_dir, tmp_path / 'eval')))
  assert re.fullmatch(
      r'--checkpoint_path=%s: checkpoint %s is damaged or truncated \(.*Checksum does '
      r'not match.*\); its newest intact checkpoint is --checkpoint_path=%s' % (
          re.escape(train_dir), re.escape(os.path.join(train_dir, 'ckpt-4')),
          re.escape(os.path.join(train_dir, 'ckpt-2'))), line), line
  assert not os.path.exists(tmp_path / 'eval')
  config = {'model_name': 'lenet', 'checkpoint_path': os.path.join(train_dir, 'ckpt-4'),
            'output_file': str(tmp_path / 'export'), 'explicit_flags': []}
  line = error_line(capsys, 'export_inference_graph.py', lambda: export.run(config))
  assert line.startswith('--checkpoint_path=%s: checkpoint %s is damaged' % (
      config['checkpoint_path'], config['checkpoint_path']))
  assert not os.path.exists(tmp_path / 'export')


def test_paths_that_cannot_work_fail_before_any_work(trained, tiny_mnist_dir, tmp_path,
                                                     capsys):
  a_file = tmp_path / 'a_file'
  a_file.write_text('x')
  under = str(a_file / 'sub')
  line = error_line(capsys, 'train_image_classifier.py', lambda: train.run(
      train_config(str(a_file), tiny_mnist_dir)))
  assert line == '--train_dir=%s is a file, not a directory; pass a directory path' % a_file
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(trained, tiny_mnist_dir, under)))
  assert line.startswith('--eval_dir=%s: %s is a file' % (under, a_file))
  line = error_line(capsys, 'eval_image_classifier.py', lambda: evaluate.run(
      eval_config(trained, str(a_file), tmp_path / 'eval')))
  assert line.startswith('--dataset_dir=%s is a file' % a_file)
  line = error_line(capsys, 'export_inference_graph.py', lambda: export.run(
      {'model_name': 'lenet', 'output_file': str(a_file), 'explicit_flags': []}))
  assert line.startswith('--output_file=%s is a file' % a_file)
  from datasets import convert  # pylint: disable=g-import-not-at-top
  line = error_line(capsys, 'download_and_convert_data.py', lambda: convert.run(
      'mnist', under, source=str(tmp_path)))
  assert line.startswith('--dataset_dir=%s: %s is a file' % (under, a_file))


def test_one_class_folder_is_counted(tmp_path):
  os.makedirs(tmp_path / 'photos' / 'cat')
  shutil.copy(__file__, tmp_path / 'photos' / 'cat' / 'a.jpg')
  with pytest.raises(ValueError) as info:
    image_tree.build_plan('x', str(tmp_path / 'photos'), 0, None, 0.1)
  assert "found 1 class folder(s) ['cat']" in str(info.value)


def test_graph_errors_are_reduced_to_what_went_wrong():
  text = ('Graph execution error:\n\nDetected at node while/IteratorGetNext defined at '
          '(most recent call last):\n  File "x.py", line 9, in g\n\ntruncated record at '
          '19189\n\t [[{{node while/IteratorGetNext}}]] [Op:__inference_g_72]')
  assert errors.first_line(tf.errors.DataLossError(None, None, text)) == \
      'truncated record at 19189'
