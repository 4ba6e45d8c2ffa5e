"""Input pipeline throughput against training throughput, on this machine.

For each row (dataset, preprocessing, net) it measures, one after the other:
  input  images/s of slimkit.inputs.build_input in training mode (unseeded, the
         fast mode, unless --seed), after the first batch (which includes filling
         the shuffle buffer and, for CIFAR-10, the decoded-image cache);
  train  images/s of a plain float32 SGD step (tf.function) of the net built by
         nets.nets_factory.build_model, on a fixed batch of the same shape;
and prints input / train. Target: >= 3 for every row, so that the pipeline needs at
most a third of the CPU that training uses.

Data: --cifar_dir and --flowers_dir are converted dataset directories
(download_and_convert_data.py). When one is not given, the shared copies in
/work/shared/datasets are converted into --work_dir with download_and_convert_data.py
or, with --quick, by a small converter here (a 5000-image CIFAR-10 subset, same
layout), which takes seconds.

  python3 benchmarks/input_bench.py                     # full run
  python3 benchmarks/input_bench.py --quick             # smoke run, a few minutes
"""

import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import inputs

SHARED = '/work/shared/datasets'
CIFAR_TAR = os.path.join(SHARED, 'cifar10', 'cifar10-jpg.tar.gz')
FLOWERS_TGZ = os.path.join(SHARED, 'flowers', 'flower_photos_sample.tgz')
DIR_FLAGS = {'cifar10': 'cifar_dir', 'flowers': 'flowers_dir'}
CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
                 'horse', 'ship', 'truck')

# (dataset, split, preprocessing, net, image size, batch size)
ROWS = (
    ('cifar10', 'train', 'cifar', 'cifarnet', 32, 128),
    ('cifar10', 'train', 'cifar', 'custom_cnn', 32, 128),
    ('cifar10', 'train', 'cifarnet', 'cifarnet', 32, 128),
    ('flowers', 'train', 'inception', 'inception_v1', 224, 32),
    ('flowers', 'train', 'inception', 'mobilenet_v1', 224, 32),
    ('flowers', 'train', 'vgg', 'resnet_v1_50', 224, 32),
)

FLAGS = flags.FLAGS
flags.DEFINE_string('cifar_dir', None, 'Converted CIFAR-10 directory.')
flags.DEFINE_string('flowers_dir', None, 'Converted flowers directory.')
flags.DEFINE_string('work_dir', None,
                    'Where to convert the shared datasets when a *_dir is not given '
                    '(default: a new temporary directory, kept for reuse).')
flags.DEFINE_bool('quick', False,
                  'Smoke run: 5000 CIFAR-10 images converted here, batches of at most '
                  '64 (32 px) and 8 (224 px), one short window per measurement.')
flags.DEFINE_float('input_seconds', 10.0, 'Seconds per input measurement window.')
flags.DEFINE_integer('train_steps', 20, 'Timed SGD steps per training window.')
flags.DEFINE_integer('repeats', 3, 'Measurement windows per row (mean +- std).')
flags.DEFINE_integer('seed', None,
                     'Measure the seeded, deterministic pipeline (default: the fast '
                     'unseeded one).')
flags.DEFINE_list('rows', None, 'Only these rows, as preprocessing:net '
                  '(e.g. cifar:cifarnet,vgg:resnet_v1_50).')
flags.DEFINE_integer('cifar_images', 5000,
                     'With --quick: CIFAR-10 training images to convert.', lower_bound=1)


# ---------------------------------------------------------------- data

def _write_shards(out_dir, name, split_name, records, num_shards):
  """records: list of (encoded bytes, format, label, height, width)."""
  def feature(value):
    if isinstance(value, bytes):
      return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
  per_shard = -(-len(records) // num_shards)
  for shard in range(num_shards):
    path = os.path.join(out_dir, '%s_%s-%05d-of-%05d.tfrecord'
                        % (name, split_name, shard, num_shards))
    with tf.io.TFRecordWriter(path) as writer:
      for encoded, fmt, label, height, width in records[shard * per_shard:
                                                        (shard + 1) * per_shard]:
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            'image/encoded': feature(encoded), 'image/format': feature(fmt),
            'image/class/label': feature(label), 'image/height': feature(height),
            'image/width': feature(width)})).SerializeToString())


