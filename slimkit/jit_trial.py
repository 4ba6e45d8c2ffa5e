"""--jit_compile=auto: try the step with and without XLA, keep the faster, cache it.

Both variants are real training steps on the same variables: the first calls of
a run alternate between them (each is traced once, then timed JIT_TRIAL_CALLS
times, or once when one variant is over JIT_CLEAR_FACTOR times slower), the
faster is kept, and the choice is cached per machine, net, batch,
precision and conv-gradient setting in the tuning cache (common/tuning.py). A run
with fewer than JIT_TRIAL_MIN_STEPS steps left goes without XLA: it could not
repay the compile.
"""

import json

from absl import logging

from common import tuning
from nets import conv_grad_auto

JIT_TRIAL_MIN_STEPS = 200  # an XLA compile costs tens of seconds on a CPU
JIT_TRIAL_CALLS = 2  # timed calls of each variant, after its tracing call
JIT_MARGIN = 1.05  # XLA must be this much faster to be kept
JIT_CLEAR_FACTOR = 2.0  # a variant this much slower after one timed call each loses


def setting(value):
  """'auto', True or False from --jit_compile (or an older run's boolean)."""
  if value is None or isinstance(value, bool):
    return bool(value)
  value = str(value).lower()
  return 'auto' if value == 'auto' else value in ('true', '1', 'yes')


def _valid(entry):
  return isinstance(entry['jit'], bool) and {'True', 'False'} <= set(
      entry['secs_per_step'])


def cache():
  return tuning.Cache('jit_compile', conv_grad_auto.machine(), _valid)


def describe(secs):
  return 'XLA %.3g s/step, without %.3g s/step' % (secs['True'], secs['False'])


class Trial(object):
  """The XLA decision of one run: `decided` is True/False, or None while measuring.

  key_parts: what the decision depends on besides the machine (JSON-able list).
  multi_process: the workers of a multi-process run must make identical calls,
    so such a run does not measure (XLA stays off unless cached).
  """

  def __init__(self, key_parts, multi_process=False):
    self.key = 'jit_compile %s' % json.dumps(key_parts)
    self.decided = None
    self.timings = {False: [], True: []}  # seconds per step of timed calls
    cached = cache().get(self.key)
    if cached is not None:
      self.decided = cached['jit']
      logging.info('--jit_compile=auto: %s (cached: %s)',
                   'XLA' if self.decided else 'no XLA',
                   describe(cached['secs_per_step']))
    elif multi_process:
      self.decided = False
      logging.info('--jit_compile=auto: no XLA (not measured in a multi-process '
                   'run; set --jit_compile=true to compile)')

  def variant(self, traced, remaining):
    """The variant the next call runs; traced: the variants traced so far."""
    if self.decided is not None:
      return self.decided
    if not traced and remaining is not None and remaining < JIT_TRIAL_MIN_STEPS:
      self.decided = False  # nothing is cached: a longer run may still try
      logging.info('--jit_compile=auto: no XLA (a run of %d steps is too short to '
                   'try it)', remaining)
      return False
    for jit in (False, True):  # untraced variants first, then alternate
      if jit not in traced:
        return jit
    return min((False, True), key=lambda j: len(self.timings[j]))

  def record(self, jit, seconds, num_steps):
    """Times one untraced call; decides and caches once both have enough."""
    self.timings[jit].append(seconds / num_steps)
    calls = min(len(t) for t in self.timings.values())
    if not calls:
      return
    secs = {str(j): min(t) for j, t in self.timings.items()}
    # On CPUs XLA's step is often several times slower: its every call is dear.
    clear = max(secs.values()) > JIT_CLEAR_FACTOR * min(secs.values())
    if calls < JIT_TRIAL_CALLS and not clear:
      return
    self.decided = secs['True'] * JIT_MARGIN < secs['False']
    cache().update({self.key: {'jit': self.decided, 'secs_per_step': secs}})
    logging.info('--jit_compile=auto: %s (measured: %s; cached for this machine)',
                 'XLA' if self.decided else 'no XLA', describe(secs))

  def failed(self, exc):
    """XLA could not compile the step here: go on without it (not cached)."""
    self.decided = False
    logging.warning('--jit_compile=auto: no XLA (it failed to compile the step: %s)',
                    str(exc).splitlines()[0][:200])
