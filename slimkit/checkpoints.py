"""Checkpoints: the one place that writes and reads them.

A training checkpoint is a tf.train.Checkpoint with
  step       int64 variable, the global step
  model      {variable.path: variable} for every model variable (weights and BN stats)
  ema        {variable.path: shadow} when --moving_average_decay is set
  optimizer  the Keras optimizer (slots, iterations), for an exact resume
Model variables are keyed by path, not by object position, so a checkpoint can be read
into a net with another head (fine-tuning), and a mismatch can be named variable by
variable instead of TF-Slim's "Assign requires shapes of both tensors to match".

Beside the checkpoints, run_config.json (slimkit/run_config.py) records what built
them, so eval and export can rebuild the net.
"""

import os
import re
import shutil

from absl import logging
import numpy as np
import tensorflow as tf

from common import errors
from nets import nets_factory
from nets import scopes
from slimkit import slim_checkpoint

CHECKPOINT_NAME = 'ckpt'
_SUFFIX = '/.ATTRIBUTES/VARIABLE_VALUE'


def by_path(variables):
  """{variable.path: variable}; paths are unique within a Keras model."""
  out = {}
  for v in variables:
    if v.path in out:
      raise ValueError('two model variables share the path %r' % v.path)
    out[v.path] = v
  return out


def model_variables(model):
  """model.variables without random-number-generator states.

  Keras 3 gives each Dropout a SeedGenerator whose state variable is named by a
  process-wide counter ('seed_generator_1/...'), so its path changes with the
  number of models built before; it is not a weight (Slim's
  get_model_variables() had no such thing) and is neither saved nor restored.
  """
  return [v for v in model.variables
          if not v.path.endswith('seed_generator_state')]


def make_checkpoint(model, step, optimizer=None, ema=None):
  """The tf.train.Checkpoint that training saves and resumes."""
  parts = {'step': step, 'model': by_path(model_variables(model))}
  if optimizer is not None:
    parts['optimizer'] = optimizer
  if ema:
    parts['ema'] = dict(ema)
  return tf.train.Checkpoint(**parts)


def latest(path):
  """A checkpoint prefix from a file or directory path, or None if there is none yet.

  Accepts a train dir (its newest checkpoint), a prefix ('.../ckpt-100'), or one of
  the prefix's files ('.../ckpt-100.index', '.../ckpt-100.data-00000-of-00001').
  """
  if not path:
    return None
  path = str(path)
  if os.path.isdir(path):
    return tf.train.latest_checkpoint(path)
  for suffix in ('.index', '.data-00000-of-00001'):
    if path.endswith(suffix):
      path = path[:-len(suffix)]
  if '.data-' in os.path.basename(path):
    path = path[:path.rindex('.data-')]
  return path if tf.io.gfile.exists(path + '.index') else None


def require_latest(path, flag='--checkpoint_path'):
  """Like latest() but raises a one-line error naming the flag.

  Also takes TF-Slim's checkpoints in every form (see slim_checkpoint.resolve):
  a V1 file, an archive, a short name of its published table.
  """
  prefix = latest(path)
  if prefix is not None and os.path.isdir(prefix + '_temp'):
    # A train dir names only finished checkpoints (its 'checkpoint' file); a prefix
    # may be one TensorFlow is still renaming into place.
    raise errors.UserError(
        '%s=%s: checkpoint %s is still being written (%s_temp exists; if no training '
        'runs there, its save was cut short); pass the train dir for its newest '
        'finished checkpoint' % (flag, path, prefix, os.path.basename(prefix)))
  if prefix is None and path:
    prefix = slim_checkpoint.resolve(path, flag)
  if prefix is None:
    if path and os.path.isdir(str(path)):
      raise FileNotFoundError(
          '%s=%s: no checkpoint in this directory yet (expected ckpt-<step>.index '
          'and a "checkpoint" file written by train_image_classifier.py)' % (flag, path))
    raise FileNotFoundError(
        '%s=%s: no such checkpoint (expected a train dir, a checkpoint prefix such '
        'as <train_dir>/ckpt-1000, a TF-Slim .ckpt or .tar.gz, or one of %s)'
        % (flag, path, ', '.join(sorted(slim_checkpoint.PUBLISHED))))
  return prefix


