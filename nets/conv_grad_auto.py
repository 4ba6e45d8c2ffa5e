"""Convolutions whose gradients use the fastest exact formulation, by measurement.

Like cuDNN's benchmark mode: the first time a conv geometry (shapes, strides,
padding, dtype) is traced, each applicable formulation of its input and filter
gradients (nets/conv_grad.py) runs a few times on random tensors of those shapes,
results are checked against TensorFlow's own kernels, and the fastest correct
one is kept. Decisions are cached per machine (CPU model and flags, oneDNN
settings, TF version) in the tuning cache (common/tuning.py), so later runs skip
the measuring; a cached method that is no longer a candidate is measured again.
The measurement runs on at most MEASURE_BATCH images of the batch, so a huge
batch never allocates its full activations here. Only the gradients a tape will
ask for are measured: a conv whose filter is not trained (outside
--trainable_scopes) and whose input does not depend on a trained variable runs
TensorFlow's op as it is, and its gradients are never chosen.
"""

import contextlib
import functools
import os
import platform
import time

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import record

from common import tuning
from deployment import cpu
from nets import conv_grad

# A formulation must beat TF's kernel by this factor to replace it: near-ties
# are noise, and TF's own kernel is the well-trodden path.
MIN_GAIN = 1.2
TIMED_RUNS = 3
BUDGET_SECS = 0.3  # per formulation, after its first (tracing) call
TOLERANCE = {'float32': 1e-4, 'float64': 1e-9}
LOW_PRECISION_TOLERANCE = 3e-2  # bfloat16 / float16 (8 / 11 mantissa bits)
# Images of the batch the measurement runs on: the relative speed of the
# formulations settles well below this, and memory stays bounded.
MEASURE_BATCH = 32

_decisions = {}  # in this process: key -> {'dx': method, 'dw': method, 'ms': ...},
# holding only the gradients measured so far
GRADS = ('dx', 'dw')
_measured = []  # (key, seconds) measured, not read from the cache, since last taken
_forced = []  # see forced()


# ------------------------------------------------------------------------------
# The conv ops the layers call.
# ------------------------------------------------------------------------------


