"""The two metadata files of a converted dataset: labels.txt and dataset_info.json.

No TensorFlow here: the converter checks for a finished dataset before importing it.
"""
import json
import os
import re

from common import errors
from common import files

INFO_FILE = 'dataset_info.json'
LABELS_FILE = 'labels.txt'


def info_path(dataset_dir):
  return os.path.join(dataset_dir, INFO_FILE)


FIX = 'convert the dataset again with --overwrite'
ENCODINGS = ('png', 'jpeg', 'mixed')


def read_info(dataset_dir):
  """dataset_info.json as a dict, or None when the folder holds no finished dataset.

  What the readers use is checked here: anything else is one error naming the file.
  """
  path = info_path(dataset_dir)
  info = files.read_json(path, FIX)
  if info is not None:
    _check_info(info, path)
  return info


def _count(value, least):
  return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _check_info(info, path):
  def bad(what):
    raise errors.UserError('%s: %s; %s' % (path, what, FIX))
  for key, ok, expected in (
      ('name', lambda v: isinstance(v, str) and v, 'a name'),
      ('num_classes', lambda v: _count(v, 1), 'a whole number >= 1'),
      ('channels', lambda v: v in (1, 3), '1 or 3'),
      ('encoding', lambda v: v in ENCODINGS, ' or '.join(ENCODINGS)),
      ('image_shape', lambda v: v == 'variable' or (
          isinstance(v, list) and len(v) == 3 and all(_count(d, 1) for d in v)),
       '[height, width, channels] or "variable"'),
      ('splits', lambda v: isinstance(v, dict) and v, 'an object of splits')):
    if key not in info:
      bad('"%s" is missing' % key)
    if not ok(info[key]):
      bad('"%s" is %s, expected %s' % (key, json.dumps(info[key]), expected))
  for split, entry in info['splits'].items():
    for key, least in (('num_samples', 0), ('num_shards', 1)):
      value = entry.get(key) if isinstance(entry, dict) else None
      if not _count(value, least):
        bad('split "%s": "%s" is %s, expected a whole number >= %d'
            % (split, key, json.dumps(value), least))


def write_info(dataset_dir, info):
  text = json.dumps(info, indent=1)
  # Lists of numbers (class counts, image shape) on one line each.
  text = re.sub(r'\[\s+([-\d.,\s]+?)\s+\]',
                lambda m: '[%s]' % ' '.join(m.group(1).split()), text)
  files.write_text_atomic(info_path(dataset_dir), text + '\n')


def write_labels(dataset_dir, class_names):
  """'<id>:<name>' per line, as TF-Slim's dataset_utils.write_label_file."""
  text = ''.join('%d:%s\n' % (i, name) for i, name in enumerate(class_names))
  files.write_text_atomic(os.path.join(dataset_dir, LABELS_FILE), text)


def read_labels(dataset_dir):
  """labels.txt -> {id: name}; a line that is not '<id>:<name>' is one error naming it."""
  path = os.path.join(dataset_dir, LABELS_FILE)
  try:
    with open(path, encoding='utf-8') as f:
      lines = f.read().splitlines()
  except UnicodeDecodeError as e:
    raise errors.UserError('%s is not UTF-8 text (%s); %s' % (path, e.reason, FIX)) from e
  labels, first = {}, {}
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    index, colon, name = line.partition(':')
    index = index.strip()
    if not colon or not (index.isascii() and index.isdigit()):
      raise errors.UserError(
          "%s line %d: %s is not '<id>:<name>' (a whole-number id, e.g. '0:%s'); fix "
          "the line or %s" % (path, number, json.dumps(line, ensure_ascii=False), name or line, FIX))
    if int(index) in labels:
      raise errors.UserError('%s line %d: id %s again (first on line %d); %s'
                             % (path, number, index, first[int(index)], FIX))
    labels[int(index)], first[int(index)] = name, number
  return labels
