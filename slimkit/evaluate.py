"""Evaluation behind eval_image_classifier.py: once, as TF-Slim, or continuously.

run(config) evaluates --checkpoint_path (a train dir means its newest checkpoint).
With --eval_interval_secs it polls a train dir instead and evaluates each checkpoint
that has no result yet, until training's last step (run_config.json's
max_number_of_steps) is evaluated or --timeout seconds pass without a new one.

Every evaluation writes to --eval_dir, never to the train dir (given as the train
dir, or unset, it is <train_dir>/eval: resolve_eval_dir):
  events.out.tfevents.*  eval/Accuracy, eval/Recall_5, eval/Loss at the checkpoint's step
  eval_<step>.json       metrics, per-class accuracy, confusion matrix, speed (atomic)
and prints a table on stdout; a progress bar goes to stderr.

The metrics cover every image of the split exactly once (the last, partial batch
too), or the first --max_num_batches batches:
  Accuracy   argmax of the logits == label          (Slim's streaming_accuracy)
  Recall_5   label among the 5 largest logits, ties counting as hits
             (tf.math.in_top_k, Slim's streaming_recall_at_k)
  Loss       mean softmax cross-entropy of the logits, without weight decay
With --eval_tta the logits are a weighted mean of the logits of several views of
each preprocessed image (tta_views), computed inside the compiled step.

The net is rebuilt from the flags as Slim did (--model_name; num_classes from the
dataset minus --labels_offset). How the net was trained comes from the
run_config.json beside the checkpoint when the flag is not given: the image size
(--eval_image_size defaults to the train image size, then the net's default size),
--preprocessing_name, --activation, --use_grayscale, --grayscale_formula,
--image_filter and --filter_size.
"""

import collections
import datetime
import math
import os
import re
import sys
import time

from absl import logging
import numpy as np
import tensorflow as tf
import tqdm

from common import errors
from common import files
from datasets import dataset_factory
from deployment import model_deploy
from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import checkpoints
from slimkit import flags as slim_flags
from slimkit import hooks
from slimkit import inputs
from slimkit import run_config as run_config_lib
from slimkit import slim_checkpoint
from slimkit import jit_trial
from slimkit import summaries

TOP_K = 5
RESULT_FORMAT = 'eval_%d.json'
EVAL_SUBDIR = 'eval'  # <train_dir>/eval: beside the checkpoints, not among them

# What one evaluation needs besides the checkpoint, resolved from flags + run_config.
Setup = collections.namedtuple('Setup', [
    'model_name', 'num_classes', 'image_size', 'channels', 'preprocessing_name',
    'preprocess_options', 'net_options', 'class_names', 'split'])


# ==============================================================================
# Checks and settings.
# ==============================================================================


def with_defaults(config):
  """config with the eval flags' defaults under the keys it lacks."""
  return dict(slim_flags.eval_defaults(), **config)


def check_config(config):
  """Raises ValueError with one line naming the flag for bad or unsupported values."""
  if config.get('quantize'):
    raise ValueError('--quantize is not supported: TF-Slim rewrote the TF1 graph with '
                     'tf.contrib.quantize, which TF2/Keras 3 do not have; evaluate the '
                     'float model, or export it with export_inference_graph.py --tflite '
                     '--quantize for a quantized TFLite model')
  model_deploy.check_master(config.get('master'))
  if not config.get('dataset_dir'):
    raise ValueError('You must supply the dataset directory with --dataset_dir')
  if not config.get('checkpoint_path'):
    raise ValueError('--checkpoint_path: expected a train dir or a checkpoint prefix')
  if os.path.exists(config['dataset_dir']):  # a missing one: get_split says what to run
    errors.check_input_dir('dataset_dir', config['dataset_dir'], 'dataset directory')
  if config.get('timeout') and not config.get('eval_interval_secs'):
    raise ValueError('--timeout only applies to continuous evaluation: also set '
                     '--eval_interval_secs')
  path = config['checkpoint_path']
  if config.get('eval_interval_secs') and os.path.exists(path) and \
      not os.path.isdir(path):
    raise ValueError('--eval_interval_secs: --checkpoint_path=%s must be the train '
                     'dir to poll, not one checkpoint' % path)
  tta = config['eval_tta']
  if tta not in TTA_VIEWS:
    raise errors.UserError('--eval_tta=%s: expected one of %s'
                           % (tta, ', '.join(TTA_VIEWS)))
  errors.check_output_dir('eval_dir', resolve_eval_dir(config)[0])


