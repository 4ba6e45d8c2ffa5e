"""The hooks of the host loop (slimkit/loop.py): what happens between calls.

  Progress     log lines; a progress bar on a terminal, else a line at least
               every minute, so a long run is never silent
  Summaries    TensorBoard scalars (and histograms)
  Saver        checkpoints on --save_interval_*, and at the end
  StatsFile    train_stats.json (how long the run took)

A hook has every_steps (calls end on its multiples; None: no need) and
begin(loop), after_call(loop, call) and end(loop, call), call being a loop.Call
(the last one, or None at the end of a run that made none).
"""

import logging as std_logging
import os
import sys
import time

from absl import logging
import keras
import tqdm

from common import files
from deployment import cpu
from nets import scopes
from slimkit import checkpoints
from slimkit import learning_rate as learning_rate_lib
from slimkit import run_config as run_config_lib
from slimkit import step as step_lib

PLAIN_PROGRESS_SECS = 60.0   # without a terminal, a line at least this often


class Hook(object):
  """Acts between calls. every_steps: calls end on its multiples (None: no need)."""

  every_steps = None

  def begin(self, loop):
    pass

  def after_call(self, loop, call):
    pass

  def end(self, loop, call):
    """After the last call (call is None if there was none)."""


def due(step, mark, now, every_steps, every_secs):
  """Step-based when every_steps is set, else time-based (0 = never).

  mark: (step, time) of the last time it was done.
  """
  if every_steps:
    return step // every_steps > mark[0] // every_steps
  return bool(every_secs) and every_secs > 0 and now - mark[1] >= every_secs


def values_of(state, call, since):
  """The call's metrics by name, with accuracy, learning rate and the rates since
  the mark `since` = (step, time)."""
  step, metrics = call.step, call.metrics
  images = (step - since[0]) * state.global_batch
  seconds = max(call.now - since[1], 1e-9)
  values = {name: float(metrics[i])
            for i, name in enumerate(step_lib.METRICS[:-1])}
  values['accuracy'] = float(metrics[-1]) / state.global_batch
  values['learning_rate'] = learning_rate_lib.value_at(state.schedule, step)
  values['images_per_sec'] = images / seconds
  values['sec_per_step'] = seconds / max(1, step - since[0])
  return values


def _duration(seconds):
  seconds = int(round(seconds))
  return '%d:%02d:%02d' % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class _ClearBar(std_logging.Filter):
  """Clears the progress bar before a log line, so the line does not land on it;
  the bar is drawn again below the line at its next update."""

  def __init__(self, bar):
    super().__init__()
    self.bar = bar

  def filter(self, record):
    self.bar.clear()
    return True


class Progress(Hook):
  """A log line every log_every steps (and at max_steps); between them a progress
  bar (step, images/s, loss, ETA) when `stream` is a terminal, else a plain line
  at least every `plain_secs`."""

  def __init__(self, log_every, distilling=False, stream=None,
               plain_secs=PLAIN_PROGRESS_SECS):
    self.every_steps = log_every
    self.distilling = distilling
    self.stream = stream or sys.stderr
    self.plain_secs = plain_secs
    self.mark = None  # (step, time) of the last line
    self.bar = None
    self.filter = None

  def begin(self, loop):
    self.mark = (loop.start_step, time.time())
    if self.bar is None and self.stream.isatty():
      self.bar = tqdm.tqdm(total=loop.max_steps, initial=loop.start_step,
                           file=self.stream, unit='step', desc='train',
                           dynamic_ncols=True, leave=False,
                           mininterval=0)  # drawn once per call, no more
      self.filter = _ClearBar(self.bar)
      logging.get_absl_handler().addFilter(self.filter)

  def after_call(self, loop, call):
    every = self.every_steps
    if call.first and call.step // every == call.previous // every:
      self.mark = (call.step, call.now)  # rates over steady steps, without tracing
    if self.bar is not None:
      seconds = max(call.now - call.began, 1e-9)
      self.bar.set_postfix_str('loss %.4f, %.1f images/s' % (
          float(call.metrics[0]),
          (call.step - call.previous) * loop.state.global_batch / seconds),
                               refresh=False)
      self.bar.update(call.step - call.previous)
    if (call.step // every > call.previous // every or
        call.step == loop.max_steps or
        (self.bar is None and call.now - self.mark[1] >= self.plain_secs)):
      self.log(loop, call)
      self.mark = (call.step, call.now)

  def log(self, loop, call):
    v = values_of(loop.state, call, self.mark)
    total = str(call.step)
    eta = ''
    if loop.max_steps:
      total = '%d/%d' % (call.step, loop.max_steps)
      eta = ', ETA %s' % _duration((loop.max_steps - call.step) * v['sec_per_step'])
    soft = (', aux %.4f' % v['aux_loss']) if loop.state.has_aux else ''
    if self.distilling:
      soft += ', distillation %.4f' % v['distillation_loss']
    logging.info('step %s: loss %.4f (cross-entropy %.4f%s), lr %.4g, accuracy %.3f, '
                 '%.1f images/s, %.3f s/step%s', total, v['total_loss'],
                 v['cross_entropy'], soft, v['learning_rate'], v['accuracy'],
                 v['images_per_sec'], v['sec_per_step'], eta)

  def end(self, loop, call):
    self.close()

  def close(self):
    """Removes the bar (also after an error)."""
    if self.bar is not None:
      logging.get_absl_handler().removeFilter(self.filter)
      self.bar.close()
      self.bar = None


