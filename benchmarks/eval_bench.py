"""Evaluation speed: the 10,000 CIFAR-10 test images with custom_cnn.

Measured one after the other in one run:
  forward  images/s of the bare model (tf.function, float32) on batches already
           preprocessed and in memory: the compute ceiling, the baseline;
  eval     eval_image_classifier.py run as a subprocess, end to end: wall time
           including Python and TensorFlow start-up, and the images/s of its pass
           over the split as written to eval_<step>.json.
It prints eval / forward and the wall time against the target (< 20 s).
The weights are a fresh, untrained checkpoint: speed does not depend on them.

Data: --dataset_dir is a converted CIFAR-10 directory with a 'test' split
(download_and_convert_data.py). Without it, the test split of the shared JPEG copy
(/work/shared/datasets/cifar10) is re-encoded as PNG into --work_dir, the layout the
converter writes.

  python3 benchmarks/eval_bench.py                      # 10,000 images
  python3 benchmarks/eval_bench.py --num_images=2000    # smaller, on a busy machine
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

from datasets import dataset_factory
from datasets import dataset_info
from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import checkpoints

CIFAR_TAR = '/work/shared/datasets/cifar10/cifar10-jpg.tar.gz'
CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
                 'horse', 'ship', 'truck')
MODEL = 'custom_cnn'
TARGET_SECONDS = 20.0

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset_dir', None, 'Converted CIFAR-10 directory (test split).')
flags.DEFINE_string('work_dir', None, 'Where the test split is converted when '
                    '--dataset_dir is not given (default: a new temporary directory).')
flags.DEFINE_integer('num_images', None, 'Convert only this many test images (default '
                     'all 10,000); ignored with --dataset_dir.')
flags.DEFINE_integer('batch_size', 100, 'Eval batch size (TF-Slim\'s default: 100).')
flags.DEFINE_integer('repeats', 3, 'Runs of each measurement (mean +- std).')


# ---------------------------------------------------------------- data

def convert_test_split(out_dir, max_images):
  """The shared copy's test images as PNG TFRecords in the converter's layout."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  records = []
  with tarfile.open(CIFAR_TAR) as tar:
    for member in tar:
      parts = member.name.split('/')
      if not member.isfile() or parts[-3:-2] != ['test']:
        continue
      png = io.BytesIO()
      Image.open(tar.extractfile(member)).convert('RGB').save(png, format='PNG')
      records.append((png.getvalue(), CIFAR_CLASSES.index(parts[-2])))
  np.random.default_rng(0).shuffle(records)
  records = records[:max_images] if max_images else records
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, 'cifar10_test-00000-of-00001.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for data, label in records:
      feature = {
          'image/encoded': _bytes(data), 'image/format': _bytes(b'png'),
          'image/class/label': _int(label), 'image/height': _int(32),
          'image/width': _int(32)}
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())
  counts = np.bincount([label for _, label in records], minlength=10).tolist()
  dataset_info.write_labels(out_dir, CIFAR_CLASSES)
  dataset_info.write_info(out_dir, {
      'name': 'cifar10', 'num_classes': 10,
      'splits': {'test': {'num_samples': len(records), 'num_shards': 1,
                          'class_counts': counts}},
      'image_shape': [32, 32, 3], 'channels': 3, 'encoding': 'png',
      'source': CIFAR_TAR, 'lossy_source': True})


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def fresh_checkpoint(train_dir, num_classes):
  model = nets_factory.build_model(MODEL, num_classes, (32, 32, 3))
  step = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(checkpoints.make_checkpoint(model, step),
                                       train_dir, max_to_keep=1,
                                       checkpoint_name=checkpoints.CHECKPOINT_NAME)
  return manager.save(checkpoint_number=0)


# ---------------------------------------------------------------- timing

