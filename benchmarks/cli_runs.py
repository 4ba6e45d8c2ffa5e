"""The real scripts as subprocesses, and the files they write, for the benchmarks.

The table benchmarks measure what a user gets from the command line: each run is
download_and_convert_data.py, train_image_classifier.py or eval_image_classifier.py
started as a new process, and the figures come from the files those scripts write
(train_stats.json, eval_<step>.json), not from timers around library calls.
"""

import csv
import glob
import json
import os
import tempfile

from benchmarks import harness


def train(train_dir, flags, log_path, env=None):
  """train_image_classifier.py into train_dir; returns its train_stats.json dict.

  The dict gains 'wall_seconds': the process's whole life, start-up included.
  """
  flags = dict(flags, train_dir=train_dir)
  wall = harness.run_script('train_image_classifier.py', flags, log_path, env)
  stats = read_json(os.path.join(train_dir, 'train_stats.json'))
  stats['wall_seconds'] = wall
  return stats


def evaluate(checkpoint_path, eval_dir, flags, log_path, env=None):
  """eval_image_classifier.py; returns the newest eval_<step>.json in eval_dir."""
  flags = dict(flags, checkpoint_path=checkpoint_path, eval_dir=eval_dir)
  harness.run_script('eval_image_classifier.py', flags, log_path, env)
  results = eval_results(eval_dir)
  if not results:
    raise harness.RunError('eval_image_classifier.py wrote no eval_<step>.json to %s'
                   % eval_dir)
  return results[-1]


def eval_results(eval_dir):
  """Every eval_<step>.json in eval_dir, by step."""
  results = [read_json(p) for p in glob.glob(os.path.join(eval_dir, 'eval_*.json'))]
  return sorted(results, key=lambda r: r['step'])


def read_json(path):
  with open(path) as f:
    return json.load(f)


def net_complexity(model_name, image_size=None, num_classes=10):
  """nets.complexity.summarize of the named net at image_size (default: its own)."""
  from nets import complexity  # pylint: disable=g-import-not-at-top
  from nets import nets_factory  # pylint: disable=g-import-not-at-top
  size = image_size or nets_factory.default_image_size(model_name)
  return complexity.summarize(nets_factory.build_model(model_name, num_classes,
                                                       (size, size, 3)))


LOSSY_NOTE = ('That copy is JPEG-compressed (lossy): accuracy on it is not '
              'comparable to results on the original data.')


def define_run_flags(flags, prefix):
  """--dataset_dir, --source, --work_dir, --output_dir, --max_num_batches of the
  CIFAR-10 table benchmarks; prefix names their temporary work dir."""
  flags.DEFINE_string('dataset_dir', None, 'A converted CIFAR-10 directory (default: '
                      'convert the shared copy into --work_dir).')
  flags.DEFINE_string('source', None, 'download_and_convert_data.py --source when '
                      '--dataset_dir is not given (default: the shared JPEG copy).')
  flags.DEFINE_string('work_dir', None, 'Train and eval dirs, logs (default: a new '
                      'temporary directory %s*).' % prefix)
  flags.DEFINE_string('output_dir', None, 'Where the tables go (default: '
                      '<work_dir>/results).')
  flags.DEFINE_integer('max_num_batches', None, 'Evaluate only this many batches of '
                       '100 test images (default: all 10,000).', lower_bound=1)
  flags.DEFINE_integer('batch_size', None, 'Training batch size of every run '
                       '(default: each recipe\'s own).', lower_bound=1)
  flags.DEFINE_enum('mixed_precision', None, ['float32', 'bfloat16', 'float16'],
                    'Training precision of every run (default: each recipe\'s own).')


def recipe_overrides(flag_values):
  """The train flags that --batch_size and --mixed_precision set for every run."""
  return {k: getattr(flag_values, k) for k in ('batch_size', 'mixed_precision')
          if getattr(flag_values, k) is not None}


def setup_run(flag_values, prefix):
  """(work_dir, output_dir, CIFAR-10 dataset_dir, note on the data) from those flags."""
  work_dir = flag_values.work_dir or tempfile.mkdtemp(prefix=prefix)
  output_dir = flag_values.output_dir or os.path.join(work_dir, 'results')
  dataset_dir = harness.converted('cifar10', work_dir, flag_values.dataset_dir,
                                  flag_values.source)
  return work_dir, output_dir, dataset_dir, data_note(dataset_dir)


def data_note(dataset_dir):
  """Where the converted data came from, and whether it is a lossy copy."""
  info = read_json(os.path.join(dataset_dir, 'dataset_info.json'))
  note = 'Data: %s, converted from %s.' % (info['name'], info.get('source') or
                                           'the official download')
  if info.get('lossy_source'):
    note += ' ' + LOSSY_NOTE
  return note


def write_table(rows, columns, out_dir, name, title=None, notes=()):
  """Writes name.md and name.csv to out_dir, prints the markdown and where it went.

  rows: dicts; columns: (key, header) pairs; a missing or None value prints '-'.
  """
  os.makedirs(out_dir, exist_ok=True)
  cell = lambda v: '-' if v is None else str(v)
  lines = ['## %s' % title, ''] if title else []
  lines.append('| %s |' % ' | '.join(h for _, h in columns))
  lines.append('|%s|' % '|'.join('---' for _ in columns))
  for row in rows:
    lines.append('| %s |' % ' | '.join(cell(row.get(k)) for k, _ in columns))
  lines += [''] + ['%s' % n for n in notes]
  text = '\n'.join(lines).rstrip() + '\n'
  with open(os.path.join(out_dir, name + '.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(out_dir, name + '.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow([h for _, h in columns])
    for row in rows:
      writer.writerow(['' if row.get(k) is None else row.get(k) for k, _ in columns])
  print(text)
  print('wrote %s' % os.path.join(out_dir, name + '.{md,csv}'))
  return text


def duration(seconds):
  """'1 h 02 min', '12 min 05 s', '42.0 s'."""
  if seconds is None:
    return None
  if seconds >= 3600:
    return '%d h %02d min' % (seconds // 3600, seconds // 60 % 60)
  if seconds >= 60:
    return '%d min %02d s' % (seconds // 60, seconds % 60)
  return '%.1f s' % seconds
