"""MNIST: idx parsing, round trip of the pixels, the embedded sample, parallel writing."""
import gzip
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from datasets import convert
from datasets import dataset_factory
from datasets import mnist
from datasets import tfrecords
from conftest import idx_bytes, mnist_like, write_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(ROOT, 'datasets', 'sample', 'mnist')
# The official files, in the shared data beside the checkout (../shared).
SHARED_MNIST = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'datasets', 'mnist'))
needs_shared = pytest.mark.skipif(
    not os.path.isdir(SHARED_MNIST),
    reason='the official MNIST files are not in %s (../shared beside the checkout)'
    % SHARED_MNIST)


def read_split(dataset_dir, split_name):
  split = dataset_factory.get_split('mnist', split_name, dataset_dir)
  pairs = list(split.read().as_numpy_iterator())
  return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs])


def test_round_trip_pixels_and_labels_equal_the_idx_files(tiny_mnist_dir, mnist_source):
  for split_name, (images, labels) in mnist_source.splits.items():
    decoded, decoded_labels = read_split(tiny_mnist_dir, split_name)
    np.testing.assert_array_equal(decoded, images)
    np.testing.assert_array_equal(decoded_labels, labels)
  info = dataset_factory.get_split('mnist', 'train', tiny_mnist_dir).info
  assert info['image_shape'] == [28, 28, 1] and info['encoding'] == 'png'
  assert info['splits']['train']['class_counts'] == np.bincount(
      mnist_source.splits['train'][1], minlength=10).tolist()
  with open(os.path.join(tiny_mnist_dir, 'labels.txt')) as f:
    assert f.read().splitlines()[6] == '6:six'


def test_parse_idx_validates_header():
  labels = idx_bytes(np.arange(5, dtype=np.uint8), 2049)
  np.testing.assert_array_equal(mnist.parse_idx(labels, 2049, 'l'), np.arange(5))
  with pytest.raises(ValueError, match='magic number 2049, expected 2051'):
    mnist.parse_idx(labels, 2051, 'x')
  with pytest.raises(ValueError, match='needs'):
    mnist.parse_idx(labels[:-1], 2049, 'x')
  with pytest.raises(ValueError, match='needs'):
    mnist.parse_idx(labels + b'\0', 2049, 'x')
  with pytest.raises(ValueError, match='too short'):
    mnist.parse_idx(b'\0\0', 2049, 'x')


def test_count_mismatch_and_missing_files_are_clear_errors(tmp_path):
  folder = write_mnist(str(tmp_path / 'src'), {'train': mnist_like(8, 0),
                                               'test': mnist_like(4, 0)})
  labels_path = os.path.join(folder, 't10k-labels-idx1-ubyte.gz')
  with open(labels_path, 'wb') as f:
    f.write(gzip.compress(idx_bytes(np.zeros(3, np.uint8), 2049)))
  with pytest.raises(ValueError, match='holds 4 images but .* holds 3 labels'):
    mnist.build_plan(folder)
  os.remove(labels_path)
  with pytest.raises(FileNotFoundError, match='has no t10k-labels-idx1-ubyte.gz'):
    mnist.build_plan(folder)


def test_accepts_uncompressed_files_given_one_by_one(tmp_path, mnist_source):
  paths = []
  for name in sorted(os.listdir(mnist_source.path)):
    with gzip.open(os.path.join(mnist_source.path, name)) as f:
      raw = f.read()
    path = tmp_path / name.replace('-ubyte.gz', '-ubyte').replace('-idx', '.idx')
    path.write_bytes(raw)
    paths.append(str(path))
  splits = mnist.load(mnist.find_files(','.join(paths)))
  np.testing.assert_array_equal(splits['test'][0], mnist_source.splits['test'][0])


def test_sample_converts(tmp_path):
  info = convert.run('mnist', str(tmp_path / 'out'), source=SAMPLE_DIR, progress=False)
  assert info['splits']['train']['num_samples'] == 2000
  assert info['splits']['test']['num_samples'] == 500
  labels = mnist.load(mnist.find_files(SAMPLE_DIR))['train'][1]
  assert info['splits']['train']['class_counts'] == np.bincount(
      labels, minlength=10).tolist()


@needs_shared
def test_sample_is_the_head_of_the_shared_files():
  official = mnist.load(mnist.find_files(SHARED_MNIST))
  sample = mnist.load(mnist.find_files(SAMPLE_DIR))
  for split, count in (('train', 2000), ('test', 500)):
    np.testing.assert_array_equal(sample[split][0], official[split][0][:count])
    np.testing.assert_array_equal(sample[split][1], official[split][1][:count])


@needs_shared
def test_make_mnist_sample_rebuilds_the_sample_byte_for_byte(tmp_path):
  script = os.path.join(ROOT, 'scripts', 'make_mnist_sample.py')
  done = subprocess.run([sys.executable, script, '--output=%s' % tmp_path],
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr
  for name in sorted(os.listdir(SAMPLE_DIR)):
    assert (tmp_path / name).read_bytes() == \
        open(os.path.join(SAMPLE_DIR, name), 'rb').read(), name


def test_make_mnist_sample_names_a_missing_source(tmp_path):
  script = os.path.join(ROOT, 'scripts', 'make_mnist_sample.py')
  done = subprocess.run([sys.executable, script, '--source=%s' % tmp_path,
                         '--output=%s' % (tmp_path / 'out')],
                        capture_output=True, text=True, timeout=120)
  assert done.returncode != 0
  assert '--source=%s has no train-images-idx3-ubyte.gz' % tmp_path in done.stderr
  assert not (tmp_path / 'out').exists()


def test_sample_files_are_gzip_idx_with_mtime_zero():
  for name in os.listdir(SAMPLE_DIR):
    with open(os.path.join(SAMPLE_DIR, name), 'rb') as f:
      header = f.read(10)
    assert header[:2] == b'\x1f\x8b' and struct.unpack('<I', header[4:8])[0] == 0


def test_worker_processes_write_the_same_shards(tmp_path, mnist_source, monkeypatch):
  serial = convert.run('mnist', str(tmp_path / 'serial'), source=mnist_source.path,
                       num_workers=1, num_shards=3, progress=False)
  monkeypatch.setattr(tfrecords, 'POOL_MIN_ITEMS', 0)
  monkeypatch.setitem(tfrecords.CHUNK, 'array', 16)
  parallel = convert.run('mnist', str(tmp_path / 'parallel'), source=mnist_source.path,
                         num_workers=2, num_shards=3, progress=False)
  assert serial['splits'] == parallel['splits']
  for name in sorted(os.listdir(tmp_path / 'serial')):
    if name.endswith('.tfrecord'):
      assert (tmp_path / 'serial' / name).read_bytes() == \
          (tmp_path / 'parallel' / name).read_bytes(), name


def test_local_file_of_official_size_must_match_checksum(tmp_path, mnist_source):
  folder = tmp_path / 'src'
  shutil.copytree(mnist_source.path, folder)
  size = mnist.OFFICIAL['test', 'labels'][2]
  (folder / 't10k-labels-idx1-ubyte.gz').write_bytes(b'\0' * size)
  with pytest.raises(ValueError, match='checksum mismatch'):
    mnist.build_plan(str(folder))