def _output_size(n, k, s, d, padding):
  span = (k - 1) * d + 1
  return -(-n // s) if padding == 'SAME' else (n - span) // s + 1


def conv(x, w, strides, padding, dilation, depthwise=False, decision=None):
  """NHWC conv (or depthwise conv, multiplier 1) with measured-fastest gradients.

  decision: {'dx': method, 'dw': method} to force (tests, benchmarks); None
  chooses by measurement, for the gradients an active tape needs (x or w is
  watched, or computed from a watched variable). Falls back to TensorFlow's ops (and
  their gradients) when a size is unknown at trace time, a depthwise conv is
  dilated (TF has no native kernel), or no tape needs a gradient.
  """
  padding = padding.upper()
  strides, dilation = tuple(strides), tuple(dilation)

  def forward(x, w):
    if depthwise:
      return tf.nn.depthwise_conv2d(x, w, [1, *strides, 1], padding,
                                    dilations=list(dilation))
    return tf.nn.conv2d(x, w, list(strides), padding, dilations=list(dilation))

  known = all(d is not None for d in tuple(x.shape) + tuple(w.shape))
  if not known or (depthwise and max(dilation) > 1):
    return forward(x, w)
  y_shape = (x.shape[0],) + tuple(
      _output_size(x.shape[1 + i], w.shape[i], strides[i], dilation[i], padding)
      for i in (0, 1)) + (w.shape[2] if depthwise else w.shape[3],)
  g = conv_grad.Geometry(depthwise, tuple(x.shape), tuple(w.shape), y_shape,
                         strides, dilation, padding, x.dtype.name)
  w = tf.convert_to_tensor(w)  # a variable read: its gradient flows through
  needed = [grad for grad, t in zip(GRADS, (x, w))
            if record.should_record_backprop([t])]
  if not needed:
    return forward(x, w)
  if decision is None:
    decision = _forced[0](g) if _forced else choose(g, needed)
  if all(decision.get(grad, 'tf') == 'tf' for grad in GRADS):
    return forward(x, w)

  @tf.custom_gradient
  def op(x, w):
    def grad(dy):  # an unneeded one is never run: the graph prunes it
      return (conv_grad.input_grad(g, decision.get('dx', 'tf'), dy, w),
              conv_grad.filter_grad(g, decision.get('dw', 'tf'), x, dy))
    return forward(x, w), grad

  return op(x, w)


@contextlib.contextmanager
def forced(decide):
  """Convs traced inside use decide(geometry) -> {'dx', 'dw'} (tests, benchmarks)."""
  _forced.insert(0, decide)
  try:
    yield
  finally:
    _forced.pop(0)


# ------------------------------------------------------------------------------
# Decisions: in-process, then the machine's cache file, then measured.
# ------------------------------------------------------------------------------


def choose(g, needed=GRADS):
  """{'dx': method, 'dw': method, 'ms': {...}} for the geometry on this device,
  holding at least the gradients `needed` ('dx', 'dw')."""
  key = '%s on %s' % (g.key(), device_kind())
  decision = _decisions.get(key) or cache().get(key) or {'ms': {}}
  methods = dict(zip(GRADS, conv_grad.candidates(g)))
  missing = [grad for grad in needed if decision.get(grad) not in methods[grad]]
  if missing:
    began = time.perf_counter()
    with tf.init_scope():  # measure eagerly, even while tracing a step
      measured = measure(g, missing)
    known_ms = decision['ms']
    decision = dict(decision, **measured)
    decision['ms'] = dict(known_ms, **measured['ms'])
    cache().update({key: decision})
    logging.debug('conv gradients, %s: %s', key, describe(decision))
    _measured.append((key, time.perf_counter() - began))
  _decisions[key] = decision
  return decision


def describe(decision):
  parts = []
  for grad in GRADS:
    if grad not in decision:
      continue
    times = decision['ms'][grad]
    parts.append('%s %s (%s)' % (grad, decision[grad], ', '.join(
        '%s %.2f ms' % (m, t) for m, t in sorted(times.items(), key=lambda i: i[1]))))
  return '; '.join(parts)


def device_kind():
  return 'GPU' if tf.config.list_logical_devices('GPU') else 'CPU'


def measure(g, grads=GRADS):
  """Times every applicable formulation of the gradients `grads`; returns the
  decision with its times.

  Runs on the first MEASURE_BATCH images of the batch (the key keeps the real one).
  """
  if g.x_shape[0] > MEASURE_BATCH:
    g = g._replace(x_shape=(MEASURE_BATCH,) + g.x_shape[1:],
                   y_shape=(MEASURE_BATCH,) + g.y_shape[1:])
  rng = np.random.default_rng(0)
  dtype = tf.as_dtype(g.dtype)

  def normal(shape):
    return tf.cast(rng.standard_normal(shape, dtype=np.float32), dtype)

  x, w, dy = normal(g.x_shape), normal(g.w_shape), normal(g.y_shape)
  tf_logger = tf.get_logger()
  level = tf_logger.level
  tf_logger.setLevel('ERROR')  # one tf.function per formulation: no retrace notes
  try:
    return _measure(g, x, w, dy, grads)
  finally:
    tf_logger.setLevel(level)


def _measure(g, x, w, dy, grads=GRADS):
  dx_methods, dw_methods = conv_grad.candidates(g)
  decision = {'ms': {}}
  for grad, methods, args, fn in (
      ('dx', dx_methods, (dy, w), conv_grad.input_grad),
      ('dw', dw_methods, (x, dy), conv_grad.filter_grad)):
    if grad not in grads:
      continue
    times, reference = {}, None
    for method in methods:
      compiled = tf.function(lambda a, b, m=method, f=fn: f(g, m, a, b))
      result = compiled(*args)
      if reference is None:
        reference = result
      elif not _close(result, reference, g.dtype):
        logging.warning('conv gradients, %s: %s %s differs from TF\'s; not used',
                        g.key(), grad, method)
        continue
      times[method] = _time(compiled, args, best=min(times.values(), default=None))
    fastest = min(times, key=times.get)
    if times[fastest] * MIN_GAIN > times['tf']:
      fastest = 'tf'
    decision[grad] = fastest
    decision['ms'][grad] = {m: round(t * 1e3, 3) for m, t in times.items()}
  return decision


def _close(a, b, dtype_name):
  a = tf.cast(a, tf.float64).numpy()
  b = tf.cast(b, tf.float64).numpy()
  scale = max(np.abs(b).max(), 1e-30)
  tol = TOLERANCE.get(dtype_name, LOW_PRECISION_TOLERANCE)
  return np.abs(a - b).max() <= tol * scale


def _time(fn, args, best=None):
  """Fastest of a few runs (seconds); stops early when clearly not the best."""
  fastest = float('inf')
  spent = 0.0
  for _ in range(TIMED_RUNS):
    start = time.perf_counter()
    out = fn(*args)
    out[..., :1].numpy()  # wait for the result (also on GPUs)
    took = time.perf_counter() - start
    fastest, spent = min(fastest, took), spent + took
    if spent > BUDGET_SECS or (best is not None and fastest > 3 * best):
      break
  return fastest


# ------------------------------------------------------------------------------
# The per-machine cache.
# ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def machine():
  """What the decisions depend on: CPU, its vector flags, oneDNN, TF, GPUs."""
  flags = cpu.flags()
  wanted = ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'avx512_fp16')
  return {
      'cpu': cpu.cpuinfo('model name') or platform.processor(),
      'cpu_flags': [f for f in wanted if f in flags],
      'cpus': os.cpu_count(), 'tensorflow': tf.__version__,
      'onednn': cpu.onednn_enabled(),
      'onednn_max_cpu_isa': os.environ.get('ONEDNN_MAX_CPU_ISA', ''),
      'gpus': [d.name for d in tf.config.list_physical_devices('GPU')]}


def _valid(entry):
  """An entry holds one gradient's method or both (only what was needed)."""
  known = {'dx': conv_grad.DX_METHODS + conv_grad.DEPTHWISE_DX_METHODS,
           'dw': conv_grad.DW_METHODS + conv_grad.DEPTHWISE_DW_METHODS}
  grads = [grad for grad in GRADS if grad in entry]
  return (bool(grads) and all(entry[grad] in known[grad] for grad in grads) and
          isinstance(entry['ms'], dict))


def cache():
  return tuning.Cache('conv_grad', machine(), _valid)


def take_measured():
  """(geometries measured, seconds) since the last call, and logs one line if any."""
  count, seconds = len(_measured), sum(t for _, t in _measured)
  del _measured[:]
  if count:
    logging.info('conv gradients: measured the fastest kernels of %d conv shapes '
                 'in %.1f s, once for this machine (cached in %s)', count, seconds,
                 cache().path)
  return count, seconds


def clear():
  """Forgets this process's decisions (tests; the cache file is kept)."""
  _decisions.clear()
