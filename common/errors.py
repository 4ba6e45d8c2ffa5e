"""The one error mechanism: bad input becomes one line, a bug stays a traceback.

Library code raises `UserError` (or ValueError / FileNotFoundError, which the scripts
have always treated as bad input) with a message that names the flag or file, says
what was expected and what to do. Code that reads users' files wraps the read in
`reading(...)`, so that TensorFlow's run-time errors (a DataLossError from a cut
TFRecord, an IndexError from a short checkpoint bundle, an undecodable image) become
such a line too, naming the file. `describe(exc)` is what the scripts print
(slimkit/cli.py); it returns None for anything that is not bad input.
"""

import contextlib
import errno
import os
import re
import sys


class UserError(ValueError):
  """Bad input: one line naming the flag or file, what is wrong and what to do."""


class DiskFull(UserError):
  """A write ran out of space: one line naming the path (see writing)."""


class Stopped(BaseException):
  """A signal stopped the script's work: the scripts print the message and exit
  128 + signum, as a shell reports a process killed by it. A BaseException, as
  KeyboardInterrupt, so that no `except Exception` swallows it."""

  def __init__(self, signum, message):
    super().__init__(message)
    self.signum = signum


# Plain Python errors that TensorFlow's file readers raise for damaged files (a
# tensor bundle whose .data file is short raises IndexError 'Read less bytes than
# requested'); only inside reading(...) are they taken as bad input.
_READ_ERRORS = (IndexError, EOFError, OSError, UnicodeDecodeError)


# A check that runs inside TensorFlow (a tf.data map, a tf.function) cannot raise
# UserError: it fails an assertion whose text carries the message between these
# marks (see graph_message); describe() and reading() turn it back into one line.
MARK, END_MARK = '<bad-input>', '</bad-input>'
_MARKED = re.compile(re.escape(MARK) + '(.*?)' + re.escape(END_MARK), re.S)


def marked(message):
  """The text a graph-side check fails with, for a message describe() recovers."""
  return MARK + message + END_MARK


def graph_message(exc):
  """The message a graph-side check put in exc, or None.

  tf.debugging.Assert prints its data as '[a] [b] [c]': the pieces are joined back.
  """
  found = _MARKED.search(str(getattr(exc, 'message', None) or exc))
  if not found:
    return None
  text = found.group(1)
  if text.startswith('] ['):
    text = text[3:].replace('] [', '')
  return one_line(text)


def one_line(text):
  return ' '.join(str(text).split())


def _tf_errors():
  tf = sys.modules.get('tensorflow')  # not imported: it cannot have raised
  return getattr(tf, 'errors', None)


# Lines of a TensorFlow error that locate the failing op, not what went wrong.
_TF_NOISE = re.compile(r'^(Graph execution error:|Detected at node |File "|\[\[)')


def first_line(exc):
  """The useful part of an exception's text: TF's messages run to pages.

  A graph-mode error starts with 'Graph execution error:' and the Python stack of
  the failing op; what went wrong is the first line after it.
  """
  message = getattr(exc, 'message', None) or str(exc) or type(exc).__name__
  for line in str(message).splitlines():
    line = line.strip()
    if line and not _TF_NOISE.match(line):
      line = re.sub(r'^(\{\{function_node [^}]*\}\} )+', '', line)
      return re.sub(r'\s*(\[\[\{\{.*|\[Op:[^\]]*\].*)$', '', line) or line
  return type(exc).__name__


def describe(exc):
  """The one-line message for bad input, or None if exc is a bug (keep the trace)."""
  found = graph_message(exc)
  if found:
    return found
  if isinstance(exc, (ValueError, FileNotFoundError, NotADirectoryError,
                      IsADirectoryError, PermissionError, FileExistsError,
                      FloatingPointError)):
    text = str(exc)
    filename = getattr(exc, 'filename', None)
    if filename and filename not in text:
      text = '%s: %s' % (filename, getattr(exc, 'strerror', None) or text)
    return one_line(text)
  tf_errors = _tf_errors()
  if tf_errors is not None and isinstance(exc, (tf_errors.DataLossError,
                                                tf_errors.NotFoundError,
                                                tf_errors.PermissionDeniedError)):
    return one_line(first_line(exc))
  full = disk_full(exc)
  if full and not isinstance(exc, OSError):  # TensorFlow's words for it
    return one_line('the disk is full (%s): %s' % (full, first_line(exc)))
  if isinstance(exc, OSError):  # a full disk, a lost mount: the system's words
    if getattr(exc, 'filename', None):
      return one_line('%s: %s' % (exc.filename, exc.strerror or exc))
    return one_line(exc)
  return None


