"""ImageNet (ILSVRC2012) from the folder a user downloaded -> 'train' and 'validation'.

Never downloaded here: the licence lets each user fetch it from image-net.org only.
The layout, found below --source through wrapper folders (Kaggle's ILSVRC/Data/CLS-LOC/):

  train/<wnid>/*.JPEG
  val/<wnid>/*.JPEG                 (already sorted into class folders), or
  val/*.JPEG + one ground truth:    LOC_val_solution.csv (Kaggle),
                                    imagenet_2012_validation_synset_labels.txt (TF-Slim),
                                    ILSVRC2012_validation_ground_truth.txt (devkit, 1-based
                                    ILSVRC2012 ids) with the devkit's meta.mat

Labels as TF-Slim's build_imagenet_data.py: 0 is the background class, 1..N the wnids
of train/ in sorted order (1..1000 for the whole set). Class names are the human names
of a synset file found with the data (synset_words.txt, LOC_synset_mapping.txt,
imagenet_metadata.txt: '<wnid> <name>' per line, or meta.mat), else the wnids.
"""
import collections
import os
import random
import re

from absl import logging

from common import errors
from datasets import image_tree
from datasets import plan

NAME = 'imagenet'
REMOTES = []
SOURCE_REQUIRED = ('--source is required for --dataset_name=imagenet: its licence does not '
                   'allow downloading it for you; download ILSVRC2012 from image-net.org '
                   'and pass --source=<folder with train/<wnid>/ and val/>')
BACKGROUND = 'background'
# TF-Slim's datasets/imagenet.py and build_imagenet_data.py.
NUM_CLASSES = 1001
SPLITS_TO_SIZES = {'train': 1281167, 'validation': 50000}
WNID = re.compile(r'^n\d{8}$')
IMAGE_EXTENSIONS = ('.jpeg', '.jpg', '.png')
VAL_FOLDERS = ('val', 'validation')
SEARCH_DEPTH = 3  # wrapper folders looked through, e.g. ILSVRC/Data/CLS-LOC/
KAGGLE_SOLUTION = 'LOC_val_solution.csv'
SLIM_VAL_LABELS = 'imagenet_2012_validation_synset_labels.txt'
DEVKIT_GROUND_TRUTH = 'ILSVRC2012_validation_ground_truth.txt'
DEVKIT_META = 'meta.mat'
SYNSET_FILES = ('synset_words.txt', 'LOC_synset_mapping.txt', 'imagenet_metadata.txt')
VAL_NAME = 'ILSVRC2012_val_%08d'  # line k of the devkit's and TF-Slim's files


def _hidden(name):
  return name.startswith('.') or name == '__MACOSX'


def _subdirs(path):
  return sorted(e.name for e in os.scandir(path) if e.is_dir() and not _hidden(e.name))


def _folders(source):
  """Folders from source down to SEARCH_DEPTH, breadth first, not into the splits."""
  queue = collections.deque([(0, source)])
  while queue:
    depth, path = queue.popleft()
    yield path
    if depth < SEARCH_DEPTH:
      queue.extend((depth + 1, os.path.join(path, d)) for d in _subdirs(path)
                   if d.lower() not in ('train', 'test') + VAL_FOLDERS)


def find_root(source):
  """The folder holding train/ (source or a wrapper below it)."""
  if not os.path.isdir(source):
    raise errors.UserError('--source=%s: expected a folder holding train/<wnid>/ (extract '
                           'ILSVRC2012_img_train.tar and its per-class tars first)' % source)
  for path in _folders(source):
    if os.path.isdir(os.path.join(path, 'train')):
      return path
  raise errors.UserError('--source=%s has no train/ folder; expected train/<wnid>/*.JPEG '
                         'and val/ (as downloaded from image-net.org)' % source)


def find_files(source, names):
  """{name: path} of the first file of each name found within SEARCH_DEPTH of source."""
  found = {}
  for path in _folders(source):
    for name in names:
      candidate = os.path.join(path, name)
      if name not in found and os.path.isfile(candidate):
        found[name] = candidate
  return found


def _read_lines(path):
  try:
    with open(path, encoding='utf-8') as f:
      return f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise errors.UserError('cannot read %s: %s'
                           % (path, getattr(e, 'strerror', None) or e)) from e


def _check_wnid(wnid, path, line_number):
  if not WNID.match(wnid):
    raise errors.UserError('%s line %d: %r is not a WordNet id (n + 8 digits)'
                           % (path, line_number, wnid))
  return wnid


