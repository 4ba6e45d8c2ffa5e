"""TensorBoard event files for training, written from the host between steps.

Scalars are the values of the last step of a call to the training loop (as Slim's
summary thread sampled the latest step); histograms read the variables directly.
"""

import glob
import os

import tensorflow as tf

from common import errors
from tensorflow.core.util import event_pb2


class Writer(object):
  """tf.summary file writer in `logdir`, or a no-op for non-chief workers.

  A full disk raises errors.DiskFull naming the event files.
  """

  def __init__(self, logdir, enabled=True):
    self._writer = tf.summary.create_file_writer(logdir) if enabled else None
    self._files = os.path.join(logdir, 'events.out.tfevents.*')

  def scalars(self, step, values):
    if self._writer is None:
      return
    with errors.writing(self._files), self._writer.as_default(step=step):
      for name, value in values.items():
        tf.summary.scalar(name, float(value))

  def histograms(self, step, variables, prefix=''):
    """One histogram per variable, tagged by its Slim-style path."""
    if self._writer is None:
      return
    with errors.writing(self._files), self._writer.as_default(step=step):
      for name, variable in variables.items():
        tf.summary.histogram(prefix + name, tf.convert_to_tensor(variable))

  def flush(self):
    if self._writer is not None:
      with errors.writing(self._files):
        self._writer.flush()

  def close(self):
    if self._writer is not None:
      writer, self._writer = self._writer, None
      with errors.writing(self._files):
        writer.close()


def read_scalars(logdir):
  """{tag: [(step, value), ...]} from every event file in logdir (for tests, tools)."""
  out = {}
  for path in sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))):
    for record in tf.data.TFRecordDataset(path):
      event = event_pb2.Event.FromString(record.numpy())
      for value in event.summary.value:
        if value.HasField('simple_value'):
          number = value.simple_value
        elif value.HasField('tensor') and value.metadata.plugin_data.plugin_name == \
            'scalars':
          number = float(tf.make_ndarray(value.tensor))
        else:
          continue
        out.setdefault(value.tag, []).append((int(event.step), number))
  return out
