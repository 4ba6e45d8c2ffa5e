"""download_and_convert_data: official files or local copies -> sharded TFRecords.

run() does the whole job in this order: check the flags; leave a finished dataset alone
(unless overwrite); plan the splits from --source before dataset_dir is touched; then,
holding dataset_dir's lock (one conversion at a time: common/locks.py), clear what an
earlier run left behind; download and verify the official files and plan from them
(without --source); write each split's shards; write labels.txt; write
dataset_info.json LAST, so its presence marks a complete dataset. A full disk stops it
in one line, leaving no shard that looks complete.
"""
import os
import re

from absl import logging

from common import errors
from common import locks
from datasets import cifar10
from datasets import dataset_info
from datasets import download
from datasets import flowers
from datasets import image_folder
from datasets import imagenet
from datasets import mnist
from datasets import tfrecords

DATASETS = {'cifar10': cifar10, 'mnist': mnist, 'flowers': flowers,
            'image_folder': image_folder, 'imagenet': imagenet}
# Fixed splits: --validation_size does not apply.
OFFICIAL_SPLITS = ('cifar10', 'mnist', 'imagenet')
NAME_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
# Temporary shards and metadata files a killed run may leave: '<file>.tmp-<pid>'.
TMP_PATTERN = re.compile(r'\.(tfrecord|json|txt)%s\d+$' % re.escape(tfrecords.TMP_MARK))


def _check_flags(dataset_name, dataset_dir, source, num_shards, validation_size,
                 num_workers, output_name):
  if dataset_name not in DATASETS:
    raise ValueError('--dataset_name=%r is not one of %s'
                     % (dataset_name, ', '.join(DATASETS)))
  if not dataset_dir:
    raise ValueError('--dataset_dir is required: the folder to write the TFRecords to')
  errors.check_output_dir('dataset_dir', dataset_dir)
  if output_name is not None and not NAME_PATTERN.match(output_name):
    raise ValueError('--output_name=%r: use letters, digits, "_", "-" and "." only'
                     % output_name)
  if num_shards is not None and num_shards < 1:
    raise ValueError('--num_shards=%d must be >= 1' % num_shards)
  if num_workers is not None and num_workers < 1:
    raise ValueError('--num_workers=%d must be >= 1' % num_workers)
  if validation_size is not None:
    if dataset_name in OFFICIAL_SPLITS:
      raise ValueError('--validation_size applies to flowers and image_folder; %s has an '
                       'official train/%s split' % (
                           dataset_name, 'validation' if dataset_name == 'imagenet' else 'test'))
    if validation_size < 0:
      raise ValueError('--validation_size=%g must be >= 0' % validation_size)
  module = DATASETS[dataset_name]
  if source is None and not module.REMOTES:
    raise ValueError(getattr(module, 'SOURCE_REQUIRED', None) or
                     '--source is required for --dataset_name=%s: a folder or archive of '
                     '<class>/<image> files' % dataset_name)
  if source is not None and ',' not in source and not os.path.exists(source):
    raise FileNotFoundError('--source=%s does not exist' % source)


def _prepare_dir(dataset_dir):
  try:
    os.makedirs(dataset_dir, exist_ok=True)
  except OSError as e:
    raise OSError('cannot create --dataset_dir=%s: %s' % (dataset_dir, e.strerror)) from e


def _remove_outputs(dataset_dir, names):
  """Deletes the metadata (first), the shards of names, and any temporary files."""
  for filename in (dataset_info.INFO_FILE, dataset_info.LABELS_FILE):
    path = os.path.join(dataset_dir, filename)
    if os.path.exists(path):
      os.remove(path)
  shard = re.compile(r'^(%s)_.+-\d{5}-of-\d{5}\.tfrecord$' % '|'.join(map(re.escape, names)))
  for filename in os.listdir(dataset_dir):
    if shard.match(filename) or TMP_PATTERN.search(filename):
      os.remove(os.path.join(dataset_dir, filename))
  download.remove_partial_downloads(dataset_dir)


def _summary(name, split_name, stats):
  classes = sum(1 for count in stats.class_counts if count)
  rate = stats.num_samples / max(stats.seconds, 1e-9)
  return ('%s %s: %d images in %d shards, %d classes, %d skipped, %.1f s, %.0f images/s'
          % (name, split_name, stats.num_samples, stats.num_shards, classes,
             len(stats.skipped), stats.seconds, rate))


