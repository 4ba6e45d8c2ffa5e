"""Every benchmark script, run end to end at the smallest size that covers its code
(a few steps, a handful of images, small batches, float32), plus the harness.

Each script under benchmarks/ must have a smoke test somewhere in tests/: see
test_every_benchmark_script_has_a_smoke_test.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import csv
import glob
import json
import re
import subprocess
import sys

import pytest

from benchmarks import cli_runs
from benchmarks import harness
from benchmarks import plots

# Every benchmark's smoke test starts whole training or evaluation processes.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small and fast on every CPU: bfloat16 is emulated, and slow, on AVX2 machines.
TINY_TRAIN = ('--batch_size=8', '--mixed_precision=float32', '--max_num_batches=1')


def bench(name, *args, env=None):
  """Runs benchmarks/<name>; env: variables to set, or to unset (None)."""
  full_env = dict(os.environ)
  for key, value in (env or {}).items():
    full_env.pop(key, None)
    if value is not None:
      full_env[key] = value
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'benchmarks', name)] + list(args),
      cwd=ROOT, capture_output=True, text=True, timeout=600, env=full_env)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  return result.stdout


def read_csv(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def png_size(path):
  """(width, height) of a PNG that PIL reads whole; fails for anything else."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    assert image.format == 'PNG'
    image.load()
    return image.size


def benchmark_scripts():
  """benchmarks/*.py that run as scripts (harness and cli_runs are libraries)."""
  main = re.compile(r"""__name__\s*==\s*['"]__main__['"]""")
  return sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'benchmarks',
                                                                    '*.py'))
                if main.search(open(p).read()))


def test_every_benchmark_script_has_a_smoke_test():
  # A smoke test names the script as a string ('x.py' or 'benchmarks/x.py') or
  # imports it from benchmarks, in some tests/test_*.py.
  texts = [open(p).read() for p in glob.glob(os.path.join(ROOT, 'tests', 'test_*.py'))]
  missing = []
  for script in benchmark_scripts():
    stem = script[:-3]
    pattern = re.compile(r"""['"](benchmarks/)?%s\.py['"]|from benchmarks import .*\b%s\b"""
                         % (stem, stem))
    if not any(pattern.search(text) for text in texts):
      missing.append(script)
  assert len(benchmark_scripts()) >= 10
  assert not missing, 'benchmarks without a smoke test in tests/: %s' % missing


def test_meters_interleave_windows_and_count_items():
  calls = []
  meters = [harness.Meter(lambda n=n: calls.append(n), items=4, steps=2, name=n)
            for n in ('a', 'b')]
  harness.interleave(meters, windows=3, warmup=1)
  # One warm-up call each, then window by window: a a b b, three times.
  assert calls == ['a', 'b'] + ['a', 'a', 'b', 'b'] * 3
  for meter in meters:
    assert len(meter.rates) == len(meter.cpu_rates) == 3
    assert all(rate > 0 for rate in meter.rates) and meter.warmup_seconds >= 0
    assert str(meter) == harness.format_mean_std(meter.rates)
  assert harness.mean_std([1.0, 3.0]) == (2.0, 1.0)
  line = harness.describe()
  assert line.startswith('CPU: ') and 'TensorFlow 2.' in line
  assert re.search(r'oneDNN (on|off)', line)


def test_sample_tree_keeps_a_seeded_sample_of_the_files(tmp_path, cifar10_jpeg_source):
  import tarfile  # pylint: disable=g-import-not-at-top
  with tarfile.open(cifar10_jpeg_source.path) as tar:
    members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
  first = harness.sample_tree(cifar10_jpeg_source.path, str(tmp_path / 'a'),
                              {'train': 5, 'test': None}, seed=3)
  again = harness.sample_tree(cifar10_jpeg_source.path, str(tmp_path / 'b'),
                              {'train': 5, 'test': None}, seed=3)
  written = {os.path.relpath(p, first).replace(os.sep, '/')
             for p in glob.glob(os.path.join(first, '*', '*', '*'))}
  assert written == {os.path.relpath(p, again).replace(os.sep, '/')
                     for p in glob.glob(os.path.join(again, '*', '*', '*'))}
  # Five train images, from five classes (the classes take turns).
  assert len({w.split('/')[1] for w in written if w.startswith('train/')}) == 5
  assert {w for w in written if w.startswith('test/')} == {
      n for n in members if n.startswith('test/')}
  for name in written:  # the same bytes as in the archive
    with open(os.path.join(first, name), 'rb') as f:
      assert f.read() == members[name]


