"""TF-Slim's example scripts, shipped as scripts/slim/*.sh, run end to end.

Each test runs the shipped copy with bash, its paths and step counts from the
environment, on tiny converted datasets; the fine-tune scripts start from a TF-Slim
checkpoint written here (TF-Slim's original net with random weights, V1 format as
published, so the scripts' download step sees it and skips the download).
What each checks: the script's flags reach training as TF-Slim's originals set them
(run_config.json), the frozen body keeps the checkpoint's values, the second stage
starts from the first stage's train dir, and each evaluation, given --eval_dir equal
to the train dir, writes to <train dir>/eval. Inception V3's runs end to end; the
other fine-tune scripts are checked to be its command lines with their net, heads
and TF-Slim's flag values.

Sizes shrunk from the originals, via the scripts' environment: the step counts;
for the fine-tune scripts --batch_size 32 -> 2 and --train_image_size (unset, the
net's 224 or 299) -> the smallest size the net takes. cifarnet and lenet keep their
batch and image sizes.
"""

import collections
import glob
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from datasets import convert
from nets import scopes
from slimkit import checkpoints
from slimkit import run_config as run_config_lib
import slim_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, 'scripts', 'slim')
FLOWERS_VALIDATION = 5
REDIRECT = ('--eval_dir=%s is the train dir of --checkpoint_path, whose checkpoints '
            'stay untouched: writing the evaluation to %s')

# TF-Slim's values of the flags the scripts set (research/slim/scripts).
SLIM_TRAIN_FROM_SCRATCH = {
    'train_cifarnet_on_cifar10.sh': {
        'model_name': 'cifarnet', 'preprocessing_name': 'cifarnet',
        'dataset_name': 'cifar10', 'dataset_split_name': 'train', 'batch_size': 128,
        'save_interval_secs': 120, 'save_summaries_secs': 120, 'log_every_n_steps': 100,
        'optimizer': 'sgd', 'learning_rate': 0.1, 'learning_rate_decay_factor': 0.1,
        'num_epochs_per_decay': 200, 'weight_decay': 0.004,
        'learning_rate_decay_type': 'exponential'},
    'train_lenet_on_mnist.sh': {
        'model_name': 'lenet', 'preprocessing_name': 'lenet', 'dataset_name': 'mnist',
        'dataset_split_name': 'train', 'batch_size': 50, 'learning_rate': 0.01,
        'save_interval_secs': 60, 'save_summaries_secs': 60, 'log_every_n_steps': 100,
        'optimizer': 'sgd', 'learning_rate_decay_type': 'fixed', 'weight_decay': 0},
}

Finetune = collections.namedtuple('Finetune', [
    'model_name', 'scope', 'head', 'image_size', 'reference_size', 'num_classes',
    'decay_type', 'log_every', 'learning_rate_all'])

# The head scopes, TF-Slim's flags that differ between the scripts, and the sizes
# used here (image_size: the smallest the net takes; reference_size: what TF-Slim's
# graph of the net takes, to write its checkpoint).
FINETUNES = {
    'finetune_inception_v1_on_flowers.sh': Finetune(
        'inception_v1', 'InceptionV1', ['InceptionV1/Logits'], 32, 224, 1001,
        'exponential', (100, 100), 0.001),
    'finetune_resnet_v1_50_on_flowers.sh': Finetune(
        'resnet_v1_50', 'resnet_v1_50', ['resnet_v1_50/logits'], 32, 64, 1000,
        'exponential', (100, 100), 0.001),
    # 107: the auxiliary head's 5x5 pool needs a 5x5 map.
    'finetune_inception_v3_on_flowers.sh': Finetune(
        'inception_v3', 'InceptionV3', ['InceptionV3/Logits', 'InceptionV3/AuxLogits'],
        107, 107, 1001, 'fixed', (100, 10), 0.0001),
    'finetune_inception_v4_on_flowers.sh': Finetune(
        'inception_v4', 'InceptionV4', ['InceptionV4/Logits', 'InceptionV4/AuxLogits'],
        107, 107, 1001, 'fixed', (100, 10), 0.0001),
    'finetune_inception_resnet_v2_on_flowers.sh': Finetune(
        'inception_resnet_v2', 'InceptionResnetV2',
        ['InceptionResnetV2/Logits', 'InceptionResnetV2/AuxLogits'], 107, 107, 1001,
        'fixed', (10, 10), 0.0001),
}


