"""CIFAR-10: restricted unpickling, python batches round trip, lossy class-folder copies."""
import os
import pickle
import tarfile

import numpy as np
import pytest

from datasets import cifar10
from datasets import convert
from datasets import dataset_factory
from conftest import add_file, cifar_batch, cifar_like, encode_image, py2_pickle


class Payload:
  """Unpickling this calls os.system: the classic pickle attack."""

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return os.system, (self.command,)


def test_loads_a_python2_style_batch():
  images, labels = cifar_like(7, seed=0)
  loaded, loaded_labels = cifar10.load_batch(py2_pickle(cifar_batch(images, labels, 'b')), 'b')
  np.testing.assert_array_equal(loaded, images)
  np.testing.assert_array_equal(loaded_labels, labels)


def test_refuses_globals_other_than_numpy_arrays(tmp_path):
  marker = tmp_path / 'pwned'
  attacks = {
      'os.system': pickle.dumps({'data': Payload('touch %s' % marker)}, protocol=2),
      'builtins.eval': pickle.dumps(
          {'x': _Reduce(eval, ("open(%r, 'w')" % str(marker),))}, protocol=2),
      'numpy.load': pickle.dumps({'x': _Reduce(np.load, ('x.npy',))}, protocol=2),
  }
  for name, data in attacks.items():
    with pytest.raises(ValueError, match='refusing global'):
      cifar10.load_batch(data, 'data_batch_1')
    assert not marker.exists(), name


class _Reduce:

  def __init__(self, fn, args):
    self.fn, self.args = fn, args

  def __reduce__(self):
    return self.fn, self.args


def test_refuses_batches_of_the_wrong_shape_or_type():
  images, labels = cifar_like(3, seed=0)
  bad = [
      {'data': images.reshape(3, -1)[:, :100], 'labels': [0, 1, 2]},
      {'data': images.reshape(3, -1).astype(np.int64), 'labels': [0, 1, 2]},
      {'data': images.reshape(3, -1), 'labels': [0, 1]},
      {'data': images.reshape(3, -1), 'labels': [0, 1, 10]},
      [1, 2, 3],
  ]
  for batch in bad:
    with pytest.raises(ValueError, match='data_batch_1'):
      cifar10.load_batch(py2_pickle(batch), 'data_batch_1')


def test_python_batches_round_trip_losslessly(tiny_cifar_dir, cifar10_python_source):
  for split_name, (images, labels) in cifar10_python_source.splits.items():
    split = dataset_factory.get_split('cifar10', split_name, tiny_cifar_dir)
    pairs = list(split.read().as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([p[0] for p in pairs]), images)
    np.testing.assert_array_equal(np.array([p[1] for p in pairs]), labels)
  info = split.info
  assert info['image_shape'] == [32, 32, 3] and info['encoding'] == 'png'
  assert info['lossy_source'] is False
  assert info['splits']['train']['num_samples'] == 64
  assert split.labels_to_names[0] == 'airplane' and split.labels_to_names[9] == 'truck'


def test_jpeg_class_folders_keep_bytes_and_are_marked_lossy(tmp_path, cifar10_jpeg_source):
  info = convert.run('cifar10', str(tmp_path / 'out'), source=cifar10_jpeg_source.path,
                     progress=False)
  assert info['lossy_source'] is True and info['encoding'] == 'jpeg'
  assert info['image_shape'] == [32, 32, 3]
  for split_name, (_, labels) in cifar10_jpeg_source.splits.items():
    counts = np.bincount(labels, minlength=10).tolist()
    assert info['splits'][split_name]['class_counts'] == counts
  with tarfile.open(cifar10_jpeg_source.path) as tar:
    originals = {tar.extractfile(m).read() for m in tar if m.isfile()}
  split = dataset_factory.get_split('cifar10', 'train', str(tmp_path / 'out'))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  stored = [tf.io.parse_single_example(r, {'image/encoded': tf.io.FixedLenFeature(
      [], tf.string)})['image/encoded'].numpy() for r in tf.data.TFRecordDataset(split.files)]
  assert len(stored) == 30 and set(stored) <= originals
  labels = [label for _, label in split.read().as_numpy_iterator()]
  assert labels != sorted(labels)  # class folders are shuffled into the shards


def test_class_folders_must_be_the_cifar10_classes(tmp_path):
  path = tmp_path / 'wrong.tar.gz'
  image = encode_image(cifar_like(1, 0)[0][0], 'PNG')
  with tarfile.open(path, 'w:gz') as tar:
    for split in ('train', 'test'):
      for name in ('cats', 'dogs'):
        add_file(tar, '%s/%s/0.png' % (split, name), image)
  with pytest.raises(ValueError, match='expected the CIFAR-10 classes'):
    cifar10.build_plan(str(path))


def test_missing_batch_is_a_clear_error(tmp_path, cifar10_python_source):
  path = tmp_path / 'partial.tar.gz'
  with tarfile.open(cifar10_python_source.path) as src, tarfile.open(path, 'w:gz') as dst:
    for member in src:
      if not member.name.endswith('data_batch_3'):
        add_file(dst, member.name, src.extractfile(member).read())
  with pytest.raises(ValueError, match=r"lacks the CIFAR-10 batches \['data_batch_3'\]"):
    cifar10.build_plan(str(path))


def test_images_of_the_wrong_size_are_skipped(tmp_path):
  path = tmp_path / 'sizes.tar.gz'
  images, labels = cifar_like(10, 0)
  with tarfile.open(path, 'w:gz') as tar:
    for split in ('train', 'test'):
      for image, label in zip(images, labels):
        add_file(tar, '%s/%s/a.png' % (split, cifar10.CLASS_NAMES[label]),
                 encode_image(image, 'PNG'))
      add_file(tar, '%s/cat/big.png' % split, encode_image(np.zeros((40, 40, 3), np.uint8),
                                                           'PNG'))
  info = convert.run('cifar10', str(tmp_path / 'out'), source=str(path), progress=False)
  assert info['splits']['train']['skipped'] == 1
  assert info['splits']['train']['num_samples'] == 10
  assert info['image_shape'] == [32, 32, 3] and info['lossy_source'] is False
