"""Files the project writes beside its outputs: atomic, and read back with one-line errors.

A reader never sees a half-written file: text goes to a temporary file in the same
directory, then replaces the target in one rename.
"""

import json
import os
import tempfile

from common import errors


def write_text_atomic(path, text):
  """Writes beside path and renames: a reader never sees a half-written file.

  A full disk raises errors.DiskFull naming path, and leaves nothing behind.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  with errors.writing(path):
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path), dir=directory)
    try:
      with os.fdopen(fd, 'w') as f:
        f.write(text)
      os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise


def write_json_atomic(path, obj):
  write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + '\n')


def read_json(path, fix):
  """A JSON object we wrote, as a dict, or None when it is not there; damage is one
  line naming the file.

  fix: what the user should do about a damaged file.
  """
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      value = json.load(f)
  except (ValueError, UnicodeDecodeError) as e:
    raise errors.UserError('%s is damaged (%s); %s' % (path, e, fix)) from e
  if not isinstance(value, dict):
    kind = {list: 'an array', str: 'a string', bool: 'true or false',
            type(None): 'null'}.get(
        type(value), 'a number')
    raise errors.UserError('%s is damaged (%s, not a JSON object); %s'
                           % (path, kind, fix))
  return value
