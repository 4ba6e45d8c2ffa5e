"""Exact alternative formulations of a convolution's input and filter gradients.

TensorFlow computes a conv's gradients with Conv2DBackpropInput/Filter (and the
depthwise equivalents). On some CPUs those kernels are several times slower than
a forward convolution or a matmul doing the same arithmetic, so each
gradient here also has rewrites that give the same numbers:

  input gradient (dx)
    'tf'   Conv2DBackpropInput / DepthwiseConv2dNativeBackpropInput
    'fwd'  a forward conv of the output gradient with the spatially flipped,
           in/out-transposed kernel; a stride s by inserting s - 1 zeros
           between the gradient's rows and columns first
    'mm'   one matmul dy @ W^T to columns, then col2im: each kernel tap's slice
           added in place (cheap for 1x1 kernels and tiny feature maps)
  filter gradient (dw)
    'tf'   Conv2DBackpropFilter / DepthwiseConv2dNativeBackpropFilter
    'fwd'  a forward conv with the batch as the contracted dimension: input x
           as [Cin, H, W, B], filter dy as [Ho, Wo, B, Cout]
    'mm'   im2col: x's patches [N, k*k*Cin]^T @ dy [N, Cout]
    'taps' (depthwise) one multiply-and-sum over the batch per kernel tap

A `Geometry` holds one conv's static shapes; every function takes it so the
padding arithmetic lives in one place. nets/conv_grad_auto.py picks, per
geometry, the fastest of these by measurement; nets/conv_layers.py uses them.
"""

import collections

import tensorflow as tf

DX_METHODS = ('tf', 'fwd', 'mm')
DW_METHODS = ('tf', 'fwd', 'mm')
DEPTHWISE_DX_METHODS = ('tf', 'fwd')
DEPTHWISE_DW_METHODS = ('tf', 'taps')


class Geometry(collections.namedtuple('Geometry', [
    'depthwise', 'x_shape', 'w_shape', 'y_shape', 'stride', 'dilation', 'padding',
    'dtype'])):
  """Static description of one NHWC conv: shapes are tuples of ints.

  depthwise: True for a depthwise conv (w_shape [k, k, C, 1]).
  padding: 'SAME' or 'VALID'; dtype: a tf.DType name ('float32', 'bfloat16').
  """

  def axis(self, i):
    """(pad_before, pad_after, unused_tail) of spatial axis i (0: rows, 1: cols).

    The conv equals a VALID conv of x padded by (before, after); the last
    `unused_tail` rows of the padded input touch no output.
    """
    n, k, out = self.x_shape[1 + i], self.w_shape[i], self.y_shape[1 + i]
    s, d = self.stride[i], self.dilation[i]
    span = (k - 1) * d + 1
    if self.padding == 'SAME':
      total = max((out - 1) * s + span - n, 0)
      before, after = total // 2, total - total // 2
    else:
      before, after = 0, 0
    tail = n + before + after - ((out - 1) * s + span)
    return before, after, tail

  def key(self):
    """A string naming the geometry in caches and benchmark tables."""
    kind = 'dw' if self.depthwise else 'conv'
    return '%s x%s w%s s%s d%s %s %s' % (
        kind, 'x'.join(map(str, self.x_shape)), 'x'.join(map(str, self.w_shape)),
        ''.join(map(str, self.stride)), ''.join(map(str, self.dilation)),
        self.padding, self.dtype)


def geometry(x, w, y, stride, dilation, padding, depthwise=False):
  """Geometry of tensors with static shapes, or None if any size is unknown."""
  shapes = [tuple(t.shape) for t in (x, w, y)]
  if any(d is None for shape in shapes for d in shape):
    return None
  return Geometry(bool(depthwise), shapes[0], shapes[1], shapes[2],
                  tuple(int(s) for s in stride), tuple(int(d) for d in dilation),
                  padding.upper(), x.dtype.name)


# ------------------------------------------------------------------------------
# Small exact tensor rewrites.
# ------------------------------------------------------------------------------


def _pad_or_crop(t, amounts):
  """Pads [B, H, W, C] rows/cols by (before, after) pairs; negative crops."""
  pads = [[0, 0], [max(0, amounts[0][0]), max(0, amounts[0][1])],
          [max(0, amounts[1][0]), max(0, amounts[1][1])], [0, 0]]
  if any(p for pair in pads for p in pair):
    t = tf.pad(t, pads)
  crops = [(max(0, -a), max(0, -b)) for a, b in amounts]
  if any(c for pair in crops for c in pair):
    h, w = t.shape[1], t.shape[2]
    t = t[:, crops[0][0]:h - crops[0][1], crops[1][0]:w - crops[1][1], :]
  return t


