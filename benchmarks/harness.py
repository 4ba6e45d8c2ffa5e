"""What every benchmark shares: timing windows, mean +/- std, the machine, the data.

Timing. A `Meter` wraps one step function (a train step, one batch of a pipeline):
`warm()` runs it untimed (tracing, autotuning), each `window()` times `steps` calls
(and more, while under `min_seconds`) and records items/s by the wall clock and per
CPU-second of this process. Two methods compared in one run are measured with
`interleave(meters, windows)`, window by window, so that both see the same load:

    ours = harness.Meter(lambda: step(x, y), items=batch, steps=10)
    base = harness.Meter(lambda: other(x, y), items=batch, steps=10)
    harness.interleave([ours, base], windows=3)      # warms each first
    print(ours, base.mean / ours.mean)               # '812.3 +/- 10.1'

The machine: `describe()` is one line (CPU model, cores, AVX2/AVX-512/AMX flags,
TensorFlow and Keras versions, oneDNN on/off); `cpu_name()` is the short form.

Data. The shared copies of the datasets sit in `../shared/datasets` next to the
checkout (`shared_source`). `converted()` makes a converted dataset directory with
download_and_convert_data.py, optionally from a seeded sample of a class-folder
archive (`sample=`), so a benchmark never writes TFRecords itself.

Flags are absl flags; scripts run through slimkit.cli.run (one-line errors).
"""

import dataclasses
import os
import platform
import random
import shutil
import subprocess
import sys
import time

import numpy as np

from deployment import cpu
from common import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATASETS = os.path.join(os.path.dirname(ROOT), 'shared', 'datasets')
# Each dataset's shared copy, in a form download_and_convert_data.py --source takes.
SHARED_SOURCES = {
    'cifar10': 'cifar10/cifar10-jpg.tar.gz',
    'mnist': 'mnist',
    'flowers': 'flowers/flower_photos_sample.tgz',
}
CPU_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'amx')


# ---------------------------------------------------------------- statistics

def mean_std(values):
  """(mean, population std) of a list of numbers."""
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std())


def format_mean_std(values, digits=1):
  mean, std = mean_std(values)
  return '%.*f +/- %.*f' % (digits, mean, digits, std)


# ---------------------------------------------------------------- timing

def _wait(result):
  """Blocks until an eagerly returned tensor (or the last of a tuple) is computed."""
  while isinstance(result, (tuple, list)) and result:
    result = result[-1]
  if hasattr(result, 'numpy'):
    result.numpy()


class Meter:
  """Times a step function in windows; see the module docstring.

  step: fn() -> None or a tensor (the window waits for the last one).
  items: what one call processes (images), for the rates.
  steps: calls per window; min_seconds: a window goes on until this much time passed.
  """

  def __init__(self, step, items=1, steps=10, min_seconds=0.0, name=None):
    if steps < 1:
      raise ValueError('steps must be >= 1, got %d' % steps)
    self.step, self.items, self.steps, self.min_seconds = step, items, steps, min_seconds
    self.name = name
    self.rates = []       # items/s by the wall clock, one per window
    self.cpu_rates = []   # items per CPU-second of this process (all its threads)
    self.warmup_seconds = None

  def warm(self, calls=1):
    """Runs step calls times untimed; returns their seconds (the first traces)."""
    start = time.perf_counter()
    for _ in range(calls):
      _wait(self.step())
    self.warmup_seconds = time.perf_counter() - start
    return self.warmup_seconds

  def window(self):
    """One timed window -> its items/s."""
    calls, result = 0, None
    start, cpu = time.perf_counter(), time.process_time()
    while calls < self.steps or time.perf_counter() - start < self.min_seconds:
      result = self.step()
      calls += 1
    _wait(result)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    self.rates.append(calls * self.items / wall)
    self.cpu_rates.append(calls * self.items / max(cpu, 1e-9))
    return self.rates[-1]

  @property
  def mean(self):
    return mean_std(self.rates)[0]

  @property
  def cpu_mean(self):
    return mean_std(self.cpu_rates)[0]

  def __str__(self):
    return format_mean_std(self.rates)


