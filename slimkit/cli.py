"""What every script does around its work: the prologue, one-line errors, exit codes.

    from slimkit import cli          # first: sets up TensorFlow (logging, oneDNN)
    ...
    def main(argv): ...               # raises on bad input, returns an exit code or None
    if __name__ == '__main__':
      cli.run(main)

Exit codes: 0 done, 1 bad input (one line on stderr: '<script>: error: <message>'),
130 interrupted, 143 stopped by SIGTERM (one line: what was left undone). A bug keeps
its traceback.
"""

import atexit
import gc
import multiprocessing
import os
import signal
import sys
import threading

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from deployment import cpu  # pylint: disable=g-import-not-at-top,wrong-import-position
from deployment import startup  # pylint: disable=g-import-not-at-top,wrong-import-position

cpu.configure_onednn()  # before TensorFlow's import, which reads it once
if multiprocessing.parent_process() is None and not any(
    a in ('-h', '-?') or a.startswith('--help') for a in sys.argv[1:]):
  startup.capture()  # TensorFlow's C++ start-up notices, filtered (deployment/startup.py)

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position

from common import errors  # pylint: disable=g-import-not-at-top,wrong-import-position
from slimkit import logs  # pylint: disable=g-import-not-at-top,wrong-import-position
from slimkit import usage  # pylint: disable=g-import-not-at-top,wrong-import-position

EXIT_BAD_INPUT = 1
EXIT_INTERRUPTED = 130


def script_name():
  return os.path.basename(sys.argv[0]) or 'slimkit'


def fail(message, code=EXIT_BAD_INPUT):
  startup.release()
  print('%s: error: %s' % (script_name(), errors.one_line(message)), file=sys.stderr)
  sys.exit(code)


def call(main, argv, positional=False, tensorflow=True):
  """main(argv) under the one error mechanism; exits as the script would.

  What run() does after parsing the flags; tests call it in-process.
  tensorflow: start TensorFlow (filtered) before main; False for scripts that
    import it late or never (the converter).
  """
  if tensorflow:
    startup.start_tensorflow()
  else:
    startup.release()
  if len(argv) > 1 and not positional:
    fail('unexpected arguments %s (flags are --name=value)' % ' '.join(argv[1:]))
  if not flags.FLAGS['verbosity'].present:  # --verbosity=1 shows debug lines
    logging.set_verbosity(logging.INFO)
  logs.quiet_libraries()
  previous = _stop_on(signal.SIGTERM)
  try:
    code = main(argv)
  except KeyboardInterrupt:
    print('%s: interrupted' % script_name(), file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  except errors.Stopped as e:  # the work says what it left undone
    print('%s: %s' % (script_name(), errors.one_line(e)), file=sys.stderr)
    sys.exit(128 + e.signum)
  except Exception as e:  # pylint: disable=broad-except
    message = errors.describe(e)
    if message is None:
      raise
    fail(message)
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
  if code:
    sys.exit(code)


def _stop_on(signum):
  """signum raises errors.Stopped (cleanup runs, no silent death); the old handler."""
  if threading.current_thread() is not threading.main_thread():
    return None

  def stop(received, frame):
    del frame
    raise errors.Stopped(received, 'stopped by %s' % signal.Signals(received).name)
  return signal.signal(signum, stop)


def run(main, positional=False, tensorflow=True):
  """app.run(main) with the shared prologue and the one error mechanism.

  positional: main takes arguments after the flags (classify_image.py's images);
    otherwise any is an error.
  tensorflow: see call().
  """
  # At exit Python's collector walks TensorFlow's millions of objects several
  # times (3.5-4 s after a LeNet run here); frozen, they are skipped.
  atexit.register(gc.freeze)
  app.run(lambda argv: call(main, argv, positional, tensorflow),
          flags_parser=_parse_flags)


def _parse_flags(argv):
  """absl's parse, with a bad flag value reported as one line like any bad input;
  --help lists the script's own flags (slimkit/usage.py) and exits 0."""
  if usage.asked(argv):
    print(usage.help_text(flags.FLAGS))
    sys.exit(0)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(e)
