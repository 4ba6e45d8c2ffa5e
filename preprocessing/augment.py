"""Training augmentations beyond TF-Slim's own, with stateless seeds.

Per image (float32 [H, W, C], values on the 0..255 scale unless noted): random flip,
pad-and-crop, colour jitter, cutout. The factory applies them at fixed points of
every preprocessing (see preprocessing_factory).

Per batch: mixup and CutMix (`batch_mix`), applied by the input pipeline after
batching; they turn int labels into soft float targets [B, num_classes]. Label
smoothing is left to the loss.
"""

import tensorflow as tf

from preprocessing import seeds as seeds_lib

PAD_MODES = ('reflect', 'constant', 'symmetric')


def random_flip(image, seed):
  """Left-right flip with probability 1/2."""
  return tf.image.stateless_random_flip_left_right(image, seed)


def pad_and_crop(image, padding, seed, mode='reflect'):
  """Pads each side by `padding` pixels and crops back to the input size at random.

  A random translation by up to +-padding pixels; 'reflect' fills the border with
  the mirrored image (as the usual CIFAR recipe), 'constant' with zeros.
  """
  if mode not in PAD_MODES:
    raise ValueError('pad mode: expected one of %s, got %r' % ('|'.join(PAD_MODES), mode))
  if padding <= 0:
    return image
  padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]],
                  mode=mode.upper())
  crop = tf.image.stateless_random_crop(padded, tf.shape(image), seed)
  return tf.ensure_shape(crop, image.shape)  # keep what is known statically


def color_jitter(image, strength, seed):
  """Random brightness, contrast, saturation and hue, scaled by `strength`.

  At strength 1: brightness and contrast factors in [0.6, 1.4], saturation in
  [0.6, 1.4] and hue shift +-0.1 (torchvision's ColorJitter(0.4, 0.4, 0.4, 0.1)).
  Saturation and hue need RGB and are skipped for 1-channel images. Output is
  clipped to 0..255.
  """
  if strength <= 0:
    return image
  amount = 0.4 * strength
  low, high = max(0.0, 1.0 - amount), 1.0 + amount
  s_bright, s_contrast, s_sat, s_hue = seeds_lib.split(seed, 4)
  image = image * seeds_lib.uniform(s_bright, low, high)
  image = tf.image.stateless_random_contrast(image, low, high, s_contrast)
  if image.shape[-1] == 3:
    image = tf.clip_by_value(image, 0.0, 255.0) / 255.0
    image = tf.image.stateless_random_saturation(image, low, high, s_sat)
    image = tf.image.stateless_random_hue(image, min(0.1 * strength, 0.5), s_hue)
    image = image * 255.0
  return tf.clip_by_value(image, 0.0, 255.0)


