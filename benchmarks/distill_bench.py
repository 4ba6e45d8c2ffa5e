"""Knowledge distillation on CIFAR-10: a larger teacher, and the custom CNN trained
with and without it on the same budget.

Three runs of train_image_classifier.py with --preset=cifar_fast, each evaluated
with eval_image_classifier.py into its own eval dir; each net is exported once with
export_inference_graph.py --tflite for its file size:
  teacher    --teacher_model_name (custom_cnn_wide: 1.5x the widths) for
             --teacher_steps steps (or an existing --teacher_checkpoint_path);
  baseline   --model_name (custom_cnn) for --steps steps;
  distilled  the same, plus --teacher_model_name/--teacher_checkpoint_path,
             --distillation_temperature and --distillation_weight.
The table: model | role | steps | top-1 | top-5 | parameters | multiply-adds per
image | TFLite file size | training time (whole process; the distilled run also
pays for the teacher's forward passes).

  python3 benchmarks/distill_bench.py
  python3 benchmarks/distill_bench.py --teacher_steps=2000 --steps=800
  python3 benchmarks/distill_bench.py --teacher_checkpoint_path=/tmp/wide --steps=400

Writes distill_table.md and .csv to --output_dir (default <work_dir>/results).
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top

from benchmarks import cli_runs
from benchmarks import harness
from slimkit import cli
from slimkit import presets


FLAGS = flags.FLAGS
flags.DEFINE_string('teacher_model_name', 'custom_cnn_wide', 'The teacher net.')
flags.DEFINE_integer('teacher_steps', 1000, 'Training steps of the teacher.',
                     lower_bound=1)
flags.DEFINE_string('teacher_checkpoint_path', None, 'Use this trained teacher '
                    'instead of training one (its train dir or checkpoint).')
flags.DEFINE_string('model_name', 'custom_cnn', 'The student net.')
flags.DEFINE_integer('steps', 400, 'Training steps of each student.', lower_bound=1)
flags.DEFINE_float('distillation_temperature', 4.0, 'T of the distilled run.')
flags.DEFINE_float('distillation_weight', 0.5, 'lambda of the distilled run.')
cli_runs.define_run_flags(flags, 'distill_bench_')
flags.DEFINE_integer('random_seed', 0, 'Seed of every training run.')

COLUMNS = (('model', 'model'), ('role', 'role'), ('steps', 'steps'),
           ('top1', 'top-1 %'), ('top5', 'top-5 %'), ('params', 'parameters (M)'),
           ('macs', 'multiply-adds per image (M)'), ('file_mb', 'TFLite file (MB)'),
           ('train_time', 'training time'))


def train_and_measure(model, role, steps, train_dir, dataset_dir, work_dir,
                      extra=None):
  logs = os.path.join(work_dir, 'logs')
  stats = None
  if steps is not None:
    print('training the %s (%s, %d steps) ...' % (role, model, steps), flush=True)
    stats = cli_runs.train(train_dir, dict({
        'preset': 'cifar_fast', 'model_name': model, 'dataset_name': 'cifar10',
        'dataset_split_name': 'train', 'dataset_dir': dataset_dir,
        'max_number_of_steps': steps, 'random_seed': FLAGS.random_seed},
        **cli_runs.recipe_overrides(FLAGS), **(extra or {})),
        os.path.join(logs, 'train_%s.log' % role))
  result = cli_runs.evaluate(
      train_dir, os.path.join(work_dir, 'eval', role),
      {'dataset_name': 'cifar10', 'dataset_split_name': 'test',
       'dataset_dir': dataset_dir, 'model_name': model,
       'max_num_batches': FLAGS.max_num_batches},
      os.path.join(logs, 'eval_%s.log' % role))
  # The float TFLite file's size depends on the net only: one export per net.
  export_dir = os.path.join(work_dir, 'export', model)
  if not os.path.exists(os.path.join(export_dir, 'model.tflite')):
    harness.run_script('export_inference_graph.py', {
        'model_name': model, 'checkpoint_path': train_dir, 'output_file': export_dir,
        'dataset_name': 'cifar10', 'dataset_dir': dataset_dir, 'tflite': True},
        os.path.join(logs, 'export_%s.log' % role))
  counts = cli_runs.net_complexity(model)
  size = os.path.getsize(os.path.join(export_dir, 'model.tflite'))
  return {
      'model': model, 'role': role, 'steps': result['step'],
      'top1': '%.2f' % (100 * result['metrics']['accuracy']),
      'top5': '%.2f' % (100 * result['metrics']['recall_5']),
      'params': '%.2f' % (counts['params'] / 1e6),
      'macs': '%.0f' % (counts['macs'] / 1e6),
      'file_mb': '%.2f' % (size / 2**20),
      'train_time': cli_runs.duration(stats['seconds']) if stats else None,
  }


def main(argv):
  del argv
  work_dir, output_dir, dataset_dir, data_note = cli_runs.setup_run(
      FLAGS, 'distill_bench_')
  teacher_dir = FLAGS.teacher_checkpoint_path or os.path.join(work_dir, 'train',
                                                               'teacher')
  teacher_steps = None if FLAGS.teacher_checkpoint_path else FLAGS.teacher_steps
  rows = [train_and_measure(FLAGS.teacher_model_name, 'teacher', teacher_steps,
                            teacher_dir, dataset_dir, work_dir)]
  rows.append(train_and_measure(FLAGS.model_name, 'baseline', FLAGS.steps,
                                os.path.join(work_dir, 'train', 'baseline'),
                                dataset_dir, work_dir))
  rows.append(train_and_measure(
      FLAGS.model_name, 'distilled', FLAGS.steps,
      os.path.join(work_dir, 'train', 'distilled'), dataset_dir, work_dir,
      {'teacher_model_name': FLAGS.teacher_model_name,
       'teacher_checkpoint_path': teacher_dir,
       'distillation_temperature': FLAGS.distillation_temperature,
       'distillation_weight': FLAGS.distillation_weight}))
  recipe = dict(presets.PRESETS['cifar_fast'], **cli_runs.recipe_overrides(FLAGS))
  notes = [data_note,
           'All runs: --preset=cifar_fast (batch %d, %s, cosine over the run\'s steps); '
           'distilled: T=%g, lambda=%g. Training time is the whole training process '
           'on %s.' % (recipe['batch_size'], recipe['mixed_precision'],
                       FLAGS.distillation_temperature, FLAGS.distillation_weight,
                       harness.cpu_name())]
  cli_runs.write_table(rows, COLUMNS, output_dir, 'distill_table',
                       'Distillation: %s -> %s' % (FLAGS.teacher_model_name,
                                                   FLAGS.model_name), notes)


if __name__ == '__main__':
  cli.run(main)
