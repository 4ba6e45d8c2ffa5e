"""The batched input pipeline: TFRecord shards -> (images, labels) batches.

build_input(split, preprocess_fn, batch_size, is_training=..., image_size=...) reads
a DatasetSplit (datasets.dataset_factory.get_split; it uses split.files,
split.parse, split.num_samples, split.num_classes, split.image_shape and
split.channels) and returns a tf.data.Dataset of (images float32 [B, H, W, C],
labels). Labels are int64 [B] minus labels_offset, or float32 [B, num_classes]
soft targets when a batch_transform (mixup, CutMix) is given.

Training:  shuffled shard list -> parallel interleave of num_readers files
           [-> parallel parse -> cache of the decoded uint8 images]
           -> shuffle -> repeat -> parallel parse + preprocess -> batch
           [-> batch_transform] -> prefetch
Eval:      shards in file order, records in order, no shuffle, one pass, the last
           partial batch kept.

Reproducibility: with a seed, every random choice is seeded: the file and record
shuffles by the seed, and each image's augmentation by a [2] seed folded from
(seed, input pipeline, element index), fed to the preprocessing's stateless ops.
The output is then the same across runs and for any num_parallel_calls (the record
order depends on num_readers, as the files are interleaved). Without a seed, order
and augmentation are random and tf.data may reorder elements for speed.

Caching: decoding a small fixed-size image (CIFAR-10 PNGs) costs more than
augmenting it, so by default a training set whose images have a fixed shape and
fit in 1 GiB decoded is decoded once and kept in memory as uint8 (CIFAR-10 train:
150 MB decoded, about 120 MB of PNG shards); augmentation still runs fresh every
epoch. Variable-size sets (JPEG photos) are decoded per step: their decoded images
are many times their file size.

Distribution: pass the tf.distribute.InputContext of
strategy.distribute_datasets_from_function; batch_size is then the per-replica
batch. Files are split between input pipelines when there are at least as many
files as pipelines, otherwise records are.
"""

import inspect
import math
import numbers
import os

import tensorflow as tf

from common import errors
from preprocessing import seeds as seeds_lib

AUTOTUNE = tf.data.AUTOTUNE
CACHE_MAX_DECODED_BYTES = 2**30         # auto-cache fixed-size sets up to this
SHUFFLE_BUFFER_BYTES = 256 * 2**20      # default shuffle buffer: about this much
MIN_SHUFFLE_BUFFER = 1024


