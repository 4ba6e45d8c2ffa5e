"""One writer per directory: an exclusive lock the system drops when its holder dies.

Training holds the lock of --train_dir for its whole run, a conversion the lock of
--dataset_dir; evaluation and export never take it. The lock is flock(2) on
'<dir>/.lock', which holds the holder's pid, host and work, so a second writer is
refused at once with who holds it. The kernel releases a flock with the process
(kill -9 included): a lock is never stale, whatever the file still says.
"""

import contextlib
import errno
import fcntl
import logging
import os
import socket

from common import errors

FILE = '.lock'

_log = logging.getLogger('slimkit.locks')


class Lock(object):
  """A held lock; release() drops it (and the directory, if made and left empty)."""

  def __init__(self, directory, fd, created):
    self.directory = directory
    self.path = os.path.join(directory, FILE)
    self.fd = fd
    self.created = created

  def release(self):
    if self.fd is None:
      return
    # Unlinked while still held: whoever opened the old file sees it is gone
    # (acquire compares inodes) instead of locking a file no one else can see.
    with contextlib.suppress(OSError):
      os.remove(self.path)
    if self.created:
      with contextlib.suppress(OSError):
        os.rmdir(self.directory)  # only if empty: a run that failed before writing
    os.close(self.fd)
    self.fd = None


def _holder(fd):
  """'pid 123' (with ' on <host>' if another) of the lock file's writer, or None."""
  try:
    fields = os.pread(fd, 256, 0).decode('utf-8', 'replace').split()
  except OSError:
    return None
  if len(fields) < 2 or not fields[0].isdigit():
    return None  # its holder has not written it yet
  where = '' if fields[1] == socket.gethostname() else ' on %s' % fields[1]
  work = ' '.join(fields[2:]) or 'another process'
  return '%s (pid %s%s)' % (work, fields[0], where)


def acquire(directory, flag, work):
  """Locks directory (made if missing) for this process -> Lock.

  flag: the flag naming it ('--train_dir'); work: what this process does there
  ('training'), shown to a second writer. Raises UserError when another process
  holds it. A filesystem without locks (some network mounts) gets a warning.
  """
  directory = os.path.abspath(directory)
  created = not os.path.isdir(directory)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, FILE)
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _holder(fd) or 'another process'
      os.close(fd)
      raise errors.UserError(
          '%s=%s is in use: %s holds its lock; wait for it to end or stop it, or '
          'pass another %s' % (flag, directory, holder, flag)) from None
    except OSError as e:
      os.close(fd)
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        raise
      _log.warning('%s=%s: this filesystem has no locks (%s); make sure no other '
                   'process writes there', flag, directory, e.strerror)
      return Lock(directory, None, False)
    try:
      same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
      same = False
    if same:
      break
    os.close(fd)  # locked a file its last holder had just removed: lock the new one
  try:
    os.ftruncate(fd, 0)
    os.write(fd, ('%d %s %s\n' % (os.getpid(), socket.gethostname(), work)).encode())
  except OSError:
    pass  # a full disk: the lock holds all the same, only its holder goes unnamed
  return Lock(directory, fd, created)


@contextlib.contextmanager
def exclusive(directory, flag, work):
  """Holds directory's lock while the block runs (see acquire)."""
  lock = acquire(directory, flag, work)
  try:
    yield lock
  finally:
    lock.release()
