"""export_inference_graph.py and classify_image.py: the export predicts as the checkpoint."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from datasets import dataset_factory
from nets import nets_factory
from preprocessing import preprocessing_factory
from slimkit import checkpoints
from slimkit import run_config
from slimkit import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP = 5


def _run(script, *args):
  return subprocess.run([sys.executable, os.path.join(ROOT, script)] + list(args),
                        cwd=ROOT, capture_output=True, text=True, timeout=240)


def _error_line(result, script):
  assert result.returncode == 1, result.stderr[-2000:]
  line = result.stderr.strip().splitlines()[-1]
  assert line.startswith('%s: error: ' % script)
  return line


def _split(dataset_dir, split_name='test'):
  with open(os.path.join(dataset_dir, 'dataset_info.json')) as f:
    name = json.load(f)['name']
  return dataset_factory.get_split(name, split_name, dataset_dir)


def _randomize(variables, rng):
  """Non-trivial values everywhere ({path: variable}), batch norm statistics included."""
  for path, v in variables.items():
    shape = tuple(v.shape)
    if path.endswith('moving_variance'):
      value = rng.uniform(0.5, 2.0, shape)
    else:
      value = rng.normal(0.0, 0.2, shape)
    v.assign(value.astype(np.float32))


def _model(num_classes):
  return nets_factory.build_model('custom_cnn', num_classes, (32, 32, 3),
                                  activation='elu')


@pytest.fixture(scope='module')
def exported(tmp_path_factory, tiny_cifar_dir):
  """A custom_cnn checkpoint (weights and different EMA weights) and its export."""
  base = tmp_path_factory.mktemp('export')
  split = _split(tiny_cifar_dir)
  rng = np.random.default_rng(0)
  model = _model(split.num_classes)
  variables = checkpoints.by_path(checkpoints.model_variables(model))
  _randomize(variables, rng)
  ema = {path: tf.Variable(v) for path, v in variables.items()}
  _randomize(ema, rng)
  train_dir = str(base / 'train')
  manager = tf.train.CheckpointManager(
      checkpoints.make_checkpoint(model, tf.Variable(STEP, dtype=tf.int64), ema=ema),
      train_dir, max_to_keep=1, checkpoint_name=checkpoints.CHECKPOINT_NAME)
  manager.save(checkpoint_number=STEP)
  # What the trainer records (slimkit.train.write_run_config).
  run_config.write(train_dir, {
      'model_name': 'custom_cnn', 'num_classes': split.num_classes, 'image_size': 32,
      'channels': 3, 'activation': 'elu', 'preprocessing_name': 'custom_cnn',
      'dataset_name': split.name, 'dataset_dir': tiny_cifar_dir,
      'use_grayscale': False, 'max_number_of_steps': STEP})
  output = str(base / 'saved_model')
  result = _run('export_inference_graph.py', '--model_name=custom_cnn',
                '--checkpoint_path=%s' % train_dir, '--output_file=%s' % output,
                '--dataset_dir=%s' % tiny_cifar_dir, '--dataset_name=%s' % split.name,
                '--moving_average_decay=0.9', '--tflite', '--write_text_graphdef')
  assert result.returncode == 0, result.stderr[-3000:]
  return {'base': base, 'train_dir': train_dir, 'output': output, 'split': split,
          'dataset_dir': tiny_cifar_dir, 'stdout': result.stdout}


def _reference(exported, count=12):
  """Encoded images, their preprocessed pixels and the EMA checkpoint's probabilities."""
  split = exported['split']
  records = list(tf.data.TFRecordDataset(split.files).take(count))
  encoded = [tf.io.parse_single_example(r, dataset_factory.FEATURES)['image/encoded']
             for r in records]
  preprocess = preprocessing_factory.get_preprocessing('custom_cnn', is_training=False)
  pixels = np.stack([preprocess(split.decode(e), 32, 32).numpy() for e in encoded])
  model = _model(split.num_classes)
  checkpoints.restore_model(model, exported['train_dir'], use_ema=True)
  probabilities = tf.nn.softmax(model(pixels, training=False)['Logits']).numpy()
  return tf.stack(encoded), pixels, probabilities


def test_saved_model_signatures_predict_as_the_checkpoint(exported):
  encoded, pixels, expected = _reference(exported)
  names = [exported['split'].labels_to_names[i]
           for i in range(exported['split'].num_classes)]
  loaded = tf.saved_model.load(exported['output'])
  served = loaded.signatures['serving_default'](images=encoded)
  floats = loaded.signatures['predict_images'](images=tf.constant(pixels))
  for out in (served, floats):
    np.testing.assert_allclose(out['probabilities'].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(tf.nn.softmax(out['logits']).numpy(), expected, atol=1e-5)
    assert out['classes'].numpy().tolist() == expected.argmax(1).tolist()
    assert [n.decode() for n in out['class_names'].numpy()] == [
        names[i] for i in expected.argmax(1)]
  assert [n.decode() for n in
          loaded.signatures['labels']()['class_names'].numpy()] == names
  # The EMA weights were exported, not the raw ones.
  raw = _model(exported['split'].num_classes)
  checkpoints.restore_model(raw, exported['train_dir'])
  raw_probabilities = tf.nn.softmax(raw(pixels, training=False)['Logits']).numpy()
  assert not np.allclose(raw_probabilities, expected, atol=1e-3)
  with open(os.path.join(exported['output'], 'labels.txt')) as f:
    assert f.read().splitlines() == ['%d:%s' % (i, n) for i, n in enumerate(names)]
  record = export.read_export_config(exported['output'])
  assert record['step'] == STEP and record['moving_average'] is True
  with open(os.path.join(exported['output'], export.TEXT_GRAPH_FILE)) as f:
    assert 'DecodeImage' in f.read()


def test_tflite_predicts_as_the_checkpoint(exported):
  _, pixels, expected = _reference(exported)
  interpreter = tf.lite.Interpreter(
      model_path=os.path.join(exported['output'], export.TFLITE_FILE))
  runner = interpreter.get_signature_runner('predict_images')
  out = runner(images=pixels)
  np.testing.assert_allclose(out['probabilities'], expected, atol=1e-4)
  assert out['classes'].tolist() == expected.argmax(1).tolist()
  # --quantize: int8 weights, a smaller file whose outputs are still probabilities.
  quantized = export.tflite_bytes(exported['output'], quantize=True)
  assert len(quantized) < 0.5 * os.path.getsize(
      os.path.join(exported['output'], export.TFLITE_FILE))
  runner = tf.lite.Interpreter(model_content=quantized).get_signature_runner(
      'predict_images')
  probabilities = runner(images=pixels)['probabilities']
  np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)
  np.testing.assert_allclose(probabilities, expected, atol=0.1)