def _info(name, plan, stats, source, seed):
  """The dataset_info.json dict (see docs/architecture.md)."""
  formats = set().union(*(s.formats for s in stats.values()))
  sizes = set().union(*(s.sizes for s in stats.values()))
  channels = max(set().union(*(s.channels for s in stats.values())))
  lossy = plan.original_format == 'png' and 'jpeg' in formats
  return {
      'name': name,
      'num_classes': len(plan.class_names),
      'splits': {split: {'num_samples': s.num_samples, 'num_shards': s.num_shards,
                         'class_counts': s.class_counts, 'skipped': len(s.skipped)}
                 for split, s in stats.items()},
      'image_shape': [*sizes.pop(), channels] if len(sizes) == 1 else 'variable',
      'channels': channels,
      'encoding': formats.pop() if len(formats) == 1 else 'mixed',
      'source': source,
      'lossy_source': lossy,
      'seed': seed,
      **(plan.extra_info or {}),
  }


def run(dataset_name, dataset_dir, source=None, num_shards=None, validation_size=None,
        seed=0, overwrite=False, num_workers=None, keep_download=False, output_name=None,
        progress=None):
  """Converts one dataset into dataset_dir -> its dataset_info dict.

  dataset_name: cifar10, mnist, flowers, image_folder or imagenet.
  source: a local archive or folder (mnist: also comma-separated idx files); None
    downloads the official files into dataset_dir and verifies their checksums
    (imagenet: a folder, required; it is never downloaded).
  num_shards: shards per split; None: 5 for flowers, else one per 10,000 images.
  validation_size: flowers/image_folder images held out, a count >= 1 or a fraction < 1.
  seed: orders the records of class-folder sources and picks the validation images.
  overwrite: rebuild a finished dataset; otherwise it is left alone and returned.
  num_workers: encoding processes (None: all cores).
  keep_download: keep the downloaded archive instead of deleting it when done.
  output_name: the file prefix and dataset name (default: dataset_name).
  progress: progress bars on stderr: True/False, or None for terminals only.

  Raises ValueError / OSError (FileNotFoundError, ...) with a one-line message naming
  the flag or file at fault.
  """
  _check_flags(dataset_name, dataset_dir, source, num_shards, validation_size, num_workers,
               output_name)
  module = DATASETS[dataset_name]
  name = output_name or dataset_name
  try:
    existing = dataset_info.read_info(dataset_dir)
  except errors.UserError:
    if not overwrite:
      raise  # its advice: --overwrite, which replaces it
    existing = None
  if existing and not overwrite:
    print('%s already holds the converted dataset %r; pass --overwrite to convert again.'
          % (dataset_dir, existing.get('name')))
    return existing
  stale = {name, existing['name']} if existing else {name}

  plan = None
  if source is not None:  # planned first: a bad source leaves dataset_dir untouched
    plan = module.build_plan(source, seed=seed, validation_size=validation_size)
  _prepare_dir(dataset_dir)
  with locks.exclusive(dataset_dir, '--dataset_dir', 'a conversion'):
    _remove_outputs(dataset_dir, stale)
    downloads = []
    if plan is not None:
      source_text = ','.join(os.path.abspath(p) for p in source.split(','))
    else:
      downloads = [download.fetch(remote, dataset_dir, progress=progress)
                   for remote in module.REMOTES]
      plan = module.build_plan(','.join(downloads), seed=seed,
                               validation_size=validation_size,
                               verify_official=False)  # fetch() has verified them
      source_text = 'downloaded ' + ', '.join(
          '%s (%s %s)' % (r.filename, r.algorithm, r.digest) for r in module.REMOTES)

    stats = {}
    total = sum(len(split) for split in plan.splits.values())
    with tfrecords.worker_pool(num_workers or os.cpu_count() or 1, total) as pool:
      for split_name, split in plan.splits.items():
        shards = (num_shards or plan.default_num_shards
                  or tfrecords.default_num_shards(len(split)))
        stats[split_name] = tfrecords.write_split(dataset_dir, name, split_name, split,
                                                  shards, len(plan.class_names), pool,
                                                  progress)
        print(_summary(name, split_name, stats[split_name]), flush=True)
    for split_name, split_stats in stats.items():
      if not split_stats.num_samples:
        raise ValueError('--source=%s: no usable image in the %s split (%d skipped)'
                         % (source, split_name, len(split_stats.skipped)))

    info = _info(name, plan, stats, source_text, seed)
    dataset_info.write_labels(dataset_dir, plan.class_names)
    dataset_info.write_info(dataset_dir, info)  # last: marks the dataset complete
    if not keep_download:
      for path in downloads:
        os.remove(path)
  if info['lossy_source']:
    logging.warning('%s holds JPEG images of %s, whose original data is lossless: accuracy '
                    'measured on it is not comparable to results on the original',
                    source, dataset_name)
  return info
