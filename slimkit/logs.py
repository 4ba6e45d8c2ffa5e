"""The scripts' log: our INFO lines and everyone's warnings, not the libraries' chatter.

TensorFlow logs INFO lines of its own while saving (through absl: 'Sharding callback
duration: 74 microseconds', 'Function `serving_default` contains input name(s)
resource ... which will be renamed'; through its logger, which prints them twice:
'Assets written to: ...'). At the default verbosity an INFO line passes only if it
comes from this project's code; warnings always pass; --verbosity=1 (debug) shows
everything.
"""

import logging as std_logging
import os

from absl import logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class OursOnly(std_logging.Filter):
  """Passes warnings, this project's records, and everything at debug verbosity."""

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING or
            os.path.abspath(record.pathname).startswith(ROOT) or
            logging.get_verbosity() >= logging.DEBUG)


_FILTER = OursOnly()


def quiet_libraries():
  """Filters absl's handler and TensorFlow's logger (which has a handler of its own)."""
  for target in (logging.get_absl_handler(), std_logging.getLogger('tensorflow')):
    if _FILTER not in target.filters:
      target.addFilter(_FILTER)