def test_accuracy_curves_draw_one_line_per_run(tmp_path, monkeypatch, capsys):
  runs = [('a', [(1.0, 0.5, 40.0), (2.0, 1.0, 60.0), (3.0, 1.5, 70.0)]),
          ('b', [(1.5, 0.5, 50.0), (4.0, 2.0, 80.0)]),
          ('final only', [(5.0, 3.0, 85.0)]),
          ('not run', [])]
  path = str(tmp_path / 'out' / 'curves.png')
  assert plots.accuracy_curves(path, runs, title='synthetic') == [3, 3]
  width, height = png_size(path)
  assert width > 500 and height > 200
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:  # drawn lines: more than a blank frame's colours
    assert len(image.convert('RGB').getcolors(maxcolors=1 << 20)) > 50
  assert plots.accuracy_curves(path, runs[:1]) == [1, 1]
  # Without matplotlib the tables stand and one line says what is missing.
  monkeypatch.setitem(sys.modules, 'matplotlib', None)
  assert plots.write_curves(str(tmp_path), 'none', runs) is None
  assert 'matplotlib is not installed' in capsys.readouterr().out
  assert not os.path.exists(tmp_path / 'none.png')


# ---------------------------------------------------------------- speed benchmarks

def test_convert_bench_times_ours_and_the_serial_baseline(cifar10_jpeg_source):
  out = bench('convert_bench.py', '--source=%s' % cifar10_jpeg_source.path,
              '--baseline_images=4', '--num_workers=1', '--python_batches')
  assert out.count('speed-up:') == 2
  # Ours converts all 30 + 10 images; the baseline its first 4, both times.
  assert out.count('ours:     40 images') == 2
  assert out.count('baseline: 4 images') == 2


def test_eval_bench_converts_a_sample_and_compares_eval_with_forward(
    tmp_path, cifar10_jpeg_source):
  out = bench('eval_bench.py', '--source=%s' % cifar10_jpeg_source.path,
              '--num_images=6', '--batch_size=4', '--repeats=1',
              '--work_dir=%s' % tmp_path)
  info = cli_runs.read_json(tmp_path / 'data' / 'cifar10-test6-train10' /
                            'dataset_info.json')
  assert info['splits']['test']['num_samples'] == 6
  assert 'on 6 images of' in out and 'eval / forward = ' in out
  assert re.search(r'target: 10,000 images in < 20 s: (met|NOT met) \(measured on 6',
                   out)


def test_input_bench_compares_pipeline_and_training(tmp_path, tiny_cifar_dir,
                                                    flowers_source):
  from datasets import convert  # pylint: disable=g-import-not-at-top
  flowers_dir = str(tmp_path / 'flowers')
  convert.run('flowers', flowers_dir, source=flowers_source.path, progress=False)
  out = bench('input_bench.py', '--cifar_dir=%s' % tiny_cifar_dir,
              '--flowers_dir=%s' % flowers_dir,
              '--rows=cifar:custom_cnn,inception:mobilenet_v1', '--image_size=32',
              '--quick', '--input_seconds=0', '--train_steps=1')
  rows = [l.split() for l in out.splitlines() if l.startswith(('cifar10 ', 'flowers '))]
  assert [r[:3] for r in rows] == [['cifar10', 'cifar', 'custom_cnn'],
                                   ['flowers', 'inception', 'mobilenet_v1']]
  assert all(float(r[-1]) > 0 for r in rows)
  assert 'min ratio' in out


def test_nets_bench_times_ours_against_keras_applications():
  out = bench('nets_bench.py', '--nets=mobilenet_v1_025,lenet', '--sizes=32',
              '--batch_size=2', '--steps=1', '--windows=1', '--warmup=1')
  lines = {l.split()[0]: l for l in out.splitlines()
           if l.startswith(('mobilenet_v1_025 ', 'lenet '))}
  mobilenet = lines['mobilenet_v1_025'].split('|')
  assert float(mobilenet[-1].split()[0]) > 0  # ours / keras.applications
  assert lines['lenet'].split('|')[-1].split() == ['-', '-']  # no keras twin