def _insert_zeros(t, stride):
  """[B, H, W, C] -> [B, (H-1)*s+1, (W-1)*s+1, C] with s-1 zeros between entries."""
  sh, sw = stride
  if sh == 1 and sw == 1:
    return t
  b, h, w, c = t.shape
  t = tf.reshape(t, [b, h, 1, w, 1, c])
  t = tf.pad(t, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]])
  t = tf.reshape(t, [b, h * sh, w * sw, c])
  return t[:, :(h - 1) * sh + 1, :(w - 1) * sw + 1, :]


def _padded_input(g, x):
  """x padded as the forward conv pads it, the unused tail cropped."""
  rows, cols = g.axis(0), g.axis(1)
  return _pad_or_crop(x, [(rows[0], rows[1] - rows[2]), (cols[0], cols[1] - cols[2])])


def _to_input_shape(g, dxp):
  """Gradient w.r.t. the cropped padded input -> gradient w.r.t. x."""
  rows, cols = g.axis(0), g.axis(1)
  return _pad_or_crop(dxp, [(-rows[0], rows[2] - rows[1]),
                            (-cols[0], cols[2] - cols[1])])


def _tf_padding(g):
  return g.padding


# ------------------------------------------------------------------------------
# Input gradients.
# ------------------------------------------------------------------------------


def input_grad(g, method, dy, w):
  """dL/dx of the conv described by g, computed by `method`."""
  if g.depthwise:
    return _DEPTHWISE_DX[method](g, dy, w)
  return _DX[method](g, dy, w)


def _dx_tf(g, dy, w):
  return tf.raw_ops.Conv2DBackpropInput(
      input_sizes=g.x_shape, filter=w, out_backprop=dy,
      strides=[1, *g.stride, 1], padding=_tf_padding(g),
      dilations=[1, *g.dilation, 1])


def _full_correlation_input(g, dy):
  """Zero-inserted dy padded so a VALID conv with the flipped kernel gives dx."""
  spans = [(g.w_shape[i] - 1) * g.dilation[i] for i in (0, 1)]
  rows, cols = g.axis(0), g.axis(1)
  t = _insert_zeros(dy, g.stride)
  return _pad_or_crop(t, [(spans[0] - rows[0], spans[0] + rows[2] - rows[1]),
                          (spans[1] - cols[0], spans[1] + cols[2] - cols[1])])


def _dx_fwd(g, dy, w):
  flipped = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])
  return tf.nn.conv2d(_full_correlation_input(g, dy), flipped, 1, 'VALID',
                      dilations=list(g.dilation))


def _dx_mm(g, dy, w):
  kh, kw, cin, cout = g.w_shape
  b, ho, wo, _ = g.y_shape
  columns = tf.matmul(tf.reshape(dy, [-1, cout]), tf.reshape(w, [-1, cout]),
                      transpose_b=True)
  columns = tf.reshape(columns, [b, ho, wo, kh * kw, cin])
  height = (ho - 1) * g.stride[0] + (kh - 1) * g.dilation[0] + 1
  width = (wo - 1) * g.stride[1] + (kw - 1) * g.dilation[1] + 1
  total = None
  for a in range(kh):
    for c in range(kw):
      part = _insert_zeros(columns[:, :, :, a * kw + c, :], g.stride)
      top, left = a * g.dilation[0], c * g.dilation[1]
      part = tf.pad(part, [[0, 0], [top, height - top - part.shape[1]],
                           [left, width - left - part.shape[2]], [0, 0]])
      total = part if total is None else total + part
  return _to_input_shape(g, total)


def _dx_depthwise_tf(g, dy, w):
  return tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
      input_sizes=g.x_shape, filter=w, out_backprop=dy,
      strides=[1, *g.stride, 1], padding=_tf_padding(g),
      dilations=[1, *g.dilation, 1])


def _dx_depthwise_fwd(g, dy, w):
  return tf.nn.depthwise_conv2d(_full_correlation_input(g, dy),
                                tf.reverse(w, [0, 1]), [1, 1, 1, 1], 'VALID',
                                dilations=list(g.dilation))


_DX = {'tf': _dx_tf, 'fwd': _dx_fwd, 'mm': _dx_mm}
_DEPTHWISE_DX = {'tf': _dx_depthwise_tf, 'fwd': _dx_depthwise_fwd}