def step_of(prefix):
  """The global step stored in a checkpoint."""
  reader = tf.train.load_checkpoint(prefix)
  key = 'step' + _SUFFIX
  for key in (key, 'global_step'):  # ours, TF-Slim's
    if reader.has_tensor(key):
      return int(reader.get_tensor(key))
  return None


def _unescape(name):
  # Inverse of TF's escape_local_name: '..' -> '.', '.S' -> '/'.
  out, i = [], 0
  while i < len(name):
    if name[i] == '.' and i + 1 < len(name):
      out.append('/' if name[i + 1] == 'S' else name[i + 1])
      i += 2
    else:
      out.append(name[i])
      i += 1
  return ''.join(out)


def read_variables(prefix, group='model'):
  """{variable.path: np.ndarray} of one group ('model' or 'ema') of a checkpoint."""
  with errors.reading(prefix, DAMAGED_FIX):
    reader = tf.train.load_checkpoint(prefix)
    head = group + '/'
    out = {}
    for key in reader.get_variable_to_shape_map():
      if key.startswith(head) and key.endswith(_SUFFIX):
        local = key[len(head):-len(_SUFFIX)]
        if '/' in local:  # a nested object, e.g. optimizer slots: not a model variable
          continue
        out[_unescape(local)] = reader.get_tensor(key)
  return out


def restore_model(model, checkpoint_path, model_scope=None, exclude_scopes=None,
                  ignore_missing_vars=False, use_ema=False, flag='--checkpoint_path',
                  fine_tuning=True):
  """Assigns a model's variables from a checkpoint, by variable path.

  exclude_scopes: Slim-style comma list; those variables keep their fresh values.
  use_ema: read the EMA shadow values (falls back to an error if the run had none).
  Returns (restored paths, excluded paths, missing paths that were ignored).
  Raises ValueError naming every variable whose shape differs, and every missing one
  unless ignore_missing_vars; its advice names the fine-tuning flags only when
  fine_tuning (evaluation, export and a teacher do not have them).
  """
  prefix = require_latest(checkpoint_path, flag)
  model_scope = model_scope if model_scope is not None else model.name
  if slim_checkpoint.is_slim(prefix, flag):
    names = slim_checkpoint.slim_names(model, model_scope)
    values = slim_checkpoint.read_values(prefix, names, use_ema, flag)
    return _assign(model, model_scope, prefix, values, names.get, exclude_scopes,
                   ignore_missing_vars, flag, slim_prefix=prefix,
                   fine_tuning=fine_tuning, source=checkpoint_path)
  values = read_variables(prefix, 'ema' if use_ema else 'model')
  if use_ema and not values:
    raise ValueError('%s=%s: checkpoint has no moving averages; train with '
                     '--moving_average_decay or evaluate without it' % (flag, prefix))
  if not values:
    raise ValueError('%s=%s: not a checkpoint written by this project (no model '
                     'variables found)' % (flag, prefix))
  return _assign(model, model_scope, prefix, values,
                 lambda p: scopes.to_slim(model_scope, p), exclude_scopes,
                 ignore_missing_vars, flag, fine_tuning=fine_tuning,
                 source=checkpoint_path)