def run_script(name, cwd, **env):
  environ = dict(os.environ, PYTHON=sys.executable,
                 **{k: str(v) for k, v in env.items()})
  result = subprocess.run(['bash', os.path.join(SCRIPTS, name)], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=1800)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
  return result


def eval_result(train_dir, step):
  """The eval_<step>.json the script's evaluation of train_dir wrote, beside it."""
  assert not glob.glob(os.path.join(train_dir, 'eval_*.json'))
  with open(os.path.join(train_dir, 'eval', 'eval_%d.json' % step)) as f:
    return json.load(f)


def check_flags(train_dir, expected):
  recorded = run_config_lib.read(train_dir)
  assert {k: recorded[k] for k in expected} == expected
  return recorded


@pytest.fixture(scope='module')
def flowers_dir(tmp_path_factory, flowers_source):
  """Flowers converted: 25 train and 5 validation JPEGs of varying sizes."""
  dataset_dir = str(tmp_path_factory.mktemp('slim_scripts') / 'flowers')
  convert.run('flowers', dataset_dir, source=flowers_source.path,
              validation_size=FLOWERS_VALIDATION, num_workers=1, progress=False)
  return dataset_dir


@pytest.mark.slow
@pytest.mark.parametrize('script, dataset', [
    ('train_cifarnet_on_cifar10.sh', 'tiny_cifar_dir'),
    ('train_lenet_on_mnist.sh', 'tiny_mnist_dir'),
])
def test_train_from_scratch_script(script, dataset, request, tmp_path):
  dataset_dir = request.getfixturevalue(dataset)
  train_dir = str(tmp_path / 'train')
  result = run_script(script, tmp_path, TRAIN_DIR=train_dir, DATASET_DIR=dataset_dir,
                      MAX_STEPS=3)
  assert 'already holds the converted dataset' in result.stdout
  check_flags(train_dir, dict(SLIM_TRAIN_FROM_SCRATCH[script], max_number_of_steps=3,
                              dataset_dir=dataset_dir, train_dir=train_dir))
  assert checkpoints.step_of(checkpoints.latest(train_dir)) == 3
  evaluated = eval_result(train_dir, 3)
  assert evaluated['checkpoint_path'] == os.path.join(train_dir, 'ckpt-3')
  assert (evaluated['dataset_split_name'], evaluated['num_samples']) == ('test', 32)
  assert REDIRECT % (train_dir, os.path.join(train_dir, 'eval')) in result.stderr


def _expand(text, values):
  """Bash's ${NAME} and ${NAME:+text}, as the scripts use them."""
  text = re.sub(r'\$\{(\w+)\}', lambda m: values[m.group(1)], text)
  return re.sub(r'\$\{(\w+):\+([^{}]*)\}',
                lambda m: m.group(2) if values[m.group(1)] else '', text)


def script_commands(name):
  """[[script, flags...]] a shipped script runs with its default environment."""
  with open(os.path.join(SCRIPTS, name)) as f:
    lines = f.read().replace('\\\n', ' ').splitlines()
  values, commands = {'SLIM_DIR': '.'}, []
  for line in lines:
    assigned = (re.match(r'^(\w+)=\$\{\1:-(.*)\}$', line) or
                re.match(r'^(\w+)=([^$\s]*)$', line))
    if assigned:
      values[assigned.group(1)] = _expand(assigned.group(2), values)
    elif line.startswith('"${PYTHON}"'):
      words = shlex.split(_expand(line, values))
      commands.append([os.path.basename(words[1])] + words[2:])
  return commands


