"""TF-Slim's ImageNet TFRecords (build_imagenet_data.py), read without dataset_info.json.

That script writes 'train-00000-of-01024' ... and 'validation-00000-of-00128' (no
extension), tf.train.Examples with 'image/encoded' (JPEG, RGB) and 'image/class/label'
1..1000 (0 is the background of the 1001 classes). describe() gives the dataset_info
dict our converter would have written, so the readers need nothing else.
"""
import os
import re
import struct

from common import errors
from datasets import imagenet

SHARD = re.compile(r'^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<total>\d{5})$')
OFFICIAL_SHARDS = {'train': 1024, 'validation': 128}  # build_imagenet_data.py's defaults


def shards(dataset_dir):
  """{split: {total: {index: path}}} of the TF-Slim shard names in dataset_dir."""
  found = {}
  if not os.path.isdir(dataset_dir):
    return found
  for filename in os.listdir(dataset_dir):
    match = SHARD.match(filename)
    if match:
      by_total = found.setdefault(match['split'], {})
      by_total.setdefault(int(match['total']), {})[int(match['index'])] = os.path.join(
          dataset_dir, filename)
  return found


def holds_records(dataset_dir):
  return bool(shards(dataset_dir))


def split_files(dataset_dir, split_name, found=None):
  """The complete, ordered shard list of split_name; one-line errors otherwise."""
  found = shards(dataset_dir) if found is None else found
  if split_name not in found:
    raise errors.UserError('--dataset_split_name=%s: %s holds TF-Slim ImageNet shards of '
                           '%s only (no %s-00000-of-NNNNN)' % (
                               split_name, dataset_dir, ', '.join(sorted(found)), split_name))
  by_total = found[split_name]
  if len(by_total) > 1:
    raise errors.UserError('%s mixes %s shards of %d totals (%s); remove the stale ones'
                           % (dataset_dir, split_name, len(by_total),
                              ', '.join('of-%05d' % t for t in sorted(by_total))))
  total, by_index = next(iter(by_total.items()))
  missing = [i for i in range(total) if i not in by_index]
  if missing:
    raise FileNotFoundError('%s: %d of the %d %s shards are missing (first: %s-%05d-of-%05d)'
                            % (dataset_dir, len(missing), total, split_name, split_name,
                               missing[0], total))
  return [by_index[i] for i in range(total)]


def count_records(path):
  """Records in one TFRecord file, from the length headers alone (no data is read)."""
  size = os.path.getsize(path)
  count = position = 0
  with open(path, 'rb') as f:
    while position < size:
      header = f.read(12)  # uint64 length, uint32 crc of the length
      if len(header) < 12:  # a partial header
        position = size + 1
        break
      position = f.seek(struct.unpack('<Q', header[:8])[0] + 4, os.SEEK_CUR)  # data, crc
      count += 1
  if position != size:
    raise errors.UserError('%s is truncated (its last record ends past the file\'s %d '
                           'bytes); copy it again' % (path, size))
  return count


def num_samples(split_name, files):
  """TF-Slim's split size for its full shard set, else the records counted."""
  if len(files) == OFFICIAL_SHARDS.get(split_name):
    return imagenet.SPLITS_TO_SIZES[split_name]
  return sum(count_records(path) for path in files)


def describe(dataset_dir, split_names=()):
  """A dataset_info dict for a TF-Slim ImageNet folder, or None if it holds none.

  Only the splits in split_names are checked and counted (counting a split with other
  than TF-Slim's shard count reads every record header); each also lists its 'files'.
  """
  found = shards(dataset_dir)
  if not found:
    return None
  splits = {}
  for split_name in split_names:
    files = split_files(dataset_dir, split_name, found)
    splits[split_name] = {'num_samples': num_samples(split_name, files),
                          'num_shards': len(files), 'files': files}
  return {'name': imagenet.NAME, 'num_classes': imagenet.NUM_CLASSES, 'splits': splits,
          'available_splits': sorted(found), 'image_shape': 'variable', 'channels': 3,
          'encoding': 'jpeg', 'source': 'TF-Slim build_imagenet_data.py TFRecords',
          'lossy_source': False}