def interleave(meters, windows, warmup=1):
  """Warms each meter (warmup calls), then runs window i of every meter in turn."""
  for meter in meters:
    if meter.warmup_seconds is None:
      meter.warm(warmup)
  for _ in range(windows):
    for meter in meters:
      meter.window()
  return meters


def time_windows(step, windows, items=1, steps=10, warmup=1, min_seconds=0.0):
  """One Meter, warmed and measured: interleave([Meter(...)], windows)[0]."""
  return interleave([Meter(step, items, steps, min_seconds)], windows, warmup)[0]


# ---------------------------------------------------------------- the machine

def _lscpu_model():
  try:
    out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10,
                         env=dict(os.environ, LC_ALL='C')).stdout
  except (OSError, subprocess.SubprocessError):
    return None
  for line in out.splitlines():
    if line.startswith('Model name:'):
      return line.split(':', 1)[1].strip()
  return None


def cpu_model():
  """The CPU's model name (lscpu, else /proc/cpuinfo, else platform)."""
  return (_lscpu_model() or cpu.cpuinfo('model name') or platform.processor()
          or platform.machine())


def cpu_flags():
  """Which of avx2, avx512f, avx512_bf16, amx (any amx_* flag) this CPU has."""
  flags = cpu.flags()
  if any(f.startswith('amx_') for f in flags):
    flags.add('amx')
  return [f for f in CPU_FLAGS if f in flags]


def num_cores():
  """Cores this process may run on."""
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (
      os.cpu_count() or 1)


def cpu_name():
  """'<model> (family F model M, <vector unit>, <n> cores)': the device column of
  the tables. A model name such as 'AMD EPYC' covers Zen 3 to Zen 5: the family,
  model and vector unit tell them apart."""
  family, model = cpu.cpuinfo('cpu family'), cpu.cpuinfo('model')
  where = 'family %s model %s, ' % (family, model) if family and model else ''
  return '%s (%s%s, %d cores)' % (cpu_model(), where, cpu.vector_isa(cpu.flags()),
                                  num_cores())


def onednn():
  """'on' or 'off': whether TensorFlow runs its oneDNN kernels in this process."""
  text = 'on' if cpu.onednn_enabled() else 'off'
  if text == 'on' and os.environ.get('ONEDNN_MAX_CPU_ISA'):
    text += ' (ONEDNN_MAX_CPU_ISA=%s)' % os.environ['ONEDNN_MAX_CPU_ISA']
  return text


