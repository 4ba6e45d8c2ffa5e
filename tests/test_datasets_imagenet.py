"""ImageNet: the converter on each downloaded layout, and TF-Slim's own TFRecords."""
import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from datasets import convert
from datasets import dataset_factory
from datasets import dataset_info
from datasets import imagenet_records
from slimkit import evaluate
from slimkit import inputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Sorted, as TF-Slim numbers them (labels 1, 2, 3), with their synset_words.txt names.
WNIDS = ['n01440764', 'n01443537', 'n01484850']
NAMES = ['tench, Tinca tinca', 'goldfish, Carassius auratus', 'great white shark']
# The devkit's ILSVRC2012 ids are not in wnid order.
DEVKIT_IDS = {3: 'n01440764', 1: 'n01443537', 2: 'n01484850'}
TRAIN_PER_CLASS = 3
# Validation image k (1-based) -> its wnid.
VAL_WNIDS = ['n01484850', 'n01440764', 'n01443537', 'n01440764', 'n01484850']


def jpeg(seed, gray=False):
  """A small JPEG whose bytes identify it (the converter keeps JPEG bytes as they are)."""
  pixels = np.random.default_rng(seed).integers(0, 256, (12, 10 + seed % 5, 3), np.uint8)
  image = Image.fromarray(pixels).convert('L' if gray else 'RGB')
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG')
  return buffer.getvalue()


def write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
    f.write(data)


def val_name(k):
  return 'ILSVRC2012_val_%08d' % k


def make_tree(root, val_layout):
  """An ImageNet download under root -> {image bytes: expected label} per split."""
  expected = {'train': {}, 'validation': {}}
  seed = 0
  for label, wnid in enumerate(WNIDS, 1):
    for i in range(TRAIN_PER_CLASS):
      seed += 1
      data = jpeg(seed, gray=(i == 0))  # ImageNet has grayscale JPEGs too
      write(os.path.join(root, 'train', wnid, '%s_%d.JPEG' % (wnid, i)), data)
      expected['train'][data] = label
  write(os.path.join(root, 'train', 'n01440764.tar'), b'a per-class tar left behind')
  for k, wnid in enumerate(VAL_WNIDS, 1):
    data = jpeg(100 + k)
    expected['validation'][data] = WNIDS.index(wnid) + 1
    if val_layout == 'folders':
      write(os.path.join(root, 'val', wnid, val_name(k) + '.JPEG'), data)
    else:
      write(os.path.join(root, 'val', val_name(k) + '.JPEG'), data)
  return expected


def write_kaggle_solution(path, val_wnids):
  rows = ['%s,%s 1 2 9 11 %s 0 0 5 5' % (val_name(k), wnid, wnid)
          for k, wnid in enumerate(val_wnids, 1)]
  write(path, 'ImageId,PredictionString\n' + '\n'.join(reversed(rows)) + '\n')


def write_meta_mat(path):
  from scipy import io as scipy_io  # pylint: disable=g-import-not-at-top
  synsets = np.zeros(len(DEVKIT_IDS), dtype=[('ILSVRC2012_ID', 'O'), ('WNID', 'O'),
                                             ('words', 'O')])
  for row, (ilsvrc_id, wnid) in enumerate(sorted(DEVKIT_IDS.items())):
    synsets[row] = (ilsvrc_id, wnid, NAMES[WNIDS.index(wnid)])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  scipy_io.savemat(path, {'synsets': synsets})


def make_source(base, layout):
  """Each layout users download -> (--source, expected labels, human names known)."""
  source = os.path.join(base, layout)
  synsets = ''.join('%s %s\n' % pair for pair in zip(WNIDS, NAMES))
  if layout == 'kaggle':  # ILSVRC/Data/CLS-LOC/{train,val}, LOC_*.csv/txt at the top
    expected = make_tree(os.path.join(source, 'ILSVRC', 'Data', 'CLS-LOC'), 'flat')
    write_kaggle_solution(os.path.join(source, 'LOC_val_solution.csv'), VAL_WNIDS)
    write(os.path.join(source, 'LOC_synset_mapping.txt'), synsets)
  elif layout == 'devkit':  # ILSVRC2012_img_val.tar extracted flat, the devkit beside
    expected = make_tree(source, 'flat')
    ids = {wnid: i for i, wnid in DEVKIT_IDS.items()}
    data = os.path.join(source, 'ILSVRC2012_devkit_t12', 'data')
    write(os.path.join(data, 'ILSVRC2012_validation_ground_truth.txt'),
          ''.join('%d\n' % ids[w] for w in VAL_WNIDS))
    write_meta_mat(os.path.join(data, 'meta.mat'))
  elif layout == 'tf_slim':  # TF-Slim's imagenet_2012_validation_synset_labels.txt
    expected = make_tree(source, 'flat')
    write(os.path.join(source, 'imagenet_2012_validation_synset_labels.txt'),
          '\n'.join(VAL_WNIDS) + '\n')
    write(os.path.join(source, 'synset_words.txt'), synsets)
  else:  # val/<wnid>/ folders, no names
    expected = make_tree(source, 'folders')
  return source, expected, layout != 'folders'


