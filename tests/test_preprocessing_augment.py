"""Batch-level mixup / CutMix and the per-image augmentations of augment.py."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest
import tensorflow as tf

from preprocessing import augment


def _batch(b=6, k=8, size=10):
  # Image i is constant i, its label is i: the mean of a mixed image is then the
  # target-weighted mean of the labels, whatever the mixing.
  labels = tf.range(b, dtype=tf.int64)
  images = tf.cast(tf.reshape(labels, [b, 1, 1, 1]), tf.float32) * tf.ones(
      [b, size, size, 3])
  return images, labels, k


@pytest.mark.parametrize('kwargs', [dict(mixup_alpha=0.4), dict(cutmix_alpha=1.0),
                                    dict(mixup_alpha=0.4, cutmix_alpha=1.0)])
def test_batch_mix_targets_match_the_images(kwargs):
  images, labels, k = _batch()
  transform = augment.batch_mix(**kwargs)
  for s in range(6):
    mixed, targets = transform(images, labels, k, tf.constant([s, 3], tf.int64))
    targets = targets.numpy()
    assert targets.shape == (6, k) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(-1), 1.0, atol=1e-6)
    assert (targets >= 0).all() and (targets[:, 6:] == 0).all()
    expected_mean = targets @ np.arange(k, dtype=np.float32)
    np.testing.assert_allclose(mixed.numpy().mean(axis=(1, 2, 3)), expected_mean,
                               atol=1e-4)


def test_batch_mix_is_reproducible_and_seed_dependent():
  images, labels, k = _batch()
  transform = augment.batch_mix(mixup_alpha=1.0)
  a = transform(images, labels, k, tf.constant([1, 1], tf.int64))[1].numpy()
  b = transform(images, labels, k, tf.constant([1, 1], tf.int64))[1].numpy()
  c = transform(images, labels, k, tf.constant([1, 2], tf.int64))[1].numpy()
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_cutmix_pastes_a_box():
  images, labels, k = _batch()
  mixed, targets = augment.cutmix(images, tf.one_hot(labels, k), 1.0,
                                  tf.constant([4, 4], tf.int64))
  # Each image keeps its own value outside one box and takes one partner's inside.
  for i in range(6):
    values = np.unique(mixed[i].numpy())
    assert len(values) <= 2 and i in values


def test_batch_mix_off_and_bad_alpha():
  assert augment.batch_mix() is None
  with pytest.raises(ValueError, match='mixup_alpha'):
    augment.batch_mix(mixup_alpha=-1.0)


def test_pad_and_crop_is_a_translation():
  image = tf.reshape(tf.range(36, dtype=tf.float32), [6, 6, 1])
  padded = np.pad(image.numpy(), ((2, 2), (2, 2), (0, 0)), mode='constant')
  for s in range(5):
    out = augment.pad_and_crop(image, 2, tf.constant([s, 0], tf.int64), 'constant')
    assert any(np.array_equal(out.numpy(), padded[y:y + 6, x:x + 6])
               for y in range(5) for x in range(5))


def test_color_jitter_keeps_the_range_and_handles_gray():
  rng = np.random.default_rng(0)
  for channels in (1, 3):
    image = tf.constant(rng.uniform(0, 255, (16, 16, channels)), tf.float32)
    out = augment.color_jitter(image, 2.0, tf.constant([1, 2], tf.int64))
    assert out.shape == image.shape
    assert 0 <= out.numpy().min() and out.numpy().max() <= 255
    assert not np.allclose(out.numpy(), image.numpy())
