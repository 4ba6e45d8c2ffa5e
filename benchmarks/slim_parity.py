"""Max logit difference between our nets and TF-Slim's, on a TF-Slim checkpoint.

    python3 benchmarks/slim_parity.py                    # every Slim net, default size
    python3 benchmarks/slim_parity.py --nets=lenet,cifarnet --batch_size=1

For each net, TF-Slim's original builds it in TF1 graph mode (the tf_slim package
for Inception V1 and ResNet V1; TF-Slim's layer lists written with tf_slim's layers
for MobileNet V1, CifarNet and LeNet: tests/slim_reference.py), every variable and
batch norm statistic random, saved with tf.compat.v1.train.Saver; our net reads the
checkpoint through slimkit.checkpoints.restore_model and both run the same images
(uniform in [-1, 1]) at inference. Needs tf-slim and tf-keras (requirements-dev.txt).
"""

import argparse
import os
import platform
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import slim_reference  # noqa: E402
from nets import nets_factory  # noqa: E402
from slimkit import checkpoints  # noqa: E402

CHANNELS = {'lenet': 1}
SOURCE = {'inception_v1': 'tf_slim.nets', 'resnet_v1_50': 'tf_slim.nets',
          'resnet_v1_101': 'tf_slim.nets', 'resnet_v1_152': 'tf_slim.nets'}
SOURCE.update(inception_v2='tf_slim.nets', inception_v3='tf_slim.nets')
SOURCE.update(inception_v4='layer list + tf_slim layers',
              inception_resnet_v2='layer list + tf_slim layers')
SOURCE.update((name, 'tf_slim.nets') for name in (
    'resnet_v2_50', 'resnet_v2_101', 'resnet_v2_152', 'resnet_v2_200', 'vgg_a',
    'vgg_16', 'vgg_19', 'alexnet_v2', 'overfeat'))
SOURCE.update((name, 'conv_defs + tf_slim layers')
              for name in slim_reference.REFERENCES
              if name.startswith(('mobilenet_v2', 'mobilenet_v3')))
SOURCE.update((name, 'cell tables + tf_slim layers') for name in (
    'nasnet_cifar', 'nasnet_mobile', 'nasnet_large', 'pnasnet_mobile',
    'pnasnet_large'))


def parity(name, size, num_classes, batch_size, work_dir):
  """(max |ours - TF-Slim's|, max |TF-Slim's|) of the logits."""
  prefix = os.path.join(work_dir, name, 'model.ckpt')
  channels = CHANNELS.get(name, 3)
  images, theirs = slim_reference.save_random_checkpoint(
      name, prefix, size, num_classes, channels=channels, batch=batch_size)
  model = nets_factory.build_model(name, num_classes, (size, size, channels))
  checkpoints.restore_model(model, prefix)
  ours = model(images, training=False)['Logits'].numpy()
  return float(np.abs(ours - theirs).max()), float(np.abs(theirs).max())


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--nets', default=','.join(slim_reference.REFERENCES))
  parser.add_argument('--num_classes', type=int, default=1001)
  parser.add_argument('--batch_size', type=int, default=2)
  parser.add_argument('--image_size', type=int, default=None,
                      help="default: each net's default image size")
  args = parser.parse_args()
  print('TF %s, Keras %s, %s' % (tf.__version__, keras.__version__,
                                 platform.processor() or platform.machine()))
  print('| net | input | classes | TF-Slim code | max abs diff | max abs logit | '
        'relative |')
  print('| --- | --- | --- | --- | --- | --- | --- |')
  with tempfile.TemporaryDirectory() as work_dir:
    for name in args.nets.split(','):
      size = args.image_size or nets_factory.get_spec(name).default_image_size
      diff, scale = parity(name, size, args.num_classes, args.batch_size, work_dir)
      print('| %s | %dx%d | %d | %s | %.3g | %.3g | %.2g |' % (
          name, size, size, args.num_classes,
          SOURCE.get(name, 'layer list + tf_slim layers'), diff, scale,
          diff / scale), flush=True)


if __name__ == '__main__':
  main()
