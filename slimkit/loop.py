"""The host loop: calls of the step runner, and the hooks that act between them.

Loop(runner, hooks, max_steps).run(dataset, stop) calls the runner (slimkit/step.py)
until max_steps or a signal, each call running up to the next boundary a hook
asks for (a log, summary or save period); a non-finite loss stops it with
FloatingPointError, naming the last good checkpoint. Loop.stats holds the time to
the first step and the steady-state steps and seconds after it. The hooks
(logs, progress, summaries, checkpoints, train_stats.json) are in
slimkit/hooks.py; StopRequest turns SIGINT/SIGTERM into a clean stop after the
current call.

Training without the flags' dataset (benchmarks, tests): give the state the
input's facts and any tf.data.Dataset of (images, labels) batches of
config['batch_size']; with no hooks nothing is logged or saved. config is the
train flags' values (slimkit.flags.defaults(FLAGS) after define_train_flags(),
updated); tests/test_train_loop.py runs this:

    state = run_state.RunState(config, tf.distribute.get_strategy(),
                               num_classes=10, input_shape=(32, 32, 3),
                               num_samples=1024)
    steps = loop.Loop(step.Runner(state), max_steps=10)
    steps.run(dataset)                 # -> the step reached
    steps.max_steps += 50; steps.run(dataset)
    steps.stats['steady_steps'], steps.stats['steady_secs']

For mixed precision, build the state inside
deployment.model_deploy.precision_policy(config['mixed_precision']).
"""

import collections
import math
import signal
import threading
import time

from absl import logging

TARGET_CALL_SECS = 0.5  # an adaptive call lasts about this long
MAX_STEPS_PER_CALL = 1000

# One call of the runner: the steps before and after it, the last step's metrics,
# its wall-clock start and end, and whether it was the first call of run().
Call = collections.namedtuple('Call', 'previous step metrics began now first')


class StopRequest(object):
  """Records the first SIGINT/SIGTERM; a second one gets the default behaviour."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def install(self):
    if threading.current_thread() is not threading.main_thread():
      return self
    for signum in (signal.SIGINT, signal.SIGTERM):
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signum = signum
    self.uninstall()  # a second signal is not caught: stop at once
    logging.warning('%s received: finishing the current steps, then saving',
                    signal.Signals(signum).name)

  def uninstall(self):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}


def steps_to_boundary(step, steps_per_call, max_steps, *every):
  """Steps for the next call: at most steps_per_call, ending on the next multiple
  of any of `every` (log, save and summary periods; None = none) or at max_steps."""
  limit = step + steps_per_call
  for n in every:
    if n:
      limit = min(limit, (step // n + 1) * n)
  if max_steps is not None:
    limit = min(limit, max_steps)
  return max(1, limit - step)


class Loop(object):
  """Runs the runner's steps on the host, calling hooks between calls.

  steps_per_call: None adapts it so a call lasts about TARGET_CALL_SECS; a number
  fixes it (the workers of a multi-worker run must make identical calls).
  started: the run's start time, which time_to_first_step counts from.
  """

  def __init__(self, runner, hooks=(), max_steps=None, steps_per_call=None,
               started=None):
    self.runner = runner
    self.state = runner.state
    self.hooks = list(hooks)
    self.max_steps = max_steps
    self.steps_per_call = steps_per_call
    self.started = time.time() if started is None else started
    self.start_step = None  # the step run() began at
    self.stop = None
    self.stats = {}

  def stopped(self):
    return self.stop is not None and self.stop.signum is not None

  def run(self, dataset, stop=None):
    """Trains until max_steps or stop.signum; returns the step reached.

    dataset: what step.Runner.iterator takes. Raises FloatingPointError on a
    non-finite loss, before any hook sees that call.
    """
    iterator = self.runner.iterator(dataset)
    self.stop = stop
    per_call = self.steps_per_call or 1
    every = [hook.every_steps for hook in self.hooks]
    step = self.start_step = self.state.current_step()
    self.stats = {'start_step': step, 'time_to_first_step': None,
                  'steady_steps': 0, 'steady_secs': 0.0}
    for hook in self.hooks:
      hook.begin(self)
    call = None
    while (self.max_steps is None or step < self.max_steps) and not self.stopped():
      num_steps = steps_to_boundary(step, per_call, self.max_steps, *every)
      began = time.time()
      remaining = None if self.max_steps is None else self.max_steps - step
      metrics = self.runner(iterator, num_steps, remaining)
      now = time.time()
      call = Call(step, self.state.current_step(), metrics, began, now, call is None)
      step = call.step
      if call.first:
        self.stats['time_to_first_step'] = now - self.started
        logging.info('first step done %.1f s after start (%.1f s of it tracing and '
                     'running the first step)', now - self.started, now - began)
      elif not self.runner.traced:  # a call that compiled a step is not steady
        self.stats['steady_steps'] += step - call.previous
        self.stats['steady_secs'] += now - began
        if self.steps_per_call is None:
          per_step = (now - began) / max(1, step - call.previous)
          per_call = int(min(MAX_STEPS_PER_CALL,
                             max(1, TARGET_CALL_SECS / max(per_step, 1e-6))))
      if not all(math.isfinite(x) for x in metrics):
        raise self._non_finite(call)
      for hook in self.hooks:
        hook.after_call(self, call)
    self.stats['jit_compile'] = self.runner.jit  # 'auto' if still measuring
    for hook in self.hooks:
      hook.end(self, call)
    return step

  def _non_finite(self, call):
    where = ('step %d' % call.step if call.step == call.previous + 1 else
             'steps %d-%d' % (call.previous + 1, call.step))
    return FloatingPointError(
        'loss is %s at %s: stopped without saving these weights; last good '
        'checkpoint: %s (lower --learning_rate, or check the data)'
        % (call.metrics[0], where, self.state.latest_checkpoint() or 'none'))
