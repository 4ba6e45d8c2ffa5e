"""Class-folder image trees ('<class>/<image>', optionally under split folders).

Used by flowers, image_folder and CIFAR-10's class-folder copies. A source is a folder or
an archive; its layout is read from the paths alone:

  [wrapper/]<class>/<image>                 one pool, split into train/validation
  [wrapper/]<split>/<class>/<image>         split = train, validation (or val), test

A single wrapper folder such as 'flower_photos/' is looked through. Files anywhere below
a class folder belong to it; loose files (LICENSE.txt) and hidden entries are ignored.
"""
import collections
import math
import os
import random

import numpy as np

from datasets import archive
from datasets import plan

SPLIT_FOLDERS = {'train': 'train', 'validation': 'validation', 'val': 'validation',
                 'valid': 'validation', 'test': 'test'}
SPLIT_ORDER = ('train', 'validation', 'test')


def _hidden(part):
  return part.startswith('.') or part == '__MACOSX'


def _walk(root):
  def fail(error):
    raise OSError('cannot read --source=%s: %s: %s' % (root, error.filename, error.strerror))
  files = []
  for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
    dirnames[:] = [d for d in dirnames if not _hidden(d)]
    for filename in filenames:
      path = os.path.join(dirpath, filename)
      files.append((os.path.relpath(path, root).replace(os.sep, '/'), path))
  return sorted(files)


def list_files(source):
  """--source folder or archive -> sorted [(relative path, payload)].

  payload is the file's path for a folder and its bytes for an archive.
  """
  if os.path.isdir(source):
    return _walk(source)
  if not os.path.exists(source):
    raise FileNotFoundError('--source=%s does not exist' % source)
  try:
    with open(source, 'rb'):
      pass
  except OSError as e:
    raise OSError('cannot read --source=%s: %s' % (source, e.strerror)) from e
  if not archive.is_archive(source):
    raise ValueError('--source=%s is neither a folder nor a .tar, .tar.gz, .tgz or .zip '
                     'archive' % source)
  return archive.read_members(source)


def nonempty(files, source):
  if not files:
    raise ValueError('--source=%s is empty; expected <class>/<image> files' % source)
  return files


def find_layout(files):
  """[(relative path, payload)] -> {split or None: {class name: [(path, payload)]}}.

  The key is None for a tree without split folders.
  """
  entries = [(path.split('/'), path, payload) for path, payload in files
             if not any(_hidden(part) for part in path.split('/'))]
  while True:  # look through single wrapper folders such as flower_photos/
    tops = {parts[0] for parts, _, _ in entries if len(parts) > 1}
    if len(tops) != 1 or tops.pop().lower() in SPLIT_FOLDERS:
      break
    if not any(len(parts) > 2 for parts, _, _ in entries):
      break  # the one folder holds images: it is a class, not a wrapper
    entries = [(parts[1:], path, payload) for parts, path, payload in entries
               if len(parts) > 1]
  tops = {parts[0] for parts, _, _ in entries if len(parts) > 1}
  layout = collections.defaultdict(lambda: collections.defaultdict(list))
  if tops and all(top.lower() in SPLIT_FOLDERS for top in tops):
    for parts, path, payload in entries:
      if len(parts) > 2:
        layout[SPLIT_FOLDERS[parts[0].lower()]][parts[1]].append((path, payload))
  else:
    for parts, path, payload in entries:
      if len(parts) > 1:
        layout[None][parts[0]].append((path, payload))
  return {split: dict(classes) for split, classes in layout.items()}


def class_names_of(layout):
  """Sorted class folder names over all splits."""
  return sorted({name for classes in layout.values() for name in classes})


def labelled(classes, class_names):
  """{class: [(path, payload)]} -> [(path, payload, label)] sorted by path."""
  items = [(path, payload, class_names.index(name))
           for name, members in classes.items() for path, payload in members]
  return sorted(items, key=lambda item: item[0])


def to_source(items, rng, expect_size=None):
  """[(path, payload, label)] -> SplitSource in a seeded random order.

  Class folders list images class by class; shuffling once here means every shard, and
  every stretch of a shard, mixes the classes.
  """
  items = list(items)
  rng.shuffle(items)
  return plan.SplitSource(kind='file', payloads=[payload for _, payload, _ in items],
                          labels=np.array([label for _, _, label in items], np.int64),
                          names=[path for path, _, _ in items], expect_size=expect_size)


def validation_count(validation_size, num_images):
  """--validation_size (a count >= 1, or a fraction below 1) -> number of images."""
  if validation_size < 0:
    raise ValueError('--validation_size=%g must be >= 0' % validation_size)
  if 0 < validation_size < 1:
    count = max(1, round(validation_size * num_images))
  elif validation_size != int(validation_size):
    raise ValueError('--validation_size=%g: use a whole count >= 1 or a fraction below 1'
                     % validation_size)
  else:
    count = int(validation_size)
  if count >= num_images:
    raise ValueError('--validation_size=%g leaves no training images (%d images in total)'
                     % (validation_size, num_images))
  return count


def split_validation(items, count, rng):
  """[(path, payload, label)] -> (train items, validation items), stratified by class.

  Each class gives count * (its share of the images) to validation, rounded by largest
  remainder so the total is exactly count.
  """
  by_class = collections.defaultdict(list)
  for item in items:
    by_class[item[2]].append(item)
  quotas = {label: count * len(members) / len(items) for label, members in by_class.items()}
  taken = {label: math.floor(quota) for label, quota in quotas.items()}
  by_remainder = sorted(quotas, key=lambda label: (taken[label] - quotas[label], label))
  for label in by_remainder[:count - sum(taken.values())]:
    taken[label] += 1
  train, validation = [], []
  for label in sorted(by_class):
    members = by_class[label]
    rng.shuffle(members)
    validation.extend(members[:taken[label]])
    train.extend(members[taken[label]:])
  return train, validation


def build_plan(name, source, seed, validation_size, default_validation_fraction,
               default_num_shards=None):
  """Folder or archive of class folders -> Plan (flowers, image_folder).

  Without split folders, validation_size (default: default_validation_fraction) images
  go to 'validation'. With split folders they are used as they are; validation_size
  then carves a validation split out of train/ when there is no validation folder.
  """
  layout = find_layout(nonempty(list_files(source), source))
  class_names = class_names_of(layout)
  if len(class_names) < 2:
    raise ValueError('--source=%s: found %d class folder(s) %s; expected <class>/<image> '
                     'folders for at least 2 classes' % (source, len(class_names), class_names))
  rng = random.Random(seed)
  pools = {split: labelled(classes, class_names) for split, classes in layout.items()}
  if None in pools:
    pools = {'train': pools.pop(None)}
    if validation_size is None:
      validation_size = default_validation_fraction
  if validation_size:
    if 'validation' in pools:
      raise ValueError('--validation_size=%g: %s already has a validation folder'
                       % (validation_size, source))
    if 'train' not in pools:
      raise ValueError('--source=%s has split folders %s but no train folder'
                       % (source, sorted(pools)))
    count = validation_count(validation_size, len(pools['train']))
    pools['train'], pools['validation'] = split_validation(pools['train'], count, rng)
  splits = {split: to_source(pools[split], rng) for split in SPLIT_ORDER if split in pools}
  for split, split_source in splits.items():
    if not len(split_source):
      raise ValueError('--source=%s: no files in the %s class folders' % (source, split))
  return plan.Plan(name=name, class_names=class_names, splits=splits,
                   default_num_shards=default_num_shards)