def _assign(model, model_scope, prefix, values, spell, exclude_scopes,
            ignore_missing_vars, flag, slim_prefix=None, fine_tuning=True,
            source=None):
  """Assigns values ({path: array}); errors name variables as spell(path) does.

  source: the checkpoint as the user gave it, for the commands advice prints.
  """
  excluded, kept, unmatched = scopes.select(model_variables(model), model_scope,
                                            exclude_scopes)
  if unmatched:
    raise ValueError('--checkpoint_exclude_scopes: %s matched no variable of %s (its '
                     'top-level scopes: %s)' % (','.join(unmatched), model_scope,
                                                ', '.join(top_scopes(model))))
  restored, missing, wrong = [], [], []
  for v in kept:
    if v.path not in values:
      missing.append(v.path)
      continue
    value = values[v.path]
    if tuple(value.shape) != tuple(v.shape):
      wrong.append((v.path, list(value.shape), list(v.shape)))
      continue
    restored.append((v, value))
  if wrong:
    hint = sorted({scopes.to_slim(model_scope, _head(p)) for p, _, _ in wrong})
    looks = _looks_like(model, model_scope, slim_prefix)
    if looks:
      raise ValueError('%s=%s does not fit %s: %s' % (flag, prefix, model_scope, looks))
    detail = '; '.join('%s checkpoint %s vs model %s' % (spell(p), a, b)
                       for p, a, b in wrong[:3])
    more = ' and %d more' % (len(wrong) - 3) if len(wrong) > 3 else ''
    advice = _classes_advice(wrong, hint, source or prefix, fine_tuning) or (
        'Exclude them with --checkpoint_exclude_scopes=%s' % ','.join(hint)
        if fine_tuning else _OTHER_NET)
    raise ValueError('%s=%s does not fit %s: %d variable(s) differ in shape: %s%s. %s'
                     % (flag, prefix, model_scope, len(wrong), detail, more, advice))
  if missing and not ignore_missing_vars:
    hint = sorted({scopes.to_slim(model_scope, _head(p)) for p in missing})
    looks = _looks_like(model, model_scope, slim_prefix)
    if looks:
      raise ValueError('%s=%s does not fit %s: %s' % (flag, prefix, model_scope, looks))
    shown = ', '.join(spell(p) for p in missing[:5])
    more = ' and %d more' % (len(missing) - 5) if len(missing) > 5 else ''
    advice = ('exclude them with --checkpoint_exclude_scopes=%s or pass '
              '--ignore_missing_vars to keep their fresh values' % ','.join(hint)
              if fine_tuning else _OTHER_NET)
    raise ValueError('%s=%s lacks %d variable(s) of %s: %s%s; %s' % (
        flag, prefix, len(missing), model_scope, shown, more, advice))
  for v, value in restored:
    v.assign(value.astype(np.dtype(v.dtype)) if value.dtype != np.dtype(v.dtype)
             else value)
  return [v.path for v, _ in restored], [v.path for v in excluded], missing


_OTHER_NET = ('Was it trained for another net or class count? Use the --model_name and '
              'dataset (and --labels_offset) it was trained with')


def _classes_advice(wrong, head_scopes, source, fine_tuning):
  """What to do when only the classifier's class count differs, else None.

  One class apart is TF-Slim's background class: --labels_offset fixes that. Any
  other count is another label set: its classifier must be trained anew.
  """
  if not all(len(a) == len(b) and a[:-1] == b[:-1] for _, a, b in wrong):
    return None
  ours = {b[-1] for _, _, b in wrong}
  theirs = {a[-1] for _, a, _ in wrong}
  if len(ours) != 1 or len(theirs) != 1:
    return None
  ours, theirs = ours.pop(), theirs.pop()
  counts = ('The checkpoint has %d classes, the net %d (the dataset\'s classes minus '
            '--labels_offset)' % (theirs, ours))
  if theirs == ours - 1:
    return ('%s: raise --labels_offset by 1 (TF-Slim\'s 1000-class checkpoints on a '
            '1001-class dataset need --labels_offset=1)' % counts)
  if theirs == ours + 1:
    return ('%s: lower --labels_offset by 1 (TF-Slim\'s 1001-class checkpoints keep '
            'the background class: --labels_offset=0)' % counts)
  scopes_text = ','.join(head_scopes)
  if fine_tuning:
    return ('%s: a new classifier starts with --checkpoint_exclude_scopes=%s (and '
            '--trainable_scopes=%s to train it alone first)'
            % (counts, scopes_text, scopes_text))
  return ('%s: its classifier is for other classes; fine-tune one for this dataset '
          'first: train_image_classifier.py --checkpoint_path=%s '
          '--checkpoint_exclude_scopes=%s --trainable_scopes=%s --train_dir=DIR with '
          'this --model_name and dataset, then use --checkpoint_path=DIR'
          % (counts, source, scopes_text, scopes_text))