def records(files):
  """[(encoded bytes, label)] of TFRecord files, in order."""
  out = []
  for serialized in tf.data.TFRecordDataset(files):
    features = tf.io.parse_single_example(serialized, dataset_factory.FEATURES)
    out.append((features['image/encoded'].numpy(), int(features['image/class/label'])))
  return out


@pytest.mark.parametrize('layout', ['kaggle', 'devkit', 'tf_slim', 'folders'])
def test_converter_labels_every_layout_as_tf_slim(tmp_path, layout):
  source, expected, named = make_source(str(tmp_path), layout)
  out = str(tmp_path / 'out')
  info = convert.run('imagenet', out, source=source, num_shards=2, progress=False)
  assert info['num_classes'] == len(WNIDS) + 1 and info['wnids'] == [None] + WNIDS
  assert info['channels'] == 3 and info['encoding'] == 'jpeg'
  names = dataset_info.read_labels(out)
  assert names == dict(enumerate(['background'] + (NAMES if named else WNIDS)))
  for split_name, want in expected.items():
    split = dataset_factory.get_split('imagenet', split_name, out)
    assert split.num_samples == len(want) and len(split.files) == 2
    got = records(split.files)
    assert sorted(got) == sorted(want.items())  # every image once, with its label
    assert info['splits'][split_name]['class_counts'][0] == 0  # background: no images


def test_reader_and_labels_offset(tmp_path):
  source, expected, _ = make_source(str(tmp_path), 'kaggle')
  out = str(tmp_path / 'out')
  convert.run('imagenet', out, source=source, progress=False)
  split = dataset_factory.get_split('imagenet', 'validation', out)
  labels = sorted(int(label) for _, label in split.read())
  assert labels == sorted(expected['validation'].values()) and min(labels) == 1
  identity = lambda image, height, width: tf.image.resize(
      tf.cast(image, tf.float32), (height, width))
  for offset in (0, 1):
    batches = inputs.build_input(split, identity, 8, is_training=False, image_size=8,
                                 labels_offset=offset)
    shifted = sorted(int(v) for _, batch in batches for v in batch)
    assert shifted == [v - offset for v in labels]  # 1..3 -> 0..2 with --labels_offset=1
  # Evaluation of a 1000-class-style net: class i is label i + 1, named by its wnid.
  setup = evaluate.resolve({'model_name': 'lenet', 'dataset_name': 'imagenet',
                            'dataset_split_name': 'validation', 'dataset_dir': out,
                            'labels_offset': 1}, None)
  assert setup.num_classes == len(WNIDS) and setup.class_names == NAMES


def slim_example(data, label, wnid):
  """What TF-Slim's build_imagenet_data.py writes (the keys readers use, and more)."""
  b = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
  i = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
  return tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': b(data), 'image/format': b(b'JPEG'), 'image/colorspace': b(b'RGB'),
      'image/class/label': i(label), 'image/class/synset': b(wnid.encode()),
      'image/height': i(12), 'image/width': i(10), 'image/channels': i(3),
      'image/filename': b(b'x.JPEG')})).SerializeToString()


def write_slim_shards(folder, split_name, examples, num_shards):
  os.makedirs(folder, exist_ok=True)
  for shard in range(num_shards):
    path = os.path.join(folder, '%s-%05d-of-%05d' % (split_name, shard, num_shards))
    with tf.io.TFRecordWriter(path) as writer:
      for example in examples[shard::num_shards]:
        writer.write(example)


