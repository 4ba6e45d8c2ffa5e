"""Will a training batch fit in this machine's memory? Checked before any work.

A training step keeps the layers' outputs for the backward pass, so its memory grows
with the sum of the net's layer outputs per image (Keras knows their shapes once the
model is built: summing them costs microseconds) times the batch. The peak resident
memory of a few training steps on a CPU, measured in units of that sum x the batch:
LeNet 1.8-2.2, CifarNet 1.9, Inception V1 1.4, ResNet-50 V1 1.0, MobileNet V1
0.85-0.94. So a batch is refused only when REFUSE_FACTOR x the sum is more than the
memory available (it cannot fit), and the batch suggested instead fits at
SUGGEST_FACTOR. Host memory only: a GPU's is its own.
"""

import os

import keras
import tensorflow as tf

from common import errors

REFUSE_FACTOR = 0.8   # below every measured ratio: a refused batch cannot fit
SUGGEST_FACTOR = 2.5  # above every measured ratio: a suggested batch fits


def _itemsize(dtype):
  bits = ''.join(c for c in str(dtype) if c.isdigit())  # 'bfloat16' -> 16
  return int(bits) // 8 if bits else 4


def activation_bytes(model):
  """Bytes of all the layers' outputs for one image (0 if the model has no graph)."""
  total = 0
  for layer in model.layers:
    try:
      outputs = keras.tree.flatten(layer.output)
    except (AttributeError, ValueError):  # a layer used twice, or never
      continue
    for tensor in outputs:
      shape = getattr(tensor, 'shape', None)
      if shape is None or any(d is None for d in shape[1:]):
        continue
      size = 1
      for d in shape[1:]:
        size *= d
      total += size * _itemsize(tensor.dtype)
  return total


def available_bytes():
  """Memory this process can still take (MemAvailable, within a cgroup's limit), or
  None where the system does not say."""
  found = None
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          found = int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  if found is None:
    try:
      found = os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):
      return None
  try:  # a container's limit (cgroup v2) is lower than the machine's memory
    with open('/sys/fs/cgroup/memory.max') as f:
      limit = f.read().strip()
    with open('/sys/fs/cgroup/memory.current') as f:
      used = int(f.read())
    if limit.isdigit():
      found = min(found, max(0, int(limit) - used))
  except (OSError, ValueError):
    pass
  return found


def host_share(strategy):
  """The fraction of the global batch in this host's memory, or None when the
  replicas run on accelerators (or parameter servers)."""
  if 'ParameterServer' in type(strategy).__name__:
    return None
  try:
    devices = list(strategy.extended.worker_devices)
  except (RuntimeError, AttributeError, NotImplementedError):  # the default strategy
    devices = ['/device:GPU:0'] if tf.config.list_logical_devices('GPU') else ['CPU']
  if not devices or any('CPU' not in d.upper() for d in devices):
    return None
  return len(devices) / strategy.num_replicas_in_sync


def _size(n):
  for unit in ('bytes', 'KB', 'MB', 'GB', 'TB'):
    if n < 1000 or unit == 'TB':
      return ('%d %s' if unit == 'bytes' else '%.1f %s') % (n, unit)
    n /= 1000.0


def check_batch(model, batch_size, share=1.0, replicas=1, available=None,
                flag='--batch_size'):
  """Raises a one-line UserError when batch_size cannot fit, suggesting one that does.

  share: the fraction of the batch on this host (host_share); replicas: the
  suggestion is a multiple of it; available: bytes (default: available_bytes()).
  Does nothing where memory is unknown.
  """
  per_image = activation_bytes(model)
  if available is None:
    available = available_bytes()
  if not per_image or available is None or share is None:
    return
  images = batch_size * share
  if images * per_image * REFUSE_FACTOR <= available:
    return
  fits = available / (per_image * SUGGEST_FACTOR) / share  # as a global batch
  suggest = 1 if fits >= 1 else 0
  while suggest and suggest * 2 <= fits:
    suggest *= 2
  suggest -= suggest % replicas
  advice = ('use --batch_size=%d or less' % suggest if suggest >= 1 else
            'even one image does not fit: use a smaller --train_image_size or net')
  raise errors.UserError(
      '%s=%d: a training step of %s on %s images needs at least %s of memory (%s of '
      'layer outputs per image), but %s is available; %s' % (
          flag, batch_size, model.name, 'x'.join(str(d) for d in model.input_shape[1:]),
          _size(images * per_image * REFUSE_FACTOR), _size(per_image), _size(available),
          advice))
