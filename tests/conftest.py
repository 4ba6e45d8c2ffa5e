"""Shared fixtures: tiny datasets in the official source formats, and converted copies.

Source fixtures build files the way the official downloads are laid out, without using
the project's converters (so they also test the parsers):
  mnist_source            the four idx .gz files, 64 train and 32 test 28x28 images
  cifar10_python_source   cifar-10-python.tar.gz with batches pickled as Python 2 did
  cifar10_jpeg_source     train/<class>/*.jpg, test/<class>/*.jpg as a .tar.gz
  flowers_source          flower_photos.tgz: flower_photos/<class>/*.jpg + LICENSE.txt
  image_folder_source     photos/<class>/ folders of 16x16 images in mixed formats (JPEG,
                          PNG, BMP, GIF, grayscale), 4 per class for cat, dog, fish, plus
                          a truncated JPEG, a text file, hidden files and a README
Each returns a TinySource: .path, and .splits {split: (images, labels)} where known.

For other parts' tests (training, evaluation), session-scoped converted datasets
(and train_config(train_dir, dataset_dir, **changes): the train flags' defaults for a
small seeded LeNet-on-MNIST run, for slimkit.train.run):
  tiny_mnist_dir   dataset_dir of a converted MNIST-like set (64 train / 32 test, 28x28x1)
  tiny_cifar_dir   dataset_dir of a converted CIFAR-10-like set (64 train / 32 test,
                   32x32x3, PNG, from the python batches)
Both are learnable in a few steps: in MNIST-like images class k is a bright vertical bar
at columns 2k+4..2k+5; in CIFAR-like images class k is a distinct flat colour, plus noise.
"""
import atexit
import dataclasses
import gzip
import io
import logging
import os
import pickle
import shutil
import struct
import tarfile
import tempfile

import numpy as np
from PIL import Image
import pytest

from datasets import cifar10

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Training measures conv gradient formulations (--conv_gradients=auto); the tests'
# decisions go to a directory of their own, shared with their subprocesses and
# xdist's workers, and removed by the process that made it.
if 'SLIMKIT_CACHE' not in os.environ:
  os.environ['SLIMKIT_CACHE'] = tempfile.mkdtemp(prefix='slimkit_test_cache_')
  atexit.register(shutil.rmtree, os.environ['SLIMKIT_CACHE'], True)

CIFAR_CLASSES = list(cifar10.CLASS_NAMES)
FLOWER_CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                    [128, 128, 0], [0, 0, 128]], np.int32)


@dataclasses.dataclass
class TinySource:
  path: str
  splits: dict = None  # split -> (images uint8 [N, H, W, C], labels int64 [N])


def balanced_labels(count, num_classes, seed):
  labels = np.arange(count) % num_classes
  return np.random.default_rng(seed).permutation(labels).astype(np.int64)


def mnist_like(count, seed):
  """uint8 [N, 28, 28, 1] and labels; class k: a bright bar at columns 2k+4, 2k+5."""
  rng = np.random.default_rng(seed)
  labels = balanced_labels(count, 10, seed)
  images = rng.integers(0, 60, (count, 28, 28, 1)).astype(np.uint8)
  for image, label in zip(images, labels):
    image[4:24, 2 * label + 4:2 * label + 6] = 255
  return images, labels


