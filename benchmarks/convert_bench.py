"""CIFAR-10 conversion speed: our converter vs. a TF-Slim-style serial baseline.

  python3 benchmarks/convert_bench.py [--source=PATH] [--baseline_images=5000]
      [--num_workers=N] [--python_batches]

ours      convert.run('cifar10', ...) end to end on the whole --source: reading the
          archive, validating (decoding) every image, writing 5 + 1 shards.
baseline  what TF-Slim's converters do, in the same run: one image at a time, build a
          tf.train.Example, write it with one TFRecordWriter. Timed on the first
          --baseline_images images (their reading included) and extrapolated as
          images/s. Each side does the same work per image: for class folders both
          decode each file (ours to validate it, TF-Slim's flowers converter for its
          size) and store its bytes as they are; for python batches both encode each
          image to PNG.
--python_batches also builds cifar-10-python.tar.gz (official layout) from the source's
pixels and times both again on it: there ours encodes the images in parallel, and
the baseline encodes the arrays one by one (tf.io.encode_png).
"""
import os
import resource
import sys
import tarfile
import tempfile
import time

from absl import flags

# The repo root, so that `python3 benchmarks/convert_bench.py` finds the packages.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from benchmarks import harness  # pylint: disable=g-import-not-at-top,wrong-import-position
from datasets import cifar10  # pylint: disable=g-import-not-at-top,wrong-import-position
from datasets import convert  # pylint: disable=g-import-not-at-top,wrong-import-position
from datasets import image_tree  # pylint: disable=g-import-not-at-top,wrong-import-position
from slimkit import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('source', None, 'CIFAR-10 source: class-folder archive or '
                    'cifar-10-python.tar.gz (default: the shared JPEG copy).')
flags.DEFINE_integer('baseline_images', 5000, 'Images the serial baseline converts.',
                     lower_bound=1)
flags.DEFINE_integer('num_workers', None, 'Encoding processes for ours (default: all '
                     'cores).', lower_bound=1)
flags.DEFINE_boolean('python_batches', False,
                     'Also time both on a cifar-10-python.tar.gz made from the source.')
FLAGS = flags.FLAGS


def _tf():
  # Imported late: the converter's worker processes re-import this script, and must not
  # pay for TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def cpu_seconds():
  """CPU time of this process and of its finished children (the converter's workers)."""
  own = resource.getrusage(resource.RUSAGE_SELF)
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_ours(source, work_dir):
  """-> (images, wall seconds, CPU seconds)."""
  start, cpu = time.time(), cpu_seconds()
  info = convert.run('cifar10', os.path.join(work_dir, 'ours'), source=source,
                     num_workers=FLAGS.num_workers, overwrite=True, progress=False)
  images = sum(s['num_samples'] for s in info['splits'].values())
  return images, time.time() - start, cpu_seconds() - cpu


def _example(tf, encoded, image_format, label, height, width):
  """TF-Slim's dataset_utils.image_to_tfexample, as the baseline's own code."""
  feature = {
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
      'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[image_format])),
      'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
      'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _first_files(source, limit):
  """(file bytes, label) of the first limit images of a class-folder archive."""
  with tarfile.open(source) as tar:
    for member in tar:
      if not member.isfile():
        continue
      class_name = member.name.split('/')[-2]
      yield tar.extractfile(member).read(), cifar10.CLASS_NAMES.index(class_name)
      limit -= 1
      if not limit:
        return


def _first_arrays(source, limit):
  """(uint8 [32, 32, 3], label) of the first limit images of cifar-10-python.tar.gz."""
  files = dict((path.rsplit('/', 1)[-1], data) for path, data in image_tree.list_files(source))
  for name in cifar10.TRAIN_BATCHES:
    for image, label in zip(*cifar10.load_batch(files[name], name)):
      yield image, int(label)
      limit -= 1
      if not limit:
        return


def time_baseline(source, work_dir, python_batches):
  """Serial, one TFRecordWriter -> (images, wall s, CPU s)."""
  tf = _tf()
  count = 0
  start, cpu = time.time(), cpu_seconds()
  with tf.io.TFRecordWriter(os.path.join(work_dir, 'baseline.tfrecord')) as writer:
    if python_batches:
      for image, label in _first_arrays(source, FLAGS.baseline_images):
        png = tf.io.encode_png(image).numpy()
        writer.write(_example(tf, png, b'png', label, 32, 32))
        count += 1
    else:
      for data, label in _first_files(source, FLAGS.baseline_images):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        writer.write(_example(tf, data, b'jpeg', label, int(image.shape[0]),
                              int(image.shape[1])))
        count += 1
  return count, time.time() - start, cpu_seconds() - cpu


def make_python_archive(source, path):
  """cifar-10-python.tar.gz in the official layout, holding source's decoded pixels."""
  import io  # pylint: disable=g-import-not-at-top
  import pickle  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  plan = cifar10.build_plan(source)
  with tarfile.open(path, 'w:gz', compresslevel=1) as tar:
    for split, names in (('train', cifar10.TRAIN_BATCHES), ('test', [cifar10.TEST_BATCH])):
      source_split = plan.splits[split]
      for name, part in zip(names, np.array_split(np.arange(len(source_split)), len(names))):
        images = np.stack([np.asarray(Image.open(io.BytesIO(source_split.payloads[i])).convert(
            'RGB')) for i in part])
        batch = {b'data': images.transpose(0, 3, 1, 2).reshape(len(part), -1),
                 b'labels': [int(source_split.labels[i]) for i in part]}
        data = pickle.dumps(batch, protocol=4)
        info = tarfile.TarInfo('cifar-10-batches-py/' + name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def report(title, ours, baseline):
  ours_rate, base_rate = ours[0] / ours[1], baseline[0] / baseline[1]
  print(title)
  print('  ours:     %d images in %.1f s = %.0f images/s (%.1f CPU s, all processes)'
        % (ours[0], ours[1], ours_rate, ours[2]))
  print('  baseline: %d images in %.1f s = %.0f images/s (%.1f CPU s; serial, first %d '
        'images, extrapolated to %d images: %.1f s)'
        % (baseline[0], baseline[1], base_rate, baseline[2], baseline[0], ours[0],
           ours[0] / base_rate))
  print('  speed-up: %.1fx wall; CPU s per image: ours %.0f us, baseline %.0f us'
        % (ours_rate / base_rate, ours[2] / ours[0] * 1e6, baseline[2] / baseline[0] * 1e6))


def main(argv):
  del argv
  source = FLAGS.source or harness.shared_source('cifar10')
  print(harness.describe())
  print('num_workers=%s; source %s' % (FLAGS.num_workers or os.cpu_count(), source))
  print('load average before: %.1f %.1f %.1f (a busy machine slows both, and ours more: '
        'its workers compete for the same cores)' % os.getloadavg())
  with tempfile.TemporaryDirectory() as work_dir:
    report('class folders (JPEG bytes kept after decoding):',
           time_ours(source, work_dir), time_baseline(source, work_dir, False))
    if FLAGS.python_batches:
      archive = os.path.join(work_dir, 'cifar-10-python.tar.gz')
      make_python_archive(source, archive)
      report('python batches (every image encoded to PNG):',
             time_ours(archive, work_dir), time_baseline(archive, work_dir, True))
  print('load average after: %.1f %.1f %.1f' % os.getloadavg())


if __name__ == '__main__':
  cli.run(main)