def read_kaggle_solution(path):
  """LOC_val_solution.csv -> {image name: (wnid, line)}; the first box's wnid counts."""
  labels = {}
  for number, line in enumerate(_read_lines(path), 1):
    if number == 1 or not line.strip():
      continue  # header: ImageId,PredictionString
    image, _, boxes = line.partition(',')
    if not boxes.split():
      raise errors.UserError('%s line %d: expected "<ImageId>,<wnid> <box> ...", got %r'
                             % (path, number, line))
    labels[image.strip()] = (_check_wnid(boxes.split()[0], path, number), number)
  return labels


def read_slim_val_labels(path):
  """TF-Slim's imagenet_2012_validation_synset_labels.txt: line k = wnid of image k."""
  return {VAL_NAME % number: (_check_wnid(line.strip(), path, number), number)
          for number, line in enumerate(_read_lines(path), 1) if line.strip()}


def read_meta(path):
  """The devkit's meta.mat -> ({ILSVRC2012 id: wnid}, {wnid: human name})."""
  try:
    from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.UserError('%s: reading the devkit\'s meta.mat needs scipy (pip install '
                           'scipy), or use val/<wnid>/ folders or LOC_val_solution.csv'
                           % path) from e
  try:
    synsets = scipy_io.loadmat(path, squeeze_me=True)['synsets']
    rows = [(int(s['ILSVRC2012_ID']), str(s['WNID']), str(s['words'])) for s in synsets]
  except Exception as e:  # pylint: disable=broad-except  (loadmat raises many kinds)
    raise errors.UserError('%s is not the ILSVRC2012 devkit\'s meta.mat (synsets with '
                           'ILSVRC2012_ID, WNID, words): %s' % (path, e)) from e
  return ({i: wnid for i, wnid, _ in rows}, {wnid: words for _, wnid, words in rows})


def read_devkit_ground_truth(path, ids_to_wnids, meta_path):
  """ILSVRC2012_validation_ground_truth.txt: line k = ILSVRC2012 id of image k."""
  labels = {}
  for number, line in enumerate(_read_lines(path), 1):
    if not line.strip():
      continue
    if not line.strip().isdigit() or int(line) not in ids_to_wnids:
      raise errors.UserError('%s line %d: %r is not an ILSVRC2012 id of %s'
                             % (path, number, line.strip(), meta_path))
    labels[VAL_NAME % number] = (ids_to_wnids[int(line)], number)
  return labels


def read_synset_names(path):
  """'<wnid> <human name>' per line (synset_words.txt and the like) -> {wnid: name}."""
  names = {}
  for line in _read_lines(path):
    parts = line.strip().split(None, 1)
    if len(parts) == 2 and WNID.match(parts[0]):
      names[parts[0]] = parts[1].strip()
  return names


def _ground_truth(source):
  """(({image name: (wnid, line)}, path) or None, {wnid: human name}) from files in source.

  meta.mat is read (with scipy) only when it is needed: for the devkit's ground truth,
  or for the names when no synset text file is there.
  """
  found = find_files(source, (KAGGLE_SOLUTION, SLIM_VAL_LABELS, DEVKIT_GROUND_TRUTH,
                              DEVKIT_META) + SYNSET_FILES)
  synset_files = [found[name] for name in SYNSET_FILES if name in found]
  names = read_synset_names(synset_files[0]) if synset_files else {}
  truth = None
  if KAGGLE_SOLUTION in found:
    truth = read_kaggle_solution(found[KAGGLE_SOLUTION]), found[KAGGLE_SOLUTION]
  elif SLIM_VAL_LABELS in found:
    truth = read_slim_val_labels(found[SLIM_VAL_LABELS]), found[SLIM_VAL_LABELS]
  elif DEVKIT_GROUND_TRUTH in found:
    path = found[DEVKIT_GROUND_TRUTH]
    if DEVKIT_META not in found:
      raise errors.UserError('%s gives ILSVRC2012 ids, but no %s (from '
                             'ILSVRC2012_devkit_t12/data/) maps them to wnids; put it next '
                             'to the ground truth' % (path, DEVKIT_META))
    ids_to_wnids, meta_names = read_meta(found[DEVKIT_META])
    truth = read_devkit_ground_truth(path, ids_to_wnids, found[DEVKIT_META]), path
    names = names or meta_names
  elif DEVKIT_META in found and not names:
    try:
      names = read_meta(found[DEVKIT_META])[1]
    except errors.UserError as e:  # only the names are lost: the wnids stand in
      logging.warning('class names stay wnids: %s', e)
  return truth, names


def _is_image(name):
  return name.lower().endswith(IMAGE_EXTENSIONS) and not _hidden(name)


