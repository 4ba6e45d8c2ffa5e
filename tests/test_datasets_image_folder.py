"""flowers and image_folder: layouts, validation split, skipped files, formats."""
import io
import os
import tarfile
import zipfile

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from datasets import convert
from datasets import dataset_factory
from datasets import image_tree
from conftest import FLOWER_CLASSES, encode_image


def rgb(seed, size=(16, 16)):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8)


def write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


def stored_images(split):
  spec = {'image/encoded': tf.io.FixedLenFeature([], tf.string),
          'image/format': tf.io.FixedLenFeature([], tf.string)}
  return [(f['image/encoded'].numpy(), f['image/format'].numpy().decode())
          for f in (tf.io.parse_single_example(r, spec)
                    for r in tf.data.TFRecordDataset(split.files))]


def test_flowers_archive(tmp_path, flowers_source):
  out = str(tmp_path / 'flowers')
  info = convert.run('flowers', out, source=flowers_source.path, progress=False)
  # 30 photos; TF-Slim's 350/3670 of them (3) go to validation, one per class at most.
  assert info['splits']['validation']['num_samples'] == 3
  assert info['splits']['train']['num_samples'] == 27
  assert max(info['splits']['validation']['class_counts']) == 1
  assert info['image_shape'] == 'variable' and info['encoding'] == 'jpeg'
  assert info['splits']['train']['num_shards'] == 5
  assert info['splits']['validation']['num_shards'] == 3  # capped at the number of images
  with open(os.path.join(out, 'labels.txt')) as f:
    assert f.read() == ''.join('%d:%s\n' % item for item in enumerate(FLOWER_CLASSES))
  with tarfile.open(flowers_source.path) as tar:
    originals = {tar.extractfile(m).read() for m in tar if m.name.endswith('.jpg')}
  train = dataset_factory.get_split('flowers', 'train', out)
  assert {data for data, _ in stored_images(train)} <= originals  # JPEG bytes untouched
  assert train.image_shape is None
  assert train.read().element_spec[0].shape.as_list() == [None, None, 3]
  sizes = {image.shape for image, _ in train.read().as_numpy_iterator()}
  assert len(sizes) > 1 and all(shape[2] == 3 for shape in sizes)


def test_flowers_split_is_seeded(tmp_path, flowers_source):
  names = {}
  for seed in (0, 0, 1):
    out = str(tmp_path / ('s%d_%d' % (seed, len(names))))
    convert.run('flowers', out, source=flowers_source.path, seed=seed, num_shards=1,
                validation_size=5, progress=False)
    split = dataset_factory.get_split('flowers', 'validation', out)
    names.setdefault(seed, []).append([data for data, _ in stored_images(split)])
  assert names[0][0] == names[0][1]
  assert names[0][0] != names[1][0]


def test_image_folder_skips_and_counts_broken_files(tmp_path, image_folder_source, absl_log):
  out = str(tmp_path / 'out')
  info = convert.run('image_folder', out, source=image_folder_source.path, validation_size=0,
                     progress=False)
  assert info['name'] == 'image_folder' and list(info['splits']) == ['train']
  train = info['splits']['train']
  assert train['num_samples'] == 12 and train['skipped'] == 2
  assert train['class_counts'] == [4, 4, 4]
  assert info['encoding'] == 'mixed' and info['channels'] == 3
  assert info['image_shape'] == [16, 16, 3]
  warnings = '\n'.join(absl_log.messages)
  assert 'cat/broken.jpg' in warnings and 'dog/notes.txt' in warnings
  split = dataset_factory.get_split('image_folder', 'train', out)
  formats = [fmt for _, fmt in stored_images(split)]
  assert formats.count('jpeg') == 5 and formats.count('png') == 7
  images = [image for image, _ in split.read().as_numpy_iterator()]
  assert all(image.shape == (16, 16, 3) for image in images)


