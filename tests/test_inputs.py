"""slimkit.inputs.build_input on tiny real TFRecord shards."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from preprocessing import augment
from preprocessing import preprocessing_factory
from common import errors
from slimkit import inputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TinySplit:
  """A stand-in with the DatasetSplit attributes build_input uses."""

  def __init__(self, files, num_samples, num_classes, image_shape, channels=3):
    self.name = 'tiny'
    self.files = files
    self.num_samples = num_samples
    self.num_classes = num_classes
    self.image_shape = image_shape
    self.channels = channels

  def parse(self, serialized):
    features = tf.io.parse_single_example(serialized, {
        'image/encoded': tf.io.FixedLenFeature([], tf.string),
        'image/class/label': tf.io.FixedLenFeature([], tf.int64)})
    image = tf.io.decode_image(features['image/encoded'], channels=self.channels,
                               expand_animations=False)
    return image, features['image/class/label']


def write_shards(directory, num_images, num_shards, size=8, fmt='png',
                 variable=False):
  """Image i has label i and pixel [0, 0, 0] = i; returns the shard paths."""
  rng = np.random.default_rng(0)
  files = [os.path.join(directory, 'tiny_train-%05d-of-%05d.tfrecord'
                        % (s, num_shards)) for s in range(num_shards)]
  writers = [tf.io.TFRecordWriter(f) for f in files]
  per_shard = -(-num_images // num_shards)
  for i in range(num_images):
    h, w = (size + i % 5, size + 2 * (i % 3)) if variable else (size, size)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image[0, 0, 0] = i
    encode = tf.io.encode_png if fmt == 'png' else tf.io.encode_jpeg
    example = tf.train.Example(features=tf.train.Features(feature={
        'image/encoded': _bytes(encode(image).numpy()),
        'image/format': _bytes(fmt.encode()),
        'image/class/label': _int(i),
        'image/height': _int(h), 'image/width': _int(w)}))
    writers[i // per_shard].write(example.SerializeToString())
  for writer in writers:
    writer.close()
  return files


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """40 PNG images 8x8 in 4 shards, labels 0..39 in file order."""
  files = write_shards(str(tmp_path_factory.mktemp('tiny')), 40, 4)
  return TinySplit(files, 40, 40, (8, 8, 3))


def _take(dataset, n):
  images, labels = [], []
  for x, y in dataset.take(n):
    images.append(x.numpy())
    labels.append(y.numpy())
  return np.concatenate(images), np.concatenate(labels)


def _cifar(is_training):
  return preprocessing_factory.get_preprocessing('cifar', is_training)


def test_eval_reads_every_record_once_in_file_order(tiny):
  ds = inputs.build_input(tiny, _cifar(False), 16, is_training=False, image_size=8)
  batches = [(x.numpy(), y.numpy()) for x, y in ds]
  assert [len(y) for _, y in batches] == [16, 16, 8]  # last partial batch kept
  images = np.concatenate([x for x, _ in batches])
  labels = np.concatenate([y for _, y in batches])
  assert images.dtype == np.float32 and images.shape == (40, 8, 8, 3)
  assert labels.dtype == np.int64
  np.testing.assert_array_equal(labels, np.arange(40))
  # The images are the parsed images through the eval preprocessing.
  first = tiny.parse(next(iter(tf.data.TFRecordDataset(tiny.files[:1]))))[0]
  np.testing.assert_allclose(images[0], _cifar(False)(first, 8, 8).numpy())


def test_pipelines_run_without_the_autotune_thread(tiny):
  """Deleting an iterator joins tf.data's autotune thread, which first sleeps out
  its optimization period (up to a minute): the end of a short run waited on it."""
  for training in (True, False):
    ds = inputs.build_input(tiny, _cifar(training), 16, is_training=training,
                            image_size=8)
    assert ds.options().autotune.enabled is False
    assert ds.options().autotune.initial_parallelism == os.cpu_count()


def test_labels_offset_and_num_classes(tiny):
  upper = TinySplit(tiny.files[2:], 20, 40, (8, 8, 3))  # labels 20..39
  ds = inputs.build_input(upper, _cifar(False), 20, is_training=False, image_size=8,
                          labels_offset=1)
  np.testing.assert_array_equal(next(iter(ds))[1].numpy(), np.arange(20, 40) - 1)


@pytest.mark.parametrize('is_training', [False, True])
def test_a_label_outside_the_classes_stops_naming_shard_record_and_label(
    tiny, is_training):
  # Label 0 with --labels_offset=1 (shard 0, record 0); 30 of 30 classes (shard 3).
  for offset, num_classes, shard, label, valid in ((1, 40, 0, 0, '[1, 40)'),
                                                   (0, 30, 3, 30, '[0, 30)')):
    split = TinySplit(tiny.files, 40, num_classes, (8, 8, 3))
    ds = inputs.build_input(split, _cifar(is_training), 8, is_training=is_training,
                            image_size=8, labels_offset=offset, seed=1, cache=False)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
      _take(ds, 10)
    found = re.fullmatch(
        r'(.*): record (\d+) has label (\d+); with --labels_offset=(\d) the labels must '
        r'be in (.*) for (\d+) classes', errors.graph_message(info.value))
    assert found.group(1) == tiny.files[shard]
    # Shard k holds labels 10k..10k+9 in order; shuffled training meets any first.
    index = int(found.group(2))
    assert int(found.group(3)) == label + index and (is_training or index == 0)
    assert found.group(4, 5, 6) == (str(offset), valid, str(num_classes - offset))


def test_train_seed_gives_the_same_batches_whatever_the_parallelism(tiny):
  def run(parallel, seed=5):
    ds = inputs.build_input(tiny, _cifar(True), 8, is_training=True, image_size=8,
                            seed=seed, num_parallel_calls=parallel, num_readers=2)
    return _take(ds, 10)
  a_images, a_labels = run(None)
  b_images, b_labels = run(1)
  np.testing.assert_array_equal(a_labels, b_labels)
  np.testing.assert_array_equal(a_images, b_images)
  c_images, c_labels = run(None, seed=6)
  assert not np.array_equal(a_labels, c_labels)
  # Each epoch is a fresh permutation of all 40 records.
  for epoch in range(2):
    assert sorted(a_labels[40 * epoch:40 * (epoch + 1)]) == list(range(40))
  assert not np.array_equal(a_labels[:40], a_labels[40:])


def test_augmentation_changes_between_epochs(tiny):
  # No shuffle (buffer 1) and one reader: the same record at the same place in
  # every epoch, so any change comes from a fresh augmentation seed.
  ds = inputs.build_input(tiny, _cifar(True), 40, is_training=True, image_size=8,
                          seed=1, num_readers=1, shuffle_buffer=1)
  images, labels = _take(ds, 2)
  assert set(labels[:40]) == set(labels[40:])
  order = np.argsort(labels[:40]), np.argsort(labels[40:])
  assert not np.array_equal(images[:40][order[0]], images[40:][order[1]])


def test_training_drops_the_partial_batch_and_repeats(tiny):
  ds = inputs.build_input(tiny, _cifar(True), 16, is_training=True, image_size=8)
  shapes = [x.shape for x, _ in ds.take(5)]  # 80 images: more than one epoch
  assert shapes == [(16, 8, 8, 3)] * 5
  assert inputs.build_input(tiny, _cifar(True), 16, is_training=True, image_size=8,
                            repeat=False).element_spec[0].shape[0] == 16


def test_cache_does_not_change_the_seeded_first_epoch(tiny):
  # (Later epochs differ: uncached, the shard order is reshuffled every epoch.)
  def run(cache):
    return _take(inputs.build_input(tiny, _cifar(True), 8, is_training=True,
                                    image_size=8, seed=3, cache=cache), 5)
  cached, uncached = run(True), run(False)
  np.testing.assert_array_equal(cached[0], uncached[0])
  np.testing.assert_array_equal(cached[1], uncached[1])


def test_auto_cache_rule(tiny):
  path = inputs._cache_path  # pylint: disable=protected-access
  assert path(None, tiny, True, 40) == ''                 # fixed shape, small: memory
  assert path(None, tiny, False, 40) is None              # evaluation: one pass
  assert path(None, tiny, True, 2**30 // 100) is None     # over 1 GiB decoded
  variable = TinySplit(tiny.files, 40, 40, None)
  assert path(None, variable, True, 40) is None           # decoded size unknown
  assert path('/tmp/x', tiny, False, 40) == '/tmp/x'
  assert path(False, tiny, True, 40) is None


def test_mixup_batch_transform_gives_soft_targets(tiny):
  def run():
    ds = inputs.build_input(tiny, _cifar(True), 8, is_training=True, image_size=8,
                            seed=2, num_classes=40,
                            batch_transform=augment.batch_mix(mixup_alpha=0.5))
    return _take(ds, 3)
  images, targets = run()
  assert targets.shape == (24, 40) and targets.dtype == np.float32
  np.testing.assert_allclose(targets.sum(-1), 1.0, atol=1e-6)
  assert (targets.max(-1) < 1).any()
  np.testing.assert_array_equal(targets, run()[1])


@pytest.mark.parametrize('num_shards', [4, 1])
def test_input_context_splits_files_or_records(tmp_path, num_shards):
  files = write_shards(str(tmp_path), 12, num_shards)
  split = TinySplit(files, 12, 12, (8, 8, 3))
  seen = []
  for pipeline in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=pipeline,
                                         num_replicas_in_sync=2)
    ds = inputs.build_input(split, _cifar(False), 4, is_training=False, image_size=8,
                            input_context=context)
    seen.append(sorted(np.concatenate([y.numpy() for _, y in ds])))
  assert not set(seen[0]) & set(seen[1])
  assert sorted(seen[0] + seen[1]) == list(range(12))
  assert len(seen[0]) == 6


def test_variable_size_jpeg_images_with_inception(tmp_path):
  files = write_shards(str(tmp_path), 10, 2, size=20, fmt='jpeg', variable=True)
  split = TinySplit(files, 10, 10, None)
  fn = preprocessing_factory.get_preprocessing('inception_v1', True)
  ds = inputs.build_input(split, fn, 4, is_training=True, image_size=(16, 12))
  images, _ = _take(ds, 2)
  assert images.shape == (8, 16, 12, 3)
  assert -1 <= images.min() and images.max() <= 1


def test_bad_arguments_fail_clearly(tiny):
  fn = _cifar(False)
  with pytest.raises(ValueError, match='image_size'):
    inputs.build_input(tiny, fn, 4, is_training=False, image_size=(8,))
  with pytest.raises(ValueError, match='batch_size'):
    inputs.build_input(tiny, fn, 0, is_training=False, image_size=8)
  with pytest.raises(ValueError, match='cache'):
    inputs.build_input(tiny, fn, 4, is_training=False, image_size=8, cache='')
  with pytest.raises(FileNotFoundError, match='no TFRecord files'):
    inputs.build_input(TinySplit([], 0, 1, None), fn, 4, is_training=False,
                       image_size=8)


_STRATEGY_SCRIPT = r'''
import json, os, sys
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices('CPU')[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, os.path.join(sys.argv[1], 'tests'))
from test_inputs import TinySplit
from preprocessing import preprocessing_factory
from common import errors
from slimkit import inputs
split = TinySplit(json.loads(sys.argv[2]), 40, 40, (8, 8, 3))
strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
fn = preprocessing_factory.get_preprocessing('cifar', True)
dist = strategy.distribute_datasets_from_function(
    lambda ctx: inputs.build_input(split, fn, 4, is_training=True, image_size=8,
                                   seed=1, input_context=ctx))
x, y = next(iter(dist))
print(json.dumps([list(v.shape) for v in strategy.experimental_local_results(x)]))
'''


@pytest.mark.slow
def test_runs_under_a_mirrored_strategy(tiny):
  out = subprocess.run(
      [sys.executable, '-c', _STRATEGY_SCRIPT, ROOT, json.dumps(tiny.files)],
      capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  # One input pipeline on one worker: each of the 2 replicas gets 4 images.
  assert json.loads(out.stdout.strip().splitlines()[-1]) == [[4, 8, 8, 3]] * 2
