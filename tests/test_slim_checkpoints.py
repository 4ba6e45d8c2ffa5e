"""TF-Slim's own checkpoints in our nets: same logits, every form of the file, the
download by name, fine-tuning with the real CLI, and one-line errors for bad input.

The checkpoints are written by TF-Slim's original nets in TF1 graph mode
(tests/slim_reference.py) with every variable random, so a wrong name, padding,
pooling or epsilon shows in the logits.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import functools
import http.server
import shutil
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest
import tensorflow as tf

import slim_reference
from nets import nets_factory
from slimkit import checkpoints
from slimkit import run_config as run_config_lib
from slimkit import slim_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def our_logits(name, prefix, images, num_classes, use_ema=False):
  model = nets_factory.build_model(name, num_classes, images.shape[1:])
  restored, _, missing = checkpoints.restore_model(model, prefix, use_ema=use_ema)
  assert restored and not missing
  return model(images, training=False)['Logits'].numpy()


def assert_same_logits(ours, theirs):
  scale = np.abs(theirs).max()
  assert scale > 0
  assert np.abs(ours - theirs).max() <= 1e-4 * scale


# (net, image size, channels, V1 single-file format). Inception V1's 7x7 average
# pool needs 224; the others pool globally as TF-Slim's nets do. MobileNet V1 is
# checked by the moving-average and download tests; every width and depth at 224
# by benchmarks/slim_parity.py.
CASES = [('inception_v1', 224, 3, False), ('resnet_v1_50', 64, 3, True),
         ('cifarnet', 32, 3, False), ('lenet', 28, 1, False)]


@pytest.mark.parametrize('name,size,channels,v1_format', CASES)
def test_logits_equal_tf_slims(tmp_path, name, size, channels, v1_format):
  prefix = str(tmp_path / ('%s.ckpt' % name))
  images, theirs = slim_reference.save_random_checkpoint(
      name, prefix, size, 7, channels=channels, batch=1 if size > 64 else 2,
      v1_format=v1_format)
  assert os.path.exists(prefix + '.index') != v1_format
  assert_same_logits(our_logits(name, prefix, images, 7), theirs)


def _save_with_shadows(prefix, size):
  """MobileNet V1 0.25 whose EMA shadows (not its plain values) give the logits."""
  rng = np.random.RandomState(3)
  images = rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, images.shape)
    logits = slim_reference.REFERENCES['mobilenet_v1_025'](inputs, 4)
    model_vars = tf.compat.v1.global_variables()
    plain = [tf.compat.v1.Variable(slim_reference.random_value(
        v.op.name, v.shape.as_list(), rng).astype(np.float32), name='plain_%d' % i)
             for i, v in enumerate(model_vars)]
    names = {v.op.name: p for v, p in zip(model_vars, plain)}
    names.update({v.op.name + slim_checkpoint.EMA_SUFFIX: v for v in model_vars})
    saver = tf.compat.v1.train.Saver(names)
    randomise = slim_reference.randomiser(model_vars)
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      randomise(sess, rng)
      theirs = sess.run(logits, {inputs: images})
      saver.save(sess, prefix, write_meta_graph=False)
  return images, theirs


def test_moving_average_decay_reads_the_shadows(tmp_path):
  prefix = str(tmp_path / 'ema.ckpt')
  images, theirs = _save_with_shadows(prefix, 32)
  assert_same_logits(our_logits('mobilenet_v1_025', prefix, images, 4, use_ema=True),
                     theirs)
  plain = our_logits('mobilenet_v1_025', prefix, images, 4)
  assert np.abs(plain - theirs).max() > 1e-2 * np.abs(theirs).max()
  wider = nets_factory.build_model('mobilenet_v1_050', 4, (32, 32, 3))
  with pytest.raises(ValueError, match='looks like a checkpoint of mobilenet_v1_025'):
    checkpoints.restore_model(wider, prefix)


@pytest.fixture(scope='module')
def lenet_ckpt(tmp_path_factory):
  """A TF-Slim LeNet checkpoint (5 classes), saved in its own directory."""
  directory = tmp_path_factory.mktemp('slim_lenet')
  prefix = str(directory / 'model.ckpt-0')
  images, logits = slim_reference.save_random_checkpoint('lenet', prefix, 28, 5,
                                                         channels=1)
  return directory, prefix, images, logits


def _tarball(directory, archive_path, inside='lenet'):
  with tarfile.open(archive_path, 'w:gz') as tar:
    for name in sorted(os.listdir(directory)):
      tar.add(os.path.join(directory, name), arcname='%s/%s' % (inside, name))


def test_directory_and_archive_forms(tmp_path, monkeypatch, lenet_ckpt):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  directory, _, images, theirs = lenet_ckpt
  archive_path = str(tmp_path / 'lenet_2016_08_28.tar.gz')
  _tarball(directory, archive_path)
  for path in (str(directory), archive_path):
    assert_same_logits(our_logits('lenet', path, images, 5), theirs)
  extracted = os.listdir(tmp_path / 'cache' / 'extracted')
  assert len(extracted) == 1  # the second read reused the extraction


def test_archive_with_a_link_is_refused(tmp_path, monkeypatch):
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  bad = str(tmp_path / 'bad.tar.gz')
  with tarfile.open(bad, 'w:gz') as tar:
    link = tarfile.TarInfo('x/model.ckpt.index')
    link.type, link.linkname = tarfile.SYMTYPE, '/etc/passwd'
    tar.addfile(link)
  with pytest.raises(ValueError, match='refusing link member'):
    checkpoints.require_latest(bad)
  assert not os.path.exists(tmp_path / 'cache' / 'extracted')


def test_export_from_flags_alone(tmp_path, lenet_ckpt):
  """No dataset_dir, no run_config.json: the classifier's shape gives the classes."""
  from slimkit import export
  output = tmp_path / 'exported'
  export.run({'model_name': 'lenet', 'checkpoint_path': str(lenet_ckpt[0]),
              'output_file': str(output)})
  record = export.read_export_config(str(output))
  assert record['num_classes'] == 5 and record['image_size'] == 28
  assert (output / 'labels.txt').read_text().splitlines()[-1] == '4:4'


