"""Transfer learning end to end with the real scripts: train on CIFAR-10, fine-tune
the new head on flowers with the body frozen, then unfreeze everything, then
evaluate (README, "Fine-tune on your own data")."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import json
import subprocess
import sys

import numpy as np
import pytest

from slimkit import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = ('--model_name=custom_cnn', '--batch_size=8', '--optimizer=momentum',
          '--learning_rate=0.05', '--learning_rate_decay_type=fixed',
          '--random_seed=1', '--num_readers=1', '--log_every_n_steps=1')


def run(script, *args):
  result = subprocess.run([sys.executable, os.path.join(ROOT, script)] + list(args),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  return result


def weights(train_dir):
  return checkpoints.read_variables(checkpoints.latest(str(train_dir)))


@pytest.fixture(scope='module')
def stages(tmp_path_factory, tiny_cifar_dir, flowers_source):
  """The three training stages' dirs and the flowers dataset dir."""
  base = tmp_path_factory.mktemp('transfer')
  flowers = base / 'flowers'
  run('download_and_convert_data.py', '--dataset_name=flowers',
      '--source=%s' % flowers_source.path, '--dataset_dir=%s' % flowers,
      '--validation_size=10', '--num_workers=1')
  src, head, full = base / 'cifar10', base / 'head', base / 'full'
  run('train_image_classifier.py', '--train_dir=%s' % src, '--dataset_name=cifar10',
      '--dataset_dir=%s' % tiny_cifar_dir, '--max_number_of_steps=2', *COMMON)
  run('train_image_classifier.py', '--train_dir=%s' % head, '--dataset_name=flowers',
      '--dataset_dir=%s' % flowers, '--checkpoint_path=%s' % src,
      '--checkpoint_exclude_scopes=CustomCNN/Logits',
      '--trainable_scopes=CustomCNN/Logits', '--max_number_of_steps=3', *COMMON)
  run('train_image_classifier.py', '--train_dir=%s' % full, '--dataset_name=flowers',
      '--dataset_dir=%s' % flowers, '--checkpoint_path=%s' % head,
      '--max_number_of_steps=2', *COMMON)
  return {'src': src, 'head': head, 'full': full, 'flowers': flowers, 'base': base}


# One test: its three stages run once (a module fixture is set up again on each
# worker that takes one of its tests).
@pytest.mark.slow
def test_head_then_all_layers_then_evaluation(stages):
  _frozen_body_keeps_every_value_and_the_head_is_new(stages)
  _unfrozen_stage_starts_from_the_head_run_and_trains_the_body(stages)
  _fine_tuned_net_evaluates_on_flowers_into_its_own_dir(stages)


def _frozen_body_keeps_every_value_and_the_head_is_new(stages):
  src, head = weights(stages['src']), weights(stages['head'])
  assert set(src) == set(head)
  body = [p for p in src if not p.startswith('Logits')]
  assert any('moving_mean' in p for p in body)  # batch norm statistics are frozen too
  for path in body:
    np.testing.assert_array_equal(head[path], src[path], err_msg=path)
  assert src['Logits/kernel'].shape == (256, 10)
  assert head['Logits/kernel'].shape == (256, 5)  # fresh for flowers' 5 classes
  assert not np.allclose(head['Logits/kernel'], src['Logits/kernel'][:, :5])


def _unfrozen_stage_starts_from_the_head_run_and_trains_the_body(stages):
  head, full = weights(stages['head']), weights(stages['full'])
  changed = [p for p in head if p.endswith('kernel') and
             not np.allclose(head[p], full[p])]
  body_kernels = [p for p in head if p.endswith('kernel') and not p.startswith('Logits')]
  assert set(body_kernels) <= set(changed)
  # Two small steps from the head run's weights, not a fresh start.
  delta = np.abs(full['Logits/kernel'] - head['Logits/kernel']).max()
  assert 0 < delta < np.abs(head['Logits/kernel']).max()


def _fine_tuned_net_evaluates_on_flowers_into_its_own_dir(stages):
  eval_dir = stages['base'] / 'eval'
  run('eval_image_classifier.py', '--checkpoint_path=%s' % stages['full'],
      '--eval_dir=%s' % eval_dir, '--dataset_name=flowers',
      '--dataset_split_name=validation', '--dataset_dir=%s' % stages['flowers'],
      '--model_name=custom_cnn')
  with open(eval_dir / 'eval_2.json') as f:
    result = json.load(f)
  assert result['num_samples'] == 10
  assert result['class_names'] == ['daisy', 'dandelion', 'roses', 'sunflowers',
                                   'tulips']
  assert 0.0 <= result['metrics']['accuracy'] <= 1.0
  assert not [f for f in os.listdir(stages['full']) if f.startswith('eval_')]
