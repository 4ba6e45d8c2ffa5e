"""MNIST: the four official idx files -> 'train' (60,000) and 'test' (10,000), PNG 28x28x1.

An idx file is a big-endian header (magic 2051 for images: count, rows, cols; 2049 for
labels: count) followed by unsigned bytes; the official files are gzipped.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from datasets import download
from datasets import plan

# TF-Slim's list had 'size' for six.
CLASS_NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
MIRRORS = ('https://storage.googleapis.com/cvdf-datasets/mnist/',
           'https://ossci-datasets.s3.amazonaws.com/mnist/',
           'http://yann.lecun.com/exdb/mnist/')
# (split, part) -> the official file: name, sha256, bytes (see shared/datasets/SOURCES.md).
OFFICIAL = {
    ('train', 'images'): ('train-images-idx3-ubyte.gz', '440fcabf73cc546fa21475e81ea37026'
                          '5605f56be210a4024d2ca8f203523609', 9912422),
    ('train', 'labels'): ('train-labels-idx1-ubyte.gz', '3552534a0a558bbed6aed32b30c495cc'
                          'a23d567ec52cac8be1a0730e8010255c', 28881),
    ('test', 'images'): ('t10k-images-idx3-ubyte.gz', '8d422c7b0a1c1c79245a5bcf07fe86e3'
                         '3eeafee792b84584aec276f5a2dbc4e6', 1648877),
    ('test', 'labels'): ('t10k-labels-idx1-ubyte.gz', 'f7ae60f92e00ec6debd23a6088c31dbd'
                         '2371eca3ffa0defaefb259924204aec6', 4542),
}
REMOTE_BY_KEY = {
    key: download.Remote(name, tuple(m + name for m in MIRRORS), 'sha256', digest, size)
    for key, (name, digest, size) in OFFICIAL.items()}
REMOTES = list(REMOTE_BY_KEY.values())


def parse_idx(data, magic, name):
  """idx file bytes -> uint8 array with the header's dimensions.

  Raises ValueError naming the file for a wrong magic number or a size that does not
  match the header.
  """
  if len(data) < 4:
    raise ValueError('%s is too short to be an idx file' % name)
  found = struct.unpack('>I', data[:4])[0]
  if found != magic:
    raise ValueError('%s: idx magic number %d, expected %d (%s)'
                     % (name, found, magic, 'images' if magic == IMAGES_MAGIC else 'labels'))
  ndim = data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise ValueError('%s: truncated idx header' % name)
  dims = struct.unpack('>%dI' % ndim, data[4:header])
  expected = header + int(np.prod(dims))
  if len(data) != expected:
    raise ValueError('%s: %d bytes, but its idx header %s needs %d'
                     % (name, len(data), list(dims), expected))
  return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read_idx(path, magic):
  """An idx file, gzipped or not (told apart by content, not name) -> uint8 array."""
  with open(path, 'rb') as f:
    data = f.read()
  if data[:2] == b'\x1f\x8b':
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      raise ValueError('%s is a damaged gzip file: %s' % (path, e)) from e
  return parse_idx(data, magic, path)


def _matches(filename, key):
  """'train-images-idx3-ubyte.gz', '...-idx3-ubyte' or 'train-images.idx3-ubyte'."""
  stem = OFFICIAL[key][0].split('-idx')[0]
  return filename.startswith((stem + '-idx', stem + '.idx'))


def find_files(source):
  """--source (a folder or comma-separated files) -> {(split, part): path}."""
  if os.path.isdir(source):
    try:
      paths = [os.path.join(source, f) for f in sorted(os.listdir(source))]
    except OSError as e:
      raise OSError('cannot read --source=%s: %s' % (source, e.strerror)) from e
    if not paths:
      raise ValueError('--source=%s is empty; expected the four MNIST idx files' % source)
  else:
    paths = [p for p in source.split(',') if p]
    for path in paths:
      if not os.path.isfile(path):
        raise FileNotFoundError('--source: %s does not exist' % path)
  found = {}
  for key in OFFICIAL:
    matches = [p for p in paths if _matches(os.path.basename(p), key)]
    if not matches:
      raise FileNotFoundError('--source=%s has no %s (expected the four MNIST files %s)'
                              % (source, OFFICIAL[key][0],
                                 ', '.join(name for name, _, _ in OFFICIAL.values())))
    found[key] = matches[0]
  return found


def load(paths):
  """{(split, part): path} -> {split: (images uint8 [N, 28, 28, 1], labels int64 [N])}."""
  splits = {}
  for split in ('train', 'test'):
    images = read_idx(paths[split, 'images'], IMAGES_MAGIC)
    labels = read_idx(paths[split, 'labels'], LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
      raise ValueError('%s holds %d images but %s holds %d labels'
                       % (paths[split, 'images'], len(images), paths[split, 'labels'],
                          len(labels)))
    if len(labels) and labels.max() >= len(CLASS_NAMES):
      raise ValueError('%s: label %d is out of range 0..9'
                       % (paths[split, 'labels'], labels.max()))
    splits[split] = (images[..., None], labels)
  return splits


def build_plan(source, seed=0, validation_size=None, verify_official=True):
  """MNIST idx files -> Plan. seed and validation_size do not apply (fixed official split)."""
  del seed, validation_size
  paths = find_files(source)
  if verify_official:
    for key, path in paths.items():
      download.check_local(path, REMOTE_BY_KEY[key])
  splits = {split: plan.SplitSource(kind='array', payloads=images, labels=labels)
            for split, (images, labels) in load(paths).items()}
  return plan.Plan(name='mnist', class_names=list(CLASS_NAMES), splits=splits,
                   original_format='png')
