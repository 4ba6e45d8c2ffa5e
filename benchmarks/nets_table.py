"""Prints parameters and multiply-adds of every registered net, with the
published figures where a paper gives them.

    python3 benchmarks/nets_table.py                 # every net, default size
    python3 benchmarks/nets_table.py --nets=mobilenet_v1 --sizes=224,192,160,128
    python3 benchmarks/nets_table.py --num_classes=10 --nets=custom_cnn

Counts come from the built Keras model (nets/complexity.py): params are the
trainable weights, 'all' adds the batch norm statistics, MACs are per image.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top

from benchmarks import harness
from nets import complexity
from nets import nets_factory
from slimkit import cli

FLAGS = flags.FLAGS
flags.DEFINE_list('nets', None, 'Nets of nets_factory (default: all registered).')
flags.DEFINE_list('sizes', None, "Input sizes (default: each net's default_image_size).")
flags.register_validator('sizes', lambda v: v is None or all(s.isdigit() and int(s) > 0 for s in v),
                         '--sizes: expected comma-separated positive integers')
flags.DEFINE_integer('num_classes', 1000, 'Classes of the head.', lower_bound=1)

# (name, size) -> (params, MACs, source); 1000 classes. See docs/nets.md for
# why Slim's inception_v1 and resnet_v1 differ from the papers' nets.
PUBLISHED = {
    ('mobilenet_v1', 224): (4.2e6, 569e6, 'MobileNet paper, Table 6'),
    ('mobilenet_v1_075', 224): (2.6e6, 325e6, 'MobileNet paper, Table 6'),
    ('mobilenet_v1_050', 224): (1.3e6, 149e6, 'MobileNet paper, Table 6'),
    ('mobilenet_v1_025', 224): (0.5e6, 41e6, 'MobileNet paper, Table 6'),
    ('mobilenet_v1', 192): (4.2e6, 418e6, 'MobileNet paper, Table 7'),
    ('mobilenet_v1', 160): (4.2e6, 290e6, 'MobileNet paper, Table 7'),
    ('mobilenet_v1', 128): (4.2e6, 186e6, 'MobileNet paper, Table 7'),
    ('inception_v1', 224): (6.8e6, 1.5e9,
                            'GoogLeNet paper (5x5 branch; Slim uses 3x3)'),
    ('resnet_v1_50', 224): (25.6e6, 3.8e9,
                            'ResNet paper, Table 1 (stride placement differs)'),
    ('resnet_v1_101', 224): (44.5e6, 7.6e9, 'ResNet paper, Table 1 (idem)'),
    ('resnet_v1_152', 224): (60.2e6, 11.3e9, 'ResNet paper, Table 1 (idem)'),
}


def _fmt(value, unit):
  return '%.2f' % (value / unit) if value is not None else '-'


def rows(names, sizes, num_classes):
  for name in names:
    for size in sizes or [nets_factory.default_image_size(name)]:
      model = nets_factory.build_model(name, num_classes, (size, size, 3))
      counts = complexity.summarize(model)
      published = PUBLISHED.get((name, size)) if num_classes == 1000 else None
      yield name, size, counts, published


def main(argv):
  del argv
  names = FLAGS.nets or nets_factory.list_networks()
  harness.check_nets(names)
  sizes = [int(s) for s in FLAGS.sizes or []]
  print('%-20s %5s %10s %10s %10s | %10s %10s  %s' % (
      'net', 'size', 'params(M)', 'all(M)', 'MACs(M)', 'paper(M)',
      'paperMACs', 'source'))
  for name, size, counts, published in rows(names, sizes, FLAGS.num_classes):
    pub_params, pub_macs, source = published or (None, None, '')
    print('%-20s %5d %10s %10s %10s | %10s %10s  %s' % (
        name, size, _fmt(counts['params'], 1e6),
        _fmt(counts['all_params'], 1e6), _fmt(counts['macs'], 1e6),
        _fmt(pub_params, 1e6), _fmt(pub_macs, 1e6), source), flush=True)


if __name__ == '__main__':
  cli.run(main)