@contextlib.contextmanager
def reading(what, fix, locate=None):
  """Turns an error from reading users' files into a UserError.

  what: the files, as the user knows them ('--checkpoint_path=/x/ckpt-5').
  fix: what to do about it ('re-run download_and_convert_data.py'), or a fn() -> str
    called on error (to name what is known only then, e.g. the last checkpoint).
  locate: optional fn(exc) -> str naming the exact damaged file and what is wrong
    with it, called only on error (e.g. a scan of the shards); its text replaces
    '<what>: damaged or truncated (<TensorFlow's words>)' when it returns one.
  A graph-side check's message (see marked) is kept as it is, followed by fix.
  """
  try:
    yield
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    found = graph_message(e)
    if found is None and (not _is_read_error(e) or disk_full(e)):
      raise  # a full disk while reading is a write elsewhere, not damage
    advice = fix() if callable(fix) else fix
    if found is None:
      found = (locate(e) if locate else None) or '%s: %s (%s)' % (
          what, _damage(e), first_line(e))
    raise UserError('%s; %s' % (found, advice)) from e


_FULL_WORDS = ('No space left on device', 'Disk quota exceeded')


def disk_full(exc):
  """The system's words if exc is an out-of-space error, else None.

  OSError carries an errno; TensorFlow's writers (checkpoints, event files,
  TFRecords) raise ResourceExhaustedError with the words in the text.
  """
  if isinstance(exc, OSError):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
      return os.strerror(exc.errno)
    return None
  tf_errors = _tf_errors()
  if tf_errors is None or not isinstance(exc, tf_errors.OpError):
    return None
  text = str(getattr(exc, 'message', None) or exc)
  return next((words for words in _FULL_WORDS if words in text), None)


@contextlib.contextmanager
def writing(path, advice=None):
  """Turns running out of space while writing path into a DiskFull error.

  '<path>: the disk is full (No space left on device); <advice>'. The caller
  removes what it left half-written; other errors pass unchanged.
  """
  try:
    yield
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    full = disk_full(e)
    if full is None:
      raise
    message = '%s: the disk is full (%s)' % (path, full)
    raise DiskFull(message + ('; ' + advice if advice else '')) from e


def _is_read_error(exc):
  tf_errors = _tf_errors()
  if tf_errors is not None and isinstance(exc, (tf_errors.DataLossError,
                                                tf_errors.NotFoundError,
                                                tf_errors.PermissionDeniedError,
                                                tf_errors.InvalidArgumentError,
                                                tf_errors.OutOfRangeError,
                                                tf_errors.UnknownError)):
    return True
  # A tensor bundle's 'Checksum does not match' comes as the base class itself.
  if tf_errors is not None and type(exc) is tf_errors.OpError:  # pylint: disable=unidiomatic-typecheck
    return True
  return isinstance(exc, _READ_ERRORS)


def _damage(exc):
  tf_errors = _tf_errors()
  if tf_errors is not None:
    if isinstance(exc, tf_errors.NotFoundError):
      return 'missing file'
    if isinstance(exc, tf_errors.PermissionDeniedError):
      return 'not readable'
  if isinstance(exc, FileNotFoundError):
    return 'missing file'
  if isinstance(exc, PermissionError):
    return 'not readable'
  return 'damaged or truncated'


def check_output_dir(flag, path):
  """An output directory that can be written, checked before any work starts.

  Creates nothing: names the flag when the path is a file, lies under a file, or
  cannot be written.
  """
  if not path:
    raise UserError('--%s: expected a directory path' % flag)
  path = os.path.abspath(path)
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError('--%s=%s is a file, not a directory; pass a directory path'
                           % (flag, path))
  existing = path
  while not os.path.exists(existing):
    parent = os.path.dirname(existing)
    if parent == existing:
      break
    existing = parent
  if not os.path.isdir(existing):
    raise UserError('--%s=%s: %s is a file, so the directory cannot be made '
                           'there; pass another path' % (flag, path, existing))
  if not os.access(existing, os.W_OK | os.X_OK):
    raise UserError('--%s=%s: %s is not writable; pass a directory you can write'
                           % (flag, path, existing))
  return path


def check_input_dir(flag, path, what='directory'):
  """An existing, readable input directory."""
  if not path:
    raise UserError('--%s: expected the %s' % (flag, what))
  if not os.path.exists(path):
    raise UserError('--%s=%s: no such %s' % (flag, path, what))
  if not os.path.isdir(path):
    raise UserError('--%s=%s is a file; expected the %s' % (flag, path, what))
  if not os.access(path, os.R_OK | os.X_OK):
    raise UserError('--%s=%s is not readable' % (flag, path))
  return path
