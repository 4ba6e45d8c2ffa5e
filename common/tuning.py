"""The one cache of per-machine measurements (conv gradient kernels, the XLA trial).

What is fastest depends on the machine, so each measurement is kept in a JSON file
under `<root>/tuning/`, one file per kind and machine:

    <root>/tuning/<kind>-<digest of the machine>.json
    {"schema": 1, "kind": "conv_grad", "machine": {...}, "entries": {key: entry}}

root is $SLIMKIT_CACHE, else ~/.cache/slimkit (the published checkpoints live there
too). Reading never fails: a missing, damaged or older-schema file reads as empty,
and an entry that its caller's `valid(entry)` rejects (a method that no longer
exists, a field renamed) reads as missing, so it is measured again. Writing is best
effort: a read-only home must not stop training.
"""

import hashlib
import json
import logging
import os

from common import errors
from common import files

SCHEMA = 1
ENV = 'SLIMKIT_CACHE'

_log = logging.getLogger('slimkit.tuning')


def root():
  return os.environ.get(ENV) or os.path.join(os.path.expanduser('~'), '.cache',
                                             'slimkit')


class Cache(object):
  """The entries of one kind of measurement on one machine.

  kind: a short name ('conv_grad', 'jit_compile').
  machine: a JSON-able dict of what the measurements depend on (CPU model and
    flags, library versions, devices); a different machine gets another file.
  valid: fn(entry) -> bool; False drops the entry on read (re-measured).
  """

  def __init__(self, kind, machine, valid=None):
    self.kind = kind
    self.machine = machine
    self.valid = valid or (lambda entry: True)

  @property
  def path(self):
    digest = hashlib.sha1(json.dumps(self.machine, sort_keys=True).encode())
    return os.path.join(root(), 'tuning', '%s-%s.json' % (
        self.kind, digest.hexdigest()[:12]))

  def _read(self):
    try:
      with open(self.path) as f:
        data = json.load(f)
    except FileNotFoundError:
      return {}
    except (OSError, ValueError) as e:
      _log.warning('%s: unreadable tuning cache (%s); measuring again', self.path, e)
      return {}
    if not isinstance(data, dict) or data.get('schema') != SCHEMA or not \
        isinstance(data.get('entries'), dict):
      return {}  # another version's file: measured again, then replaced
    return data['entries']

  def entries(self):
    """{key: entry} of the valid entries."""
    out = {}
    for key, entry in self._read().items():
      try:
        ok = self.valid(entry)
      except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
      if ok:
        out[key] = entry
    return out

  def get(self, key):
    return self.entries().get(key)

  def update(self, new_entries):
    """Adds entries (atomic replace of the file); returns False if it could not."""
    entries = self.entries()
    entries.update(new_entries)
    try:
      files.write_json_atomic(self.path, {'schema': SCHEMA, 'kind': self.kind,
                                          'machine': self.machine,
                                          'entries': entries})
      return True
    except (OSError, errors.DiskFull) as e:
      _log.warning('cannot write the tuning cache %s: %s', self.path, e)
      return False
