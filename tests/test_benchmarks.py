"""The table benchmarks end to end at a tiny budget: they drive the real scripts and
write markdown and CSV tables with every row they promise."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import csv
import subprocess
import sys

from benchmarks import cli_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(name, *args):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'benchmarks', name)] + list(args),
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  return result.stdout


def read_csv(path):
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def test_thesis_table_trains_and_evaluates_each_recipe(tmp_path, tiny_cifar_dir):
  out = bench('thesis_table.py', '--models=mobilenet_v1', '--steps=2',
              '--image_size=32', '--fast_steps=2', '--max_num_batches=1',
              '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'thesis_table.csv')
  assert [(r['model'], r['recipe']) for r in rows] == [
      ('mobilenet_v1', 'thesis'), ('mobilenet_v1_cifar', 'cifar_fast')]
  thesis, fast = rows
  assert thesis['net file'] == fast['net file'] == 'nets/mobilenet_v1.py'
  assert (thesis['steps'], thesis['batch'], thesis['image size']) == ('2', '50', '32')
  assert (fast['steps'], fast['batch'], fast['image size']) == ('2', '256', '32')
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
  decays = {tag: cli_runs.read_json(tmp_path / 'train' / tag / 'run_config.json')[
      'batch_norm_decay'] for tag in ('mobilenet_v1-thesis',
                                      'mobilenet_v1_cifar-cifar_fast')}
  assert decays == {'mobilenet_v1-thesis': 0.5, 'mobilenet_v1_cifar-cifar_fast': 0.9}


def test_time_to_accuracy_evaluates_every_checkpoint(tmp_path, tiny_cifar_dir):
  out = bench('time_to_accuracy.py', '--steps=4', '--save_every=2',
              '--max_num_batches=1', '--targets=5,101', '--target_minutes=30,90',
              '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'time_to_accuracy.csv')
  assert [r['step'] for r in rows] == ['2', '4']
  assert float(rows[0]['training minutes']) <= float(rows[1]['training minutes'])
  assert '>= 101 % top-1: not reached' in out
  assert 'GFLOP/s achieved' in out and 'multiply-adds per image' in out


def test_device_table_times_each_dataset_on_the_cpu(tmp_path, tiny_cifar_dir,
                                                    tiny_mnist_dir):
  bench('device_table.py', '--models=custom_cnn', '--steps=3',
        '--mnist_dir=%s' % tiny_mnist_dir, '--cifar10_dir=%s' % tiny_cifar_dir,
        '--work_dir=%s' % tmp_path)
  rows = read_csv(tmp_path / 'results' / 'device_table.csv')
  assert [(r['dataset'], r['model'], r['image size']) for r in rows] == [
      ('mnist', 'custom_cnn', '32'), ('cifar10', 'custom_cnn', '32')]
  for row in rows:
    per_step = float(row['s/step'])
    assert per_step > 0 and row['device'].startswith('CPU: ')
    # s/epoch is s/step times the 64 tiny train images / batch 50 = 2 steps.
    assert abs(float(row['s/epoch']) - 2 * per_step) <= 0.5 + 1e-9


def test_distill_bench_tabulates_teacher_baseline_and_distilled(tmp_path,
                                                                tiny_cifar_dir):
  bench('distill_bench.py', '--teacher_steps=2', '--steps=2', '--max_num_batches=1',
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