def forward_rate(split, batch_size):
  """Images/s of the bare model over the split, preprocessed and held in memory."""
  preprocess = preprocessing_factory.get_preprocessing(MODEL, is_training=False)
  pixels = split.read().map(lambda image, _: preprocess(image, 32, 32))
  images = np.stack(list(pixels.as_numpy_iterator()))
  model = nets_factory.build_model(MODEL, split.num_classes, (32, 32, 3))
  spec = tf.TensorSpec([None, 32, 32, 3], tf.float32)
  forward = tf.function(lambda x: model(x, training=False)['Logits'],
                        input_signature=[spec])
  batches = [tf.constant(images[i:i + batch_size])
             for i in range(0, len(images), batch_size)]
  forward(batches[0]).numpy()  # trace
  rates = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    for batch in batches:
      forward(batch).numpy()
    rates.append(len(images) / (time.perf_counter() - start))
  return rates


def eval_runs(dataset_dir, prefix, work_dir, batch_size):
  """[(wall seconds, images/s of the pass, num_samples)] of the eval CLI."""
  out = []
  for i in range(FLAGS.repeats):
    eval_dir = os.path.join(work_dir, 'eval_%d' % i)
    command = [sys.executable, os.path.join(ROOT, 'eval_image_classifier.py'),
               '--checkpoint_path=%s' % prefix, '--eval_dir=%s' % eval_dir,
               '--dataset_name=cifar10', '--dataset_dir=%s' % dataset_dir,
               '--model_name=%s' % MODEL, '--batch_size=%d' % batch_size]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(os.path.join(eval_dir, 'eval_0.json')) as f:
      result = json.load(f)
    out.append((wall, result['images_per_sec'], result['num_samples']))
  return out


def _mean_std(values):
  return float(np.mean(values)), float(np.std(values))


def main(argv):
  del argv
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='eval_bench_')
  dataset_dir = FLAGS.dataset_dir
  if not dataset_dir:
    dataset_dir = os.path.join(work_dir, 'cifar10_test')
    if not os.path.exists(os.path.join(dataset_dir, 'dataset_info.json')):
      start = time.time()
      convert_test_split(dataset_dir, FLAGS.num_images)
      print('converted the test split into %s in %.0f s' % (dataset_dir,
                                                            time.time() - start))
  split = dataset_factory.get_split('cifar10', 'test', dataset_dir)
  prefix = fresh_checkpoint(os.path.join(work_dir, 'train'), split.num_classes)
  print('TensorFlow %s, Keras %s, %s, %d CPUs; %s on %d images of %s, batch %d, '
        '%d repeats' % (tf.__version__, keras.__version__, platform.processor() or
                        platform.machine(), os.cpu_count(), MODEL, split.num_samples,
                        dataset_dir, FLAGS.batch_size, FLAGS.repeats))
  forward = forward_rate(split, FLAGS.batch_size)
  runs = eval_runs(dataset_dir, prefix, work_dir, FLAGS.batch_size)
  assert all(n == split.num_samples for _, _, n in runs), runs
  f_mean, f_std = _mean_std(forward)
  e_mean, e_std = _mean_std([r for _, r, _ in runs])
  w_mean, w_std = _mean_std([w for w, _, _ in runs])
  # Start-up is paid once; the pass scales with the number of images.
  startup = w_mean - split.num_samples / e_mean
  scaled = startup + 10000.0 / e_mean
  print('forward (baseline)   %8.0f +- %4.0f images/s' % (f_mean, f_std))
  print('eval pass            %8.0f +- %4.0f images/s   eval / forward = %.2f'
        % (e_mean, e_std, e_mean / f_mean))
  print('eval wall time       %8.1f +- %4.1f s (start-up and set-up: %.1f s)'
        % (w_mean, w_std, startup))
  note = '' if split.num_samples == 10000 else (
      ' (measured on %d images: ~%.1f s for 10,000)' % (split.num_samples, scaled))
  print('target: 10,000 images in < %.0f s: %s%s' % (
      TARGET_SECONDS, 'met' if scaled < TARGET_SECONDS else 'NOT met', note))


if __name__ == '__main__':
  app.run(main)