def documented_commands():
  """{script: [[script, flags...]]} of docs/training.md's example scripts section."""
  with open(os.path.join(ROOT, 'docs', 'training.md')) as f:
    blocks = re.findall(r'```bash\n# scripts/slim/(\S+)\n(.*?)```', f.read(), re.S)
  return {name: [[os.path.basename(w[1])] + w[2:] for w in
                 map(shlex.split, body.replace('\\\n', ' ').splitlines()) if w]
          for name, body in blocks}


def test_docs_show_the_command_lines_the_scripts_run():
  documented = documented_commands()
  shipped = sorted(n for n in os.listdir(SCRIPTS) if n.endswith('.sh'))
  assert sorted(documented) == shipped == sorted([*SLIM_TRAIN_FROM_SCRATCH, *FINETUNES])
  for name in shipped:
    commands = script_commands(name)
    assert [c[0] for c in commands] == (
        ['download_and_convert_data.py'] + ['train_image_classifier.py',
                                            'eval_image_classifier.py'] *
        (2 if name in FINETUNES else 1))
    assert documented[name] == commands, name


def _slim_name(scope, path):
  """TF-Slim's name of a Keras variable path: kernel -> weights, bias -> biases."""
  layer, leaf = path.rsplit('/', 1)
  return '%s/%s' % (scopes.to_slim(scope, layer),
                    {'kernel': 'weights', 'bias': 'biases'}.get(leaf, leaf))


def _in_head(spec, path):
  return any(scopes.in_scope(path, scopes.to_keras(spec.scope, s)) for s in spec.head)


# The other fine-tune scripts are Inception V3's with another net, its head scopes
# and TF-Slim's values of the flags FINETUNES lists (checked below); the nets'
# fine-tuning from TF-Slim checkpoints is tested in their own test files.
RUN_END_TO_END = ('finetune_inception_v3_on_flowers.sh',)
RAN = RUN_END_TO_END[0]


# TF-Slim's default MAX_STEPS, MAX_STEPS_ALL where they are not (1000, 500).
SLIM_STEPS = {'finetune_inception_v1_on_flowers.sh': (3000, 1000),
              'finetune_resnet_v1_50_on_flowers.sh': (3000, 1000)}


def _as_script(commands, script):
  """RAN's command lines with script's net, heads and TF-Slim's values of the flags
  that differ: [convert, train, eval, train all layers, eval]. An 'exponential'
  decay is TF-Slim's default, which those scripts leave unset."""
  ran, spec = FINETUNES[RAN], FINETUNES[script]
  steps = [SLIM_STEPS.get(RAN, (1000, 500)), SLIM_STEPS.get(script, (1000, 500))]
  out = []
  for index, command in enumerate(commands):
    flags = {}  # whole flags of RAN's command -> script's
    stage = {1: 0, 3: 1}.get(index)
    if stage is not None:
      flags = {'--log_every_n_steps=%d' % ran.log_every[stage]:
                   '--log_every_n_steps=%d' % spec.log_every[stage],
               '--max_number_of_steps=%d' % steps[0][stage]:
                   '--max_number_of_steps=%d' % steps[1][stage],
               '--learning_rate_decay_type=' + ran.decay_type:
                   '--learning_rate_decay_type=' + spec.decay_type}
    if index == 3:
      flags['--learning_rate=%g' % ran.learning_rate_all] = (
          '--learning_rate=%g' % spec.learning_rate_all)
    words = [flags.get(w, w).replace(','.join(ran.head), ','.join(spec.head))
             .replace(ran.model_name, spec.model_name) for w in command]
    out.append([w for w in words if w != '--learning_rate_decay_type=exponential'])
  return out


@pytest.mark.parametrize('script', sorted(set(FINETUNES) - {RAN}))
def test_other_finetune_scripts_are_inception_v3s_with_their_net(script):
  def flag_sets(commands):  # absl reads flags in any order
    return [(c[0], sorted(c[1:])) for c in commands]
  assert flag_sets(script_commands(script)) == flag_sets(
      _as_script(script_commands(RAN), script))
  assert script_commands(RAN) == _as_script(script_commands(RAN), RAN)


