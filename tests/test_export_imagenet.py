"""Export without a dataset: TF-Slim's 1001 ImageNet classes, and the logits output."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import slim_reference
from datasets import imagenet
from nets import nets_factory
from slimkit import checkpoints
from slimkit import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 28  # lenet's default size: the export picks it without a run_config.json


def _run(script, *args):
  return subprocess.run([sys.executable, os.path.join(ROOT, script)] + list(args),
                        cwd=ROOT, capture_output=True, text=True, timeout=240)


def _model():
  return nets_factory.build_model('lenet', 1001, (SIZE, SIZE, 3))


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """A 1001-class checkpoint with no run_config.json (as a TF-Slim one) and its export."""
  base = tmp_path_factory.mktemp('export_imagenet')
  model = _model()
  rng = np.random.default_rng(0)
  for v in checkpoints.model_variables(model):
    v.assign(rng.normal(0.0, 0.3, tuple(v.shape)).astype(np.float32))
  train_dir = str(base / 'train')
  tf.train.CheckpointManager(
      checkpoints.make_checkpoint(model, tf.Variable(1, dtype=tf.int64)), train_dir,
      max_to_keep=1, checkpoint_name=checkpoints.CHECKPOINT_NAME).save(checkpoint_number=1)
  output = str(base / 'saved_model')
  # No --dataset_dir and no --dataset_name: TF-Slim's default, imagenet.
  result = _run('export_inference_graph.py', '--model_name=lenet',
                '--checkpoint_path=%s' % train_dir, '--output_file=%s' % output)
  assert result.returncode == 0, result.stderr[-3000:]
  return {'train_dir': train_dir, 'output': output, 'base': base}


@pytest.mark.slow
def test_both_signatures_return_the_nets_logits(exported):
  loaded = tf.saved_model.load(exported['output'])
  names = [n.decode() for n in loaded.signatures['labels']()['class_names'].numpy()]
  # TF-Slim's names: the background, then the sorted wnids' WordNet lemmas.
  assert len(names) == 1001 and names[:3] == [
      'background', 'tench, Tinca tinca', 'goldfish, Carassius auratus']
  assert names[-1] == 'toilet tissue, toilet paper, bathroom tissue'
  pixels = np.random.default_rng(1).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
  model = _model()
  checkpoints.restore_model(model, exported['train_dir'])
  expected = model(pixels, training=False)['Logits'].numpy()
  out = loaded.signatures['predict_images'](images=tf.constant(pixels))
  assert out['logits'].dtype == tf.float32 and out['logits'].shape == (3, 1001)
  np.testing.assert_allclose(out['logits'].numpy(), expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out['probabilities'].numpy(),
                             tf.nn.softmax(expected).numpy(), atol=1e-6)
  encoded = tf.constant([tf.io.encode_png(tf.fill([40, 30, 3], tf.constant(90, tf.uint8)))
                         .numpy()])
  served = loaded.signatures['serving_default'](images=encoded)
  assert served['logits'].shape == (1, 1001)
  np.testing.assert_allclose(tf.nn.softmax(served['logits']).numpy(),
                             served['probabilities'].numpy(), atol=1e-6)
  with open(os.path.join(exported['output'], 'labels.txt')) as f:
    assert f.read().splitlines()[:2] == ['0:background', '1:tench, Tinca tinca']


@pytest.mark.slow
def test_classify_image_names_the_imagenet_classes(exported, tmp_path):
  image = str(tmp_path / 'grey.jpg')
  with open(image, 'wb') as f:
    f.write(tf.io.encode_jpeg(tf.fill([30, 40, 3], tf.constant(128, tf.uint8))).numpy())
  result = _run('classify_image.py', '--saved_model=%s' % exported['output'], '--top_k=2',
                image)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert lines[0] == image and len(lines) == 3
  loaded = tf.saved_model.load(exported['output'])
  with open(image, 'rb') as f:
    probabilities = loaded.signatures['serving_default'](
        images=tf.constant([f.read()]))['probabilities'].numpy()[0]
  top = int(np.argmax(probabilities))
  probability, name = lines[1].split(None, 1)
  assert name == imagenet.readable_names()[top]
  assert float(probability) == pytest.approx(probabilities[top], abs=1e-4)


def test_labels_offset_and_other_datasets_without_a_dataset_dir():
  config = {'model_name': 'lenet', 'dataset_name': 'imagenet', 'labels_offset': 1,
            'output_file': '/unused'}
  setup = export.resolve(config, None)
  # --labels_offset=1: the 1000-class checkpoints (ResNet V1, VGG); class i is label i + 1.
  assert setup['num_classes'] == 1000
  assert setup['class_names'][0] == 'tench, Tinca tinca'
  assert setup['class_names'][-1] == 'toilet tissue, toilet paper, bathroom tissue'
  with pytest.raises(ValueError, match='--dataset_dir: needed to know the number of classes'):
    export.resolve(dict(config, dataset_name='flowers'), None)


def test_the_shipped_names_follow_tf_slims_label_order():
  with open(imagenet.CLASSES_FILE, encoding='utf-8') as f:
    rows = [line.rstrip('\n').split('\t') for line in f if not line.startswith('#')]
  wnids = [row[0] for row in rows]
  assert len(wnids) == 1000 and wnids == sorted(set(wnids))
  assert all(imagenet.WNID.match(w) and len(row) == 2 and row[1] for w, row in
             zip(wnids, rows))
  names = imagenet.readable_names()
  assert len(names) == 1001 and names[0] == 'background'
  assert [names[1 + wnids.index(w)] for w in ('n01440764', 'n15075141')] == [
      'tench, Tinca tinca', 'toilet tissue, toilet paper, bathroom tissue']
  assert imagenet.readable_names(1003)[1002] == '1002'  # past TF-Slim's: numbered


def test_a_tf_slim_checkpoint_alone_exports_imagenets_names(tmp_path):
  """Its classifier gives the class count; with TF-Slim's 1001, the names are
  ImageNet's, so classify_image.py prints names, not label numbers."""
  prefix = str(tmp_path / 'slim' / 'model.ckpt')
  slim_reference.save_random_checkpoint('lenet', prefix, SIZE, 1001, channels=1)
  output = str(tmp_path / 'export')
  export.run({'model_name': 'lenet', 'checkpoint_path': prefix, 'output_file': output,
              'dataset_name': 'imagenet', 'labels_offset': 0})
  loaded = tf.saved_model.load(output)
  names = [n.decode() for n in loaded.signatures['labels']()['class_names'].numpy()]
  assert names == [imagenet.readable_names()[i] for i in range(1001)]
  assert names[669] == 'mosque'  # keras' 0-based ImageNet index 668