def build_input(split, preprocess_fn, batch_size, *, is_training, image_size,
                seed=None, num_readers=4, num_parallel_calls=None, labels_offset=0,
                shuffle_buffer=None, repeat=None, drop_remainder=None,
                batch_transform=None, input_context=None, num_classes=None,
                cache=None):
  """The batched, prefetched tf.data.Dataset of (images, labels) for one split.

  split: a DatasetSplit (see module doc).
  preprocess_fn: fn(image uint8 [H, W, C], height, width[, seed]) -> float32
    [height, width, C'], e.g. preprocessing_factory.get_preprocessing(...); it gets a
    per-element [2] seed if it takes a `seed` argument and a seed is given here.
  batch_size: images per batch (per replica under a distribution strategy).
  image_size: int, or (height, width).
  seed: int for a reproducible pipeline, None for the fast random one.
  num_readers: files read in parallel when training.
  num_parallel_calls: parallel parse/preprocess calls (None = AUTOTUNE).
  labels_offset: subtracted from every label (TF-Slim's --labels_offset).
  shuffle_buffer: records in the shuffle buffer (None: about 256 MB of records,
    at least 1024, at most the whole split).
  repeat: True (forever), False, or a number of epochs (None: True in training).
  drop_remainder: drop the last partial batch (None: True in training).
  batch_transform: fn(images, labels, num_classes, seed) -> (images, targets) run on
    each batch, e.g. preprocessing.augment.batch_mix(mixup_alpha=0.2).
  input_context: a tf.distribute.InputContext, or None.
  num_classes: classes after labels_offset (None: split.num_classes - labels_offset);
    the width of soft targets.
  cache: None (auto, see module doc), True (decoded uint8 in memory), False, or a
    file path prefix for an on-disk cache of the decoded images.
  """
  height, width = _image_size(image_size)
  _check_positive_int('batch_size', batch_size)
  _check_positive_int('num_readers', num_readers)
  if seed is not None and not isinstance(seed, numbers.Integral):
    raise ValueError('seed: expected an int or None, got %r' % (seed,))
  repeat = is_training if repeat is None else repeat
  drop_remainder = is_training if drop_remainder is None else drop_remainder
  if num_classes is None:
    num_classes = split.num_classes - labels_offset
  parallel = AUTOTUNE
  if num_parallel_calls is not None:
    _check_positive_int('num_parallel_calls', num_parallel_calls)
    parallel = num_parallel_calls
  seeded = seed is not None
  # Evaluation keeps file order even without a seed.
  deterministic = seeded or not is_training

  files = [str(f) for f in split.files]
  if not files:
    raise FileNotFoundError('dataset split %r: no TFRecord files'
                            % getattr(split, 'name', split))
  pipeline_id, num_pipelines = 0, 1
  if input_context is not None:
    pipeline_id = input_context.input_pipeline_id
    num_pipelines = input_context.num_input_pipelines
  shard_files = num_pipelines > 1 and len(files) >= num_pipelines
  if shard_files:
    files = files[pipeline_id::num_pipelines]
  num_samples = int(math.ceil(split.num_samples / num_pipelines))
  cache_path = _cache_path(cache, split, is_training, num_samples)

  element_seed = batch_seed = shuffle_seed = None
  if seeded:
    # Distinct streams per input pipeline, for records, elements and batches.
    element_seed, batch_seed = seeds_lib.split(
        tf.constant([seed, pipeline_id], tf.int64), 2)
    shuffle_seed = seed + 7919 * pipeline_id

  dataset = _records(files, is_training, shuffle_seed, num_readers, deterministic)
  if num_pipelines > 1 and not shard_files:
    dataset = dataset.shard(num_pipelines, pipeline_id)

  def parse(path, index, serialized):
    image, label = split.parse(serialized)
    image.set_shape(_static_shape(split))
    label = tf.cast(label, tf.int64) - labels_offset
    return image, checked_label(label, num_classes, labels_offset, path, index)

  if cache_path is not None:
    dataset = dataset.map(_plain(parse), num_parallel_calls=parallel,
                          deterministic=deterministic)
    dataset = dataset.cache(cache_path)
  if is_training:
    if shuffle_buffer is not None:
      _check_positive_int('shuffle_buffer', shuffle_buffer)
    else:
      shuffle_buffer = _default_shuffle_buffer(split, files, cache_path is not None,
                                               num_samples)
    dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed,
                              reshuffle_each_iteration=True)
  if repeat is True:
    dataset = dataset.repeat()
  elif repeat:
    dataset = dataset.repeat(int(repeat))

  takes_seed = _takes_seed(preprocess_fn)

  def preprocess(element, index):
    # element: (shard, index, serialized record), or (image, label) when cached.
    image, label = element if cache_path is not None else parse(*element)
    if takes_seed and index is not None:
      seed_i = seeds_lib.fold_in(element_seed, index)
      image = preprocess_fn(image, height, width, seed=seed_i)
    else:
      image = preprocess_fn(image, height, width)
    return image, label

  if seeded:
    dataset = dataset.enumerate().map(_plain(lambda i, e: preprocess(e, i)),
                                      num_parallel_calls=parallel,
                                      deterministic=True)
  else:
    dataset = dataset.map(_plain(lambda *e: preprocess(e, None)),
                          num_parallel_calls=parallel, deterministic=deterministic)
  dataset = dataset.batch(batch_size, drop_remainder=drop_remainder,
                          num_parallel_calls=parallel, deterministic=deterministic)
  if batch_transform is not None:
    def transform(index, batch):
      seed_i = seeds_lib.fold_in(batch_seed, index) if seeded else None
      return batch_transform(batch[0], batch[1], num_classes=num_classes,
                             seed=seed_i)
    dataset = dataset.enumerate().map(_plain(transform), num_parallel_calls=parallel,
                                      deterministic=deterministic)
  dataset = dataset.prefetch(AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = deterministic
  # No autotune thread: deleting an iterator joins it, and it first sleeps out its
  # optimization period (up to 60 s): the end of a short training run waited 8 to
  # 56 s here. AUTOTUNE then means a call per core and prefetch's own buffer
  # sizing, which fed a 224x224 and a 32x32 pipeline as fast here.
  options.autotune.enabled = False
  options.autotune.initial_parallelism = os.cpu_count() or 1
  return dataset.with_options(options)


def _plain(fn):
  """fn for Dataset.map without autograph. Parsing and preprocessing branch on
  Python values only (tensor conditions use tf.cond), and converting them cost
  about 1.3 s of every training run's start (VGG preprocessing, measured)."""
  return tf.autograph.experimental.do_not_convert(fn)


def _records(files, is_training, seed, num_readers, deterministic):
  """(shard, index in shard, serialized record): file order when evaluating,
  interleaved when training. The position names a bad record in errors."""
  dataset = tf.data.Dataset.from_tensor_slices(files)
  if not is_training:
    return dataset.flat_map(_positioned)
  dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  cycle = min(num_readers, len(files))
  return dataset.interleave(_positioned, cycle_length=cycle,
                            block_length=1, num_parallel_calls=cycle,
                            deterministic=deterministic)


def _positioned(path):
  return tf.data.TFRecordDataset(path).enumerate().map(
      lambda index, record: (path, index, record))


def checked_label(label, num_classes, labels_offset, path, index):
  """label, or a one-line error naming the shard and record if it is not a class.

  A label outside [0, num_classes) would give an all-zero one-hot target: the net
  would learn from garbage without a word. An Assert whose data are all strings and
  int32 is one cheap op (other dtypes get a tf.cond guard, which costs ~20% of an
  MNIST eval pipeline); its message is put together by errors.graph_message.
  """
  ok = tf.logical_and(label >= 0, label < num_classes)
  data = [errors.MARK, path, ': record ', tf.cast(index, tf.int32), ' has label ',
          tf.cast(label + labels_offset, tf.int32),
          '; with --labels_offset=%d the labels must be in [%d, %d) for %d classes%s'
          % (labels_offset, labels_offset, labels_offset + num_classes, num_classes,
             errors.END_MARK)]
  with tf.control_dependencies([tf.debugging.Assert(ok, data, summarize=1)]):
    return tf.identity(label)


def _cache_path(cache, split, is_training, num_samples):
  """'' (memory), a file prefix, or None (no cache), from the cache argument."""
  if cache is True:
    return ''
  if cache is False:
    return None
  if isinstance(cache, str):
    if not cache:
      raise ValueError('cache: expected None, True, False or a file path, got ""')
    return cache
  if cache is not None:
    raise ValueError('cache: expected None, True, False or a file path, got %r'
                     % (cache,))
  shape = getattr(split, 'image_shape', None)
  if not is_training or not shape:
    return None
  if num_samples * math.prod(shape) > CACHE_MAX_DECODED_BYTES:
    return None
  return ''


def _default_shuffle_buffer(split, files, decoded, num_samples):
  """About SHUFFLE_BUFFER_BYTES of elements (decoded images, or records)."""
  shape = getattr(split, 'image_shape', None)
  if decoded and shape:
    element_bytes = math.prod(shape)
  else:
    encoded_bytes = sum(tf.io.gfile.stat(f).length for f in files)
    element_bytes = max(1, encoded_bytes // max(1, num_samples))
  buffer = max(MIN_SHUFFLE_BUFFER, SHUFFLE_BUFFER_BYTES // element_bytes)
  return int(max(1, min(num_samples, buffer)))


def _static_shape(split):
  shape = getattr(split, 'image_shape', None)
  if shape:
    return list(shape)
  return [None, None, getattr(split, 'channels', None)]


def _image_size(image_size):
  if isinstance(image_size, numbers.Integral):
    image_size = (image_size, image_size)
  if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
      or not all(isinstance(s, numbers.Integral) and s > 0 for s in image_size)):
    raise ValueError('image_size: expected a positive int or (height, width), got %r'
                     % (image_size,))
  return int(image_size[0]), int(image_size[1])


def _check_positive_int(flag, value):
  if not isinstance(value, numbers.Integral) or value < 1:
    raise ValueError('%s: expected a positive int, got %r' % (flag, value))


def _takes_seed(fn):
  try:
    params = inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False
  return 'seed' in params or any(
      p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())