class Summaries(Hook):
  """TensorBoard scalars of the last step of a call, on --save_summaries_*; weight
  histograms with --summarize_histograms."""

  def __init__(self, writer, every_steps=None, every_secs=None, histograms=False,
               distilling=False):
    self.writer = writer
    self.every_steps = every_steps
    self.every_secs = every_secs
    self.histograms = histograms
    self.distilling = distilling
    self.mark = None  # (step, time) of the last summary

  def begin(self, loop):
    self.mark = (loop.start_step, time.time())

  def after_call(self, loop, call):
    if call.previous == loop.start_step or due(call.step, self.mark, call.now,
                                               self.every_steps, self.every_secs):
      self.summarize(loop.state, call)
      self.mark = (call.step, call.now)

  def end(self, loop, call):
    if call is not None and self.mark[0] != call.step:
      self.summarize(loop.state, call._replace(now=time.time()))

  def summarize(self, state, call):
    v = values_of(state, call, self.mark)
    scalars = {'total_loss': v['total_loss'],
               'losses/cross_entropy': v['cross_entropy'],
               'losses/regularization_loss': v['regularization_loss'],
               'learning_rate': v['learning_rate'],
               'accuracy': v['accuracy']}
    if state.has_aux:
      scalars['losses/aux_loss'] = v['aux_loss']
    if self.distilling:
      scalars['losses/distillation_loss'] = v['distillation_loss']
    if call.step > self.mark[0]:
      scalars['images_per_sec'] = v['images_per_sec']
    self.writer.scalars(call.step, scalars)
    if self.histograms:
      model = state.model
      variables = checkpoints.by_path(checkpoints.model_variables(model))
      self.writer.histograms(call.step, {
          scopes.to_slim(model.name, path): variable
          for path, variable in variables.items()
          if variable.dtype.startswith('float')})
    self.writer.flush()


class Saver(Hook):
  """Checkpoints on --save_interval_steps/secs, and at the end of a run that
  trained or was stopped by a signal; `path` is the last one's prefix."""

  def __init__(self, every_steps=None, every_secs=None):
    self.every_steps = every_steps
    self.every_secs = every_secs
    self.mark = None  # (step, time) of the last save
    self.path = None

  def begin(self, loop):
    self.mark = (loop.start_step, time.time())
    self.path = None

  def after_call(self, loop, call):
    if due(call.step, self.mark, call.now, self.every_steps, self.every_secs):
      self.path = loop.state.save()
      self.mark = (call.step, time.time())

  def end(self, loop, call):
    step = call.step if call else loop.start_step
    if step > loop.start_step or loop.stopped():
      self.path = loop.state.save()
    else:
      self.path = None


class StatsFile(Hook):
  """train_stats.json in the train dir: how long this run took (chief only)."""

  def __init__(self, train_dir, device, enabled=True):
    self.path = os.path.join(train_dir, 'train_stats.json')
    self.device = device
    self.enabled = enabled

  def end(self, loop, call):
    if not self.enabled:
      return
    state = loop.state
    stats = dict(loop.stats)
    steady, steady_steps = stats['steady_secs'], stats['steady_steps']
    stats.update({
        'end_step': call.step if call else loop.start_step,
        'seconds': round(time.time() - loop.started, 3),
        'global_batch_size': state.global_batch,
        'steady_images_per_sec': (steady_steps * state.global_batch / steady
                                  if steady else None),
        'steady_sec_per_step': steady / steady_steps if steady_steps else None,
        'checkpoints': state.saved,
        'device': self.device,
        'onednn': cpu.onednn_enabled(),
        'jit_compile': stats['jit_compile'],
        'mixed_precision': keras.mixed_precision.global_policy().name})
    files.write_json_atomic(self.path, stats)
