"""TensorFlow's start-up, without the C++ lines a new user reads as errors.

Importing TensorFlow and probing for GPUs prints, from C++ and before any Python
logging is set up: 'WARNING: All log messages before absl::InitializeLog() ...',
the oneDNN notice (twice), 'Could not find cuda drivers on your machine' and, on a
machine without NVIDIA's driver, 'E0000 ... failed call to cuInit'.
TF_CPP_MIN_LOG_LEVEL does not reach these. So the scripts' start-up (imports, flag
parsing, TensorFlow's import and device probing) runs with file descriptor 2 sent to
a temporary file (capture); then (release, also at exit, so a traceback is never
lost) the lines are replayed on stderr minus the known start-up notices. Warnings
and errors other than those still show.

TF_CPP_MIN_LOG_LEVEL=0 or 1 in the environment (set by the user) shows everything.
"""

import atexit
import os
import re
import sys
import tempfile

# Notices every CPU-only start prints; none of them asks the user to act.
_NOISE = [
    re.compile(r'^WARNING: All log messages before absl::InitializeLog\(\) is called '
               r'are written to STDERR$'),
    re.compile(r'^I\d{4} [\d:. ]+\d+ [\w.]+:\d+\] '),  # informational C++ lines
]
# Only without NVIDIA's driver: there, failing to start CUDA is the expected news.
_NO_DRIVER_NOISE = [
    re.compile(r'^[EW]\d{4} [\d:. ]+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit'),
    re.compile(r'^[EW]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\] .*(cuda drivers|cuInit|'
               r'Unable to register cu\w+ factory)'),
]


def _has_nvidia_driver():
  return os.path.exists('/proc/driver/nvidia') or os.path.exists('/dev/nvidiactl')


def wants_all_lines(environ=None):
  environ = os.environ if environ is None else environ
  return environ.get('TF_CPP_MIN_LOG_LEVEL', '').strip() in ('0', '1')


def filter_lines(lines, has_driver=None):
  """The start-up lines a user should see."""
  has_driver = _has_nvidia_driver() if has_driver is None else has_driver
  patterns = _NOISE + ([] if has_driver else _NO_DRIVER_NOISE)
  return [l for l in lines if not any(p.search(l) for p in patterns)]


_captured = []  # [(saved fd 2, temporary file)] while capturing


def capture():
  """Sends fd 2 to a temporary file until release(); at exit it is released anyway."""
  if _captured or wants_all_lines():
    return
  sys.stderr.flush()
  saved = os.dup(2)
  temp = tempfile.TemporaryFile(mode='w+b')
  os.dup2(temp.fileno(), 2)
  _captured.append((saved, temp))
  atexit.register(release)


def release():
  """Restores fd 2 and replays what was captured, minus the start-up notices."""
  if not _captured:
    return
  saved, temp = _captured.pop()
  sys.stderr.flush()
  os.dup2(saved, 2)
  os.close(saved)
  temp.seek(0)
  text = temp.read().decode('utf-8', 'replace')
  temp.close()
  kept = filter_lines(text.splitlines())
  if kept:
    sys.stderr.write('\n'.join(kept) + '\n')
    sys.stderr.flush()


_started = []  # the tensorflow module, once start_tensorflow() has run


def start_tensorflow():
  """Imports TensorFlow and probes its devices with the start-up notices filtered.

  Returns the tensorflow module; later calls only return it (and end a capture
  begun since, as the first call does).
  """
  if _started:
    release()
    return _started[0]
  capture()
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices()  # GPU probing prints here, once
  finally:
    release()
  _started.append(tf)
  return tf