def _looks_like(model, model_scope, slim_prefix):
  """'it looks like a checkpoint of X...' when a TF-Slim checkpoint is of another net
  (another model scope, MobileNet width or ResNet depth), else None."""
  if slim_prefix is None:
    return None
  guess = slim_checkpoint.identify(slim_prefix)
  if guess is None or guess == slim_checkpoint.identify_model(model, model_scope):
    return None
  if guess not in nets_factory.networks_map:  # a scope or shape we build no net for
    return ('it is a checkpoint of another net (%s), which no --model_name here '
            'builds; pass a checkpoint of %s' % (guess, model_scope))
  return ('it looks like a checkpoint of %s; pass --model_name=%s, or a checkpoint '
          'of %s' % (guess, guess, model_scope))


def _head(path):
  """First scope component of a variable path: 'Logits.Conv2d_0c_1x1/kernel' -> 'Logits'."""
  return path.split('/')[0].split(scopes.SEP)[0]


def top_scopes(model):
  """The distinct first components of a model's variable paths, in order."""
  seen = []
  for v in model.variables:
    if _head(v.path) not in seen:
      seen.append(_head(v.path))
  return seen


# ==============================================================================
# Integrity: a checkpoint that reads in full, and resuming past damaged ones.
# ==============================================================================

DAMAGED_FIX = ('use an intact checkpoint (an older ckpt-<step> of the same train dir) '
               'or train again')
DAMAGED_MARK = '.damaged'
_STEP_FILE = re.compile(r'^%s-(\d+)\.index$' % CHECKPOINT_NAME)
# What reading a damaged bundle raises (IndexError: 'Read less bytes than requested').
READ_ERRORS = (tf.errors.OpError, IndexError, EOFError, ValueError, OSError)


def verify(prefix):
  """None if every tensor of the checkpoint reads in full, else why not (one line).

  TensorFlow's bundle keeps a CRC32C per tensor and checks it on every read, so
  reading each tensor once finds a cut or a flipped byte (it costs one read of the
  .data file).
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)
  except READ_ERRORS as e:
    return errors.first_line(e)
  return None


def step_prefixes(train_dir):
  """The train dir's ckpt-<step> prefixes on disk, newest first."""
  found = []
  for name in os.listdir(train_dir):
    match = _STEP_FILE.match(name)
    if match:
      found.append((int(match.group(1)), os.path.join(train_dir, name[:-len('.index')])))
  return [prefix for _, prefix in sorted(found, reverse=True)]


def newest_intact(train_dir):
  """(newest prefix of train_dir that reads in full or None, [(damaged, why)] newer)."""
  damaged = []
  for prefix in step_prefixes(train_dir):
    why = verify(prefix)
    if why is None:
      return prefix, damaged
    damaged.append((prefix, why))
  return None, damaged


def require_intact(path, flag='--checkpoint_path'):
  """require_latest(path) that reads in full, or a one-line error naming the flag."""
  prefix = require_latest(path, flag)
  why = verify(prefix)
  if why is None:
    return prefix
  advice = DAMAGED_FIX
  if os.path.isdir(str(path)):
    intact, _ = newest_intact(str(path))
    if intact:
      advice = 'its newest intact checkpoint is %s=%s' % (flag, intact)
  raise errors.UserError('%s=%s: checkpoint %s is damaged or truncated (%s); %s'
                         % (flag, path, prefix, why, advice))