def test_distillation_teacher_reads_it(lenet_ckpt):
  from slimkit import distill
  directory, _, images, theirs = lenet_ckpt
  teacher = distill.Teacher({'teacher_model_name': 'lenet',
                             'teacher_checkpoint_path': str(directory)}, 5, 1)
  model = teacher.build()
  assert_same_logits(model(images, training=False)['Logits'].numpy(), theirs)


class _Quiet(http.server.SimpleHTTPRequestHandler):
  def log_message(self, *args):
    pass


def test_download_by_name_from_a_local_server_once(tmp_path, monkeypatch):
  """The real download code against 127.0.0.1 serving a tarball made here."""
  served = tmp_path / 'served'
  published = slim_checkpoint.PUBLISHED['mobilenet_v1_025']
  archive_path = served / published.archive
  archive_path.parent.mkdir(parents=True)
  ckpt_dir = tmp_path / 'ckpt'
  images, theirs = slim_reference.save_random_checkpoint(
      'mobilenet_v1_025', str(ckpt_dir / 'mobilenet_v1_0.25_224.ckpt'), 32, 6)
  os.remove(ckpt_dir / 'checkpoint')  # as published: the .ckpt files only
  _tarball(ckpt_dir, str(archive_path), inside='.')
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  server = http.server.ThreadingHTTPServer(
      ('127.0.0.1', 0), functools.partial(_Quiet, directory=str(served)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    url = 'http://127.0.0.1:%d/' % server.server_address[1]
    monkeypatch.setenv('SLIMKIT_MODELS_URL', url)
    assert_same_logits(our_logits('mobilenet_v1_025', 'mobilenet_v1_025', images, 6),
                       theirs)
  finally:
    server.shutdown()
    server.server_close()
    thread.join()
  # Server gone: the cached copy is reused.
  assert_same_logits(our_logits('mobilenet_v1_025', 'mobilenet_v1_025', images, 6),
                     theirs)
  cached = tmp_path / 'cache' / 'downloads' / os.path.basename(published.archive)
  assert cached.read_bytes() == archive_path.read_bytes()
  # Offline and not cached: one line saying where to put the file.
  with pytest.raises(ValueError, match='put it at .*mobilenet_v1_0.5_224.tgz'):
    checkpoints.require_latest('mobilenet_v1_050')


# ==============================================================================
# The real scripts.
# ==============================================================================


def script(name, *args):
  return subprocess.run([sys.executable, os.path.join(ROOT, name)] + list(args),
                        cwd=ROOT, capture_output=True, text=True, timeout=300)


def one_line_failure(result):
  assert result.returncode != 0
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert lines and 'Traceback' not in result.stderr, result.stderr[-2000:]
  return lines[-1]


@pytest.mark.slow
def test_fine_tune_keeps_frozen_values_bit_for_bit(tmp_path, tiny_cifar_dir):
  prefix = str(tmp_path / 'slim' / 'mobilenet_v1_0.25_224.ckpt')
  slim_reference.save_random_checkpoint('mobilenet_v1_025', prefix, 32, 1001)
  train_dir = tmp_path / 'train'
  result = script(
      'train_image_classifier.py', '--train_dir=%s' % train_dir,
      '--dataset_name=cifar10', '--dataset_dir=%s' % tiny_cifar_dir,
      '--model_name=mobilenet_v1_025', '--train_image_size=32',
      '--checkpoint_path=%s' % prefix,
      '--checkpoint_exclude_scopes=MobilenetV1/Logits',
      '--trainable_scopes=MobilenetV1/Logits', '--max_number_of_steps=2',
      '--batch_size=4', '--optimizer=sgd', '--learning_rate=0.1',
      '--num_readers=1', '--random_seed=1')
  assert result.returncode == 0, result.stderr[-2000:]
  ours = checkpoints.read_variables(checkpoints.latest(str(train_dir)))
  reader = tf.train.load_checkpoint(prefix)
  model = nets_factory.build_model('mobilenet_v1_025', 10, (32, 32, 3))
  names = slim_checkpoint.slim_names(model, 'MobilenetV1')
  body = [p for p in names if not p.startswith('Logits')]
  assert any(p.endswith('moving_variance') for p in body)
  for path in body:
    np.testing.assert_array_equal(ours[path], reader.get_tensor(names[path]),
                                  err_msg=path)
  head = ours['Logits.Conv2d_1c_1x1/kernel']
  assert head.shape == (1, 1, 256, 10)
  slim_head = reader.get_tensor('MobilenetV1/Logits/Conv2d_1c_1x1/weights')
  assert not np.allclose(head, slim_head[..., :10])


@pytest.mark.slow
def test_bad_checkpoints_fail_in_one_line(tmp_path, tiny_cifar_dir, lenet_ckpt):
  prefix = str(tmp_path / 'cifarnet' / 'model.ckpt')
  slim_reference.save_random_checkpoint('cifarnet', prefix, 32, 10)
  cut = tmp_path / 'cut'
  shutil.copytree(os.path.dirname(prefix), cut)
  data = cut / 'model.ckpt.data-00000-of-00001'
  data.write_bytes(data.read_bytes()[:1000])
  runs = {  # name: (checkpoint, extra flags); run side by side to save time
      'offset': (prefix, ('--labels_offset=1',)),  # 9 classes for a 10-class head
      'other_net': (lenet_ckpt[1], ()),
      'truncated': (str(cut / 'model.ckpt'), ()),
  }
  procs = {}
  for name, (path, extra) in runs.items():
    procs[name] = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'eval_image_classifier.py'),
         '--model_name=cifarnet', '--checkpoint_path=%s' % path,
         '--dataset_name=cifar10', '--dataset_dir=%s' % tiny_cifar_dir,
         '--dataset_split_name=test', '--eval_dir=%s' % (tmp_path / name),
         '--batch_size=50'] + list(extra),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  # Meanwhile, the right flags evaluate it from the flags alone (no run_config.json).
  from slimkit import evaluate
  result, = evaluate.run({
      'model_name': 'cifarnet', 'checkpoint_path': prefix, 'dataset_name': 'cifar10',
      'dataset_dir': tiny_cifar_dir, 'dataset_split_name': 'test',
      'eval_dir': str(tmp_path / 'good'), 'batch_size': 50})
  assert result['num_samples'] == result['split_num_samples'] > 0
  assert os.path.exists(tmp_path / 'good' / 'eval_0.json')
  results = {}
  for name, proc in procs.items():
    _, err = proc.communicate(timeout=300)
    results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, '', err)
  line = one_line_failure(results['offset'])
  assert 'CifarNet/logits/weights' in line and '--labels_offset' in line
  # eval_image_classifier.py has no --checkpoint_exclude_scopes
  assert '--checkpoint_exclude_scopes' not in line
  line = one_line_failure(results['other_net'])
  assert 'looks like a checkpoint of lenet' in line
  line = one_line_failure(results['truncated'])
  assert 'damaged or truncated' in line and 'model.ckpt' in line
  for name in ('offset', 'other_net', 'truncated'):
    assert not os.path.exists(tmp_path / name)