def resolve_eval_dir(config):
  """(the directory evaluation writes to, the line saying why it is not --eval_dir).

  Never the train dir: TF-Slim's scripts pass --eval_dir equal to it, and that
  becomes its sub-directory eval/, which TensorBoard shows beside the training
  run. Unset (TF-Slim's /tmp/tfmodel/ mixed every model's results), it is derived
  from --checkpoint_path: <train_dir>/eval for a directory or a checkpoint of a
  train run (beside its run_config.json); <dir>/<name>_eval for another, such as
  TF-Slim's <dir>/<name>.ckpt, as one dir may hold several;
  <cache>/eval/<name> for a published short name.
  """
  path = config['checkpoint_path']
  given = config.get('eval_dir')
  if slim_checkpoint.is_short_name(path):
    train_dir = None
  elif config.get('eval_interval_secs') or os.path.isdir(path):
    train_dir = path  # polled, it may not exist yet
  else:
    train_dir = run_config_lib.train_dir_of(path)
  if given:
    if train_dir is None or os.path.realpath(given) != os.path.realpath(train_dir):
      return given, None
    eval_dir = os.path.join(train_dir, EVAL_SUBDIR)
    return eval_dir, ('--eval_dir=%s is the train dir of --checkpoint_path, whose '
                      'checkpoints stay untouched: writing the evaluation to %s'
                      % (given, eval_dir))
  if train_dir is None:
    eval_dir = os.path.join(slim_checkpoint.cache_dir(), EVAL_SUBDIR, path)
  elif train_dir == path or os.path.isfile(os.path.join(train_dir, run_config_lib.FILE)):
    eval_dir = os.path.join(train_dir, EVAL_SUBDIR)
  else:
    eval_dir = os.path.join(train_dir, _checkpoint_name(path) + '_eval')
  return eval_dir, '--eval_dir unset: writing the evaluation to %s' % eval_dir


def _checkpoint_name(path):
  """'inception_v1' of .../inception_v1.ckpt (-N), its .index or .data file, an archive."""
  name = re.sub(r'\.(index|meta|data-\d+-of-\d+)$', '', os.path.basename(path))
  return re.sub(r'(\.tar\.gz|\.tgz|\.tar|\.ckpt(-\d+)?)$', '', name) or name


def resolve(config, run_config):
  """The Setup of an evaluation, from the flags and the train run's run_config."""
  config = with_defaults(config)
  run_config_lib.check_model_name(config.get('model_name'), run_config)
  net = run_config_lib.resolve_net(config, run_config, config.get('model_name'),
                                   config.get('eval_image_size'))
  split = dataset_factory.get_split(config['dataset_name'],
                                    config['dataset_split_name'], config['dataset_dir'])
  offset = config['labels_offset']
  num_classes = split.num_classes - offset
  if num_classes < 2:
    raise ValueError('--labels_offset=%d leaves %d class(es) of the %d in %s'
                     % (offset, num_classes, split.num_classes, config['dataset_name']))
  run_config_lib.check_num_classes(
      num_classes, run_config,
      '--dataset_dir=%s has %d classes (%%(classes)d after --labels_offset=%d) but the '
      'checkpoint was trained for %%(trained)d (its run_config.json); evaluate on the '
      'dataset it was trained on, or set --labels_offset' % (
          config['dataset_dir'].replace('%', '%%'), split.num_classes, offset))
  channels = run_config_lib.output_channels(net, split.channels)
  class_names = [split.labels_to_names.get(i + offset, str(i + offset))
                 for i in range(num_classes)]
  return Setup(net.model_name, num_classes, net.image_size, channels,
               net.preprocessing_name, net.preprocess_options, net.net_options,
               class_names, split)