@pytest.mark.slow
def test_classify_image_prints_top_k_per_image(exported, tmp_path):
  encoded, _, expected = _reference(exported, count=2)
  paths = [str(tmp_path / 'first.png'), str(tmp_path / 'second.jpg')]
  with open(paths[0], 'wb') as f:
    f.write(encoded[0].numpy())
  with open(paths[1], 'wb') as f:  # as JPEG: decoded by content, not by name
    f.write(tf.io.encode_jpeg(tf.io.decode_png(encoded[1]), quality=100).numpy())
  loaded = tf.saved_model.load(exported['output'])
  jpeg = tf.constant([open(paths[1], 'rb').read()])
  expected[1] = loaded.signatures['serving_default'](images=jpeg)['probabilities'][0]
  names = [exported['split'].labels_to_names[i]
           for i in range(exported['split'].num_classes)]
  result = _run('classify_image.py', '--saved_model=%s' % exported['output'],
                '--top_k=3', *paths)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 2 * 4
  for i, path in enumerate(paths):
    block = lines[4 * i:4 * i + 4]
    assert block[0] == path
    top = np.argsort(-expected[i])[:3]
    for line, k in zip(block[1:], top):
      probability, name = line.split(None, 1)
      assert name == names[k]
      assert float(probability) == pytest.approx(expected[i][k], abs=1e-4)


@pytest.mark.slow
def test_bad_input_is_one_line(exported, tmp_path):
  notes = str(tmp_path / 'notes.txt')
  with open(notes, 'w') as f:
    f.write('not an image\n')
  missing = str(tmp_path / 'missing.png')
  saved_model = '--saved_model=%s' % exported['output']
  for args, expect in [([saved_model, missing], missing + ': no such image file'),
                       ([saved_model, notes], notes + ': not an image'),
                       (['--saved_model=%s' % tmp_path, notes], 'not an image'),
                       (['--saved_model=%s' % tmp_path, missing], 'no such image')]:
    assert expect in _error_line(_run('classify_image.py', *args), 'classify_image.py')
  line = _error_line(_run('export_inference_graph.py', '--model_name=custom_cnn',
                          '--output_file=%s' % (tmp_path / 'out'), '--quantize'),
                     'export_inference_graph.py')
  assert '--quantize needs --tflite' in line
  config = {'model_name': 'lenet', 'checkpoint_path': exported['train_dir'],
            'output_file': str(tmp_path / 'out'), 'dataset_dir': exported['dataset_dir']}
  with pytest.raises(ValueError, match='pass --model_name=custom_cnn'):
    export.run(config)
  config = dict(config, model_name='custom_cnn', labels_offset=1)
  with pytest.raises(ValueError, match='trained for'):
    export.run(config)
  assert not os.path.exists(tmp_path / 'out')


def test_fixed_batch_export_and_reexport_in_place(exported, tmp_path):
  """--batch_size fixes N; classify pads the last chunk; a re-export replaces the dir."""
  import classify_image  # pylint: disable=g-import-not-at-top
  output = str(tmp_path / 'fixed')
  config = {'model_name': 'custom_cnn', 'checkpoint_path': exported['train_dir'],
            'output_file': output, 'batch_size': 2}
  export.run(config)
  export.run(dict(config, moving_average_decay=0.9))  # over the first export
  encoded, _, expected = _reference(exported, count=3)
  _, serve, names, batch = classify_image.load(output)
  assert batch == 2 and len(names) == exported['split'].num_classes
  images = [('image%d' % i, e) for i, e in enumerate(encoded.numpy())]
  np.testing.assert_allclose(classify_image.classify(serve, images, batch), expected,
                             atol=1e-5)
  assert sorted(os.listdir(tmp_path)) == ['fixed']


def test_classify_image_names_a_damaged_image(exported):
  import classify_image  # pylint: disable=g-import-not-at-top
  encoded, _, _ = _reference(exported, count=1)
  whole = encoded[0].numpy()
  classify_image.check_decodable([('whole.png', whole)])
  with pytest.raises(ValueError, match='cut.png: damaged image'):
    classify_image.check_decodable([('whole.png', whole), ('cut.png', whole[:60])])