def describe():
  """One line: CPU, its vector flags, GPUs, TensorFlow, Keras and oneDNN."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpus = tf.config.list_physical_devices('GPU')
  return 'CPU: %s; flags: %s; GPUs: %s; TensorFlow %s, Keras %s, Python %s; oneDNN %s' % (
      cpu_name(), ' '.join(cpu_flags()) or 'none of ' + '/'.join(CPU_FLAGS),
      ', '.join(g.name for g in gpus) or 'none', tf.__version__, keras.__version__,
      platform.python_version(), onednn())


# ---------------------------------------------------------------- flags

def check_nets(names):
  """Raises a UserError naming --nets values that nets_factory does not know."""
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  unknown = [n for n in names if n not in nets_factory.networks_map]
  if unknown or not names:
    raise errors.UserError('--nets=%s: unknown %s; expected names from %s' % (
        ','.join(names), ', '.join(unknown) or 'empty list',
        ', '.join(nets_factory.list_networks())))


# ---------------------------------------------------------------- scripts

class RunError(errors.UserError):
  """A script exited non-zero; the message is its last error line and the log."""


def run_script(script, flags, log_path, env=None):
  """Runs ROOT/script with --name=value flags (None values left out) -> wall seconds.

  stdout and stderr go to log_path. Raises RunError naming the log on failure.
  """
  args = [sys.executable, os.path.join(ROOT, script)]
  args += ['--%s=%s' % (k, v) for k, v in flags.items() if v is not None]
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  full_env.update(env or {})
  os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
  start = time.time()
  with open(log_path, 'w') as log:
    log.write('$ %s\n' % ' '.join(args))
    log.flush()
    code = subprocess.call(args, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                           cwd=ROOT)
  seconds = time.time() - start
  if code:
    raise RunError('%s exited %d: %s (log: %s)'
                   % (script, code, _last_error(log_path), log_path))
  return seconds


def _last_error(log_path):
  with open(log_path) as f:
    lines = [l.strip() for l in f if l.strip()]
  bad = [l for l in lines if 'error' in l.lower()]
  return (bad or lines or ['no output'])[-1][:300]


# ---------------------------------------------------------------- data

def shared_source(dataset_name):
  """The shared copy of dataset_name (../shared/datasets next to the checkout)."""
  path = os.path.join(SHARED_DATASETS, SHARED_SOURCES[dataset_name])
  if not os.path.exists(path):
    raise errors.UserError('no shared copy of %s at %s; pass a converted dataset '
                           'directory or --source' % (dataset_name, path))
  return path


def sample_tree(source, out_dir, counts, seed=0):
  """A seeded sample of a class-folder archive or folder, written as class folders.

  counts: {split: number of images, None for all}; the split is 'train', 'test', ...
  for trees with split folders, and None for a single pool such as flower_photos/.
  The classes take turns, so a sample of at least one image per class has them all
  (the CIFAR-10 converter wants every class). The files keep their paths and bytes.
  """
  from datasets import image_tree  # pylint: disable=g-import-not-at-top
  layout = image_tree.find_layout(image_tree.nonempty(image_tree.list_files(source),
                                                      source))
  rng = random.Random(seed)
  for split, count in counts.items():
    if split not in layout:
      raise ValueError('--source=%s has no %s split (has %s)'
                       % (source, split, sorted(map(str, layout))))
    pools = [rng.sample(sorted(members), len(members))
             for _, members in sorted(layout[split].items())]
    items = [pool[i] for i in range(max(map(len, pools))) for pool in pools
             if i < len(pool)][:count]
    for path, payload in items:
      target = os.path.join(out_dir, *path.split('/'))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      if isinstance(payload, bytes):
        with open(target, 'wb') as f:
          f.write(payload)
      else:
        shutil.copyfile(payload, target)
  return out_dir


def converted(dataset_name, work_dir, dataset_dir=None, source=None, sample=None,
              seed=0):
  """A converted dataset directory, made with download_and_convert_data.py.

  dataset_dir: an existing conversion to use as it is (it must hold dataset_info.json).
  Otherwise source (default: the shared copy) is converted into
  <work_dir>/data/<name>[-<split><count>...], once: a finished conversion there is
  reused (so a new --source needs a new work_dir).
  sample: {split: count or None for all} converts a seeded sample of a class-folder
  source instead (see sample_tree): {'train': 10, 'test': 2000} keeps 2000 of
  CIFAR-10's test images (its converter wants both splits).
  """
  if dataset_dir:
    if not os.path.isfile(os.path.join(dataset_dir, 'dataset_info.json')):
      raise errors.UserError('%s holds no dataset_info.json; expected a directory '
                             'written by download_and_convert_data.py' % dataset_dir)
    return dataset_dir
  source = source or shared_source(dataset_name)
  name = dataset_name + ''.join('-%s%s' % (split or 'all', 'all' if n is None else n)
                                for split, n in sorted((sample or {}).items(), key=str))
  out = os.path.join(work_dir, 'data', name)
  if os.path.exists(os.path.join(out, 'dataset_info.json')):
    return out
  if sample:
    folder = os.path.join(work_dir, 'data', name + '-source')
    shutil.rmtree(folder, ignore_errors=True)  # a sample an interrupted run left
    source = sample_tree(source, folder, sample, seed)
  run_script('download_and_convert_data.py',
             {'dataset_name': dataset_name, 'dataset_dir': out, 'source': source},
             os.path.join(work_dir, 'logs', 'convert_%s.log' % name))
  return out