def test_reads_tf_slim_build_imagenet_data_records(tmp_path):
  folder = str(tmp_path / 'slim')
  train = [(jpeg(i), 1 + i % 1000) for i in range(7)]
  write_slim_shards(folder, 'train', [slim_example(d, l, 'n0') for d, l in train], 3)
  write_slim_shards(folder, 'validation', [slim_example(jpeg(50), 1000, 'n0')], 1)
  split = dataset_factory.get_split('imagenet', 'train', folder)
  assert (split.name, split.num_classes, split.num_samples) == ('imagenet', 1001, 7)
  assert split.labels_to_names[0] == 'background'  # then TF-Slim's names
  assert split.labels_to_names[1000] == 'toilet tissue, toilet paper, bathroom tissue'
  got = sorted(int(label) for image, label in split.read())
  assert got == sorted(l for _, l in train)
  image, _ = next(iter(split.read()))
  assert image.shape[-1] == 3 and image.dtype == tf.uint8
  assert dataset_factory.get_split(None, 'validation', folder).num_samples == 1
  # A labels.txt put beside the shards names the classes.
  write(os.path.join(folder, 'labels.txt'), '0:background\n1:tench\n')
  assert dataset_factory.get_split('imagenet', 'train', folder).labels_to_names[1] == 'tench'


def test_tf_slim_shard_count_gives_tf_slim_split_sizes(tmp_path):
  folder = str(tmp_path)
  for shard in range(128):  # validation-NNNNN-of-00128: the sizes of TF-Slim's imagenet.py
    open(os.path.join(folder, 'validation-%05d-of-00128' % shard), 'wb').close()
  assert dataset_factory.get_split('imagenet', 'validation', folder).num_samples == 50000


def test_tf_slim_records_errors(tmp_path):
  folder = str(tmp_path)
  write_slim_shards(folder, 'train', [slim_example(jpeg(i), 1, 'n0') for i in range(4)], 2)
  with pytest.raises(ValueError, match='--dataset_split_name=validation .* available '
                     'splits: train'):
    dataset_factory.get_split('imagenet', 'validation', folder)
  last = os.path.join(folder, 'train-00001-of-00002')
  with open(last, 'rb') as f:
    data = f.read()
  with open(last, 'wb') as f:
    f.write(data[:-7])
  with pytest.raises(ValueError, match='train-00001-of-00002 is truncated'):
    dataset_factory.get_split('imagenet', 'train', folder)
  os.remove(last)
  with pytest.raises(FileNotFoundError, match='1 of the 2 train shards are missing'):
    dataset_factory.get_split('imagenet', 'train', folder)
  assert imagenet_records.holds_records(folder)


def cli(*args):
  return subprocess.run([sys.executable, 'download_and_convert_data.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))


def assert_one_error_line(result, *texts):
  assert result.returncode == 1, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('download_and_convert_data.py: error: '), lines
  for text in texts:
    assert text in lines[0], lines


def test_cli_refuses_bad_layouts_and_writes_nothing(tmp_path):
  out = tmp_path / 'out'
  args = ('--dataset_name=imagenet', '--dataset_dir=%s' % out)
  assert_one_error_line(cli(*args), '--source is required', 'licence')
  source, _, _ = make_source(str(tmp_path), 'kaggle')
  data_root = os.path.join(source, 'ILSVRC', 'Data', 'CLS-LOC')
  solution = os.path.join(source, 'LOC_val_solution.csv')
  # A val image the ground truth does not label.
  write_kaggle_solution(solution, VAL_WNIDS[:-1])
  assert_one_error_line(cli(*args, '--source=%s' % source),
                        '%s.JPEG has no label in %s' % (val_name(5), solution))
  # A wnid with no train/ folder.
  write_kaggle_solution(solution, VAL_WNIDS[:-1] + ['n09999999'])
  assert_one_error_line(cli(*args, '--source=%s' % source),
                        "%s line 2: unknown wnid 'n09999999'" % solution)
  # No ground truth at all for a flat val/.
  os.remove(solution)
  assert_one_error_line(cli(*args, '--source=%s' % source),
                        '%s holds 5 images but no ground truth' % os.path.join(data_root, 'val'))
  # A class folder that is not a wnid.
  os.makedirs(os.path.join(data_root, 'train', 'cats'))
  assert_one_error_line(cli(*args, '--source=%s' % source), "'cats' is not a WordNet id")
  # No train/ folder.
  (tmp_path / 'photos' / 'val').mkdir(parents=True)
  assert_one_error_line(cli(*args, '--source=%s' % (tmp_path / 'photos')),
                        'has no train/ folder')
  assert not out.exists()