# ==============================================================================
# Test-time augmentation: views of the preprocessed batch, their logits averaged
# (logits, not probabilities, as airbench does).
# ==============================================================================

TTA_VIEWS = {'none': 1, 'flip': 2, 'flip_translate': 6}  # forward passes per image
TTA_SHIFT = 1  # pixels of flip_translate's shifts, as airbench's at 32x32


def _mirrored(images, weight):
  """The batch and its left-right mirror (NHWC: axis 2), weight / 2 each."""
  return [(weight / 2, images), (weight / 2, tf.reverse(images, axis=[2]))]


def _shifted(images, shift):
  """The batch shifted by `shift` pixels down-right, then up-left; the pixels
  that come in are the border reflected (no flat edge the net never saw)."""
  height, width = images.shape[1], images.shape[2]
  padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]], 'REFLECT')
  return [padded[:, :height, :width, :], padded[:, 2 * shift:, 2 * shift:, :]]


def check_tta(mode, height, width):
  """Raises UserError when the eval images are too small for --eval_tta=mode."""
  if mode == 'flip_translate' and min(height, width) <= TTA_SHIFT:
    raise errors.UserError(
        '--eval_tta=flip_translate shifts the images by %d pixel with reflected '
        'borders, which needs at least %dx%d pixels; the eval images are %dx%d '
        '(--eval_image_size): use --eval_tta=flip'
        % (TTA_SHIFT, TTA_SHIFT + 1, TTA_SHIFT + 1, height, width))


def tta_views(images, mode):
  """[(weight, images)] of --eval_tta=mode for a float [B, H, W, C] batch with a
  static H and W; the weights sum to 1.

  none            the batch
  flip            the batch and its mirror, 1/2 each
  flip_translate  the batch and its mirror, 1/4 each; the batch shifted by
                  TTA_SHIFT pixels down-right and up-left, and their mirrors,
                  1/8 each
  """
  if mode == 'none':
    return [(1.0, images)]
  if mode == 'flip':
    return _mirrored(images, 1.0)
  if mode == 'flip_translate':
    check_tta(mode, images.shape[1], images.shape[2])
    views = _mirrored(images, 0.5)
    for shifted in _shifted(images, TTA_SHIFT):
      views += _mirrored(shifted, 0.25)
    return views
  raise errors.UserError('--eval_tta=%s: expected one of %s'
                         % (mode, ', '.join(TTA_VIEWS)))


def tta_logits(logits_fn, images, mode):
  """The weighted mean of logits_fn (float32 logits) over the views of images."""
  if mode == 'none':
    return logits_fn(images)  # exactly the evaluation without TTA
  return tf.add_n([weight * logits_fn(view) for weight, view in tta_views(images, mode)])


# ==============================================================================
# Metrics, accumulated batch by batch in numpy.
# ==============================================================================