def cifar_like(count, seed):
  """uint8 [N, 32, 32, 3] and labels; class k: colour PALETTE[k] plus noise."""
  rng = np.random.default_rng(seed)
  labels = balanced_labels(count, 10, seed)
  noise = rng.integers(-30, 31, (count, 32, 32, 3))
  images = np.clip(PALETTE[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
  return images, labels


def idx_bytes(array, magic):
  """The MNIST idx format: big-endian magic and dimensions, then the bytes."""
  return struct.pack('>I', magic) + struct.pack('>%dI' % array.ndim, *array.shape) + \
      array.astype(np.uint8).tobytes()


def write_mnist(folder, splits):
  os.makedirs(folder, exist_ok=True)
  prefixes = {'train': 'train', 'test': 't10k'}
  for split, (images, labels) in splits.items():
    for part, array, magic in (('images-idx3', images[..., 0], 2051),
                               ('labels-idx1', labels, 2049)):
      path = os.path.join(folder, '%s-%s-ubyte.gz' % (prefixes[split], part))
      with open(path, 'wb') as f:
        f.write(gzip.compress(idx_bytes(array, magic), mtime=0))
  return folder


class Py2Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Pickles as Python 2 did for the official CIFAR-10 batches.

  str and bytes become Python 2 'str' opcodes (read back as bytes with
  encoding='bytes'), and numpy's reconstruct function is named numpy.core.multiarray.
  """
  dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def save_py2_str(self, obj):
    data = obj.encode('latin1') if isinstance(obj, str) else obj
    if len(data) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
    else:
      self.write(pickle.BINSTRING + struct.pack('<i', len(data)) + data)
    self.memoize(obj)

  dispatch[str] = save_py2_str
  dispatch[bytes] = save_py2_str

  def save_global(self, obj, name=None):
    module = obj.__module__.replace('numpy._core', 'numpy.core')
    self.write(pickle.GLOBAL + ('%s\n%s\n' % (module, name or obj.__name__)).encode('ascii'))
    self.memoize(obj)


def py2_pickle(obj):
  buffer = io.BytesIO()
  Py2Pickler(buffer, protocol=2).dump(obj)
  return buffer.getvalue()


def cifar_batch(images, labels, batch_label):
  """A batch dict as in the official files: rows of R, G, B planes."""
  rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
  return {'batch_label': batch_label, 'labels': [int(v) for v in labels], 'data': rows,
          'filenames': ['image_%05d.png' % i for i in range(len(images))]}


def add_file(tar, name, data):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def write_cifar_python(path, train, test):
  """cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_1..5, test_batch, meta."""
  images, labels = train
  with tarfile.open(path, 'w:gz') as tar:
    for i, part in enumerate(np.array_split(np.arange(len(images)), 5)):
      batch = cifar_batch(images[part], labels[part], 'training batch %d of 5' % (i + 1))
      add_file(tar, 'cifar-10-batches-py/data_batch_%d' % (i + 1), py2_pickle(batch))
    add_file(tar, 'cifar-10-batches-py/test_batch',
             py2_pickle(cifar_batch(*test, 'testing batch 1 of 1')))
    add_file(tar, 'cifar-10-batches-py/batches.meta', py2_pickle(
        {'label_names': CIFAR_CLASSES, 'num_cases_per_batch': 10000, 'num_vis': 3072}))
    add_file(tar, 'cifar-10-batches-py/readme.html', b'<html></html>')
  return path


def encode_image(array, fmt, **options):
  buffer = io.BytesIO()
  Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(
      buffer, fmt, **options)
  return buffer.getvalue()


@pytest.fixture(scope='session')
def mnist_source(tmp_path_factory):
  splits = {'train': mnist_like(64, seed=1), 'test': mnist_like(32, seed=2)}
  return TinySource(write_mnist(str(tmp_path_factory.mktemp('mnist_source')), splits), splits)


@pytest.fixture(scope='session')
def cifar10_python_source(tmp_path_factory):
  splits = {'train': cifar_like(64, seed=3), 'test': cifar_like(32, seed=4)}
  path = os.path.join(tmp_path_factory.mktemp('cifar_source'), 'cifar-10-python.tar.gz')
  return TinySource(write_cifar_python(path, splits['train'], splits['test']), splits)


@pytest.fixture(scope='session')
def cifar10_jpeg_source(tmp_path_factory):
  """Class folders of JPEGs: 3 per class in train/, 1 per class in test/."""
  splits = {'train': cifar_like(30, seed=5), 'test': cifar_like(10, seed=6)}
  path = os.path.join(tmp_path_factory.mktemp('cifar_jpeg'), 'cifar10-jpg.tar.gz')
  with tarfile.open(path, 'w:gz') as tar:
    for split, (images, labels) in splits.items():
      for i, (image, label) in enumerate(zip(images, labels)):
        add_file(tar, '%s/%s/%04d.jpg' % (split, CIFAR_CLASSES[label], i),
                 encode_image(image, 'JPEG', quality=75))
  return TinySource(path, splits)


@pytest.fixture(scope='session')
def flowers_source(tmp_path_factory):
  """flower_photos.tgz: 6 JPEGs of varying sizes per class, and a LICENSE.txt."""
  rng = np.random.default_rng(7)
  path = os.path.join(tmp_path_factory.mktemp('flowers'), 'flower_photos.tgz')
  with tarfile.open(path, 'w:gz') as tar:
    add_file(tar, 'flower_photos/LICENSE.txt', b'All photos are licensed under CC-BY.\n')
    for label, name in enumerate(FLOWER_CLASSES):
      for i in range(6):
        height, width = 24 + 4 * i, 40 - 2 * label
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        add_file(tar, 'flower_photos/%s/%d_%d.jpg' % (name, label, i),
                 encode_image(image, 'JPEG'))
  return TinySource(path)


def _write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


@pytest.fixture(scope='session')
def image_folder_source(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('image_folder') / 'photos')
  rng = np.random.default_rng(8)
  rgb = lambda size=(16, 16): rng.integers(0, 256, (*size, 3)).astype(np.uint8)
  files = {}
  for i in range(4):
    files['cat/%d.jpg' % i] = encode_image(rgb(), 'JPEG')
    files['dog/%d.png' % i] = encode_image(rgb(), 'PNG')
  files['fish/a.bmp'] = encode_image(rgb(), 'BMP')
  files['fish/b.gif'] = encode_image(rgb(), 'GIF')
  files['fish/deep/c.png'] = encode_image(rgb()[:, :, :1], 'PNG')
  files['fish/d.jpeg'] = encode_image(rgb(), 'JPEG')
  whole = encode_image(rgb((64, 64)), 'JPEG')
  files['cat/broken.jpg'] = whole[:len(whole) // 2]
  files['dog/notes.txt'] = b'not an image'
  files['dog/.DS_Store'] = b'\0\0\0\1Bud1'
  files['.hidden/x.jpg'] = encode_image(rgb(), 'JPEG')
  files['README.md'] = b'# my photos'
  for name, data in files.items():
    _write(os.path.join(root, name), data)
  return TinySource(root)


class AbslLog(logging.Handler):
  """The messages absl's logger emits at INFO and above, while installed."""

  def __init__(self):
    super().__init__(logging.INFO)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())

  def clear(self):
    self.messages = []


@pytest.fixture
def absl_log():
  """Listens on absl's own logger at INFO: caplog can miss it, since other tests in
  the process may stop it propagating or raise its level (absl's --verbosity)."""
  handler = AbslLog()
  absl_logger = logging.getLogger('absl')
  level = absl_logger.level
  absl_logger.addHandler(handler)
  absl_logger.setLevel(logging.INFO)
  try:
    yield handler
  finally:
    absl_logger.removeHandler(handler)
    absl_logger.setLevel(level)


def train_config(train_dir, dataset_dir, **changes):
  """The train flags' defaults with a small, fast, seeded LeNet-on-MNIST run."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from slimkit import flags as slim_flags  # pylint: disable=g-import-not-at-top
  slim_flags.define_train_flags()
  config = slim_flags.defaults(flags.FLAGS)
  config.update(dataset_name='mnist', dataset_dir=dataset_dir, model_name='lenet',
                train_dir=str(train_dir), batch_size=16, optimizer='momentum',
                learning_rate=0.01, learning_rate_decay_type='fixed', weight_decay=0.0,
                log_every_n_steps=4, random_seed=1, num_readers=1,
                num_preprocessing_threads=2)
  config.update(changes)
  return config


def eval_config(checkpoint_path, dataset_dir, eval_dir, **changes):
  """evaluate.run's dict for a LeNet checkpoint on the tiny MNIST test split (the
  eval flags' defaults fill the rest)."""
  config = {'checkpoint_path': str(checkpoint_path), 'eval_dir': str(eval_dir),
            'dataset_dir': dataset_dir, 'dataset_name': 'mnist',
            'dataset_split_name': 'test', 'model_name': 'lenet', 'batch_size': 16,
            'explicit_flags': []}
  config.update(changes)
  return config


def _convert(dataset_name, source, dataset_dir):
  from datasets import convert  # pylint: disable=g-import-not-at-top
  convert.run(dataset_name, dataset_dir, source=source, progress=False)
  return dataset_dir


@pytest.fixture(scope='session')
def tiny_mnist_dir(tmp_path_factory, mnist_source):
  """A converted MNIST-like dataset: 64 train / 32 test PNG 28x28x1, 10 classes."""
  return _convert('mnist', mnist_source.path, str(tmp_path_factory.mktemp('tiny_mnist')))


@pytest.fixture(scope='session')
def tiny_cifar_dir(tmp_path_factory, cifar10_python_source):
  """A converted CIFAR-10-like dataset: 64 train / 32 test PNG 32x32x3, 10 classes."""
  return _convert('cifar10', cifar10_python_source.path,
                  str(tmp_path_factory.mktemp('tiny_cifar')))
