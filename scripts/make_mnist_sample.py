"""Cuts the MNIST sample in datasets/sample/mnist/ out of the official idx files.

  python3 scripts/make_mnist_sample.py       # from ../shared/datasets/mnist
  python3 scripts/make_mnist_sample.py --source=DIR --output=DIR

Keeps the first 2,000 training and the first 500 test images and labels, under the
official file names and in the official idx format, gzipped with mtime 0 so that the
output is the same byte for byte on every run. Standalone: needs no project imports.
"""
import gzip
import math
import os
import struct
import sys

from absl import app
from absl import flags

# The checkout's root; the shared data sits beside it, in ../shared.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string('source',
                    os.path.normpath(os.path.join(ROOT, '..', 'shared', 'datasets',
                                                  'mnist')),
                    'Folder with the four official MNIST .gz files (default: '
                    '../shared/datasets/mnist beside the checkout).')
flags.DEFINE_string('output', os.path.join(ROOT, 'datasets', 'sample', 'mnist'),
                    'Folder to write the sample to.')
flags.DEFINE_integer('num_train', 2000, 'Training images and labels to keep.')
flags.DEFINE_integer('num_test', 500, 'Test images and labels to keep.')

FLAGS = flags.FLAGS


def head(data, count):
  """idx file bytes -> the same idx format holding only the first count records."""
  ndim = data[3]
  dims = struct.unpack('>%dI' % ndim, data[4:4 + 4 * ndim])
  if count > dims[0]:
    raise ValueError('asked for %d records of %d' % (count, dims[0]))
  body = 4 + 4 * ndim
  record = math.prod(dims[1:])
  header = data[:4] + struct.pack('>%dI' % ndim, count, *dims[1:])
  return header + data[body:body + count * record]


def main(argv):
  del argv
  counts = {'train-images-idx3-ubyte.gz': FLAGS.num_train,
            'train-labels-idx1-ubyte.gz': FLAGS.num_train,
            't10k-images-idx3-ubyte.gz': FLAGS.num_test,
            't10k-labels-idx1-ubyte.gz': FLAGS.num_test}
  for name in counts:
    if not os.path.isfile(os.path.join(FLAGS.source, name)):
      sys.exit('make_mnist_sample.py: error: --source=%s has no %s; pass the folder '
               'of the four official MNIST .gz files' % (FLAGS.source, name))
  os.makedirs(FLAGS.output, exist_ok=True)
  for name, count in counts.items():
    with gzip.open(os.path.join(FLAGS.source, name), 'rb') as f:
      sample = head(f.read(), count)
    path = os.path.join(FLAGS.output, name)
    with open(path + '.part', 'wb') as f:  # renamed when whole
      f.write(gzip.compress(sample, compresslevel=9, mtime=0))
    os.replace(path + '.part', path)
    print('%s: %d records, %d bytes' % (path, count, os.path.getsize(path)))


if __name__ == '__main__':
  app.run(main)
