"""preprocessing_factory: Slim's presets, the cifar preset and the common options."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest
import tensorflow as tf

from preprocessing import cifar_preprocessing
from preprocessing import grayscale
from preprocessing import inception_preprocessing
from preprocessing import preprocessing_factory
from preprocessing import vgg_preprocessing

PRESETS = ('cifar', 'cifarnet', 'inception', 'lenet', 'vgg')


def _image(h=37, w=45, c=3, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _run(name, is_training, image, height=32, width=28, seed=None, **options):
  fn = preprocessing_factory.get_preprocessing(name, is_training, **options)
  return fn(tf.constant(image), height, width, seed=seed).numpy()


@pytest.mark.parametrize('name,preset', [
    ('inception', 'inception'), ('inception_v1', 'inception'),
    ('inception_v3', 'inception'), ('mobilenet_v1', 'inception'),
    ('mobilenet_v2_140', 'inception'), ('nasnet_mobile', 'inception'),
    ('vgg', 'vgg'), ('vgg_16', 'vgg'), ('resnet_v1_50', 'vgg'),
    ('resnet_v2_101', 'vgg'), ('cifarnet', 'cifarnet'), ('lenet', 'lenet'),
    ('cifar', 'cifar'), ('custom_cnn', 'cifar'), ('custom_cnn_wide', 'cifar'),
    ('mobilenet_v1_cifar', 'cifar'), ('resnet_v1_50_cifar', 'cifar')])
def test_factory_mapping(name, preset):
  assert preprocessing_factory.preset_name(name) == preset


def test_unknown_name_lists_choices():
  with pytest.raises(ValueError, match=r"preprocessing_name: unknown 'alexnet'.*cifar"):
    preprocessing_factory.get_preprocessing('alexnet')


def _expected_range(name, channels):
  if name in ('inception',):
    return -1.0, 1.0
  if name == 'lenet':
    return -1.0, 127.0 / 128.0
  if name == 'vgg':
    means = vgg_preprocessing.MEANS if channels == 3 else (
        grayscale.gray_value(vgg_preprocessing.MEANS),)
    return -max(means), 255.0 - min(means)
  if name == 'cifar':
    mean, std = np.array(cifar_preprocessing.MEAN), np.array(cifar_preprocessing.STD)
    return float(np.min(-mean / std)), float(np.max((1 - mean) / std))
  return None  # cifarnet: standardised, checked separately


@pytest.mark.parametrize('name', PRESETS)
@pytest.mark.parametrize('is_training', [False, True])
@pytest.mark.parametrize('channels', [1, 3])
def test_shape_dtype_range(name, is_training, channels):
  out = _run(name, is_training, _image(c=channels), seed=[3, 4])
  assert out.shape == (32, 28, channels) and out.dtype == np.float32
  assert np.isfinite(out).all()
  bounds = _expected_range(name, channels)
  if bounds is None:
    assert abs(out.mean()) < 1e-3 and abs(out.std() - 1.0) < 1e-2
  else:
    assert bounds[0] - 1e-4 <= out.min() and out.max() <= bounds[1] + 1e-4


@pytest.mark.parametrize('name', PRESETS)
def test_eval_is_deterministic_and_ignores_seed(name):
  image = _image()
  a = _run(name, False, image)
  np.testing.assert_array_equal(a, _run(name, False, image))
  np.testing.assert_array_equal(a, _run(name, False, image, seed=[9, 9]))


@pytest.mark.parametrize('name', ['cifar', 'cifarnet', 'inception', 'vgg'])
def test_train_randomness_follows_the_seed(name):
  image = _image()
  a = _run(name, True, image, seed=[1, 2])
  np.testing.assert_array_equal(a, _run(name, True, image, seed=[1, 2]))
  others = [_run(name, True, image, seed=[1, s]) for s in (3, 4, 5)]
  assert any(not np.array_equal(a, o) for o in others)
  # Without a seed each call draws a new one.
  unseeded = [_run(name, True, image) for _ in range(3)]
  assert any(not np.array_equal(unseeded[0], u) for u in unseeded[1:])


def test_lenet_is_slims_crop_or_pad_and_scale():
  image = _image(28, 28, 1)
  expected = (image.astype(np.float32) - 128.0) / 128.0
  for training in (False, True):
    np.testing.assert_array_equal(_run('lenet', training, image, 28, 28), expected)
  padded = _run('lenet', False, image, 32, 32)
  assert (padded[:2] == -1.0).all() and (padded[:, -2:] == -1.0).all()
  np.testing.assert_array_equal(padded[2:30, 2:30], expected)


def test_inception_eval_takes_the_central_87_5_percent():
  image = np.full((64, 64, 3), 255, np.uint8)
  image[4:60, 4:60] = 0  # the central 0.875 (56 px) is black, the border white
  out = _run('inception', False, image, 56, 56)
  np.testing.assert_array_equal(out, -np.ones((56, 56, 3), np.float32))


def test_inception_distorted_crop_respects_slims_ranges():
  image = tf.zeros([100, 120, 3], tf.uint8)
  areas, aspects = [], []
  for s in range(40):
    crop = inception_preprocessing.distorted_bounding_box_crop(
        image, tf.constant([s, 1], tf.int64))
    h, w = crop.shape[0], crop.shape[1]
    areas.append(h * w / 12000.0)
    aspects.append(w / h)
  assert min(areas) >= 0.05 - 0.01 and max(areas) <= 1.0
  assert min(aspects) >= 0.75 - 0.05 and max(aspects) <= 1.33 + 0.05
  assert len(set(areas)) > 10


def test_inception_full_mode_and_gray_input():
  out = _run('inception', True, _image(c=1), 40, 40, seed=[5, 5], fast_mode=False,
             grayscale_channels=3)
  assert out.shape == (40, 40, 3) and -1 <= out.min() and out.max() <= 1
  np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_vgg_resize_sides_scale_with_the_output_size():
  assert vgg_preprocessing.resize_sides(224, 224) == (256, 512)
  assert vgg_preprocessing.resize_sides(32, 32) == (37, 73)
  assert vgg_preprocessing.resize_sides(299, 299) == (342, 683)
  assert vgg_preprocessing.resize_sides(224, 224, 300, 400) == (300, 400)
  with pytest.raises(ValueError, match='resize_side_min'):
    vgg_preprocessing.resize_sides(224, 224, 200)


def test_vgg_eval_subtracts_the_means():
  image = np.full((50, 70, 3), (10, 200, 90), np.uint8)
  out = _run('vgg', False, image, 32, 32)
  expected = np.array((10, 200, 90), np.float32) - np.array(vgg_preprocessing.MEANS,
                                                            np.float32)
  np.testing.assert_allclose(out, np.broadcast_to(expected, out.shape), atol=1e-3)


def test_vgg_cifar_upscaled_to_224_as_the_thesis():
  out = _run('vgg', True, _image(32, 32), 224, 224, seed=[2, 2])
  assert out.shape == (224, 224, 3)


def test_cifarnet_eval_pads_small_images():
  out = _run('cifarnet', False, np.full((28, 28, 1), 200, np.uint8), 32, 32)
  # Zero padding, then standardisation: the border is the lowest value.
  assert np.allclose(out[:2], out.min()) and out[16, 16, 0] > 0


def _cifar_norm(x):
  return (x / 255.0 - np.array(cifar_preprocessing.MEAN)) / np.array(
      cifar_preprocessing.STD)


def test_cifar_eval_normalizes_only():
  image = _image(32, 32)
  np.testing.assert_allclose(_run('cifar', False, image, 32, 32),
                             _cifar_norm(image.astype(np.float64)), atol=1e-5)
  assert _run('cifar', False, _image(40, 40), 32, 32).shape == (32, 32, 3)


def test_cifar_train_is_a_reflect_translation_and_flip():
  image = _image(8, 8, seed=4).astype(np.float64)
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode='reflect')
  candidates = [padded[y:y + 8, x:x + 8] for y in range(9) for x in range(9)]
  candidates += [c[:, ::-1] for c in candidates]
  for s in range(6):
    out = _run('cifar', True, image.astype(np.uint8), 8, 8, seed=[s, 0])
    assert min(np.abs(_cifar_norm(c) - out).max() for c in candidates) < 1e-4


def test_random_flip_and_padding_options():
  image = _image(8, 8, seed=6)
  evaluated = _run('cifar', False, image, 8, 8)
  fixed = _run('cifar', True, image, 8, 8, seed=[1, 1], random_flip=False, padding=0)
  np.testing.assert_array_equal(fixed, evaluated)
  flipped = {_run('cifar', True, image, 8, 8, seed=[s, 1], padding=0)[0, 0, 0]
             for s in range(8)}
  assert flipped == {evaluated[0, 0, 0], evaluated[0, -1, 0]}
  # pad_crop replaces the preset's own padding: a shift of at most 1 pixel here.
  out = _run('cifar', True, image, 8, 8, seed=[3, 1], random_flip=False, pad_crop=1)
  norm = _cifar_norm(np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)),
                            mode='reflect'))
  assert min(np.abs(norm[y:y + 8, x:x + 8] - out).max()
             for y in range(3) for x in range(3)) < 1e-4


@pytest.mark.parametrize('formula', ['rec601', 'rec709', 'mean'])
def test_grayscale_formulas(formula):
  image = _image(28, 28)
  out = _run('lenet', False, image, 28, 28, use_grayscale=True,
             grayscale_formula=formula)
  luma = (image.astype(np.float64) * np.array(grayscale.FORMULAS[formula])).sum(-1)
  np.testing.assert_allclose(out[..., 0], (luma - 128) / 128, atol=1e-5)
  assert out.shape == (28, 28, 1)
  three = _run('lenet', False, image, 28, 28, use_grayscale=True,
               grayscale_formula=formula, grayscale_channels=3)
  assert three.shape == (28, 28, 3)
  np.testing.assert_array_equal(three, np.repeat(out, 3, axis=-1))


def test_grayscale_formulas_differ():
  image = _image(28, 28)
  outs = [_run('vgg', False, image, 24, 24, use_grayscale=True, grayscale_formula=f)
          for f in ('rec601', 'rec709', 'mean')]
  assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[0], outs[2])


def test_image_filter_runs_first():
  image = _image(28, 28, 1)
  out = _run('lenet', False, image, 28, 28, image_filter='median')
  med = np.median(np.lib.stride_tricks.sliding_window_view(
      np.pad(image[..., 0], 1, mode='reflect'), (3, 3)), axis=(-1, -2))
  np.testing.assert_array_equal(out[..., 0], (med.astype(np.float32) - 128) / 128)


def test_cutout_erases_one_square():
  image = np.full((32, 32, 3), 255, np.uint8)
  for s in range(5):
    out = _run('cifar', True, image, 32, 32, seed=[s, 7], cutout_size=0.25)
    erased = (out == 0).all(-1).sum()
    assert 16 <= erased <= 64
  out = _run('cifar', True, image, 32, 32, seed=[0, 7], cutout_size=0.25,
             cutout_prob=0.0)
  assert not (out == 0).all(-1).any()


def test_color_jitter_and_extra_pad_crop():
  image = _image(40, 40)
  plain = _run('inception', True, image, 32, 32, seed=[1, 1])
  jitter = _run('inception', True, image, 32, 32, seed=[1, 1], color_jitter=1.0)
  shifted = _run('vgg', True, image, 32, 32, seed=[1, 1], pad_crop=4)
  assert not np.array_equal(plain, jitter) and -1 <= jitter.min() <= jitter.max() <= 1
  assert shifted.shape == (32, 32, 3)
  assert not np.array_equal(shifted, _run('vgg', True, image, 32, 32, seed=[1, 1]))


def test_bad_options_and_inputs_fail_clearly():
  get = preprocessing_factory.get_preprocessing
  with pytest.raises(ValueError, match="unknown option 'fast_mode'"):
    get('vgg', fast_mode=True)
  with pytest.raises(ValueError, match='grayscale_formula'):
    get('cifar', grayscale_formula='bt2020')
  with pytest.raises(ValueError, match='grayscale_channels'):
    get('cifar', grayscale_channels=2)
  with pytest.raises(ValueError, match='image_filter'):
    get('cifar', image_filter='blur')
  with pytest.raises(ValueError, match='filter_size'):
    get('cifar', image_filter='median', filter_size=2)
  with pytest.raises(ValueError, match='cutout_size'):
    get('cifar', cutout_size=1.5)
  with pytest.raises(ValueError, match='pad_crop'):
    get('cifar', pad_crop=-1)
  fn = get('cifar')
  with pytest.raises(ValueError, match='uint8'):
    fn(tf.zeros([8, 8, 3]), 8, 8)
  with pytest.raises(ValueError, match='height'):
    fn(tf.zeros([8, 8, 3], tf.uint8), 0, 8)


def test_none_options_mean_default():
  image = _image(32, 32)
  np.testing.assert_array_equal(
      _run('cifar', True, image, 32, 32, seed=[1, 1], pad_crop=None, color_jitter=None,
           image_filter=None),
      _run('cifar', True, image, 32, 32, seed=[1, 1]))


def test_slim_style_module_entry_point():
  out = vgg_preprocessing.preprocess_image(tf.constant(_image()), 32, 32,
                                           is_training=True, seed=[1, 2])
  np.testing.assert_array_equal(out.numpy(), _run('vgg', True, _image(), 32, 32,
                                                  seed=[1, 2]))


@pytest.mark.parametrize('name', PRESETS)
@pytest.mark.parametrize('is_training', [False, True])
def test_static_output_shape_in_a_graph(name, is_training, channels=1):
  # In tf.data the input's height and width are unknown; the output must still have
  # a static [height, width, C] (batching and the channel repeat to 3 rely on it).
  fn = preprocessing_factory.get_preprocessing(name, is_training, grayscale_channels=3,
                                               pad_crop=2)
  graph_fn = tf.function(
      lambda x: fn(x, 30, 26),
      input_signature=[tf.TensorSpec([None, None, channels], tf.uint8)])
  out = graph_fn.get_concrete_function().structured_outputs
  assert out.shape.as_list() == [30, 26, 3]
  assert graph_fn(tf.constant(_image(c=channels))).shape == (30, 26, 3)
