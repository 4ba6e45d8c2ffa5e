"""The two metadata files of a converted dataset: labels.txt and dataset_info.json.

No TensorFlow here: the converter checks for a finished dataset before importing it.
"""
import json
import os
import re

from common import files

INFO_FILE = 'dataset_info.json'
LABELS_FILE = 'labels.txt'


def info_path(dataset_dir):
  return os.path.join(dataset_dir, INFO_FILE)


def read_info(dataset_dir):
  """dataset_info.json as a dict, or None when the folder holds no finished dataset."""
  return files.read_json(info_path(dataset_dir),
                              'convert the dataset again with --overwrite')


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
  """labels.txt -> {id: name}."""
  labels = {}
  with open(os.path.join(dataset_dir, LABELS_FILE)) as f:
    for line in f:
      if line.strip():
        index, name = line.rstrip('\n').split(':', 1)
        labels[int(index)] = name
  return labels
