"""Reading converted datasets: get_split(name, split_name, dataset_dir) -> DatasetSplit.

Everything comes from the folder's dataset_info.json (sizes, classes, shape, encoding),
so any folder written by download_and_convert_data.py reads the same way, whatever its
dataset's name. A folder of TF-Slim's own ImageNet TFRecords (build_imagenet_data.py,
no dataset_info.json) reads as 'imagenet' (datasets/imagenet_records.py).
"""
import dataclasses
import os

import tensorflow as tf

from common import errors
from datasets import dataset_info
from datasets import imagenet
from datasets import imagenet_records
from datasets import tfrecords

FEATURES = {
    'image/encoded': tf.io.FixedLenFeature([], tf.string),
    'image/class/label': tf.io.FixedLenFeature([], tf.int64),
}


@dataclasses.dataclass
class DatasetSplit:
  """One split of a converted dataset and how to read it."""
  name: str
  split_name: str
  files: list
  num_samples: int
  num_classes: int
  labels_to_names: dict
  image_shape: tuple  # (height, width, channels), or None for variable sizes
  channels: int
  encoding: str  # 'png', 'jpeg' or 'mixed'
  info: dict  # the whole dataset_info.json (class_counts, lossy_source, source, ...)

  def decode(self, encoded):
    """Encoded image bytes -> uint8 [H, W, channels], static where the shape is fixed."""
    if self.encoding == 'png':
      image = tf.io.decode_png(encoded, channels=self.channels)
    elif self.encoding == 'jpeg':
      image = tf.io.decode_jpeg(encoded, channels=self.channels)
    else:
      image = tf.io.decode_image(encoded, channels=self.channels, expand_animations=False)
    image.set_shape(self.image_shape or (None, None, self.channels))
    return image

  def parse(self, serialized):
    """Serialized tf.train.Example -> (image uint8 [H, W, C], label int64 scalar)."""
    features = tf.io.parse_single_example(serialized, FEATURES)
    return self.decode(features['image/encoded']), features['image/class/label']

  def find_damage(self, exc=None):
    """'<shard>: <what is wrong> at record <i>' for the first bad record, or None.

    Run only after reading failed (it reads the whole split): it checks every
    record's length and CRC; after an error other than a DataLossError (an image
    that does not decode, a record that is not an Example) it also parses them.
    """
    parse = exc is not None and not isinstance(exc, tf.errors.DataLossError)
    for path in self.files:
      if not os.path.isfile(path):
        return '%s: missing file' % path
      index = 0
      try:
        for record in tf.data.TFRecordDataset(path):
          if parse:
            self.parse(record)
          index += 1
      except tf.errors.DataLossError as e:
        return '%s: damaged or truncated at record %d (%s)' % (
            path, index, errors.first_line(e))
      except tf.errors.InvalidArgumentError as e:
        return '%s: record %d cannot be read as an image and label (%s)' % (
            path, index, errors.first_line(e))
    return None

  def read(self, shuffle_files=False, seed=None, num_readers=4):
    """tf.data.Dataset of parse()d (image, label) pairs, one pass.

    Unshuffled, files are read one after the other, so the order is the conversion's
    record order. shuffle_files reshuffles the files every pass and interleaves
    num_readers of them; with a seed that order is reproducible.
    """
    if shuffle_files:
      files = tf.data.Dataset.from_tensor_slices(self.files).shuffle(
          len(self.files), seed=seed, reshuffle_each_iteration=True)
      records = files.interleave(tf.data.TFRecordDataset,
                                 cycle_length=max(1, min(num_readers, len(self.files))),
                                 num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=seed is not None)
    else:
      records = tf.data.TFRecordDataset(self.files)
    return records.map(self.parse, num_parallel_calls=tf.data.AUTOTUNE)