def train_items(root):
  """(sorted wnids, [(relative path, path, wnid)]) of train/<wnid>/ folders."""
  train = os.path.join(root, 'train')
  wnids = _subdirs(train)
  if not wnids:
    raise errors.UserError('%s has no <wnid>/ class folders (are its per-class .tar files '
                           'still to be extracted?)' % train)
  for wnid in wnids:
    if not WNID.match(wnid):
      raise errors.UserError('%s: %r is not a WordNet id (n + 8 digits); the imagenet '
                             'converter reads train/<wnid>/ (use --dataset_name=image_folder '
                             'for other class folders)' % (os.path.join(train, wnid), wnid))
  items = [('train/' + rel, path, rel.split('/')[0])
           for rel, path in image_tree.list_files(train) if '/' in rel]
  if not items:
    raise errors.UserError('%s: its %d <wnid>/ folders hold no files' % (train, len(wnids)))
  for wnid in set(wnids) - {wnid for _, _, wnid in items}:
    logging.warning('%s is empty', os.path.join(train, wnid))
  return wnids, items


def val_items(source, root, wnids, truth):
  """[(relative path, path, wnid)] of val/, from class folders or the ground truth."""
  folders = [os.path.join(root, d) for d in VAL_FOLDERS
             if os.path.isdir(os.path.join(root, d))]
  if not folders:
    return []
  val = folders[0]
  known = set(wnids)
  rel_val = os.path.basename(val)
  if _subdirs(val):  # val/<wnid>/
    items = [('%s/%s' % (rel_val, rel), path, rel.split('/')[0])
             for rel, path in image_tree.list_files(val) if '/' in rel]
    unknown = sorted({wnid for _, _, wnid in items} - known)
    if unknown:
      raise errors.UserError('%s: unknown wnid %r, there is no train/%s folder'
                             % (os.path.join(val, unknown[0]), unknown[0], unknown[0]))
    return items
  images = sorted(e.name for e in os.scandir(val) if e.is_file() and _is_image(e.name))
  if not images:
    return []
  if truth is None:
    raise errors.UserError('%s holds %d images but no ground truth was found under '
                           '--source=%s: expected %s, %s, or %s with %s (or val/<wnid>/ '
                           'folders)' % (val, len(images), source, KAGGLE_SOLUTION,
                                         SLIM_VAL_LABELS, DEVKIT_GROUND_TRUTH, DEVKIT_META))
  labels, truth_path = truth
  items = []
  for name in images:
    key = os.path.splitext(name)[0]
    if key not in labels:
      raise errors.UserError('%s has no label in %s'
                             % (os.path.join(val, name), truth_path))
    wnid, line = labels[key]
    if wnid not in known:
      raise errors.UserError('%s line %d: unknown wnid %r for %s, there is no train/%s '
                             'folder' % (truth_path, line, wnid, name, wnid))
    items.append(('%s/%s' % (rel_val, name), os.path.join(val, name), wnid))
  return items


def build_plan(source, seed=0, validation_size=None, verify_official=True):
  """The downloaded folder -> Plan: 'train' and (when val/ has images) 'validation'."""
  del validation_size, verify_official  # official splits; nothing downloaded to verify
  root = find_root(source)
  wnids, train = train_items(root)
  truth, human_names = _ground_truth(source)
  validation = val_items(source, root, wnids, truth)
  if not validation:
    logging.warning('%s has no val/ images: converting the train split only', root)
  label_of = {wnid: i + 1 for i, wnid in enumerate(wnids)}  # 0 is the background
  rng = random.Random(seed)
  splits = {}
  for split_name, items in (('train', train), ('validation', validation)):
    if items:
      splits[split_name] = image_tree.to_source(
          [(rel, path, label_of[wnid]) for rel, path, wnid in items], rng)
  class_names = [BACKGROUND] + [human_names.get(wnid, wnid) for wnid in wnids]
  return plan.Plan(name=NAME, class_names=class_names, splits=splits,
                   extra_info={'wnids': [None] + wnids})


# The 1000 classes' WordNet ids and names, shipped: TF-Slim downloaded them at run time.
CLASSES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'imagenet_classes.txt')


def readable_names(num_classes=NUM_CLASSES):
  """{label: name} of TF-Slim's labels (0 the background, 1..1000 the sorted wnids),
  as its create_readable_names_for_imagenet_labels(); a label past them is numbered."""
  with open(CLASSES_FILE, encoding='utf-8') as f:
    names = [line.rstrip('\n').split('\t', 1)[1] for line in f
             if not line.startswith('#')]
  table = dict(enumerate([BACKGROUND] + names))
  return {i: table.get(i, str(i)) for i in range(num_classes)}
