"""download_and_convert_data.py: CLI errors, reruns, and interrupted runs."""
import os
import shutil
import subprocess
import sys

import pytest

from datasets import convert
from datasets import dataset_factory
from datasets import encode
from datasets import mnist
from datasets import tfrecords

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, 'datasets', 'sample', 'mnist')


def cli(*args, prefix=()):
  return subprocess.run([*prefix, sys.executable, 'download_and_convert_data.py', *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))


def assert_one_error_line(result, text):
  assert result.returncode == 1, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('download_and_convert_data.py: error: ') and text in lines[0], lines


def test_unknown_dataset_name(tmp_path):
  assert_one_error_line(cli('--dataset_name=coco', '--dataset_dir=%s' % tmp_path),
                        "--dataset_name='coco' is not one of cifar10, mnist")


def test_missing_dataset_dir():
  assert_one_error_line(cli('--dataset_name=mnist'), '--dataset_dir is required')


def test_missing_source(tmp_path):
  assert_one_error_line(
      cli('--dataset_name=flowers', '--dataset_dir=%s' % (tmp_path / 'out'),
          '--source=%s' % (tmp_path / 'nope.tgz')), 'nope.tgz does not exist')


def test_empty_source(tmp_path):
  (tmp_path / 'empty').mkdir()
  for name in ('image_folder', 'cifar10', 'mnist'):
    assert_one_error_line(
        cli('--dataset_name=' + name, '--dataset_dir=%s' % (tmp_path / 'out'),
            '--source=%s' % (tmp_path / 'empty')), 'empty')


def test_wrong_checksum_of_an_official_size_file(tmp_path, mnist_source):
  folder = tmp_path / 'src'
  shutil.copytree(mnist_source.path, folder)
  (folder / 't10k-labels-idx1-ubyte.gz').write_bytes(b'\0' * mnist.OFFICIAL['test', 'labels'][2])
  assert_one_error_line(cli('--dataset_name=mnist', '--dataset_dir=%s' % (tmp_path / 'out'),
                            '--source=%s' % folder), 'checksum mismatch')


def test_unreadable_source_folder(tmp_path):
  prefix = ()
  if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
    setpriv = shutil.which('setpriv')
    if not setpriv:
      pytest.skip('running as root without setpriv')
    prefix = (setpriv, '--bounding-set=-dac_override,-dac_read_search')
  locked = tmp_path / 'locked'
  (locked / 'cat').mkdir(parents=True)
  locked.chmod(0)
  try:
    result = cli('--dataset_name=image_folder', '--dataset_dir=%s' % (tmp_path / 'out'),
                 '--source=%s' % locked, prefix=prefix)
  finally:
    locked.chmod(0o755)
  assert_one_error_line(result, 'cannot read --source=%s' % locked)


def test_dataset_dir_that_is_a_file(tmp_path):
  (tmp_path / 'file').write_text('x')
  assert_one_error_line(cli('--dataset_name=mnist', '--dataset_dir=%s' % (tmp_path / 'file'),
                            '--source=' + SAMPLE), 'exists and is not a folder')


def test_validation_size_for_official_splits_is_refused(tmp_path):
  assert_one_error_line(cli('--dataset_name=cifar10', '--dataset_dir=%s' % tmp_path,
                            '--validation_size=0.1'), 'official train/test split')


def test_converts_the_sample_then_leaves_it_alone(tmp_path):
  out = tmp_path / 'mnist'
  result = cli('--dataset_name=mnist', '--dataset_dir=%s' % out, '--source=' + SAMPLE)
  assert result.returncode == 0, result.stderr
  summaries = result.stdout.splitlines()
  assert summaries[0].startswith('mnist train: 2000 images in 1 shards, 10 classes, '
                                 '0 skipped') and summaries[0].endswith('images/s')
  assert summaries[1].startswith('mnist test: 500 images')
  mtimes = {name: os.path.getmtime(out / name) for name in os.listdir(out)}
  again = cli('--dataset_name=mnist', '--dataset_dir=%s' % out, '--source=' + SAMPLE)
  assert again.returncode == 0 and 'pass --overwrite' in again.stdout
  assert len(again.stdout.splitlines()) == 1
  assert {name: os.path.getmtime(out / name) for name in os.listdir(out)} == mtimes


def test_overwrite_replaces_another_dataset(tmp_path, mnist_source, cifar10_python_source):
  out = str(tmp_path / 'out')
  convert.run('mnist', out, source=mnist_source.path, progress=False)
  convert.run('cifar10', out, source=cifar10_python_source.path, overwrite=True,
              progress=False)
  assert sorted(os.listdir(out)) == ['cifar10_test-00000-of-00001.tfrecord',
                                     'cifar10_train-00000-of-00001.tfrecord',
                                     'dataset_info.json', 'labels.txt']


def test_interrupted_run_leaves_no_complete_looking_dataset(tmp_path, mnist_source,
                                                            monkeypatch):
  out = tmp_path / 'out'
  real = encode.process_chunk
  calls = []

  def interrupted(task):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return real(task)

  monkeypatch.setattr(encode, 'process_chunk', interrupted)
  monkeypatch.setitem(tfrecords.CHUNK, 'array', 16)
  with pytest.raises(KeyboardInterrupt):
    convert.run('mnist', str(out), source=mnist_source.path, num_shards=4, progress=False)
  # Two full shards renamed; the third, half written, is gone; no metadata.
  assert sorted(os.listdir(out)) == ['mnist_train-00000-of-00004.tfrecord',
                                     'mnist_train-00001-of-00004.tfrecord']
  with pytest.raises(FileNotFoundError, match='holds no converted dataset'):
    dataset_factory.get_split('mnist', 'train', str(out))

  # A killed run also leaves its temporary file; stale shards of other layouts too.
  (out / 'mnist_train-00002-of-00004.tfrecord.tmp-99999').write_bytes(b'partial')
  (out / 'mnist_train-00007-of-00009.tfrecord').write_bytes(b'stale')
  (out / 'cifar-10-python.tar.gz.download-tmp-99999').write_bytes(b'partial')
  monkeypatch.setattr(encode, 'process_chunk', real)
  info = convert.run('mnist', str(out), source=mnist_source.path, num_shards=4,
                     progress=False)
  assert info['splits']['train']['num_samples'] == 64
  assert sorted(os.listdir(out)) == sorted(
      ['mnist_train-%05d-of-00004.tfrecord' % k for k in range(4)]
      + ['mnist_test-%05d-of-00004.tfrecord' % k for k in range(4)]
      + ['dataset_info.json', 'labels.txt'])
  assert dataset_factory.get_split('mnist', 'train', str(out)).num_samples == 64