def test_bmp_and_gif_pixels_survive(tmp_path):
  root = tmp_path / 'src'
  originals = {}
  for label, (name, fmt) in enumerate((('a', 'BMP'), ('b', 'GIF'))):
    data = encode_image(rgb(label), fmt)
    write(root / name / ('x.' + fmt.lower()), data)
    originals[label] = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
  out = str(tmp_path / 'out')
  convert.run('image_folder', out, source=str(root), validation_size=0, progress=False)
  for image, label in dataset_factory.get_split(None, 'train', out).read().as_numpy_iterator():
    np.testing.assert_array_equal(image, originals[label])


def test_split_folders_and_output_name(tmp_path):
  root = tmp_path / 'data' / 'wrapper'
  for split, count in (('train', 4), ('val', 2), ('test', 2)):
    for name in ('ants', 'bees'):
      for i in range(count):
        write(root / split / name / ('%d.png' % i), encode_image(rgb(i)[:, :, :1], 'PNG'))
  zip_path = tmp_path / 'data.zip'
  with zipfile.ZipFile(zip_path, 'w') as archive:
    for folder, _, files in os.walk(tmp_path / 'data'):
      for filename in files:
        path = os.path.join(folder, filename)
        archive.write(path, os.path.relpath(path, tmp_path / 'data'))
  out = str(tmp_path / 'out')
  info = convert.run('image_folder', out, source=str(zip_path), output_name='insects',
                     progress=False)
  assert info['name'] == 'insects'
  assert {s: v['num_samples'] for s, v in info['splits'].items()} == {
      'train': 8, 'validation': 4, 'test': 4}
  assert info['channels'] == 1 and info['image_shape'] == [16, 16, 1]
  assert os.path.isfile(os.path.join(out, 'insects_test-00000-of-00001.tfrecord'))
  image, _ = dataset_factory.get_split('insects', 'test', out).parse(
      next(iter(tf.data.TFRecordDataset(os.path.join(
          out, 'insects_test-00000-of-00001.tfrecord')))))
  assert image.shape == (16, 16, 1)
  with pytest.raises(ValueError, match='already has a validation folder'):
    convert.run('image_folder', str(tmp_path / 'o2'), source=str(root), validation_size=2,
                progress=False)


def test_validation_size_counts_and_fractions():
  assert image_tree.validation_count(0.25, 100) == 25
  assert image_tree.validation_count(0.001, 100) == 1
  assert image_tree.validation_count(30, 100) == 30
  with pytest.raises(ValueError, match='leaves no training images'):
    image_tree.validation_count(100, 100)
  with pytest.raises(ValueError, match='whole count'):
    image_tree.validation_count(2.5, 100)


def test_stratified_split_is_exact_and_proportional():
  import random  # pylint: disable=g-import-not-at-top
  items = [('%d' % i, None, label) for i, label in enumerate([0] * 60 + [1] * 30 + [2] * 10)]
  train, validation = image_tree.split_validation(items, 10, random.Random(0))
  assert len(validation) == 10 and len(train) == 90
  assert [sum(1 for item in validation if item[2] == c) for c in range(3)] == [6, 3, 1]
  assert not {item[0] for item in train} & {item[0] for item in validation}


def test_layout_detection():
  files = [(p, None) for p in ['top/LICENSE.txt', 'top/a/1.jpg', 'top/b/2.jpg',
                               'top/b/sub/3.jpg', '__MACOSX/top/a/._1.jpg']]
  assert image_tree.find_layout(files) == {None: {'a': [('top/a/1.jpg', None)], 'b': [
      ('top/b/2.jpg', None), ('top/b/sub/3.jpg', None)]}}
  files = [(p, None) for p in ['Train/x/1.jpg', 'valid/x/2.jpg', 'test/y/3.jpg']]
  assert set(image_tree.find_layout(files)) == {'train', 'validation', 'test'}


def test_too_few_classes_is_an_error(tmp_path):
  write(tmp_path / 'only' / 'a.png', encode_image(rgb(0), 'PNG'))
  with pytest.raises(ValueError, match='at least 2'):
    convert.run('image_folder', str(tmp_path / 'out'), source=str(tmp_path / 'only'),
                progress=False)