class Metrics(object):
  """Streaming accuracy, recall@k, cross-entropy and confusion matrix."""

  def __init__(self, num_classes, k=TOP_K):
    self.num_classes = num_classes
    self.k = k
    self.count = 0
    self.correct = 0
    self.in_top_k = 0
    self.loss_sum = 0.0
    self.confusion = np.zeros((num_classes, num_classes), np.int64)

  def update(self, logits, labels):
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
      raise ValueError('dataset label %d is outside [0, %d) after --labels_offset; '
                       'check --labels_offset and --dataset_dir' % (
                           labels.min() if labels.min() < 0 else labels.max(),
                           self.num_classes))
    rows = np.arange(len(labels))
    target = logits[rows, labels]
    predicted = np.argmax(logits, axis=1)
    # in_top_k: fewer than k classes score strictly higher than the label.
    rank = np.sum(logits > target[:, None], axis=1)
    self.in_top_k += int(np.sum((rank < self.k) & np.isfinite(target)))
    self.correct += int(np.sum(predicted == labels))
    top = np.max(logits, axis=1)
    log_sum_exp = top + np.log(np.sum(np.exp(logits - top[:, None]), axis=1))
    self.loss_sum += float(np.sum(log_sum_exp - target))
    np.add.at(self.confusion, (labels, predicted), 1)
    self.count += len(labels)

  def result(self):
    n = max(self.count, 1)
    per_class_n = self.confusion.sum(axis=1)
    diagonal = np.diag(self.confusion)
    per_class = [float(diagonal[i]) / per_class_n[i] if per_class_n[i] else None
                 for i in range(self.num_classes)]
    return {'accuracy': self.correct / n, 'recall_5': self.in_top_k / n,
            'loss': self.loss_sum / n, 'per_class_accuracy': per_class,
            'per_class_num_samples': per_class_n.tolist(),
            'confusion_matrix': self.confusion.tolist()}


# ==============================================================================
# One checkpoint.
# ==============================================================================


class Evaluator(object):
  """The model, input and step of one Setup; evaluate(prefix) runs one pass."""

  def __init__(self, config, setup):
    self.config = config = with_defaults(config)
    self.setup = setup
    self.use_ema = bool(config.get('moving_average_decay'))
    self.tta = config['eval_tta']
    check_tta(self.tta, setup.image_size, setup.image_size)
    with model_deploy.precision_policy(config.get('mixed_precision')):
      self.model = nets_factory.build_model(
          setup.model_name, setup.num_classes,
          (setup.image_size, setup.image_size, setup.channels), **setup.net_options)
    spec = tf.TensorSpec([None, setup.image_size, setup.image_size, setup.channels],
                         tf.float32)
    jit = jit_trial.setting(config.get('jit_compile')) is True  # auto: no XLA here
    self.logits_fn = tf.function(self._logits, input_signature=[spec], jit_compile=jit)
    preprocess_fn = preprocessing_factory.get_preprocessing(
        setup.preprocessing_name, is_training=False, **setup.preprocess_options)
    self.batch_size = config['batch_size']
    self.dataset = inputs.build_input(
        setup.split, preprocess_fn, self.batch_size, is_training=False,
        image_size=setup.image_size,
        num_parallel_calls=config.get('num_preprocessing_threads'),
        labels_offset=config['labels_offset'])
    self.num_batches = math.ceil(setup.split.num_samples / self.batch_size)
    if config.get('max_num_batches'):
      self.num_batches = min(self.num_batches, config['max_num_batches'])
      self.dataset = self.dataset.take(self.num_batches)

  def _logits(self, images):
    return tta_logits(self._net_logits, images, self.tta)

  def _net_logits(self, images):
    return tf.cast(self.model(images, training=False)['Logits'], tf.float32)

  def evaluate(self, prefix):
    """Restores prefix and runs one pass; returns the result dict (see write_result)."""
    checkpoints.restore_model(self.model, prefix, use_ema=self.use_ema,
                              fine_tuning=False)
    step = checkpoints.step_of(prefix)
    if step is None:
      step = _number_of(prefix)
    setup = self.setup
    metrics = Metrics(setup.num_classes)
    start = time.time()
    batches = progress(self.dataset, self.num_batches, 'eval step %d' % step)
    with errors.reading('--dataset_dir=%s' % self.config['dataset_dir'],
                        're-run download_and_convert_data.py for this dataset',
                        locate=setup.split.find_damage):
      for images, labels in batches:
        metrics.update(self.logits_fn(images).numpy(), labels.numpy())
    seconds = time.time() - start
    expected = min(setup.split.num_samples, self.num_batches * self.batch_size)
    if metrics.count != expected:  # a shard cut at a record boundary reads cleanly
      raise errors.UserError(
          '--dataset_dir=%s: read %d images of the %s split where its %s counts %d: '
          'the shards do not match it; re-run download_and_convert_data.py for this '
          'dataset'
          % (self.config['dataset_dir'], metrics.count, setup.split.split_name,
             'dataset_info.json', expected))
    values = metrics.result()
    config = self.config
    return {
        'step': step, 'checkpoint_path': os.path.abspath(prefix),
        'model_name': setup.model_name, 'dataset_name': config['dataset_name'],
        'dataset_split_name': config['dataset_split_name'],
        'dataset_dir': os.path.abspath(config['dataset_dir']),
        'num_samples': metrics.count, 'split_num_samples': setup.split.num_samples,
        'num_batches': self.num_batches, 'batch_size': self.batch_size,
        'image_size': setup.image_size, 'channels': setup.channels,
        'preprocessing_name': setup.preprocessing_name,
        'labels_offset': config['labels_offset'],
        'moving_average': self.use_ema, 'eval_tta': self.tta,
        'metrics': {'accuracy': values['accuracy'], 'recall_5': values['recall_5'],
                    'loss': values['loss']},
        'class_names': setup.class_names,
        'per_class_accuracy': [
            {'class_id': i, 'name': name, 'num_samples': n, 'accuracy': acc}
            for i, (name, n, acc) in enumerate(zip(
                setup.class_names, values['per_class_num_samples'],
                values['per_class_accuracy']))],
        'confusion_matrix': values['confusion_matrix'],
        'seconds': seconds, 'images_per_sec': metrics.count / max(seconds, 1e-9),
        'evaluated_at': datetime.datetime.now().isoformat(timespec='seconds'),
    }


