"""The noise filters against plain numpy references on random images."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest
import tensorflow as tf

from preprocessing import filters


def _np_windows(image, size, padding):
  """[H, W, C, size*size] windows in raster order, numpy only."""
  r = size // 2
  mode = {'reflect': 'reflect', 'symmetric': 'symmetric'}[padding]
  padded = np.pad(image.astype(np.int64), ((r, r), (r, r), (0, 0)), mode=mode)
  h, w, c = image.shape
  out = np.empty((h, w, c, size * size), np.int64)
  for y in range(h):
    for x in range(w):
      block = padded[y:y + size, x:x + size, :]  # [size, size, C]
      out[y, x] = block.reshape(size * size, c).T
  return out


def np_filter(image, name, size, padding='reflect', m=None):
  win = _np_windows(image, size, padding)
  n = size * size
  srt = np.sort(win, axis=-1)
  if name == 'median':
    out = srt[..., n // 2]
  elif name == 'mean':
    out = np.round(win.sum(-1) / n)
  elif name in ('trimmed_mean', 'trimmed_mean_quarter'):
    k = 1 if name == 'trimmed_mean' else n // 4
    out = np.round(srt[..., k:n - k].sum(-1) / (n - 2 * k))
  elif name == 'closest_to_mean':
    mean = win.mean(-1, keepdims=True)
    dist = np.abs(srt - mean)
    out = np.take_along_axis(srt, dist.argmin(-1)[..., None], -1)[..., 0]
  elif name == 'adaptive_mean':
    m = n // 2 + 1 if m is None else m
    centre = win[..., n // 2:n // 2 + 1]
    order = np.argsort(np.abs(srt - centre), axis=-1, kind='stable')[..., :m]
    out = np.round(np.take_along_axis(srt, order, -1).sum(-1) / m)
  return np.clip(out, 0, 255).astype(np.uint8)


@pytest.mark.parametrize('name', filters.NAMES)
@pytest.mark.parametrize('size,padding', [(3, 'reflect'), (5, 'symmetric')])
def test_filter_matches_numpy(name, size, padding):
  rng = np.random.default_rng(size)
  image = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
  # A flat patch and repeated values exercise ties (closest_to_mean, adaptive).
  image[2:6, 3:8] = 77
  got = filters.apply_filter(tf.constant(image), name, size, padding=padding).numpy()
  assert got.dtype == np.uint8 and got.shape == image.shape
  np.testing.assert_array_equal(got, np_filter(image, name, size, padding))


@pytest.mark.parametrize('m', [1, 3, 9])
def test_adaptive_mean_m(m):
  rng = np.random.default_rng(m)
  image = rng.integers(0, 256, (7, 6, 1), dtype=np.uint8)
  got = filters.adaptive_mean_filter(tf.constant(image), 3, m=m).numpy()
  np.testing.assert_array_equal(got, np_filter(image, 'adaptive_mean', 3, m=m))
  if m == 1:  # only the centre pixel itself: the identity
    np.testing.assert_array_equal(got, image)


def test_trim_option_quarter_equals_quarter_name():
  image = tf.constant(np.random.default_rng(5).integers(0, 256, (8, 8, 3), np.uint8))
  a = filters.apply_filter(image, 'trimmed_mean', 5, trim='quarter')
  b = filters.apply_filter(image, 'trimmed_mean_quarter', 5)
  np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_filters_remove_salt_noise():
  # A flat image with isolated salt pixels: median and trimmed means restore it.
  image = np.full((12, 12, 1), 100, np.uint8)
  image[3, 4] = image[8, 9] = 255
  for name in ('median', 'trimmed_mean', 'closest_to_mean'):
    got = filters.apply_filter(tf.constant(image), name, 3).numpy()
    assert (got == 100).all(), name


def test_adaptive_mean_keeps_edges_that_mean_blurs():
  image = np.zeros((6, 8, 1), np.uint8)
  image[:, 4:] = 200
  adaptive = filters.apply_filter(tf.constant(image), 'adaptive_mean', 3).numpy()
  mean = filters.apply_filter(tf.constant(image), 'mean', 3).numpy()
  np.testing.assert_array_equal(adaptive, image)
  assert mean[0, 3, 0] == 67 and mean[0, 4, 0] == 133


def test_filter_bad_arguments():
  image = tf.zeros([8, 8, 3], tf.uint8)
  with pytest.raises(ValueError, match='filter_size'):
    filters.apply_filter(image, 'median', 4)
  with pytest.raises(ValueError, match='image_filter'):
    filters.apply_filter(image, 'gaussian', 3)
  with pytest.raises(ValueError, match='trim'):
    filters.apply_filter(image, 'trimmed_mean', 3, trim='half')
  with pytest.raises(ValueError, match='adaptive_m'):
    filters.apply_filter(image, 'adaptive_mean', 3, m=10)
  with pytest.raises(ValueError, match='filter_padding'):
    filters.apply_filter(image, 'mean', 3, padding='zeros')
  with pytest.raises(ValueError, match='uint8'):
    filters.apply_filter(tf.zeros([8, 8, 3]), 'mean', 3)