def get_split(name, split_name, dataset_dir):
  """The split of the dataset converted into dataset_dir -> DatasetSplit.

  name: the dataset's name as converted (--dataset_name or --output_name); None accepts
    whatever the folder holds.
  Raises FileNotFoundError when dataset_dir holds no finished dataset (with the command
  that makes one) and ValueError for another dataset's folder or an unknown split.
  Without dataset_info.json, name 'imagenet' (or None) reads TF-Slim's ImageNet shards.
  """
  if not dataset_dir:
    raise ValueError('dataset_dir is required: the folder download_and_convert_data.py '
                     'wrote')
  info = dataset_info.read_info(dataset_dir)
  if info is None and (name == imagenet.NAME or (
      name is None and imagenet_records.holds_records(dataset_dir))):
    return _tf_slim_imagenet_split(split_name, dataset_dir)
  if info is None:
    raise FileNotFoundError(
        '%s holds no converted dataset (no %s); make one with: python3 '
        'download_and_convert_data.py --dataset_name=%s --dataset_dir=%s [--source=PATH]'
        % (dataset_dir, dataset_info.INFO_FILE, name or '<cifar10|mnist|flowers|image_folder>',
           dataset_dir))
  if name and name != info['name']:
    raise ValueError('--dataset_name=%s, but %s holds the dataset %r' % (name, dataset_dir,
                                                                           info['name']))
  splits = info['splits']
  if split_name not in splits:
    raise ValueError('--dataset_split_name=%s is not in %s; available splits: %s'
                     % (split_name, dataset_dir, ', '.join(splits)))
  num_shards = splits[split_name]['num_shards']
  files = [os.path.join(dataset_dir, tfrecords.shard_name(info['name'], split_name, k,
                                                          num_shards))
           for k in range(num_shards)]
  missing = [f for f in files if not os.path.isfile(f)]
  if missing:
    raise FileNotFoundError('%s: %d of the %d %s shards are missing (first: %s); re-run '
                            'download_and_convert_data.py with --overwrite'
                            % (dataset_dir, len(missing), num_shards, split_name,
                               os.path.basename(missing[0])))
  names = (labels_to_names(info, dataset_dir) or
           {i: str(i) for i in range(info['num_classes'])})
  return _split(info, split_name, files, names)


def _tf_slim_imagenet_split(split_name, dataset_dir):
  """A split of TF-Slim's build_imagenet_data.py TFRecords (no dataset_info.json)."""
  if not imagenet_records.holds_records(dataset_dir):
    raise FileNotFoundError(
        '%s holds no converted dataset (no %s) and no TF-Slim ImageNet shards '
        '(train-00000-of-01024, ...); make one with: python3 download_and_convert_data.py '
        '--dataset_name=imagenet --source=<ILSVRC2012 folder> --dataset_dir=%s'
        % (dataset_dir, dataset_info.INFO_FILE, dataset_dir))
  available = imagenet_records.describe(dataset_dir)['available_splits']
  if split_name not in available:
    raise ValueError('--dataset_split_name=%s is not in %s; available splits: %s'
                     % (split_name, dataset_dir, ', '.join(available)))
  info = imagenet_records.describe(dataset_dir, [split_name])
  files = info['splits'][split_name].pop('files')
  return _split(info, split_name, files, labels_to_names(info, dataset_dir))


def _split(info, split_name, files, labels_to_names):
  shape = info['image_shape']
  return DatasetSplit(
      name=info['name'], split_name=split_name, files=files,
      num_samples=info['splits'][split_name]['num_samples'],
      num_classes=info['num_classes'], labels_to_names=labels_to_names,
      image_shape=tuple(shape) if isinstance(shape, list) else None,
      channels=info['channels'], encoding=info['encoding'], info=info)


def read_info(name, dataset_dir):
  """dataset_info.json of dataset_dir, TF-Slim ImageNet's equivalent, or None."""
  info = dataset_info.read_info(dataset_dir)
  if info is None and name in (None, imagenet.NAME):
    info = imagenet_records.describe(dataset_dir)
  return info


def labels_to_names(info, dataset_dir):
  """{label: name} from labels.txt; TF-Slim ImageNet folders without one get
  TF-Slim's names (datasets/imagenet_classes.txt)."""
  if os.path.isfile(os.path.join(dataset_dir, dataset_info.LABELS_FILE)):
    return dataset_info.read_labels(dataset_dir)
  if info and info.get('name') == imagenet.NAME:
    return imagenet.readable_names(info['num_classes'])
  return {}
