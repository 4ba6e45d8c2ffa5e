"""datasets.encode: PNG encoding, image validation, and the hand-written tf.train.Example."""
import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from datasets import encode
from conftest import encode_image


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3), (5, 7, 3), (1, 1, 1)])
def test_png_bytes_round_trips_through_pil_and_tf(shape):
  image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
  data = encode.png_bytes(image)
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))).reshape(shape),
                                image)
  np.testing.assert_array_equal(tf.io.decode_png(data, channels=shape[-1]).numpy(), image)


def test_png_bytes_refuses_bad_input():
  with pytest.raises(ValueError, match='uint8'):
    encode.png_bytes(np.zeros((4, 4, 3), np.float32))
  with pytest.raises(ValueError, match='1 or 3 channels'):
    encode.png_bytes(np.zeros((4, 4, 4), np.uint8))


@pytest.mark.parametrize('label', [0, 9, 127, 128, 2**40])
def test_example_bytes_equals_tf_train_example(label):
  encoded = encode.encode_array(np.full((300, 2, 1), 7, np.uint8))  # height > 127: 2-byte varint
  reference = tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded.data])),
      'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'png'])),
      'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[300])),
      'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
  }))
  ours = encode.example_bytes(encoded, label)
  assert tf.train.Example.FromString(ours) == reference
  assert ours == reference.SerializeToString(deterministic=True)


def rgb(seed=0, size=(20, 30)):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8)


def test_jpeg_and_png_keep_their_bytes():
  for fmt in ('JPEG', 'PNG'):
    data = encode_image(rgb(), fmt)
    result = encode.load_image(data)
    assert result == encode.Encoded(data, fmt.lower(), 20, 30, 3)
  gray = encode_image(rgb()[:, :, :1], 'PNG')
  assert encode.load_image(gray).channels == 1


@pytest.mark.parametrize('fmt, mode', [('BMP', 'RGB'), ('GIF', 'P'), ('PNG', 'RGBA'),
                                       ('TIFF', 'RGB'), ('JPEG', 'CMYK')])
def test_other_images_become_png_with_the_same_pixels(fmt, mode):
  image = Image.fromarray(rgb()).convert(mode)
  buffer = io.BytesIO()
  image.save(buffer, fmt)
  result = encode.load_image(buffer.getvalue())
  assert result.format == 'png' and (result.height, result.width) == (20, 30)
  expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert('RGB'))
  np.testing.assert_array_equal(tf.io.decode_png(result.data, channels=3).numpy(), expected)


def test_sixteen_bit_gray_png_keeps_its_high_byte():
  values = np.array([[0, 255, 256, 65535]], np.uint16)
  buffer = io.BytesIO()
  Image.fromarray(values).save(buffer, 'PNG')
  result = encode.load_image(buffer.getvalue())
  assert result.format == 'png' and result.channels == 1
  np.testing.assert_array_equal(tf.io.decode_png(result.data).numpy()[..., 0], [[0, 0, 1, 255]])
  # The same as TF's own 16-bit to 8-bit reading of the original file.
  np.testing.assert_array_equal(tf.io.decode_png(buffer.getvalue()).numpy()[..., 0],
                                [[0, 0, 1, 255]])


PNG_START = b'\x89PNG\r\n\x1a\n\x00\x00\x00\r'  # cut inside the first chunk's header


def test_broken_files_are_refused_with_a_reason(tmp_path):
  jpeg = encode_image(rgb(size=(64, 64)), 'JPEG')
  png = bytearray(encode_image(rgb(), 'PNG'))
  png[-20] ^= 0xFF  # inside the IDAT data: its CRC no longer matches
  cases = {
      'truncated jpeg': jpeg[:len(jpeg) // 2],
      'bad png crc': bytes(png),
      'text': b'this is not an image',
      'empty': b'',
  }
  reasons = {}
  for name, data in cases.items():
    with pytest.raises(encode.BadImage):
      encode.load_image(data)
    result = encode.process_chunk(('file', [data], [0], None))[0]
    assert isinstance(result, encode.Skipped) and result.reason, name
    reasons[name] = result.reason
  # Words about the file, never PIL's name for its buffer ('<_io.BytesIO object ...>').
  assert reasons['empty'] == 'is empty (0 bytes)'
  assert reasons['text'] == ("is not an image in a format read here (JPEG, PNG, BMP, "
                             "GIF, TIFF, WebP): it starts with b'this is '")
  assert reasons['truncated jpeg'].startswith('cannot be decoded (')
  assert not any('BytesIO' in reason for reason in reasons.values())
  assert encode.process_chunk(('file', [PNG_START], [0], None))[0].reason == \
      'is a damaged or cut PNG file (12 bytes; its header does not read)'
  with pytest.raises(encode.BadImage, match='cannot read'):
    encode.load_image(str(tmp_path / 'missing.jpg'))


def test_expect_size_refuses_other_sizes():
  with pytest.raises(encode.BadImage, match='is 30x20, expected 32x32'):
    encode.load_image(encode_image(rgb(), 'JPEG'), expect_size=(32, 32))


def test_process_chunk_keeps_order_and_labels():
  images = np.stack([np.full((4, 4, 1), v, np.uint8) for v in (10, 20, 30)])
  records = encode.process_chunk(('array', images, np.array([2, 0, 1]), None))
  parsed = [tf.train.Example.FromString(r.example).features.feature for r in records]
  assert [f['image/class/label'].int64_list.value[0] for f in parsed] == [2, 0, 1]
  pixels = [tf.io.decode_png(f['image/encoded'].bytes_list.value[0]).numpy()[0, 0, 0]
            for f in parsed]
  assert pixels == [10, 20, 30]