# ------------------------------------------------------------------------------
# Filter gradients.
# ------------------------------------------------------------------------------


def filter_grad(g, method, x, dy):
  """dL/dw of the conv described by g, computed by `method`."""
  if g.depthwise:
    return _DEPTHWISE_DW[method](g, x, dy)
  return _DW[method](g, x, dy)


def _dw_tf(g, x, dy):
  return tf.raw_ops.Conv2DBackpropFilter(
      input=x, filter_sizes=g.w_shape, out_backprop=dy,
      strides=[1, *g.stride, 1], padding=_tf_padding(g),
      dilations=[1, *g.dilation, 1])


def _dw_fwd(g, x, dy):
  # dw[a, b, i, o] = sum_n,h,w xp[n, h*s + a*d, w*s + b*d, i] * dy[n, h, w, o]:
  # a VALID conv whose stride is the forward dilation and whose dilation is
  # the forward stride, contracting over the batch.
  xp = tf.transpose(_padded_input(g, x), [3, 1, 2, 0])
  kernel = tf.transpose(dy, [1, 2, 0, 3])
  out = tf.nn.conv2d(xp, kernel, list(g.dilation), 'VALID',
                     dilations=list(g.stride))
  return tf.transpose(out, [1, 2, 0, 3])


def _patches(g, x):
  kh, kw = g.w_shape[:2]
  return tf.image.extract_patches(
      _padded_input(g, x), sizes=[1, kh, kw, 1], strides=[1, *g.stride, 1],
      rates=[1, *g.dilation, 1], padding='VALID')


def _dw_mm(g, x, dy):
  kh, kw, cin, cout = g.w_shape
  if kh == 1 and kw == 1:
    columns = _padded_input(g, x)[:, ::g.stride[0], ::g.stride[1], :]
  else:
    columns = _patches(g, x)
  out = tf.matmul(tf.reshape(columns, [-1, kh * kw * cin]),
                  tf.reshape(dy, [-1, cout]), transpose_a=True)
  return tf.reshape(out, g.w_shape)


def _dw_depthwise_tf(g, x, dy):
  return tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
      input=x, filter_sizes=g.w_shape, out_backprop=dy,
      strides=[1, *g.stride, 1], padding=_tf_padding(g),
      dilations=[1, *g.dilation, 1])


def _dw_depthwise_taps(g, x, dy):
  # Sums in float32 whatever the compute dtype: a bf16 sum over the batch
  # and the map would lose the gradient's low bits.
  kh, kw = g.w_shape[:2]
  xp = tf.cast(_padded_input(g, x), tf.float32)
  dy32 = tf.cast(dy, tf.float32)
  ho, wo = g.y_shape[1:3]
  taps = []
  for a in range(kh):
    for c in range(kw):
      top, left = a * g.dilation[0], c * g.dilation[1]
      window = xp[:, top:top + (ho - 1) * g.stride[0] + 1:g.stride[0],
                  left:left + (wo - 1) * g.stride[1] + 1:g.stride[1], :]
      taps.append(tf.reduce_sum(window * dy32, axis=[0, 1, 2]))
  out = tf.reshape(tf.stack(taps), g.w_shape)
  return tf.cast(out, dy.dtype)


_DW = {'tf': _dw_tf, 'fwd': _dw_fwd, 'mm': _dw_mm}
_DEPTHWISE_DW = {'tf': _dw_depthwise_tf, 'taps': _dw_depthwise_taps}


def candidates(g):
  """(dx methods, dw methods) that apply to the geometry, 'tf' first."""
  if g.depthwise:
    return DEPTHWISE_DX_METHODS, DEPTHWISE_DW_METHODS
  dx, dw = ['tf', 'fwd'], ['tf']
  # The batch-contracting conv was 3-15x slower than TF's filter gradient at
  # every stride-1 ResNet-50 shape measured (Xeon, native and AVX2); it only
  # competes for strided convs, so only those pay for measuring it.
  # (tf.nn.conv2d takes a stride or a dilation, not both.)
  if max(g.stride) > 1 and max(g.dilation) == 1:
    dw.append('fwd')
  kh, kw, cin, _ = g.w_shape
  spatial = g.y_shape[1] * g.y_shape[2]
  if (kh == 1 and kw == 1) or spatial <= 16:
    dx.append('mm')
  patch_bytes = g.y_shape[0] * spatial * kh * kw * cin * 4
  if (kh == 1 and kw == 1) or patch_bytes <= (64 << 20):
    dw.append('mm')
  return tuple(dx), tuple(dw)