def _write_info(out_dir, name, classes, split_name, records, num_shards, image_shape,
                encoding, source):
  counts = np.bincount([r[2] for r in records], minlength=len(classes)).tolist()
  info = {'name': name, 'num_classes': len(classes),
          'splits': {split_name: {'num_samples': len(records),
                                  'num_shards': num_shards, 'class_counts': counts}},
          'image_shape': image_shape, 'channels': 3, 'encoding': encoding,
          'source': source, 'lossy_source': True}
  with open(os.path.join(out_dir, 'dataset_info.json'), 'w') as f:
    json.dump(info, f, indent=1)
  with open(os.path.join(out_dir, 'labels.txt'), 'w') as f:
    f.writelines('%d:%s\n' % (i, c) for i, c in enumerate(classes))


def _convert_cifar_here(out_dir, max_images):
  """The training split of the shared CIFAR-10 JPEG copy, re-encoded as PNG."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  records = []
  with tarfile.open(CIFAR_TAR) as tar:
    for member in tar:
      parts = member.name.split('/')
      if not member.isfile() or parts[-3:-2] != ['train']:
        continue
      image = Image.open(tar.extractfile(member)).convert('RGB')
      png = io.BytesIO()
      image.save(png, format='PNG')
      records.append((png.getvalue(), b'png', CIFAR_CLASSES.index(parts[-2]), 32, 32))
  np.random.default_rng(0).shuffle(records)
  records = records[:max_images]
  _write_shards(out_dir, 'cifar10', 'train', records, 5)
  _write_info(out_dir, 'cifar10', CIFAR_CLASSES, 'train', records, 5, [32, 32, 3],
              'png', CIFAR_TAR)


def _convert_flowers_here(out_dir):
  """All photos of the shared flowers sample as one training split (JPEG kept)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  items = []
  with tarfile.open(FLOWERS_TGZ) as tar:
    for member in tar:
      parts = member.name.split('/')
      if member.isfile() and member.name.lower().endswith('.jpg'):
        items.append((parts[-2], tar.extractfile(member).read()))
  classes = sorted({c for c, _ in items})
  records = []
  for cls, data in items:
    width, height = Image.open(io.BytesIO(data)).size
    records.append((data, b'jpeg', classes.index(cls), height, width))
  np.random.default_rng(0).shuffle(records)
  _write_shards(out_dir, 'flowers', 'train', records, 5)
  _write_info(out_dir, 'flowers', classes, 'train', records, 5, 'variable', 'jpeg',
              FLOWERS_TGZ)


def prepare(name, given_dir, work_dir):
  """A converted dataset directory for `name`: the given one, or a fresh copy."""
  if given_dir:
    if not os.path.exists(os.path.join(given_dir, 'dataset_info.json')):
      raise FileNotFoundError('--%s=%s: no dataset_info.json (expected a directory '
                              'written by download_and_convert_data.py)'
                              % (DIR_FLAGS[name], given_dir))
    return given_dir
  out_dir = os.path.join(work_dir, name)
  if os.path.exists(os.path.join(out_dir, 'dataset_info.json')):
    return out_dir
  os.makedirs(out_dir, exist_ok=True)
  start = time.time()
  if not FLAGS.quick:
    source = CIFAR_TAR if name == 'cifar10' else FLOWERS_TGZ
    script = os.path.join(ROOT, 'download_and_convert_data.py')
    done = subprocess.run([sys.executable, script, '--dataset_name=%s' % name,
                           '--dataset_dir=%s' % out_dir, '--source=%s' % source],
                          check=False, cwd=ROOT)
    if done.returncode:
      raise RuntimeError('download_and_convert_data.py failed on %s (exit %d); or '
                         'pass --%s' % (source, done.returncode, DIR_FLAGS[name]))
  elif name == 'cifar10':
    _convert_cifar_here(out_dir, FLAGS.cifar_images)
  else:
    _convert_flowers_here(out_dir)
  print('converted %s into %s in %.0f s' % (name, out_dir, time.time() - start))
  return out_dir


def get_split(dataset_dir, name, split_name):
  from datasets import dataset_factory  # pylint: disable=g-import-not-at-top
  return dataset_factory.get_split(name, split_name, dataset_dir)


# ---------------------------------------------------------------- timing