def progress(batches, total, desc, stream=None,
             plain_secs=hooks.PLAIN_PROGRESS_SECS):
  """The batches, with a progress bar on a terminal; elsewhere (a pipe, a log
  file) a log line at least every plain_secs, as training does."""
  stream = stream or sys.stderr
  if stream.isatty():
    yield from tqdm.tqdm(batches, total=total, file=stream, unit='batch', desc=desc,
                         leave=False)
    return
  mark = time.time()
  for done, batch in enumerate(batches, 1):
    yield batch
    if done < total and time.time() - mark >= plain_secs:
      logging.info('%s: %d of %d batches', desc, done, total)
      mark = time.time()


def _number_of(prefix):
  """The N of '.../ckpt-N', for checkpoints without a step variable."""
  tail = os.path.basename(prefix).rsplit('-', 1)[-1]
  return int(tail) if tail.isdigit() else 0


# ==============================================================================
# Results: JSON, TensorBoard, stdout.
# ==============================================================================


def result_path(eval_dir, step):
  return os.path.join(eval_dir, RESULT_FORMAT % step)


def write_result(eval_dir, writer, result):
  """eval_<step>.json (atomically) and the eval/* scalars at the checkpoint's step."""
  step = result['step']
  writer.scalars(step, {'eval/Accuracy': result['metrics']['accuracy'],
                        'eval/Recall_5': result['metrics']['recall_5'],
                        'eval/Loss': result['metrics']['loss']})
  writer.flush()
  path = result_path(eval_dir, step)
  files.write_json_atomic(path, result)
  return path


# A net that gives one class to this share of the images (more than the class
# holds) has learnt nothing it can use at evaluation; one_class_warning says why.
ONE_CLASS_SHARE = 0.9
# Batch norm moving averages still hold more than this part of their initial
# values (decay ** steps): evaluation normalises with statistics of no batch.
STALE_AVERAGES = 0.25