def test_parity_benchmark_measures_a_net(tmp_path):
  from benchmarks import slim_parity
  diff, scale = slim_parity.parity('lenet', 28, 5, 1, str(tmp_path))
  assert scale > 0 and diff <= 1e-4 * scale


def test_published_checkpoints_bring_their_input_size_and_preprocessing(
    tmp_path, monkeypatch):
  """ResNet V2's published weights want inception preprocessing at 299 (TF-Slim's
  README): its short name, archive or extracted folder says so, as a run_config
  would; other checkpoints say nothing."""
  monkeypatch.setenv('SLIMKIT_CACHE', str(tmp_path / 'cache'))
  want = {'image_size': 299, 'preprocessing_name': 'inception'}
  assert slim_checkpoint.published_settings('resnet_v2_50') == want
  archive = tmp_path / 'resnet_v2_50_2017_04_14.tar.gz'
  assert slim_checkpoint.published_settings(str(archive)) == want
  extracted = (tmp_path / 'cache' / 'extracted' /
               'resnet_v2_50_2017_04_14-0123456789ab' / 'resnet_v2_50.ckpt')
  assert slim_checkpoint.published_settings(str(extracted)) == want
  assert slim_checkpoint.published_settings('vgg_16') == {
      'image_size': 224, 'preprocessing_name': 'vgg'}
  assert slim_checkpoint.published_settings(str(tmp_path / 'model.ckpt')) is None
  # The flags still win over them; unset, they win over the net's own defaults.
  setup = run_config_lib.resolve_net({'explicit_flags': ()}, want, 'resnet_v2_50')
  assert (setup.image_size, setup.preprocessing_name) == (299, 'inception')
  setup = run_config_lib.resolve_net(
      {'explicit_flags': ('preprocessing_name',), 'preprocessing_name': 'vgg'}, want,
      'resnet_v2_50', 224)
  assert (setup.image_size, setup.preprocessing_name) == (224, 'vgg')