def set_aside(prefix):
  """Renames a damaged checkpoint's files to <prefix>.damaged[-N].*; returns that prefix.

  Kept for the user to inspect, and out of the way of a new save at the same step
  and of the checkpoint rotation (max_checkpoints_to_keep).
  """
  directory, base = os.path.split(prefix)
  target, n = prefix + DAMAGED_MARK, 1
  taken = lambda t: any(name.startswith(os.path.basename(t) + '.')
                        for name in os.listdir(directory))
  while taken(target):
    n += 1
    target = '%s%s-%d' % (prefix, DAMAGED_MARK, n)
  for name in os.listdir(directory):
    if name.startswith(base + '.') and not name.startswith(base + DAMAGED_MARK):
      os.replace(os.path.join(directory, name),
                 os.path.join(directory, os.path.basename(target) + name[len(base):]))
  return target


# What a save leaves until it completes: TensorFlow writes '<prefix>_temp/' and
# renames its files into place, and writes the state file as 'checkpoint.tmp<hex>'.
_UNFINISHED = re.compile(r'^(%s-\d+_temp|checkpoint\.tmp[0-9a-f]{32})$' % CHECKPOINT_NAME)


def discard_unfinished(train_dir):
  """Removes the temporaries of saves that never completed (a crash, a full disk).

  Only for the holder of the train dir's lock: another writer's save in progress
  looks the same.
  """
  for name in os.listdir(train_dir):
    if _UNFINISHED.match(name):
      path = os.path.join(train_dir, name)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.remove(path)


def discard_failed_save(prefix, before):
  """After the save of prefix failed: removes the files it made, unless they read in
  full (only the state file failed: resume finds it on disk), and the temporaries.

  before: the names in the train dir before the save began (never removed).
  """
  directory, base = os.path.split(prefix)
  if not os.path.isdir(directory):
    return
  discard_unfinished(directory)
  made = [name for name in os.listdir(directory)
          if name.startswith(base + '.') and name not in before]
  if made and (not os.path.exists(prefix + '.index') or verify(prefix) is not None):
    for name in made:
      os.remove(os.path.join(directory, name))


def prepare_resume(train_dir):
  """Makes the train dir's newest intact checkpoint the one training resumes from.

  Damaged newer checkpoints are set aside (never deleted) and dropped from the
  'checkpoint' state file, which is rewritten from the files on disk (so a damaged
  state file is repaired too); what unfinished saves left is removed. Raises a
  one-line error if every checkpoint is damaged. Returns the resume prefix or None.
  Only for the holder of the train dir's lock.
  """
  if not os.path.isdir(train_dir):
    return None
  discard_unfinished(train_dir)
  prefixes = step_prefixes(train_dir)
  if not prefixes:
    return None
  intact, damaged = newest_intact(train_dir)
  if intact is None:
    raise errors.UserError(
        '--train_dir=%s: every checkpoint is damaged or truncated (%s: %s); move them '
        'away to train from scratch, or pass a new --train_dir'
        % (train_dir, damaged[0][0], damaged[0][1]))
  for prefix, why in damaged:
    kept = set_aside(prefix)
    logging.warning('resume: skipped %s, damaged or truncated (%s); its files are kept '
                    'as %s.*', prefix, why, kept)
  state_paths = _state_paths(train_dir)
  keep = [p for p in prefixes if p not in dict(damaged)]
  ordered = [p for p in state_paths if p in keep] or sorted(keep, key=_step_number)
  if intact not in ordered:
    ordered.append(intact)
  if damaged or state_paths[-1:] != [intact]:
    tf.compat.v1.train.update_checkpoint_state(  # relative: the dir may move
        train_dir, os.path.basename(intact),
        all_model_checkpoint_paths=[os.path.basename(p) for p in ordered])
  return intact


def _state_paths(train_dir):
  """The 'checkpoint' file's list, oldest first, in train_dir ([] if unreadable)."""
  try:
    state = tf.train.get_checkpoint_state(train_dir)
  except Exception:  # pylint: disable=broad-except  (a damaged text proto)
    return []
  if state is None:
    return []
  return [os.path.join(train_dir, os.path.basename(p))
          for p in state.all_model_checkpoint_paths]


def _step_number(prefix):
  return int(prefix.rsplit('-', 1)[-1])