def one_class_warning(result, trained_run):
  """One line when (nearly) every image is given one class, with the likely cause
  and the flag that changes it; None otherwise.

  trained_run: the run_config.json of the checkpoint's train run, or None.
  """
  confusion = np.asarray(result['confusion_matrix'])
  total = int(confusion.sum())
  if total < 10 or len(confusion) < 2:
    return None
  predicted = confusion.sum(axis=0)
  top = int(predicted.argmax())
  share = predicted[top] / total
  if share < ONE_CLASS_SHARE or confusion[top].sum() / total >= ONE_CLASS_SHARE:
    return None
  line = ('%.0f %% of the %d images were given class %d (%s)'
          % (100 * share, total, top, result['class_names'][top]))
  decay = None
  if trained_run:
    decay = trained_run.get('batch_norm_decay') or nets_factory.builder_defaults(
        result['model_name']).get('batch_norm_decay')
  if decay and decay ** result['step'] > STALE_AVERAGES:
    return ('%s: the batch norm moving averages still hold mostly their initial '
            'values (decay %g averages over about %d steps; this checkpoint is at '
            'step %d); train longer, or with --batch_norm_decay=0.99 or less'
            % (line, decay, round(1 / (1 - decay)), result['step']))
  return ('%s: the net does not tell the classes apart; train longer, or check '
          '--learning_rate and the data' % line)


def format_table(result):
  """The overall metrics and per-class accuracy as a plain-text table."""
  m = result['metrics']
  tta = result.get('eval_tta', 'none')
  lines = [
      '%s step %d on %s/%s: %d images in %.1f s (%.0f images/s)%s' % (
          result['checkpoint_path'], result['step'], result['dataset_name'],
          result['dataset_split_name'], result['num_samples'], result['seconds'],
          result['images_per_sec'],
          '' if tta == 'none' else ', --eval_tta=%s (%d views per image)' % (
              tta, TTA_VIEWS[tta])),
      '  eval/Accuracy  %.4f' % m['accuracy'],
      '  eval/Recall_5  %.4f' % m['recall_5'],
      '  eval/Loss      %.4f' % m['loss'],
  ]
  width = max([len('class')] + [len(c['name']) for c in result['per_class_accuracy']])
  lines.append('  %5s  %-*s  %7s  %8s' % ('id', width, 'class', 'images', 'accuracy'))
  for c in result['per_class_accuracy']:
    accuracy = '%8.4f' % c['accuracy'] if c['accuracy'] is not None else '%8s' % '-'
    lines.append('  %5d  %-*s  %7d  %s' % (c['class_id'], width, c['name'],
                                           c['num_samples'], accuracy))
  return '\n'.join(lines)


# ==============================================================================
# Entry point: once, or continuously.
# ==============================================================================


class _Session(object):
  """Builds the Evaluator lazily (the first checkpoint may not exist yet)."""

  def __init__(self, config):
    self.config = config
    self.evaluator = None
    self.writer = None
    self.current = None  # the checkpoint being evaluated
    self.written = []  # eval_<step>.json paths

  def evaluate(self, prefix):
    self.current = prefix
    config = self.config
    trained_run = run_config_lib.read(prefix)
    run_config = trained_run or slim_checkpoint.published_settings(prefix)
    if self.evaluator is None:
      self.evaluator = Evaluator(config, resolve(config, run_config))
    else:
      run_config_lib.check_model_name(config.get('model_name'), run_config)
    result = self.evaluator.evaluate(prefix)
    if self.writer is None:  # only now: a failed evaluation leaves no eval_dir behind
      os.makedirs(config['eval_dir'], exist_ok=True)
      self.writer = summaries.Writer(config['eval_dir'])
    path = write_result(config['eval_dir'], self.writer, result)
    self.written.append(path)
    self.current = None
    print(format_table(result), flush=True)
    warning = one_class_warning(result, trained_run)
    if warning:
      logging.warning(warning)
    logging.info('wrote %s', path)
    return result

  def undone(self):
    """What a stop leaves undone, for its one line."""
    done = '; written before: %s' % ', '.join(self.written) if self.written else ''
    if self.current:
      return 'while evaluating %s: no result was written for it%s' % (self.current, done)
    return 'between evaluations' + done if done else (
        'before any evaluation: no result was written')

  def close(self):
    if self.writer is not None:
      self.writer.close()


