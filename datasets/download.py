"""Downloads with mirrors and checksum verification.

A download goes to '<dataset_dir>/<file>.download-tmp-<pid>', is verified, then renamed
to '<dataset_dir>/<file>', so a file under its final name has always been verified.
"""
import collections
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request

import tqdm

from common import errors

# One official file: its name, the URLs to try in order, and its published checksum.
Remote = collections.namedtuple('Remote', 'filename urls algorithm digest size')

TMP_MARK = '.download-tmp-'
BLOCK = 1 << 20


def file_digest(path, algorithm):
  digest = hashlib.new(algorithm)
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(BLOCK), b''):
      digest.update(block)
  return digest.hexdigest()


def verify(path, remote):
  """Raises ValueError if path does not hash to the official checksum of remote."""
  if remote.digest is None:  # nothing published (TF-Slim's checkpoints)
    return
  actual = file_digest(path, remote.algorithm)
  if actual != remote.digest:
    raise ValueError('checksum mismatch for %s: %s %s, expected %s (the official %s)'
                     % (path, remote.algorithm, actual, remote.digest, remote.filename))


def check_local(path, remote):
  """Verifies a local copy when its size equals the official file's size.

  Files of another size are samples or re-packs (e.g. a quarter of flower_photos) that no
  published checksum covers; they are read as they are.
  """
  if remote.size is not None and os.path.getsize(path) == remote.size:
    verify(path, remote)


def _fetch_url(url, path, timeout, progress):
  with urllib.request.urlopen(url, timeout=timeout) as response, open(path, 'wb') as out:
    total = response.headers.get('Content-Length')
    with tqdm.tqdm(total=int(total) if total else None, unit='B', unit_scale=True,
                   desc=os.path.basename(path).split(TMP_MARK)[0], file=sys.stderr,
                   disable=None if progress is None else not progress, leave=False) as bar:
      for block in iter(lambda: response.read(BLOCK), b''):
        out.write(block)
        bar.update(len(block))


def fetch(remote, dest_dir, timeout=60, progress=None):
  """Downloads remote into dest_dir (first working URL), verifies it -> final path.

  A verified copy already in dest_dir (e.g. from an interrupted run) is reused. Raises
  OSError naming every URL tried and why it failed (network error or wrong checksum).
  progress: True/False, or None for a progress bar only on a terminal.
  """
  final = os.path.join(dest_dir, remote.filename)
  if os.path.isfile(final):
    try:
      verify(final, remote)
      return final
    except ValueError:
      os.remove(final)  # a stale or damaged copy; fetch it again
  tmp = '%s%s%d' % (final, TMP_MARK, os.getpid())
  failures = []
  for url in remote.urls:
    try:
      _fetch_url(url, tmp, timeout, progress)
      verify(tmp, remote)
      os.replace(tmp, final)
      return final
    except ValueError as e:
      failures.append('%s: %s' % (url, str(e).replace(tmp, 'the download')))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
      if errors.disk_full(e):  # another mirror would not help
        raise errors.DiskFull('%s: the disk is full (%s); free space, then run the '
                              'same command again' % (final, errors.disk_full(e))) from e
      if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        e = e.reason  # '[Errno 111] Connection refused' rather than '<urlopen error ...>'
      failures.append('%s: %s' % (url, e))
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  raise OSError('could not download %s (%s)' % (remote.filename, '; '.join(failures)))


def remove_partial_downloads(dest_dir):
  """Deletes '*.download-tmp-*' files an interrupted run left in dest_dir."""
  for name in os.listdir(dest_dir):
    if TMP_MARK in name:
      os.remove(os.path.join(dest_dir, name))