@pytest.mark.slow
@pytest.mark.parametrize('script', RUN_END_TO_END)
def test_finetune_script(script, flowers_dir, tmp_path):
  spec = FINETUNES[script]
  pretrained_dir = tmp_path / 'checkpoints'
  os.makedirs(pretrained_dir)
  pretrained = str(pretrained_dir / ('%s.ckpt' % spec.model_name))
  slim_reference.save_random_checkpoint(spec.model_name, pretrained,
                                        spec.reference_size, spec.num_classes,
                                        batch=1, v1_format=True)
  train_dir = str(tmp_path / 'flowers-models' / spec.model_name)
  all_dir = os.path.join(train_dir, 'all')
  result = run_script(script, tmp_path, PRETRAINED_CHECKPOINT_DIR=pretrained_dir,
                      TRAIN_DIR=train_dir, DATASET_DIR=flowers_dir, MAX_STEPS=2,
                      MAX_STEPS_ALL=1, BATCH_SIZE=2, IMAGE_SIZE=spec.image_size)
  assert not glob.glob(str(tmp_path / '*.tar.gz'))  # the download was skipped
  head = ','.join(spec.head)
  common = {'model_name': spec.model_name, 'dataset_name': 'flowers',
            'dataset_split_name': 'train', 'dataset_dir': flowers_dir,
            'batch_size': 2, 'train_image_size': spec.image_size,
            'save_interval_secs': 60, 'save_summaries_secs': 60, 'optimizer': 'rmsprop',
            'weight_decay': 0.00004, 'learning_rate_decay_type': spec.decay_type}
  check_flags(train_dir, dict(
      common, train_dir=train_dir, checkpoint_path=pretrained,
      checkpoint_exclude_scopes=head, trainable_scopes=head, max_number_of_steps=2,
      learning_rate=0.01, log_every_n_steps=spec.log_every[0]))
  check_flags(all_dir, dict(
      common, train_dir=all_dir, checkpoint_path=train_dir,
      checkpoint_exclude_scopes=None, trainable_scopes=None, max_number_of_steps=1,
      learning_rate=spec.learning_rate_all, log_every_n_steps=spec.log_every[1]))

  # Stage 1 trains the new head only: the body keeps TF-Slim's values, batch norm
  # statistics included.
  slim = tf.train.load_checkpoint(pretrained)
  stage1 = checkpoints.read_variables(checkpoints.latest(train_dir))
  body = [p for p in stage1 if not _in_head(spec, p)]
  assert len(body) > 0.9 * len(stage1)
  for path in body:
    np.testing.assert_array_equal(stage1[path], slim.get_tensor(_slim_name(spec.scope,
                                                                           path)),
                                  err_msg=path)
  # The head starts fresh: flowers' 5 classes, the auxiliary head's convs too.
  heads = [p for p in stage1 if _in_head(spec, p) and p.endswith('/kernel')]
  assert any(stage1[p].shape[-1] == 5 for p in heads)
  for path in heads:
    theirs = slim.get_tensor(_slim_name(spec.scope, path))
    assert theirs.shape != stage1[path].shape or not np.allclose(theirs, stage1[path])
  # Stage 2 starts from stage 1's train dir and trains every layer.
  stage2 = checkpoints.read_variables(checkpoints.latest(all_dir))
  assert set(stage2) == set(stage1)
  kernels = [p for p in stage2 if p.endswith('/kernel')]
  assert all(not np.array_equal(stage2[p], stage1[p]) for p in kernels)
  for path in heads:  # one small step from stage 1's head, not a fresh one
    step = np.abs(stage2[path] - stage1[path]).max()
    assert 0 < step < 0.1 * np.abs(stage1[path]).max(), path

  for directory, step in ((train_dir, 2), (all_dir, 1)):
    evaluated = eval_result(directory, step)
    assert evaluated['checkpoint_path'] == os.path.join(directory, 'ckpt-%d' % step)
    assert evaluated['num_samples'] == FLOWERS_VALIDATION
    assert evaluated['image_size'] == spec.image_size
    assert REDIRECT % (directory, os.path.join(directory, 'eval')) in result.stderr
