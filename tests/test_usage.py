"""--help of the scripts: their own flags, grouped, printed without TensorFlow."""

import ast
import os
import subprocess
import sys

from absl import flags

from slimkit import flags as slim_flags
from slimkit import usage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs a script with the given arguments in a fresh interpreter and reports, after
# its output, its exit code and whether TensorFlow was imported.
_RUN = '''
import runpy, sys
sys.argv = sys.argv[1:]
try:
  runpy.run_path(sys.argv[0], run_name='__main__')
  code = 0
except SystemExit as e:
  code = e.code
print('EXIT %s TENSORFLOW %s' % (code, 'tensorflow' in sys.modules))
'''


def _run(*args):
  result = subprocess.run([sys.executable, '-c', _RUN] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  *text, last = result.stdout.rstrip('\n').split('\n')
  return '\n'.join(text), last, result.stderr


def _docstring(script):
  with open(os.path.join(ROOT, script)) as f:
    return ast.get_docstring(ast.parse(f.read()))


def test_flag_choices_are_the_modules_own():
  from nets import custom_cnn
  from preprocessing import filters
  from preprocessing import grayscale
  from slimkit import learning_rate
  from slimkit import optimizers
  assert slim_flags.OPTIMIZERS == sorted(optimizers.OPTIMIZERS)
  assert slim_flags.DECAY_TYPES == list(learning_rate.DECAY_TYPES)
  assert slim_flags.ACTIVATIONS == list(custom_cnn.ACTIVATIONS)
  assert slim_flags.GRAYSCALE_FORMULAS == list(grayscale.FORMULAS)
  assert slim_flags.IMAGE_FILTERS == list(filters.NAMES)


def test_every_flag_has_a_group_and_train_has_tf_slims_groups():
  values = slim_flags.define_into(flags.FlagValues(), slim_flags.define_train_flags)
  groups = {values[name].help_group for name in values}
  assert {'General', 'Optimization', 'Learning rate', 'Dataset',
          'Fine-tuning'} <= groups <= set(usage.ORDER)
  assert values['optimizer'].help_group == 'Optimization'
  assert values['trainable_scopes'].help_group == 'Fine-tuning'
  assert values['model_name'].help_group == 'Dataset'  # where TF-Slim had it


def test_help_lists_the_scripts_flags_by_group_before_tensorflow_loads():
  for script, own, groups in (
      ('train_image_classifier.py', '--train_dir',
       ('General:', 'Optimization:', 'Learning rate:', 'Dataset:', 'Fine-tuning:')),
      ('eval_image_classifier.py', '--eval_dir', ('General:', 'Dataset:')),
      ('export_inference_graph.py', '--output_file', ('General:', 'Dataset:')),
      ('classify_image.py', '--saved_model', ('General:',)),
      ('download_and_convert_data.py', '--dataset_name', ('General:',))):
    text, last, err = _run(script, '--help')
    assert last == 'EXIT 0 TENSORFLOW False', (script, last, err[-2000:])
    lines = text.splitlines()
    assert lines[0] == _docstring(script).splitlines()[0], script
    assert [l for l in lines if l in groups] == list(groups), (script, text)
    assert any(l.startswith('  %s: ' % own) for l in lines), (script, text)
    # absl's and TensorFlow's flags are left to --helpfull.
    assert not any(n in text for n in ('--verbosity', '--logtostderr', '--pdb')), script
  short, last, _ = _run('eval_image_classifier.py', '--helpshort')
  assert last == 'EXIT 0 TENSORFLOW False'
  assert short == _run('eval_image_classifier.py', '--help')[0]
  full, _, _ = _run('eval_image_classifier.py', '--helpfull')
  assert '--verbosity' in full and '--eval_dir' in full
