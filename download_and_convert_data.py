"""Downloads a dataset (or reads a local copy) and converts it to sharded TFRecords.

  python3 download_and_convert_data.py --dataset_name=mnist --dataset_dir=/tmp/mnist
  python3 download_and_convert_data.py --dataset_name=cifar10 --dataset_dir=/tmp/cifar10 \\
      --source=/path/to/cifar-10-python.tar.gz
  python3 download_and_convert_data.py --dataset_name=imagenet --dataset_dir=/tmp/imagenet \\
      --source=/data/ILSVRC2012   # train/<wnid>/*.JPEG, val/ (see docs/imagenet.md)
  python3 download_and_convert_data.py --dataset_name=image_folder --source=my_photos/ \\
      --dataset_dir=/tmp/my_photos --output_name=my_photos

The output folder holds <name>_<split>-NNNNN-of-MMMMM.tfrecord shards, labels.txt and
dataset_info.json (written last); see docs/architecture.md.
"""
import sys

from slimkit import cli  # first: sets up TensorFlow (C++ logging, oneDNN)

from absl import flags  # pylint: disable=g-bad-import-order

from common import errors
from datasets import convert
from datasets import tfrecords
from deployment import startup

flags.DEFINE_string('dataset_name', None,
                    'Dataset to convert: %s (imagenet: from --source only, never '
                    'downloaded).' % ', '.join(convert.DATASETS))
flags.DEFINE_string('dataset_dir', None, 'Folder to write the TFRecords to.')
flags.DEFINE_string('source', None,
                    'What is already on disk: an archive (the official one or a copy) or a '
                    'folder; for mnist also comma-separated idx files; for imagenet the '
                    'ILSVRC2012 folder (train/<wnid>/, val/). Without it the official '
                    'files are downloaded and their checksums verified.')
flags.DEFINE_integer('num_shards', None,
                     'Shards per split. Default: 5 for flowers, else one per 10,000 images.')
flags.DEFINE_float('validation_size', None,
                   'flowers/image_folder: images held out for validation, a count >= 1 or '
                   'a fraction below 1. Default: 350/3670 of flowers (TF-Slim held out 350 '
                   'of 3670), 0.1 of an image folder without split folders.')
flags.DEFINE_integer('seed', 0, 'Seed for the validation split and the record order.')
flags.DEFINE_boolean('overwrite', False, 'Convert again over a finished dataset.')
flags.DEFINE_integer('num_workers', None, 'Encoding processes. Default: all cores.')
flags.DEFINE_boolean('keep_download', False,
                     'Keep the downloaded archive in dataset_dir instead of deleting it.')
flags.DEFINE_string('output_name', None,
                    'File prefix and dataset name. Default: --dataset_name.')

FLAGS = flags.FLAGS


def main(argv):
  del argv  # cli.run rejects positional arguments
  try:
    convert.run(FLAGS.dataset_name, FLAGS.dataset_dir, source=FLAGS.source,
                num_shards=FLAGS.num_shards, validation_size=FLAGS.validation_size,
                seed=FLAGS.seed, overwrite=FLAGS.overwrite, num_workers=FLAGS.num_workers,
                keep_download=FLAGS.keep_download, output_name=FLAGS.output_name)
  except KeyboardInterrupt:
    print('interrupted: no shard under a final name is partial; run the same command again '
          'to finish', file=sys.stderr)
    return 130
  except errors.Stopped as e:  # SIGTERM
    raise errors.Stopped(e.signum, '%s: no shard under a final name is partial; run the '
                         'same command again to finish' % e) from None
  return 0


if __name__ == '__main__':
  # TensorFlow starts with the first shard: bad flags and sources fail at once.
  tfrecords.set_tensorflow_start(startup.start_tensorflow)
  cli.run(main, tensorflow=False)
