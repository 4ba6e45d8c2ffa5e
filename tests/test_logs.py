"""The scripts' log keeps our lines and warnings, not the libraries' INFO chatter;
their exit skips the collector's walk over TensorFlow's objects."""

import logging as std_logging
import os
import subprocess
import sys

from absl import logging

from slimkit import logs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record(path, level):
  return std_logging.LogRecord('absl', level, path, 440, 'message', (), None)


def test_library_info_lines_are_dropped_at_the_default_verbosity():
  library = os.path.join(os.path.dirname(std_logging.__file__), 'functional_saver.py')
  ours = os.path.join(ROOT, 'slimkit', 'run_state.py')
  keep = logs.OursOnly().filter
  previous = logging.get_verbosity()
  try:
    logging.set_verbosity(logging.INFO)
    assert not keep(_record(library, std_logging.INFO))
    assert keep(_record(library, std_logging.WARNING))
    assert keep(_record(ours, std_logging.INFO))
    logging.set_verbosity(logging.DEBUG)  # --verbosity=1 shows everything
    assert keep(_record(library, std_logging.INFO))
  finally:
    logging.set_verbosity(previous)


def test_a_script_freezes_the_collector_at_exit():
  code = ('import atexit, gc, sys\n'
          'sys.argv = ["script.py"]\n'
          'from slimkit import cli\n'
          'atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0))\n'
          'cli.run(lambda argv: None, tensorflow=False)\n')
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ['frozen', 'True']
