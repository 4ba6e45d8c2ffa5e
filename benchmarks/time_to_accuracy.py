"""Time to accuracy: custom_cnn with --preset=cifar_fast on CIFAR-10.

Trains with train_image_classifier.py, saving a checkpoint every --save_every steps,
then evaluates every checkpoint on the 10,000 test images with
eval_image_classifier.py (continuous mode, into an eval dir of its own). The table
gives, per checkpoint, the epochs seen, the training time when it was written
(seconds since the training process started, start-up and tracing included) and
its top-1 and top-5; then the first checkpoint to reach each --targets accuracy,
against the time allowed for it (--target_minutes).

The schedule is a cosine over the whole run, so intermediate checkpoints are taken
at a high learning rate and understate what a shorter run would reach: the run's
final accuracy is the figure for its budget. What limits the speed is printed too:
multiply-adds per image (nets/complexity.py), the training FLOPs (3 x forward: one
forward and a backward of about twice its cost, 2 FLOPs per multiply-add) and the
FLOP/s the steady training steps achieved.

  python3 benchmarks/time_to_accuracy.py                       # 7000 steps, ~26 min here
  python3 benchmarks/time_to_accuracy.py --steps=8000          # a longer budget
  python3 benchmarks/time_to_accuracy.py --steps=20 --save_every=10 --max_num_batches=2

Writes time_to_accuracy.md and .csv to --output_dir (default <work_dir>/results),
and time_to_accuracy.png: top-1 against training minutes and against epochs, one
point per checkpoint (benchmarks/plots.py; needs matplotlib).
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top

from benchmarks import cli_runs
from benchmarks import harness
from benchmarks import plots
from slimkit import cli
from common import errors
from slimkit import presets

MODEL = 'custom_cnn'

FLAGS = flags.FLAGS
flags.DEFINE_integer('steps', None, 'Training steps (default: the preset\'s).',
                     lower_bound=1)
flags.DEFINE_integer('save_every', 1000, 'Checkpoint (and evaluate) every this many '
                     'steps.', lower_bound=1)
flags.DEFINE_string('model_name', MODEL, 'The net to train.')
flags.DEFINE_string('preset', 'cifar_fast', 'The --preset of the run.')
flags.DEFINE_list('targets', ['90', '93'], 'Top-1 targets, in %.')
flags.DEFINE_list('target_minutes', ['30', '90'], 'Minutes of training allowed for '
                  'each target.')
cli_runs.define_run_flags(flags, 'time_to_accuracy_')
flags.DEFINE_integer('random_seed', 1, 'Seed of the training run.')

COLUMNS = (('step', 'step'), ('epochs', 'epochs'), ('minutes', 'training minutes'),
           ('top1', 'top-1 %'), ('top5', 'top-5 %'))


def curve(stats, results, num_samples):
  """Rows of (step, epochs, minutes, top-1, top-5), one per evaluated checkpoint."""
  seconds = {c['step']: c['seconds'] for c in stats['checkpoints']}
  rows = []
  for r in results:
    if r['step'] not in seconds:
      continue  # a checkpoint of an earlier run in the same dir
    epochs = r['step'] * stats['global_batch_size'] / num_samples
    rows.append({
        'step': r['step'],
        'epochs': '%.1f' % epochs,
        'num_epochs': epochs,  # unrounded, for the plot
        'minutes': '%.1f' % (seconds[r['step']] / 60),
        'seconds': seconds[r['step']],
        'accuracy': r['metrics']['accuracy'],
        'top1': '%.2f' % (100 * r['metrics']['accuracy']),
        'top5': '%.2f' % (100 * r['metrics']['recall_5']),
    })
  return rows


def first_reaching(rows, target):
  for row in rows:
    if 100 * row['accuracy'] >= target:
      return row
  return None


def main(argv):
  del argv
  targets = [float(t) for t in FLAGS.targets]
  minutes = [float(m) for m in FLAGS.target_minutes]
  if len(targets) != len(minutes):
    raise errors.UserError('--targets and --target_minutes: expected as many minutes '
                           'as targets, got %d and %d' % (len(targets), len(minutes)))
  steps = FLAGS.steps or presets.PRESETS[FLAGS.preset]['max_number_of_steps']
  work_dir, output_dir, dataset_dir, data_note = cli_runs.setup_run(
      FLAGS, 'time_to_accuracy_')
  train_dir = os.path.join(work_dir, 'train')
  stats = cli_runs.train(train_dir, {
      'preset': FLAGS.preset, 'model_name': FLAGS.model_name,
      'dataset_name': 'cifar10', 'dataset_split_name': 'train',
      'dataset_dir': dataset_dir, 'max_number_of_steps': steps,
      'save_interval_steps': FLAGS.save_every,
      'max_checkpoints_to_keep': steps // FLAGS.save_every + 2,
      'random_seed': FLAGS.random_seed, **cli_runs.recipe_overrides(FLAGS)},
      os.path.join(work_dir, 'logs', 'train.log'))
  print('trained %d steps in %s; evaluating %d checkpoints ...'
        % (stats['end_step'], cli_runs.duration(stats['seconds']),
           len(stats['checkpoints'])), flush=True)
  eval_dir = os.path.join(work_dir, 'eval')
  # Continuous mode evaluates every checkpoint without a result, then stops at the
  # run's last step.
  harness.run_script('eval_image_classifier.py', {
      'checkpoint_path': train_dir, 'eval_dir': eval_dir, 'dataset_name': 'cifar10',
      'dataset_split_name': 'test', 'dataset_dir': dataset_dir,
      'model_name': FLAGS.model_name, 'eval_interval_secs': 1, 'timeout': 60,
      'max_num_batches': FLAGS.max_num_batches},
      os.path.join(work_dir, 'logs', 'eval.log'))
  config = cli_runs.read_json(os.path.join(train_dir, 'run_config.json'))
  results = cli_runs.eval_results(eval_dir)
  rows = curve(stats, results, config['dataset_num_samples'])
  size = config['image_size']
  counts = cli_runs.net_complexity(FLAGS.model_name, size)
  images = stats['steady_steps'] * stats['global_batch_size']
  train_flops = 3 * 2 * counts['macs']
  achieved = (train_flops * images / stats['steady_secs'] / 1e9
              if stats['steady_secs'] else None)
  notes = [data_note + ' A finished run in --work_dir is reused (training resumes '
           'or is skipped, as train_image_classifier.py does).']
  for target, allowed in zip(targets, minutes):
    row = first_reaching(rows, target)
    if row:
      verdict = 'met' if row['seconds'] <= 60 * allowed else 'missed'
      notes.append('>= %g %% top-1: first at step %d after %s min of training '
                   '(target %g min: %s).' % (target, row['step'], row['minutes'],
                                            allowed, verdict))
    else:
      best = max(rows, key=lambda r: r['accuracy']) if rows else None
      notes.append('>= %g %% top-1: not reached in this run (best %s %% at step %s; '
                   'target %g min).' % (target, best and best['top1'],
                                        best and best['step'], allowed))
  notes.append('%s at %dx%d: %.2f M parameters, %.1f M multiply-adds per image, so '
               'about %.2f GFLOP to train on one image (3 x forward).'
               % (FLAGS.model_name, size, size, counts['params'] / 1e6,
                  counts['macs'] / 1e6, train_flops / 1e9))
  if achieved:
    notes.append('Steady training: %.1f images/s (batch %d, %s), %.1f GFLOP/s '
                 'achieved; whole run %s for %d steps on %s.'
                 % (stats['steady_images_per_sec'], stats['global_batch_size'],
                    stats['mixed_precision'], achieved,
                    cli_runs.duration(stats['seconds']), stats['end_step'],
                    harness.cpu_name() if 'GPU' not in stats['device']
                    else stats['device']))
  title = 'Time to accuracy: %s, --preset=%s' % (FLAGS.model_name, FLAGS.preset)
  cli_runs.write_table(rows, COLUMNS, output_dir, 'time_to_accuracy', title, notes)
  plots.write_curves(output_dir, 'time_to_accuracy', [(
      '%s (%d steps)' % (FLAGS.model_name, stats['end_step']),
      [(r['seconds'] / 60, r['num_epochs'], 100 * r['accuracy']) for r in rows])],
      title)


if __name__ == '__main__':
  cli.run(main)
