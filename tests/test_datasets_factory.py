"""datasets.dataset_factory: DatasetSplit from dataset_info.json, clear errors."""
import json
import os
import shutil

import numpy as np
import pytest

from datasets import convert
from datasets import dataset_factory


@pytest.fixture(scope='module')
def sharded_mnist(tmp_path_factory, mnist_source):
  out = str(tmp_path_factory.mktemp('sharded'))
  convert.run('mnist', out, source=mnist_source.path, num_shards=4, progress=False)
  return out


def test_split_metadata_comes_from_dataset_info(sharded_mnist):
  split = dataset_factory.get_split('mnist', 'train', sharded_mnist)
  assert (split.name, split.split_name, split.num_samples, split.num_classes) == (
      'mnist', 'train', 64, 10)
  assert [os.path.basename(f) for f in split.files] == [
      'mnist_train-%05d-of-00004.tfrecord' % k for k in range(4)]
  assert split.image_shape == (28, 28, 1) and split.channels == 1
  assert split.encoding == 'png' and split.labels_to_names[9] == 'nine'
  assert split.read().element_spec[0].shape.as_list() == [28, 28, 1]
  # Any folder reads, whatever its dataset: name=None takes what is there.
  assert dataset_factory.get_split(None, 'test', sharded_mnist).num_samples == 32


def test_read_order_is_fixed_and_shuffle_files_is_seeded(sharded_mnist, mnist_source):
  split = dataset_factory.get_split('mnist', 'train', sharded_mnist)
  labels = lambda ds: [int(label) for _, label in ds.as_numpy_iterator()]
  plain = labels(split.read())
  np.testing.assert_array_equal(plain, mnist_source.splits['train'][1])
  shuffled = labels(split.read(shuffle_files=True, seed=3, num_readers=2))
  assert shuffled == labels(split.read(shuffle_files=True, seed=3, num_readers=2))
  assert shuffled != plain and sorted(shuffled) == sorted(plain)


def test_missing_dataset_info_says_how_to_make_one(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match='download_and_convert_data.py --dataset_name=cifar10 '
                           '--dataset_dir=%s' % tmp_path):
    dataset_factory.get_split('cifar10', 'train', str(tmp_path))


def test_unknown_split_lists_the_available_ones(tiny_mnist_dir):
  with pytest.raises(ValueError, match='available splits: train, test'):
    dataset_factory.get_split('mnist', 'validation', tiny_mnist_dir)


def test_another_datasets_folder_is_refused(tiny_mnist_dir):
  with pytest.raises(ValueError, match="holds the dataset 'mnist'"):
    dataset_factory.get_split('cifar10', 'train', tiny_mnist_dir)


def test_missing_shard_is_reported(tmp_path, sharded_mnist):
  copy = tmp_path / 'copy'
  shutil.copytree(sharded_mnist, copy)
  os.remove(copy / 'mnist_train-00002-of-00004.tfrecord')
  with pytest.raises(FileNotFoundError, match='1 of the 4 train shards are missing'):
    dataset_factory.get_split('mnist', 'train', str(copy))


def test_sizes_come_from_the_json_not_the_code(tmp_path, sharded_mnist):
  copy = tmp_path / 'renamed'
  shutil.copytree(sharded_mnist, copy)
  with open(copy / 'dataset_info.json') as f:
    info = json.load(f)
  info['splits']['test']['num_samples'] = 31
  with open(copy / 'dataset_info.json', 'w') as f:
    json.dump(info, f)
  assert dataset_factory.get_split('mnist', 'test', str(copy)).num_samples == 31
