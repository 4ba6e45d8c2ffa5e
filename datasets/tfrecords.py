"""Writes one split as sharded TFRecords of TF-Slim style tf.train.Examples.

Images are validated, encoded and serialized into examples in spawned worker processes
(datasets.encode, no TensorFlow there) while this process writes the shards in record
order. Each shard is written to '<shard>.tmp-<pid>' and renamed only when full, so
a file under a final shard name is always complete.
"""
import contextlib
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import time

from absl import logging
import tqdm

from common import errors
from datasets import encode

SHARD_FORMAT = '%s_%s-%05d-of-%05d.tfrecord'
TMP_MARK = '.tmp-'
IMAGES_PER_SHARD = 10000  # default shard size: 5 train + 1 test shard for CIFAR-10
POOL_MIN_ITEMS = 1000  # below this, starting worker processes costs more than it saves
CHUNK = {'array': 256, 'file': 128}  # images per task sent to a worker
MAX_WARNINGS = 20  # skipped files named one by one per split; the rest are counted


_START_TENSORFLOW = []  # set_tensorflow_start()'s function, if any


def set_tensorflow_start(start):
  """start() imports TensorFlow when the first shard is written (the converter
  script passes deployment.startup.start_tensorflow, which hides its C++ notices)."""
  _START_TENSORFLOW[:] = [start]


def _tf():
  # TensorFlow takes seconds to import: loading it only when the first shard is written
  # keeps flag and source errors instant and the spawned workers free of it.
  if _START_TENSORFLOW:
    return _START_TENSORFLOW[0]()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def shard_name(name, split_name, index, num_shards):
  return SHARD_FORMAT % (name, split_name, index, num_shards)


def default_num_shards(num_images):
  return max(1, math.ceil(num_images / IMAGES_PER_SHARD))


@dataclasses.dataclass
class SplitStats:
  """What write_split wrote: counts, skipped inputs, and the image formats and sizes."""
  num_classes: int
  num_shards: int = 0
  num_samples: int = 0
  class_counts: list = None
  skipped: list = dataclasses.field(default_factory=list)  # (name, reason)
  formats: set = dataclasses.field(default_factory=set)  # 'png', 'jpeg'
  sizes: set = dataclasses.field(default_factory=set)  # (height, width)
  channels: set = dataclasses.field(default_factory=set)
  seconds: float = 0.0

  def __post_init__(self):
    self.class_counts = [0] * self.num_classes

  def add(self, record, label):
    self.num_samples += 1
    self.class_counts[label] += 1
    self.formats.add(record.format)
    self.sizes.add((record.height, record.width))
    self.channels.add(record.channels)


@contextlib.contextmanager
def worker_pool(num_workers, num_images):
  """A spawn-started process pool, or None when one process is enough."""
  if num_workers <= 1 or num_images < POOL_MIN_ITEMS:
    yield None
    return
  # spawn, not fork: this process may hold TensorFlow's threads and locks. Workers ignore
  # Ctrl-C; this process gets it, removes its temporary shard and stops them.
  context = multiprocessing.get_context('spawn')
  with context.Pool(num_workers, initializer=signal.signal,
                    initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
    yield pool


def _records(source, pool):
  """encode.Record or encode.Skipped per image of source, in order."""
  chunk = CHUNK[source.kind]
  tasks = ((source.kind, source.payloads[start:start + chunk],
            source.labels[start:start + chunk], source.expect_size)
           for start in range(0, len(source), chunk))
  if pool is None:
    chunks = map(encode.process_chunk, tasks)
  else:
    chunks = pool.imap(encode.process_chunk, tasks)
  for results in chunks:
    yield from results


def _remove(path):
  with contextlib.suppress(FileNotFoundError):
    os.remove(path)


def write_split(dataset_dir, name, split_name, source, num_shards, num_classes, pool=None,
                progress=None):
  """Writes source as '<name>_<split_name>-NNNNN-of-MMMMM.tfrecord' files -> SplitStats.

  Records go to the shards in source order, shard k holding records
  [k * n // num_shards, (k + 1) * n // num_shards); num_shards is capped at n.
  progress: True/False, or None for a progress bar only on a terminal.
  """
  tf = _tf()
  start = time.time()
  num_images = len(source)
  num_shards = max(1, min(num_shards, num_images))
  bounds = [k * num_images // num_shards for k in range(num_shards + 1)]
  stats = SplitStats(num_classes, num_shards=num_shards)
  results = _records(source, pool)
  with tqdm.tqdm(total=num_images, desc='%s %s' % (name, split_name), unit='img',
                 file=sys.stderr, disable=None if progress is None else not progress,
                 leave=False) as bar:
    for shard in range(num_shards):
      final = os.path.join(dataset_dir, shard_name(name, split_name, shard, num_shards))
      tmp = '%s%s%d' % (final, TMP_MARK, os.getpid())
      try:
        with errors.writing(final, 'free space, then run the same command again'), \
            tf.io.TFRecordWriter(tmp) as writer:
          for index in range(bounds[shard], bounds[shard + 1]):
            result = next(results)
            if isinstance(result, encode.Skipped):
              stats.skipped.append((source.name(index), result.reason))
            else:
              writer.write(result.example)
              stats.add(result, int(source.labels[index]))
            bar.update()
      except BaseException:
        _remove(tmp)
        raise
      os.replace(tmp, final)
  for skipped_name, reason in stats.skipped[:MAX_WARNINGS]:
    logging.warning('skipped %s: %s', skipped_name, reason)
  if len(stats.skipped) > MAX_WARNINGS:
    logging.warning('skipped %d more files in %s', len(stats.skipped) - MAX_WARNINGS,
                    split_name)
  stats.seconds = time.time() - start
  return stats
