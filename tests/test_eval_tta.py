"""--eval_tta: test-time augmentation inside the compiled eval step."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import subprocess
import sys

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from conftest import eval_config
from conftest import train_config
from common import errors
from slimkit import checkpoints
from slimkit import evaluate
from slimkit import flags as slim_flags
from slimkit import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_mnist_dir):
  """A LeNet train dir (ckpt-2) on the tiny MNIST-like set."""
  train_dir = str(tmp_path_factory.mktemp('tta') / 'train')
  train.run(train_config(train_dir, tiny_mnist_dir, max_number_of_steps=2))
  return train_dir


def _config(train_dir, dataset_dir, eval_dir, **changes):
  return eval_config(train_dir, dataset_dir, eval_dir, batch_size=10, **changes)


def _evaluator(trained, tiny_mnist_dir, tmp_path, tta):
  config = _config(trained, tiny_mnist_dir, tmp_path / 'eval', eval_tta=tta)
  evaluator = evaluate.Evaluator(config, evaluate.resolve(config, None))
  prefix = os.path.join(trained, 'ckpt-2')
  checkpoints.restore_model(evaluator.model, prefix, fine_tuning=False)
  return evaluator


def _images(shape, seed=0):
  """Deterministic, and far from left-right (or up-down) symmetric."""
  rng = np.random.default_rng(seed)
  images = rng.uniform(-1, 1, shape).astype(np.float32)
  images[:, :, : shape[2] // 3] += 1.0  # a bright left third
  return images


def _net(evaluator, images):
  return evaluator.model(images, training=False)['Logits'].numpy().astype(np.float64)


def _reflect_shifts(images, shift):
  """The batch shifted down-right and up-left by shift pixels, borders reflected."""
  h, w = images.shape[1:3]
  padded = np.pad(images, [(0, 0), (shift, shift), (shift, shift), (0, 0)], 'reflect')
  return padded[:, :h, :w], padded[:, 2 * shift:, 2 * shift:]


def test_flag_choices_are_the_modes_evaluate_knows():
  assert slim_flags.EVAL_TTA == list(evaluate.TTA_VIEWS)
  values = slim_flags.define_into(flags.FlagValues(), slim_flags.define_eval_flags)
  values(['eval'])
  assert values['eval_tta'].value == 'none'
  with pytest.raises(flags.IllegalFlagValueError, match='flip_translate'):
    values(['eval', '--eval_tta=mirror'])
  script = 'eval_image_classifier.py'
  result = subprocess.run([sys.executable, os.path.join(ROOT, script),
                           '--eval_tta=mirror'], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  lines = [l for l in result.stderr.splitlines() if ': error: ' in l]
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert lines == [script + ': error: flag --eval_tta=mirror: value should be one of '
                   '<none|flip|flip_translate>'], result.stderr


def test_views_of_non_square_and_tiny_images():
  images = _images((2, 3, 5, 2))
  for mode, count in evaluate.TTA_VIEWS.items():
    views = evaluate.tta_views(tf.constant(images), mode)
    assert len(views) == count
    assert sum(w for w, _ in views) == pytest.approx(1.0)
  views = [(w, v.numpy()) for w, v in evaluate.tta_views(tf.constant(images),
                                                         'flip_translate')]
  down_right, up_left = _reflect_shifts(images, evaluate.TTA_SHIFT)
  expected = [(0.25, images), (0.25, images[:, :, ::-1]),
              (0.125, down_right), (0.125, down_right[:, :, ::-1]),
              (0.125, up_left), (0.125, up_left[:, :, ::-1])]
  assert len(views) == len(expected)
  for (weight, view), (want_weight, want) in zip(views, expected):
    assert weight == want_weight
    np.testing.assert_array_equal(view, want)
  # Down-right: row 1 is the old row 0 and row 0 its reflection (the old row 1).
  np.testing.assert_array_equal(down_right[:, 1:, 1:], images[:, :-1, :-1])
  np.testing.assert_array_equal(down_right[:, 0, 1:], images[:, 1, :-1])
  # 2x2 is the smallest image that can be shifted with reflected borders.
  two = evaluate.tta_views(tf.constant(_images((1, 2, 2, 1))), 'flip_translate')
  assert [v.shape for _, v in two] == [(1, 2, 2, 1)] * 6
  for shape in ((1, 1, 1, 3), (1, 1, 4, 3)):
    with pytest.raises(errors.UserError, match=r'--eval_tta=flip_translate .*needs at '
                       r'least 2x2 pixels; the eval images are 1x'):
      evaluate.tta_views(tf.constant(_images(shape)), 'flip_translate')
  assert len(evaluate.tta_views(tf.constant(_images((1, 1, 1, 3))), 'flip')) == 2


def test_flip_averages_the_logits_of_the_mirrored_images(trained, tiny_mnist_dir,
                                                         tmp_path):
  images = _images((5, 28, 28, 1))
  plain = _net(_evaluator(trained, tiny_mnist_dir, tmp_path, 'none'), images)
  flip = _evaluator(trained, tiny_mnist_dir, tmp_path, 'flip')
  got = flip.logits_fn(tf.constant(images)).numpy()
  mirrored = _net(flip, images[:, :, ::-1])
  expected = (plain + mirrored) / 2
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  # What a wrong implementation gives is far from it: no flip, the up-down flip.
  upside_down = (plain + _net(flip, images[:, ::-1])) / 2
  assert np.abs(plain - expected).max() > 1e-2
  assert np.abs(upside_down - expected).max() > 1e-2

  translate = _evaluator(trained, tiny_mnist_dir, tmp_path, 'flip_translate')
  got = translate.logits_fn(tf.constant(images)).numpy()
  down_right, up_left = _reflect_shifts(images, evaluate.TTA_SHIFT)
  expected = (0.25 * (plain + mirrored)
              + 0.125 * sum(_net(translate, v) + _net(translate, v[:, :, ::-1])
                            for v in (down_right, up_left)))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  assert np.abs((plain + mirrored) / 2 - expected).max() > 1e-3


def test_none_is_the_evaluation_without_tta(trained, tiny_mnist_dir, tmp_path):
  none = _evaluator(trained, tiny_mnist_dir, tmp_path, 'none')

  @tf.function
  def old_step(images):  # the eval step before --eval_tta existed
    return tf.cast(none.model(images, training=False)['Logits'], tf.float32)

  images = tf.constant(_images((7, 28, 28, 1)))
  np.testing.assert_array_equal(none.logits_fn(images).numpy(),
                                old_step(images).numpy())
  # Unset (a config from before the flag) and none give the same result.
  unset = _config(trained, tiny_mnist_dir, tmp_path / 'unset')
  [before] = evaluate.run(unset)
  [after] = evaluate.run(dict(unset, eval_dir=str(tmp_path / 'none'), eval_tta='none'))
  for key in ('metrics', 'confusion_matrix', 'per_class_accuracy', 'num_samples'):
    assert before[key] == after[key]
  assert before['eval_tta'] == after['eval_tta'] == 'none'
  assert '--eval_tta' not in evaluate.format_table(after)
  with pytest.raises(errors.UserError, match='--eval_tta=mirror: expected one of '
                     'none, flip, flip_translate'):
    evaluate.run(dict(unset, eval_tta='mirror'))
  # Too small to shift: said before the net is built.
  with pytest.raises(errors.UserError, match='the eval images are 1x1 '
                     r'\(--eval_image_size\): use --eval_tta=flip'):
    evaluate.run(dict(unset, eval_tta='flip_translate', eval_image_size=1,
                      explicit_flags=['eval_image_size']))


@pytest.mark.slow
def test_the_script_evaluates_with_flip_and_records_it(trained, tiny_mnist_dir,
                                                       tmp_path):
  eval_dir = tmp_path / 'script_eval'
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'eval_image_classifier.py'),
       '--checkpoint_path=%s' % trained, '--eval_dir=%s' % eval_dir,
       '--model_name=lenet', '--dataset_name=mnist', '--dataset_dir=%s' % tiny_mnist_dir,
       '--batch_size=10', '--eval_tta=flip'],
      cwd=ROOT, capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(eval_dir / 'eval_2.json') as f:
    written = json.load(f)
  assert written['eval_tta'] == 'flip' and written['num_samples'] == 32
  assert '--eval_tta=flip (2 views per image)' in result.stdout.splitlines()[0]
  # The same pass in this process, and a different one without the flip.
  config = _config(trained, tiny_mnist_dir, tmp_path / 'flip', eval_tta='flip')
  [here] = evaluate.run(config)
  assert written['metrics'] == pytest.approx(here['metrics'], rel=1e-5)
  [plain] = evaluate.run(dict(config, eval_dir=str(tmp_path / 'plain'),
                              eval_tta='none'))
  assert plain['metrics']['loss'] != pytest.approx(here['metrics']['loss'], rel=1e-4)