def test_nets_table_prints_counts_beside_the_paper():
  out = bench('nets_table.py', '--nets=mobilenet_v1', '--sizes=224,32')
  row = [l for l in out.splitlines() if l.startswith('mobilenet_v1 ') and ' 224 ' in l]
  fields = row[0].split()
  params, paper = float(fields[2]), float(fields[6])
  assert paper == 4.2 and abs(params - paper) < 0.1  # MobileNet paper, Table 6
  assert 'MobileNet paper' in row[0]


# ---------------------------------------------------------------- table benchmarks

def test_thesis_table_trains_and_evaluates_each_recipe(tmp_path, tiny_cifar_dir):
  out = bench('thesis_table.py', '--models=mobilenet_v1', '--steps=2',
              '--image_size=32', '--fast_steps=2', '--beat_steps=2',
              '--recipes=thesis,cifar_fast,beat', '--beat_eval_tta=flip', *TINY_TRAIN,
              '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'thesis_table.csv')
  assert [(r['model'], r['recipe']) for r in rows] == [
      ('mobilenet_v1', 'thesis'), ('mobilenet_v1_cifar', 'cifar_fast'),
      ('mobilenet_v1', 'beat')]
  thesis, fast, beat = rows
  # The beat row: --preset=mobilenet_v1_cifar10 as it is (64x64), its thesis
  # figures, wall time and images seen; its evaluation with the TTA asked for.
  assert (beat['image size'], beat['steps'], beat['images seen']) == ('64', '2', '16')
  assert (beat['thesis top-1 %'], beat['thesis time (units)']) == ('73.6', '5')
  assert beat['wall time, train + eval'] and beat['eval TTA'] == 'flip'
  assert thesis['eval TTA'] == 'none' and not thesis['wall time, train + eval']
  beat_config = cli_runs.read_json(tmp_path / 'train' / 'mobilenet_v1-beat' /
                                   'run_config.json')
  assert (beat_config['preset'], beat_config['preprocessing_name']) == (
      'mobilenet_v1_cifar10', 'cifar')
  with pytest.raises(AssertionError, match='no preset custom_cnn_cifar10'):
    bench('thesis_table.py', '--recipes=beat', '--models=custom_cnn',
          '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  assert thesis['net file'] == fast['net file'] == 'nets/mobilenet_v1.py'
  assert (thesis['steps'], thesis['batch'], thesis['image size']) == ('2', '8', '32')
  assert (fast['steps'], fast['batch'], fast['image size']) == ('2', '8', '32')
  assert thesis['thesis top-1 %'] == '73.6' and fast['thesis top-1 %'] == ''
  for row in rows:
    assert 0.0 <= float(row['top-1 %']) <= float(row['top-5 %']) <= 100.0
    assert float(row['images/s']) > 0 and row['device'].startswith('CPU: ')
  assert thesis['time for 60000 steps at this speed']
  # Each run's eval went to an eval dir of its own, never into the train dir.
  for tag in ('mobilenet_v1-thesis', 'mobilenet_v1_cifar-cifar_fast'):
    assert os.listdir(tmp_path / 'eval' / tag)
    assert not [f for f in os.listdir(tmp_path / 'train' / tag) if f.startswith('eval')]
  assert '| mobilenet_v1 | nets/mobilenet_v1.py | thesis |' in out
  # At 2 of the thesis's 60000 steps, Slim's 0.9997 would leave the batch norm
  # statistics at their initial values: the rows train with a faster decay.
  configs = {tag: cli_runs.read_json(tmp_path / 'train' / tag / 'run_config.json')
             for tag in ('mobilenet_v1-thesis', 'mobilenet_v1_cifar-cifar_fast')}
  assert {t: c['batch_norm_decay'] for t, c in configs.items()} == {
      'mobilenet_v1-thesis': 0.5, 'mobilenet_v1_cifar-cifar_fast': 0.9}
  assert {c['mixed_precision'] for c in configs.values()} == {'float32'}
  width, height = png_size(tmp_path / 'results' / 'thesis_table.png')
  assert width > 500 and height > 200


def test_time_to_accuracy_evaluates_every_checkpoint(tmp_path, tiny_cifar_dir):
  out = bench('time_to_accuracy.py', '--steps=4', '--save_every=2', *TINY_TRAIN,
              '--targets=5,101', '--target_minutes=30,90',
              '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'time_to_accuracy.csv')
  assert [r['step'] for r in rows] == ['2', '4']
  assert float(rows[0]['training minutes']) <= float(rows[1]['training minutes'])
  assert '>= 101 % top-1: not reached' in out
  assert 'GFLOP/s achieved' in out and 'multiply-adds per image' in out
  assert 'batch 8, float32' in out
  width, height = png_size(tmp_path / 'results' / 'time_to_accuracy.png')
  assert width > 500 and height > 200
  assert 'time_to_accuracy.png' in out


def test_device_table_times_a_dataset_on_the_cpu(tmp_path, tiny_mnist_dir):
  # One dataset and one net: each more is one more training process.
  bench('device_table.py', '--models=custom_cnn', '--datasets=mnist', '--steps=3',
        '--batch_size=16', '--mnist_dir=%s' % tiny_mnist_dir, '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'device_table.csv')
  # custom_cnn keeps its own 32x32 and takes MNIST's one channel.
  assert [(r['dataset'], r['model'], r['image size']) for r in rows] == [
      ('mnist', 'custom_cnn', '32')]
  assert rows[0]['device'].startswith('CPU: ')
  stats = cli_runs.read_json(tmp_path / 'train' / '-1-mnist-custom_cnn-float32' /
                             'train_stats.json')
  per_step = stats['steady_sec_per_step']
  assert float(rows[0]['s/step']) == pytest.approx(per_step, rel=1e-3)
  # s/epoch is s/step times the 64 tiny train images / batch 16 = 4 steps.
  assert float(rows[0]['s/epoch']) == pytest.approx(4 * per_step, rel=1e-3)


def test_distill_bench_tabulates_teacher_baseline_and_distilled(tmp_path,
                                                                tiny_cifar_dir):
  bench('distill_bench.py', '--teacher_steps=2', '--steps=2', *TINY_TRAIN,
        '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'distill_table.csv')
  assert [(r['model'], r['role']) for r in rows] == [
      ('custom_cnn_wide', 'teacher'), ('custom_cnn', 'baseline'),
      ('custom_cnn', 'distilled')]
  teacher, baseline, distilled = rows
  assert float(teacher['parameters (M)']) > float(baseline['parameters (M)'])
  assert baseline['parameters (M)'] == distilled['parameters (M)']
  assert float(teacher['TFLite file (MB)']) > float(baseline['TFLite file (MB)']) > 1
  with open(tmp_path / 'train' / 'distilled' / 'run_config.json') as f:
    assert '"teacher_model_name": "custom_cnn_wide"' in f.read()


# ---------------------------------------------------------------- speed benchmarks

def test_conv_grad_bench_times_every_formulation_and_names_the_pick():
  out = bench('conv_grad_bench.py', '--net=custom_cnn', '--batch=2',
              '--image_size=8', '--max_shapes=2', '--onednn=both', '--cpu=avx2')
  assert out.startswith('\n# oneDNN off\nmachine: ')
  assert 'oneDNN off' in out.split('# oneDNN on')[0].splitlines()[2]
  assert 'oneDNN on (ONEDNN_MAX_CPU_ISA=AVX2)' in out.split('# oneDNN on')[1]
  rows = [l for l in out.splitlines() if ' dx ' in l or ' dw ' in l]
  assert len(rows) == 8  # Eigen and oneDNN: two shapes, two gradients each
  for row in rows:
    assert 'tf ' in row and ('fwd ' in row or 'mm ' in row)
    assert row.rstrip().endswith('x)')  # "<pick> (<speed-up>x)"
  assert out.count('conv gradients per step: tf ') == 2
  assert 'oneDNN+auto over Eigen tf: ' in out.splitlines()[-1]
  # The five small-map 3x3 layers, without a net.
  out = bench('conv_grad_bench.py', '--net=small_maps', '--batch=1')
  assert [l.split()[1] for l in out.splitlines() if ' dx ' in l] == [
      'x1x1x1x512', 'x1x2x2x256', 'x1x4x4x256', 'x1x8x8x128', 'x1x32x32x64']


def test_train_bench_runs_the_cli_and_fit_on_the_same_data(tmp_path, tiny_cifar_dir):
  out = bench('train_bench.py', '--nets=custom_cnn', '--batch=4', '--steps=2',
              '--repeats=1', '--methods=ours_tf,ours_auto,fit,fit_onednn',
              '--cpu=avx2', '--dataset_dir=%s' % tiny_cifar_dir,
              '--work_dir=%s' % tmp_path, env={'TF_ENABLE_ONEDNN_OPTS': None})
  assert out.startswith('machine: ')
  rows = {l.split()[1]: l for l in out.splitlines() if l.startswith('custom_cnn ')}
  assert set(rows) == {'ours_tf', 'ours_auto', 'fit', 'fit_onednn'}
  assert ' 1.00x' in rows['fit'] and float(rows['ours_tf'].split()[2]) > 0
  # As on an AVX2-only CPU: TF leaves oneDNN off for fit, ours switches it on.
  assert {m: r.split()[-1] for m, r in rows.items()} == {
      'ours_tf': 'on', 'ours_auto': 'on', 'fit': 'off', 'fit_onednn': 'on'}
  # ours ran train_image_classifier.py with each --conv_gradients mode.
  for mode in ('tf', 'auto'):
    config = json.load(open(tmp_path / 'train' / ('custom_cnn-ours_%s-0' % mode) /
                            'run_config.json'))
    assert config['conv_gradients'] == mode and config['batch_size'] == 4
  assert os.listdir(tmp_path / 'cache' / 'tuning')  # auto measured and cached


@pytest.mark.parametrize('net', ['resnet_v1_50_cifar', 'inception_v3@107'])
def test_train_bench_tf_slim_worker_trains_slims_net(tiny_cifar_dir, net):
  # Our small-input ResNet root, and a package net with an auxiliary head.
  out = bench('train_bench.py', '--worker=tf_slim', '--net=%s' % net,
              '--batch=2', '--steps=1', '--dataset_dir=%s' % tiny_cifar_dir)
  result = json.loads(out.split('RESULT ')[-1])
  assert result['images_per_sec'] > 0 and result['time_to_first_step'] > 0


def test_train_bench_net_at_an_image_size(tmp_path, tiny_cifar_dir):
  """NAME@SIZE trains every method at that size: ours through --train_image_size,
  TF-Slim with its stock ResNet-50 (the small-map case); fit builds the same net as
  ours (test above). Ours starts from scratch even in a reused --work_dir."""
  stale = tmp_path / 'train' / 'resnet_v1_50@32-ours_tf-0'
  stale.mkdir(parents=True)
  (stale / 'train_stats.json').write_text('{"steady_images_per_sec": 1e9}')
  (stale / 'left_by_an_earlier_run').write_text('')
  out = bench('train_bench.py', '--nets=resnet_v1_50@32', '--batch=2', '--steps=1',
              '--repeats=1', '--methods=ours_tf,tf_slim',
              '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  rows = [l.split()[1] for l in out.splitlines() if l.startswith('resnet_v1_50@32 ')]
  assert rows == ['ours_tf', 'tf_slim']
  config = json.load(open(tmp_path / 'train' / 'resnet_v1_50@32-ours_tf-0' /
                          'run_config.json'))
  assert config['model_name'] == 'resnet_v1_50' and config['train_image_size'] == 32
  stats = json.load(open(stale / 'train_stats.json'))
  assert stats['start_step'] == 0 and stats['end_step'] == 2
  assert not (stale / 'left_by_an_earlier_run').exists()
  with pytest.raises(AssertionError, match='NAME@IMAGE_SIZE'):
    bench('train_bench.py', '--nets=custom_cnn@big', '--work_dir=%s' % tmp_path,
          '--dataset_dir=%s' % tiny_cifar_dir)