def run(config):
  """Evaluates from the flags' values; returns the list of result dicts written.

  Raises ValueError / FileNotFoundError with a one-line message for bad input.
  """
  config = with_defaults(config)
  check_config(config)
  eval_dir, why = resolve_eval_dir(config)
  if why:
    logging.info(why)
  config = dict(config, eval_dir=eval_dir)
  session = _Session(config)
  try:
    if config.get('eval_interval_secs'):
      return _continuous(config, session)
    prefix = checkpoints.require_intact(config['checkpoint_path'])
    return [session.evaluate(prefix)]
  except errors.Stopped as e:  # SIGTERM (slimkit/cli.py)
    raise errors.Stopped(e.signum, '%s %s' % (e, session.undone())) from None
  finally:
    session.close()


def pending_checkpoints(train_dir, eval_dir):
  """[(step, prefix)] of the train dir's checkpoints without eval_<step>.json, by step."""
  state = tf.train.get_checkpoint_state(train_dir)
  if state is None:
    return []
  out = []
  for path in state.all_model_checkpoint_paths:
    prefix = os.path.join(train_dir, os.path.basename(path))  # the dir may have moved
    try:
      step = checkpoints.step_of(prefix)
    except checkpoints.READ_ERRORS:
      if not os.path.exists(prefix + '.index'):
        continue  # deleted by the trainer's max_to_keep since the state was read
      step = None  # damaged: _continuous names it
    step = _number_of(prefix) if step is None else step
    if not os.path.exists(result_path(eval_dir, step)):
      out.append((step, prefix))
  return sorted(out)


def final_step_done(train_dir, eval_dir):
  """True once the train run's max_number_of_steps has a result in eval_dir."""
  run_config = run_config_lib.read(train_dir) or {}
  last = run_config.get('max_number_of_steps')
  if last is None:
    return False
  state = tf.train.get_checkpoint_state(train_dir)
  if state is None or not state.model_checkpoint_path:
    return False
  newest = os.path.join(train_dir, os.path.basename(state.model_checkpoint_path))
  try:
    step = checkpoints.step_of(newest)
  except checkpoints.READ_ERRORS:
    return False
  return step is not None and step >= last and os.path.exists(
      result_path(eval_dir, step))


def _continuous(config, session):
  """Evaluates each new checkpoint of the train dir until the final step or timeout."""
  train_dir = config['checkpoint_path']
  eval_dir = config['eval_dir']
  interval = config['eval_interval_secs']
  timeout = config.get('timeout')
  results = []
  damaged = set()
  last_new = time.time()
  logging.info('watching %s every %d s%s', train_dir, interval,
               ' (timeout %d s)' % timeout if timeout else '')
  while True:
    for step, prefix in pending_checkpoints(train_dir, eval_dir):
      why = checkpoints.verify(prefix) if os.path.exists(prefix + '.index') else None
      if why is not None:
        if prefix not in damaged:
          logging.warning('step %d: %s is damaged or truncated (%s); skipped', step,
                          prefix, why)
          damaged.add(prefix)
        continue
      try:
        results.append(session.evaluate(prefix))
      except (tf.errors.NotFoundError, FileNotFoundError):
        if checkpoints.latest(prefix) is not None:
          raise
        logging.info('step %d: %s was deleted before it could be read; skipped',
                     step, prefix)
      last_new = time.time()
    if final_step_done(train_dir, eval_dir):
      logging.info('the final step of %s is evaluated: stopping', train_dir)
      return results
    waited = time.time() - last_new
    if timeout and waited >= timeout:
      logging.info('no new checkpoint in %s for %d s (--timeout): stopping',
                   train_dir, timeout)
      return results
    pause = interval if not timeout else min(interval, timeout - waited)
    time.sleep(max(pause, 0.0))
