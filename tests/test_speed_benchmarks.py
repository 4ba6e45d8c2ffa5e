"""The training-speed benchmarks at a tiny size: they run and print their tables."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(name, *args):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'benchmarks', name)] + list(args),
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  return result.stdout


def test_conv_grad_bench_times_every_formulation_and_names_the_pick():
  out = bench('conv_grad_bench.py', '--net=custom_cnn', '--batch=2',
              '--image_size=8', '--max_shapes=2')
  assert out.startswith('machine: ')
  rows = [l for l in out.splitlines() if ' dx ' in l or ' dw ' in l]
  assert len(rows) == 4  # two shapes, two gradients each
  for row in rows:
    assert 'tf ' in row and ('fwd ' in row or 'mm ' in row)
    assert row.rstrip().endswith('x)')  # "<pick> (<speed-up>x)"
  assert 'conv gradients per step: tf ' in out


def test_train_bench_runs_the_cli_and_fit_on_the_same_data(tmp_path, tiny_cifar_dir):
  out = bench('train_bench.py', '--nets=custom_cnn', '--batch=4', '--steps=2',
              '--repeats=1', '--methods=ours_tf,ours_auto,fit',
              '--dataset_dir=%s' % tiny_cifar_dir, '--work_dir=%s' % tmp_path)
  assert out.startswith('machine: ')
  rows = {l.split()[1]: l for l in out.splitlines() if l.startswith('custom_cnn ')}
  assert set(rows) == {'ours_tf', 'ours_auto', 'fit'}
  assert ' 1.00x' in rows['fit'] and float(rows['ours_tf'].split()[2]) > 0
  # ours ran train_image_classifier.py with each --conv_gradients mode.
  for mode in ('tf', 'auto'):
    config = json.load(open(tmp_path / 'train' / ('custom_cnn-ours_%s-0' % mode) /
                            'run_config.json'))
    assert config['conv_gradients'] == mode and config['batch_size'] == 4
  assert os.listdir(tmp_path / 'conv_grad')  # auto measured and cached


def test_train_bench_tf_slim_worker_trains_slims_resnet(tiny_cifar_dir):
  out = bench('train_bench.py', '--worker=tf_slim', '--net=resnet_v1_50_cifar',
              '--batch=2', '--steps=1', '--dataset_dir=%s' % tiny_cifar_dir)
  result = json.loads(out.split('RESULT ')[-1])
  assert result['images_per_sec'] > 0 and result['time_to_first_step'] > 0
