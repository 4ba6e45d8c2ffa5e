"""build_input with the real dataset reader (datasets.dataset_factory) and converter."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

from datasets import dataset_factory
from preprocessing import augment
from preprocessing import preprocessing_factory
from slimkit import inputs


def _all(dataset):
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
  return np.concatenate(images), np.concatenate(labels)


def test_eval_pipeline_matches_the_reader(tiny_cifar_dir):
  split = dataset_factory.get_split('cifar10', 'test', tiny_cifar_dir)
  fn = preprocessing_factory.get_preprocessing('cifarnet', is_training=False)
  images, labels = _all(inputs.build_input(split, fn, 10, is_training=False,
                                           image_size=32))
  reader = [(x, y.numpy()) for x, y in split.read()]
  assert images.shape == (split.num_samples, 32, 32, 3)
  np.testing.assert_array_equal(labels, [y for _, y in reader])
  np.testing.assert_allclose(images[5], fn(reader[5][0], 32, 32).numpy(), atol=1e-6)


def test_seeded_training_on_cifar_with_mixup_is_reproducible(tiny_cifar_dir):
  split = dataset_factory.get_split('cifar10', 'train', tiny_cifar_dir)

  def run(seed):
    fn = preprocessing_factory.get_preprocessing('cifar', True, cutout_size=0.25)
    ds = inputs.build_input(split, fn, 16, is_training=True, image_size=32, seed=seed,
                            batch_transform=augment.batch_mix(cutmix_alpha=1.0))
    return [(x.numpy(), y.numpy()) for x, y in ds.take(6)]  # 96 > 64: two epochs
  a, b, c = run(1), run(1), run(2)
  for (xa, ya), (xb, yb) in zip(a, b):
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
  assert a[0][1].shape == (16, 10)
  assert not np.array_equal(a[0][0], c[0][0])


def test_mnist_through_inception_for_an_rgb_net(tiny_mnist_dir):
  split = dataset_factory.get_split('mnist', 'train', tiny_mnist_dir)
  fn = preprocessing_factory.get_preprocessing('inception_v1', True,
                                               grayscale_channels=3)
  images, labels = next(iter(inputs.build_input(split, fn, 8, is_training=True,
                                                image_size=56)))
  assert images.shape == (8, 56, 56, 3)
  assert -1 <= images.numpy().min() and images.numpy().max() <= 1
  # (--labels_offset=1 on MNIST's label 0 now stops: tests/test_bad_input.py)
  assert labels.numpy().min() >= 0 and labels.numpy().max() <= 9
