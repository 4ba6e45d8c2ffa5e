"""Training speed per device: seconds per step and per epoch, MNIST and CIFAR-10.

For every device this machine has (the CPU, and each GPU on its own), each --models
net and each --datasets dataset, train_image_classifier.py runs the thesis recipe
(plain SGD, batch 50) for --steps steps; the steady seconds per step after the first
(traced) step come from the run's train_stats.json, and an epoch is the train
split's images / 50 steps. The nets see the thesis's --image_size (224) through
their Slim preprocessing; custom_cnn and lenet train at their native size. MNIST's
gray images go to the RGB nets as one channel.

A device is chosen for a run with CUDA_VISIBLE_DEVICES (-1 for the CPU), so each
run sees exactly one device, as the thesis's per-device study did.

  python3 benchmarks/device_table.py
  python3 benchmarks/device_table.py --models=custom_cnn --steps=10 --precisions=float32,bfloat16

Writes device_table.md and .csv to --output_dir (default <work_dir>/results).
"""

import math
import os
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top

from benchmarks import cli_runs
from benchmarks import harness
from slimkit import cli

FLAGS = flags.FLAGS
flags.DEFINE_list('models', ['custom_cnn', 'inception_v1', 'resnet_v1_50',
                             'mobilenet_v1'], 'Nets of nets_factory.')
flags.DEFINE_list('datasets', ['mnist', 'cifar10'], 'mnist and/or cifar10.')
flags.register_validator('datasets', lambda v: set(v) <= {'mnist', 'cifar10'},
                         '--datasets: expected mnist and/or cifar10')
flags.DEFINE_list('precisions', ['float32'], 'float32, bfloat16 and/or float16 '
                  '(--mixed_precision of each run).')
flags.DEFINE_integer('steps', 20, 'Steps per run; the first (traced) is not timed.',
                     lower_bound=2)
flags.DEFINE_integer('image_size', 224, 'Image size of the Slim nets (custom_cnn and '
                     'lenet keep their own).', lower_bound=8)
flags.DEFINE_integer('batch_size', 50, 'Batch size (the thesis: 50).', lower_bound=1)
flags.DEFINE_string('mnist_dir', None, 'A converted MNIST directory (default: convert '
                    'the shared copy into --work_dir).')
flags.DEFINE_string('cifar10_dir', None, 'A converted CIFAR-10 directory (default: '
                    'convert the shared copy into --work_dir).')
flags.DEFINE_string('work_dir', None, 'Train dirs and logs (default: a new temporary '
                    'directory).')
flags.DEFINE_string('output_dir', None, 'Where the table goes (default: '
                    '<work_dir>/results).')

NATIVE = ('custom_cnn', 'lenet', 'cifarnet')
COLUMNS = (('device', 'device'), ('dataset', 'dataset'), ('model', 'model'),
           ('image_size', 'image size'), ('precision', 'precision'),
           ('sec_per_step', 's/step'), ('images_per_sec', 'images/s'),
           ('sec_per_epoch', 's/epoch'), ('first_step', 'first step (s)'))


def devices():
  """[(label, CUDA_VISIBLE_DEVICES)]: the CPU, then each GPU."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = [('CPU: ' + harness.cpu_name(), '-1')]
  for i, gpu in enumerate(tf.config.list_physical_devices('GPU')):
    details = tf.config.experimental.get_device_details(gpu)
    out.append(('GPU %d: %s' % (i, details.get('device_name', gpu.name)), str(i)))
  return out


def one_row(device, visible, dataset, dataset_dir, model, precision, work_dir):
  tag = '%s-%s-%s-%s' % (visible, dataset, model, precision)
  size = None if model in NATIVE else FLAGS.image_size
  stats = cli_runs.train(os.path.join(work_dir, 'train', tag), {
      'preset': 'thesis', 'dataset_name': dataset, 'dataset_split_name': 'train',
      'dataset_dir': dataset_dir, 'model_name': model, 'train_image_size': size,
      'batch_size': FLAGS.batch_size, 'max_number_of_steps': FLAGS.steps,
      'mixed_precision': precision, 'save_interval_secs': 0,
      'save_summaries_secs': 0, 'log_every_n_steps': FLAGS.steps,
  }, os.path.join(work_dir, 'logs', 'train_%s.log' % tag),
      env={'CUDA_VISIBLE_DEVICES': visible})
  config = cli_runs.read_json(os.path.join(work_dir, 'train', tag, 'run_config.json'))
  per_step = stats['steady_sec_per_step']
  steps_per_epoch = math.ceil(config['dataset_num_samples'] / FLAGS.batch_size)
  return {
      'device': device, 'dataset': dataset, 'model': model,
      'image_size': config['image_size'], 'precision': precision,
      'sec_per_step': '%.4g' % per_step,
      'images_per_sec': '%.1f' % stats['steady_images_per_sec'],
      'sec_per_epoch': '%.4g' % (per_step * steps_per_epoch),
      'first_step': '%.1f' % stats['time_to_first_step'],
  }


def main(argv):
  del argv
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='device_table_')
  output_dir = FLAGS.output_dir or os.path.join(work_dir, 'results')
  given = {'mnist': FLAGS.mnist_dir, 'cifar10': FLAGS.cifar10_dir}
  rows = []
  for device, visible in devices():
    for dataset in FLAGS.datasets:
      dataset_dir = harness.converted(dataset, work_dir, given[dataset])
      for model in FLAGS.models:
        for precision in FLAGS.precisions:
          print('%s: %s on %s, %s ...' % (device, model, dataset, precision),
                flush=True)
          rows.append(one_row(device, visible, dataset, dataset_dir, model,
                              precision, work_dir))
  notes = ['Thesis recipe (SGD, batch %d), %d steps per run; s/step is the steady '
           'mean after the first step, whose time (tracing included) is shown apart; '
           's/epoch = s/step x train images / batch (MNIST 60000, CIFAR-10 50000 '
           'images).' % (FLAGS.batch_size, FLAGS.steps)]
  cli_runs.write_table(rows, COLUMNS, output_dir, 'device_table',
                       'Training speed per device', notes)


if __name__ == '__main__':
  cli.run(main)
