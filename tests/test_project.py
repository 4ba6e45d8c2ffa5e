"""Project-level promises: the README's commands, CI, flags kept from TF-Slim."""

import os
import re
import subprocess
import sys

from absl import flags
import pytest

from slimkit import flags as slim_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
  with open(os.path.join(ROOT, name)) as f:
    return f.read()


def test_ci_runs_the_readme_test_command():
  ci_command = [l for l in _read('.ci/run').splitlines()
                if l.strip() and not l.startswith('#') and not l.startswith(('set ', 'cd '))]
  assert len(ci_command) == 1
  assert ci_command[0] in _read('README.md')


def test_readme_has_exactly_two_setup_commands_and_the_thesis_line():
  readme = _read('README.md')
  setup = readme.split('## Set-up', 1)[1].split('\n## ', 1)[0]
  assert len(re.findall(r'^```(?:bash|sh)$', setup, re.M)) == 2
  assert 'bash scripts/quickstart.sh' in setup
  assert ('--model_name=mobilenet_v1 --preprocessing_name=mobilenet_v1 '
          '--max_number_of_steps=60000 --batch_size=50') in ' '.join(
              readme.replace('\\\n', ' ').split())


# TF-Slim's train_image_classifier.py flags and defaults (tf_slim era, 51 flags).
SLIM_TRAIN_DEFAULTS = {
    'master': '', 'train_dir': '/tmp/tfmodel/', 'warmup_epochs': 0, 'num_clones': 1,
    'clone_on_cpu': False, 'worker_replicas': 1, 'num_ps_tasks': 0, 'num_readers': 4,
    'num_preprocessing_threads': 4, 'log_every_n_steps': 10, 'save_summaries_secs': 600,
    'save_interval_secs': 600, 'task': 0, 'weight_decay': 0.00004, 'optimizer': 'rmsprop',
    'adadelta_rho': 0.95, 'adagrad_initial_accumulator_value': 0.1, 'adam_beta1': 0.9,
    'adam_beta2': 0.999, 'opt_epsilon': 1.0, 'ftrl_learning_rate_power': -0.5,
    'ftrl_initial_accumulator_value': 0.1, 'ftrl_l1': 0.0, 'ftrl_l2': 0.0, 'momentum': 0.9,
    'rmsprop_momentum': 0.9, 'rmsprop_decay': 0.9, 'quantize_delay': -1,
    'learning_rate_decay_type': 'exponential', 'learning_rate': 0.01,
    'end_learning_rate': 0.0001, 'label_smoothing': 0.0, 'learning_rate_decay_factor': 0.94,
    'num_epochs_per_decay': 2.0, 'sync_replicas': False, 'replicas_to_aggregate': 1,
    'moving_average_decay': None, 'dataset_name': 'imagenet', 'dataset_split_name': 'train',
    'dataset_dir': None, 'labels_offset': 0, 'model_name': 'inception_v3',
    'preprocessing_name': None, 'batch_size': 32, 'train_image_size': None,
    'max_number_of_steps': None, 'use_grayscale': False, 'checkpoint_path': None,
    'checkpoint_exclude_scopes': None, 'trainable_scopes': None,
    'ignore_missing_vars': False,
}

SLIM_EVAL_DEFAULTS = {
    'batch_size': 100, 'max_num_batches': None, 'master': '',
    'checkpoint_path': '/tmp/tfmodel/',
    # eval_dir: TF-Slim's /tmp/tfmodel/ mixed every model's results; unset, it is
    # derived from --checkpoint_path (test_eval.py).
    'eval_dir': None,
    'num_preprocessing_threads': 4, 'dataset_name': 'imagenet', 'dataset_split_name': 'test',
    'dataset_dir': None, 'labels_offset': 0, 'model_name': 'inception_v3',
    'preprocessing_name': None, 'moving_average_decay': None, 'eval_image_size': None,
    'quantize': False, 'use_grayscale': False,
}


def _defaults(definer):
  values = slim_flags.define_into(flags.FlagValues(), definer)
  return {name: values[name].default for name in values}


def test_every_slim_train_flag_keeps_its_name_and_default():
  defaults = _defaults(slim_flags.define_train_flags)
  assert len(SLIM_TRAIN_DEFAULTS) == 51
  for name, default in SLIM_TRAIN_DEFAULTS.items():
    assert name in defaults, name
    assert defaults[name] == default, (name, defaults[name], default)


def test_config_holds_parsed_values_and_knows_what_was_given():
  values = slim_flags.define_into(flags.FlagValues(), slim_flags.define_train_flags)
  values(['train', '--optimizer=sgd', '--weight_decay=0', '--batch_size=50'])
  config = slim_flags.config(values)
  assert (config['optimizer'], config['weight_decay'], config['batch_size']) == ('sgd', 0, 50)
  assert config['learning_rate'] == 0.01
  assert slim_flags.explicitly_set(values) == {'optimizer', 'weight_decay', 'batch_size'}


def test_every_slim_eval_flag_keeps_its_name_and_default():
  defaults = _defaults(slim_flags.define_eval_flags)
  for name, default in SLIM_EVAL_DEFAULTS.items():
    assert name in defaults, name
    assert defaults[name] == default, (name, defaults[name], default)


@pytest.mark.parametrize('script, flag', [
    ('train_image_classifier.py', '--max_number_of_steps=-1'),
    ('train_image_classifier.py', '--save_interval_steps=0'),
    ('eval_image_classifier.py', '--labels_offset=-1'),
    ('export_inference_graph.py', '--image_size=0'),
])
def test_a_flag_out_of_range_is_one_line_naming_it(script, flag):
  result = subprocess.run([sys.executable, os.path.join(ROOT, script), flag],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
  # (TensorFlow's C++ start-up lines come before absl's logging is set up.)
  lines = [l for l in result.stderr.splitlines() if ': error: ' in l]
  assert result.returncode == 1
  assert len(lines) == 1 and lines[0].startswith(script + ': error: '), result.stderr
  assert flag.split('=')[0] in lines[0]
  assert 'Traceback' not in result.stderr and 'helpshort' not in result.stderr


def test_readme_is_for_users_and_the_project_cites_no_tracker():
  readme = _read('README.md')
  assert len(readme.splitlines()) < 250
  # Figures live in docs/benchmarks.md with their machine and command.
  assert 'docs/benchmarks.md' in readme
  tracked = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True,
                           text=True).stdout.split()
  cited = []
  for name in tracked:
    if name.endswith(('.py', '.md', '.sh', '.txt', '.ini')) and os.path.isfile(
        os.path.join(ROOT, name)):
      for number, line in enumerate(_read(name).splitlines(), 1):
        if re.search(r'\bissues?[ _-]?#?\d+\b|\bissue\d+', line, re.I):
          cited.append('%s:%d' % (name, number))
  assert not cited, 'issue-tracker references: %s' % ', '.join(cited)
