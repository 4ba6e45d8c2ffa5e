"""CIFAR-10 -> 'train' (50,000) and 'test' (10,000), labels in the official order.

Two kinds of source:
- the official cifar-10-python.tar.gz, or its extracted cifar-10-batches-py/ folder:
  data_batch_1..5 -> train and test_batch -> test, in their original order, stored as
  PNG 32x32x3 (lossless, pixel for pixel).
- class folders train/<class>/* and test/<class>/* (a folder or an archive), such as the
  JPEG copy in shared/datasets/cifar10. JPEG bytes are stored as they are: tf.data decodes
  them faster than PNG (about 14k vs 8k images/s on one core here), they are 2.5x smaller,
  and re-encoding cannot undo the loss. Such a dataset is marked lossy_source.
"""
import io
import os
import pickle
import random
import warnings

import numpy as np

from datasets import download
from datasets import image_tree
from datasets import plan

CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
               'ship', 'truck']
REMOTES = [download.Remote('cifar-10-python.tar.gz',
                           ('https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz',),
                           'md5', 'c58f30108f718f92721af3b95e74349a', 170498071)]
TRAIN_BATCHES = ['data_batch_%d' % i for i in range(1, 6)]
TEST_BATCH = 'test_batch'
IMAGE_SIZE = 32

# What the pickle of a numpy array needs: numpy.core before NumPy 2, numpy._core after.
NUMPY_GLOBALS = {('numpy.core.multiarray', '_reconstruct'),
                 ('numpy._core.multiarray', '_reconstruct'),
                 ('numpy', 'ndarray'), ('numpy', 'dtype')}


class BatchUnpickler(pickle.Unpickler):
  """Unpickles CIFAR-10 python batches, refusing every global but numpy's array parts.

  Loading a pickle may call any importable function it names; the batches need only
  numpy's array reconstruction, so anything else (os.system, builtins.eval, ...) is
  refused before it is even imported.
  """

  def find_class(self, module, name):
    if (module, name) not in NUMPY_GLOBALS:
      raise pickle.UnpicklingError('refusing global %s.%s' % (module, name))
    with warnings.catch_warnings():  # NumPy 2 warns about the numpy.core alias
      warnings.simplefilter('ignore', DeprecationWarning)
      return super().find_class(module, name)


def load_batch(data, name):
  """Pickled batch bytes -> (images uint8 [N, 32, 32, 3], labels int64 [N])."""
  try:
    batch = BatchUnpickler(io.BytesIO(data), encoding='bytes').load()
  except Exception as e:  # a damaged or hostile pickle can raise almost any type
    raise ValueError('%s is not a CIFAR-10 python batch: %s' % (name, e)) from e
  if not isinstance(batch, dict):
    raise ValueError('%s is not a CIFAR-10 python batch: holds a %s, not a dict'
                     % (name, type(batch).__name__))
  batch = {k.decode('latin1') if isinstance(k, bytes) else k: v for k, v in batch.items()}
  pixels, labels = batch.get('data'), np.asarray(batch.get('labels', []))
  size = IMAGE_SIZE * IMAGE_SIZE * 3
  if not (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 2
          and pixels.shape[1] == size):
    raise ValueError('%s: "data" is not a uint8 [N, %d] array' % (name, size))
  if labels.shape != (len(pixels),) or labels.dtype.kind not in 'iu' or (
      len(labels) and not 0 <= labels.min() <= labels.max() < len(CLASS_NAMES)):
    raise ValueError('%s: "labels" is not a list of %d labels in 0..9' % (name, len(pixels)))
  # Each row holds the red, then green, then blue 32x32 plane.
  images = pixels.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels.astype(np.int64)


def _read(payload):
  if isinstance(payload, bytes):
    return payload
  with open(payload, 'rb') as f:
    return f.read()


def _python_plan(batches, source):
  missing = [n for n in TRAIN_BATCHES + [TEST_BATCH] if n not in batches]
  if missing:
    raise ValueError('--source=%s lacks the CIFAR-10 batches %s' % (source, missing))
  loaded = {n: load_batch(_read(batches[n]), n) for n in TRAIN_BATCHES + [TEST_BATCH]}
  train = [loaded[n] for n in TRAIN_BATCHES]
  splits = {
      'train': plan.SplitSource(kind='array',
                                payloads=np.concatenate([images for images, _ in train]),
                                labels=np.concatenate([labels for _, labels in train])),
      'test': plan.SplitSource(kind='array', payloads=loaded[TEST_BATCH][0],
                               labels=loaded[TEST_BATCH][1]),
  }
  return plan.Plan(name='cifar10', class_names=list(CLASS_NAMES), splits=splits,
                   original_format='png')


def _tree_plan(files, source, seed):
  layout = image_tree.find_layout(files)
  if 'train' not in layout or 'test' not in layout:
    raise ValueError('--source=%s is neither cifar-10-python.tar.gz (data_batch_1..5, '
                     'test_batch) nor class folders train/<class>/ and test/<class>/'
                     % source)
  found = image_tree.class_names_of(layout)
  if sorted(found) != sorted(CLASS_NAMES):
    raise ValueError('--source=%s has class folders %s; expected the CIFAR-10 classes %s'
                     % (source, found, CLASS_NAMES))
  rng = random.Random(seed)
  splits = {split: image_tree.to_source(image_tree.labelled(layout[split], CLASS_NAMES), rng,
                                        expect_size=(IMAGE_SIZE, IMAGE_SIZE))
            for split in image_tree.SPLIT_ORDER if split in layout}
  return plan.Plan(name='cifar10', class_names=list(CLASS_NAMES), splits=splits,
                   original_format='png')


def build_plan(source, seed=0, validation_size=None, verify_official=True):
  """CIFAR-10 python batches or class folders (folder or archive) -> Plan.

  seed orders the records of class folders (the python batches keep their order);
  validation_size does not apply (official train/test split).
  """
  del validation_size
  if verify_official and os.path.isfile(source):
    download.check_local(source, REMOTES[0])
  files = image_tree.nonempty(image_tree.list_files(source), source)
  batch_names = set(TRAIN_BATCHES + [TEST_BATCH])
  batches = {path.rsplit('/', 1)[-1]: payload for path, payload in files
             if path.rsplit('/', 1)[-1] in batch_names}
  if batches:
    return _python_plan(batches, source)
  return _tree_plan(files, source, seed)
