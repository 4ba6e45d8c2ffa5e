"""What evaluation says besides its metrics: why one class for every image, and
its progress in a log file."""

import io

import numpy as np

from slimkit import evaluate


def _result(confusion, model_name='mobilenet_v1', step=20):
  confusion = np.asarray(confusion)
  return {'confusion_matrix': confusion.tolist(), 'model_name': model_name,
          'step': step, 'class_names': ['c%d' % i for i in range(len(confusion))]}


# 30 images, 10 of each class; every one predicted as class 1.
ONE_CLASS = [[0, 10, 0], [0, 10, 0], [0, 10, 0]]


def test_one_class_for_every_image_names_the_stale_batch_norm_averages():
  line = evaluate.one_class_warning(_result(ONE_CLASS), {'batch_norm_decay': None})
  assert line.startswith('100 % of the 30 images were given class 1 (c1): the batch '
                         'norm moving averages')
  assert 'decay 0.9997' in line and 'step 20' in line  # MobileNet V1's own decay
  assert '--batch_norm_decay=0.99' in line
  # The run's own decay, when it set one; long after it, another cause.
  assert 'decay 0.9 ' in evaluate.one_class_warning(
      _result(ONE_CLASS, step=5), {'batch_norm_decay': 0.9})
  late = evaluate.one_class_warning(_result(ONE_CLASS, step=100000), {})
  assert 'batch norm' not in late and 'does not tell the classes apart' in late
  # A net without batch norm, or a checkpoint without a train run.
  for result, run in ((_result(ONE_CLASS, 'lenet'), {}), (_result(ONE_CLASS), None)):
    assert 'does not tell the classes apart' in evaluate.one_class_warning(result, run)


def test_no_warning_when_the_predictions_are_spread_or_the_class_dominates():
  assert evaluate.one_class_warning(_result(np.eye(3) * 10), {}) is None
  assert evaluate.one_class_warning(_result([[8, 2, 0], [0, 10, 0], [0, 10, 0]]),
                                    {}) is None  # 22 of 30: not nearly every image
  # A split that is nearly all of that class: predicting it is no symptom.
  assert evaluate.one_class_warning(_result([[0, 1, 0], [0, 40, 0], [0, 1, 0]]),
                                    {}) is None


def test_progress_in_a_log_file_is_plain_lines(absl_log):
  stream = io.StringIO()  # not a terminal
  assert list(evaluate.progress(range(4), 4, 'eval step 7', stream=stream,
                                plain_secs=0)) == [0, 1, 2, 3]
  assert stream.getvalue() == ''  # no bar, no '\r'
  assert [m for m in absl_log.messages if m.startswith('eval step 7')] == [
      'eval step 7: 1 of 4 batches', 'eval step 7: 2 of 4 batches',
      'eval step 7: 3 of 4 batches']
