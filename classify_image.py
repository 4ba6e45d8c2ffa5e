"""Classifies image files with a SavedModel from export_inference_graph.py.

  python classify_image.py --saved_model=/tmp/custom_cnn_export cat.jpg dog.png \\
      [--top_k=5]

Prints, per image, the top-k classes with their probabilities. The images go through
the SavedModel's serving_default signature (encoded bytes in, the same decoding and
preprocessing as evaluation). Exit codes: 0 done, 1 bad input.
"""

import os

from slimkit import cli  # first: sets up TensorFlow (C++ logging, oneDNN)

from absl import flags  # pylint: disable=g-bad-import-order

from common import errors
from deployment import startup
from slimkit import manifest

flags.DEFINE_string('saved_model', None,
                    'Directory written by export_inference_graph.py --output_file.')
flags.DEFINE_integer('top_k', 5, 'How many classes to print per image.', lower_bound=1)
FLAGS = flags.FLAGS

CHUNK = 64  # images per call when the SavedModel's batch size is free
FORMATS = 'JPEG, PNG, GIF, BMP, WebP or JPEG XL'  # what tf.io.decode_image reads
# File signatures of FORMATS, to reject other files before TensorFlow loads.
MAGIC = (b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'GIF87a', b'GIF89a', b'BM',
         b'\xff\x0a', b'\x00\x00\x00\x0cJXL \r\n\x87\n')


def _tf():
  # TensorFlow takes seconds to start: a wrong file name is reported before that.
  return startup.start_tensorflow()


def _looks_like_image(data):
  return data.startswith(MAGIC) or (data[:4] == b'RIFF' and data[8:12] == b'WEBP')


def read_images(paths):
  """[(path, bytes)]; one-line errors for a missing file or one that is not an image."""
  out = []
  for path in paths:
    if not os.path.isfile(path):
      raise FileNotFoundError('%s: no such image file' % path)
    with open(path, 'rb') as f:
      data = f.read()
    if not _looks_like_image(data):
      raise ValueError('%s: not an image (expected %s)' % (path, FORMATS))
    out.append((path, data))
  return out


def check_decodable(images):
  """Decodes each image once, so that a damaged file is named, not the whole batch."""
  tf = _tf()
  for path, data in images:
    try:
      tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
      raise ValueError('%s: damaged image, TensorFlow cannot decode it' % path) from None


def load(saved_model_dir):
  """(loaded object, serving function, class names or None, fixed batch or None).

  Keep the loaded object while using the function: it owns the variables.
  """
  if not saved_model_dir:
    raise ValueError('--saved_model: expected the directory written by '
                     'export_inference_graph.py')
  if not os.path.exists(os.path.join(saved_model_dir, 'saved_model.pb')):
    raise FileNotFoundError('--saved_model=%s: not a SavedModel directory (no '
                            'saved_model.pb); make one with export_inference_graph.py'
                            % saved_model_dir)
  manifest.check_export(saved_model_dir)
  tf = _tf()
  with errors.reading('--saved_model=%s' % saved_model_dir,
                      're-run export_inference_graph.py'):
    loaded = tf.saved_model.load(saved_model_dir)
  if 'serving_default' not in loaded.signatures:
    raise ValueError('--saved_model=%s has no serving_default signature'
                     % saved_model_dir)
  serve = loaded.signatures['serving_default']
  spec = serve.structured_input_signature[1].get('images')
  if spec is None or spec.dtype != tf.string:
    raise ValueError('--saved_model=%s: serving_default does not take encoded images '
                     '(images: tf.string); was it written by '
                     'export_inference_graph.py?' % saved_model_dir)
  names = None
  if 'labels' in loaded.signatures:
    names = [n.decode('utf-8') for n in
             loaded.signatures['labels']()['class_names'].numpy()]
  return loaded, serve, names, spec.shape[0]


def classify(serve, images, batch_size=None):
  """Probabilities [len(images), num_classes] as numpy, in order."""
  tf = _tf()
  chunk = batch_size or CHUNK
  out = []
  for start in range(0, len(images), chunk):
    part = [data for _, data in images[start:start + chunk]]
    n = len(part)
    if batch_size:  # a fixed batch: pad with copies of the last image
      part += [part[-1]] * (batch_size - n)
    probabilities = serve(images=tf.constant(part))['probabilities'].numpy()
    out.extend(probabilities[:n])
  return out


def format_top_k(path, probabilities, names, k):
  order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:k]
  lines = [path]
  for i in order:
    name = names[i] if names else str(i)
    lines.append('  %.4f  %s' % (probabilities[i], name))
  return '\n'.join(lines)


def main(argv):
  paths = argv[1:]
  if not paths:
    raise ValueError('expected one or more image files after the flags, e.g. '
                     'classify_image.py --saved_model=DIR cat.jpg')
  images = read_images(paths)
  model, serve, names, batch_size = load(FLAGS.saved_model)
  check_decodable(images)
  probabilities = classify(serve, images, batch_size)  # model keeps its variables
  for (path, _), row in zip(images, probabilities):
    print(format_top_k(path, row, names, FLAGS.top_k))
  del model


if __name__ == '__main__':
  cli.run(main, positional=True, tensorflow=False)
