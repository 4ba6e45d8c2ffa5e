"""The host CPU: its model and flags, and which conv kernels TensorFlow runs on it.

TensorFlow's Linux x86 wheels carry two CPU kernel sets: oneDNN's and Eigen's.
TF switches oneDNN on by default only on CPUs with VNNI, AVX512-BF16 or AMX
(tensorflow/core/util/port.cc, DefaultOneDnnPolicy). Every AVX2-only CPU (Zen 2/3,
Intel client chips before Alder Lake, many cloud VMs) thus gets Eigen, whose
Conv2DBackpropInput collapses at small maps: 670 ms for a 3x3 conv at 1x1x512,
batch 128, against 7.4 ms with oneDNN limited to AVX2 (benchmarks/conv_grad_bench.py
--net=small_maps --cpu=avx2 --onednn=both). configure_onednn() switches oneDNN on for
such CPUs before TensorFlow is imported; TF_ENABLE_ONEDNN_OPTS set by the user
always wins.

Nothing here imports TensorFlow: slimkit/cli.py calls configure_onednn() first.
"""

import os
import platform
import sys

# CPU flags for which TensorFlow turns oneDNN on by itself (port.cc).
TF_ONEDNN_FLAGS = ('avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8',
                   'amx_bf16')
# What AVX-512 adds over AVX2; dropped by avx2_only() to describe an AVX2 CPU.
AVX512_PREFIXES = ('avx512', 'amx', 'avx_vnni')

# Why oneDNN is on or off in this process: set by configure_onednn().
decision = None


def cpuinfo(key):
  """The first value of `key` in /proc/cpuinfo, or None."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        name, _, value = line.partition(':')
        if name.strip() == key:
          return value.strip()
  except OSError:
    pass
  return None


def flags():
  """The CPU's feature flags (/proc/cpuinfo), as a set; empty where unknown."""
  return set((cpuinfo('flags') or '').split())


def vector_isa(cpu_flags):
  """The widest vector unit and its bfloat16 support, e.g. 'AVX-512 + bf16'."""
  if 'amx_bf16' in cpu_flags:
    return 'AVX-512 + AMX'
  if 'avx512f' in cpu_flags:
    return 'AVX-512 + bf16' if 'avx512_bf16' in cpu_flags else 'AVX-512'
  if 'avx2' in cpu_flags:
    return 'AVX2'
  return 'no AVX2'


def summary():
  """One line on the host: 'CPU AMD EPYC, 2 cores, AVX-512 + bf16' (plus GPUs)."""
  line = 'CPU %s, %d cores, %s' % (cpuinfo('model name') or platform.processor() or
                                   platform.machine(), os.cpu_count() or 1,
                                   vector_isa(flags()))
  tf = sys.modules.get('tensorflow')
  gpus = tf.config.list_physical_devices('GPU') if tf else []
  return line + (', %d GPU(s)' % len(gpus) if gpus else ', no GPU')


def avx2_only(cpu_flags):
  """cpu_flags less AVX-512, AMX and AVX-VNNI: the same CPU as an AVX2-only one."""
  return {f for f in cpu_flags if not f.startswith(AVX512_PREFIXES)}


def tf_default_onednn(cpu_flags):
  """Whether TensorFlow itself turns oneDNN on for a Linux x86 CPU with these flags."""
  return any(f in cpu_flags for f in TF_ONEDNN_FLAGS)


def want_onednn(cpu_flags):
  """Ours: oneDNN on every x86 CPU with AVX2 and FMA, TF's default elsewhere."""
  return tf_default_onednn(cpu_flags) or {'avx2', 'fma'} <= set(cpu_flags)


def configure_onednn(environ=None, cpu_flags=None, system=None, machine=None):
  """Sets TF_ENABLE_ONEDNN_OPTS=1 where TF would leave oneDNN off on an AVX2 CPU.

  Must run before TensorFlow is imported (TF reads the variable once, at import).
  Returns (and stores in `decision`) one line saying what was decided and why.
  """
  global decision
  environ = os.environ if environ is None else environ
  cpu_flags = flags() if cpu_flags is None else set(cpu_flags)
  system = system or platform.system()
  machine = machine or platform.machine()
  if 'TF_ENABLE_ONEDNN_OPTS' in environ:
    decision = 'TF_ENABLE_ONEDNN_OPTS=%s (set by the user)' % environ[
        'TF_ENABLE_ONEDNN_OPTS']
  elif system != 'Linux' or machine not in ('x86_64', 'AMD64'):
    decision = "TensorFlow's default (not Linux x86-64)"
  elif tf_default_onednn(cpu_flags):
    decision = "on: TensorFlow's default for this CPU (VNNI/BF16/AMX)"
  elif want_onednn(cpu_flags):
    if environ is os.environ and 'tensorflow' in sys.modules:
      decision = 'off: TensorFlow was imported before it could be switched on'
    else:
      environ['TF_ENABLE_ONEDNN_OPTS'] = '1'
      decision = ('on: switched on for this AVX2 CPU (TensorFlow leaves it off; its '
                  'Eigen conv gradients are many times slower); '
                  'TF_ENABLE_ONEDNN_OPTS=0 turns it off')
  else:
    decision = "off: TensorFlow's default (no AVX2/FMA)"
  return decision


def onednn_enabled():
  """Whether TensorFlow runs its oneDNN kernels in this process (imports TF)."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except ImportError:
    return os.environ.get('TF_ENABLE_ONEDNN_OPTS', '') not in ('0', 'false')
