"""SHA-256 digests of an output directory's files, to tell a damaged copy from a good one.

A SavedModel has no checksum of its own (its saved_model.pb is a plain protobuf that
may still parse after a flipped byte), so export writes the digests of every file
into export_config.json and classify_image.py checks them before loading.
Free of TensorFlow: it is read before TensorFlow loads.
"""

import hashlib
import json
import os

from common import errors

EXPORT_RECORD = 'export_config.json'  # export's record, with the digests under 'files'
_CHUNK = 1 << 20


def digest(path):
  sha = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(_CHUNK), b''):
      sha.update(block)
  return sha.hexdigest()


def digests(directory, skip=()):
  """{relative path: sha256} of every file under directory but those in skip."""
  out = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      relative = os.path.relpath(path, directory)
      if relative not in skip:
        out[relative] = digest(path)
  return out


def check(directory, expected, what, fix):
  """Raises a one-line UserError naming the first file missing or changed."""
  for relative, sha in sorted(expected.items()):
    path = os.path.join(directory, relative)
    if not os.path.isfile(path):
      raise errors.UserError('%s: %s is missing; %s' % (what, path, fix))
    if digest(path) != sha:
      raise errors.UserError('%s: %s is damaged or truncated (its SHA-256 differs from '
                             'the one recorded at export); %s' % (what, path, fix))


def check_export(directory, flag='--saved_model'):
  """check() against the digests an export recorded; older exports pass unchecked."""
  what = '%s=%s' % (flag, directory)
  fix = 're-run export_inference_graph.py'
  path = os.path.join(directory, EXPORT_RECORD)
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      record = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise errors.UserError('%s: %s is damaged (%s); %s'
                           % (what, path, errors.one_line(e), fix)) from e
  files = record.get('files') if isinstance(record, dict) else None
  if isinstance(files, dict):
    check(directory, files, what, fix)