def input_throughput(split, preprocessing, size, batch_size):
  """(images/s mean, std, seconds to the first batch) of the training pipeline."""
  fn = preprocessing_factory.get_preprocessing(preprocessing, is_training=True)
  dataset = inputs.build_input(split, fn, batch_size, is_training=True,
                               image_size=size, seed=FLAGS.seed)
  iterator = iter(dataset)
  start = time.perf_counter()
  next(iterator)
  first = time.perf_counter() - start
  for _ in range(3):  # let tf.data's autotuning settle
    next(iterator)
  rates = []
  for _ in range(FLAGS.repeats):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < FLAGS.input_seconds:
      images, _ = next(iterator)
      count += int(images.shape[0])
    rates.append(count / (time.perf_counter() - start))
  return float(np.mean(rates)), float(np.std(rates)), first


def train_throughput(net, num_classes, size, batch_size):
  """(images/s mean, std) of a float32 SGD step of `net` on a fixed batch."""
  model = nets_factory.build_model(net, num_classes, input_shape=(size, size, 3))
  optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
  images = tf.random.uniform([batch_size, size, size, 3], -1.0, 1.0)
  labels = tf.random.uniform([batch_size], 0, num_classes, dtype=tf.int64)

  @tf.function
  def step(x, y):
    with tf.GradientTape() as tape:
      logits = model(x, training=True)['Logits']
      loss = tf.reduce_mean(
          tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
      if model.losses:
        loss += tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  for _ in range(2):  # trace + warm-up
    step(images, labels).numpy()
  rates = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    for _ in range(FLAGS.train_steps):
      loss = step(images, labels)
    loss.numpy()
    rates.append(FLAGS.train_steps * batch_size / (time.perf_counter() - start))
  return float(np.mean(rates)), float(np.std(rates))


# ---------------------------------------------------------------- main

def main(argv):
  del argv
  if FLAGS.quick:  # a smoke run of a few minutes on 2 busy cores
    FLAGS.input_seconds = min(FLAGS.input_seconds, 2.0)
    FLAGS.train_steps = min(FLAGS.train_steps, 2)
    FLAGS.repeats = 1
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='input_bench_')
  rows = [r for r in ROWS
          if not FLAGS.rows or '%s:%s' % (r[2], r[3]) in FLAGS.rows]
  if not rows:
    raise ValueError('--rows: none of %s is a row; expected preprocessing:net from %s'
                     % (FLAGS.rows, ', '.join('%s:%s' % (r[2], r[3]) for r in ROWS)))
  print('TF %s, Keras %s, Python %s, %d CPUs (%s), oneDNN %s' % (
      tf.__version__, keras.__version__, platform.python_version(), os.cpu_count(),
      platform.processor() or platform.machine(),
      os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')))
  print('windows: %d x %.0f s (input%s), %d x %d steps (train, float32 SGD)%s' % (
      FLAGS.repeats, FLAGS.input_seconds,
      ', seed %d' % FLAGS.seed if FLAGS.seed is not None else ', unseeded',
      FLAGS.repeats, FLAGS.train_steps, ' [--quick]' if FLAGS.quick else ''))
  dirs = {'cifar10': FLAGS.cifar_dir, 'flowers': FLAGS.flowers_dir}
  print('%-8s %-10s %-13s %5s %5s %18s %8s %18s %7s' % (
      'data', 'preproc', 'net', 'size', 'batch', 'input img/s', '1st (s)',
      'train img/s', 'ratio'))
  ratios = []
  for dataset, split_name, preprocessing, net, size, batch in rows:
    if FLAGS.quick:
      batch = min(batch, 8 if size > 64 else 64)
    split = get_split(prepare(dataset, dirs[dataset], work_dir), dataset, split_name)
    in_mean, in_std, first = input_throughput(split, preprocessing, size, batch)
    train_mean, train_std = train_throughput(net, split.num_classes, size, batch)
    ratios.append(in_mean / train_mean)
    print('%-8s %-10s %-13s %5d %5d %9.0f +- %-6.0f %8.1f %9.0f +- %-6.0f %7.2f' % (
        dataset, preprocessing, net, size, batch, in_mean, in_std, first, train_mean,
        train_std, ratios[-1]), flush=True)
  print('min ratio %.2f: %s (target >= 3)' % (
      min(ratios), 'ok' if min(ratios) >= 3 else 'BELOW TARGET'))


if __name__ == '__main__':
  try:
    app.run(main)
  except (ValueError, FileNotFoundError, RuntimeError) as e:
    print('input_bench: %s' % e, file=sys.stderr)
    sys.exit(1)