def cutout(image, size, prob, seed):
  """Erases (sets to 0) one square of side round(size * min(H, W)) with prob `prob`.

  Applied after normalisation, so 0 is the dataset or image mean. The square's centre
  is uniform over the image and the square is clipped at the borders (DeVries and
  Taylor, 2017).
  """
  if size <= 0 or prob <= 0:
    return image
  s_apply, s_y, s_x = seeds_lib.split(seed, 3)
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  side = tf.maximum(1, tf.cast(tf.round(
      size * tf.cast(tf.minimum(height, width), tf.float32)), tf.int32))
  cy = tf.random.stateless_uniform([], s_y, 0, height, dtype=tf.int32)
  cx = tf.random.stateless_uniform([], s_x, 0, width, dtype=tf.int32)
  mask = _box_mask(height, width, cy - side // 2, cx - side // 2, side, side)
  apply = seeds_lib.uniform(s_apply) < prob
  keep = tf.logical_or(tf.logical_not(apply), tf.logical_not(mask))
  return image * tf.cast(keep, image.dtype)[:, :, tf.newaxis]


def _box_mask(height, width, top, left, box_h, box_w):
  """bool [H, W], True inside the box (clipped to the image)."""
  rows = tf.range(height)[:, tf.newaxis]
  cols = tf.range(width)[tf.newaxis, :]
  inside_r = tf.logical_and(rows >= top, rows < top + box_h)
  inside_c = tf.logical_and(cols >= left, cols < left + box_w)
  return tf.logical_and(inside_r, inside_c)


def _beta(seed, alpha):
  """One Beta(alpha, alpha) sample from two stateless gammas."""
  s1, s2 = seeds_lib.split(seed, 2)
  g1 = tf.random.stateless_gamma([], s1, alpha)
  g2 = tf.random.stateless_gamma([], s2, alpha)
  return g1 / tf.maximum(g1 + g2, 1e-12)


def mixup(images, targets, alpha, seed):
  """Mixup (Zhang et al., 2018): x = lam x_i + (1 - lam) x_j, same for the targets.

  One lam ~ Beta(alpha, alpha) per batch; partner j from a random permutation.
  targets: float [B, num_classes].
  """
  s_lam, s_perm = seeds_lib.split(seed, 2)
  lam = _beta(s_lam, alpha)
  perm = _permutation(tf.shape(images)[0], s_perm)
  mixed = lam * images + (1.0 - lam) * tf.gather(images, perm)
  return mixed, lam * targets + (1.0 - lam) * tf.gather(targets, perm)


def cutmix(images, targets, alpha, seed):
  """CutMix (Yun et al., 2019): paste a box of a partner image into each image.

  The box has area (1 - lam) of the image for lam ~ Beta(alpha, alpha), a uniform
  centre, and is clipped at the borders; the targets mix by the box's true area.
  """
  s_lam, s_perm, s_y, s_x = seeds_lib.split(seed, 4)
  lam = _beta(s_lam, alpha)
  shape = tf.shape(images)
  height, width = shape[1], shape[2]
  cut = tf.sqrt(1.0 - lam)
  box_h = tf.cast(tf.round(cut * tf.cast(height, tf.float32)), tf.int32)
  box_w = tf.cast(tf.round(cut * tf.cast(width, tf.float32)), tf.int32)
  cy = tf.random.stateless_uniform([], s_y, 0, height, dtype=tf.int32)
  cx = tf.random.stateless_uniform([], s_x, 0, width, dtype=tf.int32)
  mask = _box_mask(height, width, cy - box_h // 2, cx - box_w // 2, box_h, box_w)
  perm = _permutation(shape[0], s_perm)
  mask_f = tf.cast(mask, images.dtype)[tf.newaxis, :, :, tf.newaxis]
  mixed = images * (1.0 - mask_f) + tf.gather(images, perm) * mask_f
  area = tf.reduce_sum(tf.cast(mask, tf.float32)) / tf.cast(height * width, tf.float32)
  kept = 1.0 - area
  return mixed, kept * targets + (1.0 - kept) * tf.gather(targets, perm)


def batch_mix(mixup_alpha=0.0, cutmix_alpha=0.0, switch_prob=0.5):
  """The input pipeline's batch_transform for mixup and/or CutMix, or None if off.

  Returns fn(images, labels, num_classes, seed) -> (images, float targets
  [B, num_classes]). With both alphas > 0 each batch uses CutMix with probability
  switch_prob, else mixup (as timm).
  """
  for flag, value in (('mixup_alpha', mixup_alpha), ('cutmix_alpha', cutmix_alpha)):
    if value < 0:
      raise ValueError('%s: expected >= 0, got %r' % (flag, value))
  if not 0.0 <= switch_prob <= 1.0:
    raise ValueError('switch_prob: expected a probability in [0, 1], got %r'
                     % (switch_prob,))
  if mixup_alpha == 0 and cutmix_alpha == 0:
    return None

  def transform(images, labels, num_classes, seed):
    seed = seeds_lib.resolve(seed)
    targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
    if cutmix_alpha == 0:
      return mixup(images, targets, mixup_alpha, seed)
    if mixup_alpha == 0:
      return cutmix(images, targets, cutmix_alpha, seed)
    s_switch, s_mix = seeds_lib.split(seed, 2)
    return tf.cond(seeds_lib.uniform(s_switch) < switch_prob,
                   lambda: cutmix(images, targets, cutmix_alpha, s_mix),
                   lambda: mixup(images, targets, mixup_alpha, s_mix))

  return transform


def _permutation(n, seed):
  return tf.argsort(tf.random.stateless_uniform([n], seed))
