"""What a checkpoint that does not fit the net tells the user to do: advice that can
be followed (a real --labels_offset, a fine-tuning command, a real net name)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest
import tensorflow as tf

import slim_reference
from nets import nets_factory
from slimkit import checkpoints


@pytest.fixture(scope='module')
def lenet_1001(tmp_path_factory):
  """A TF-Slim LeNet checkpoint with ImageNet's 1001 classes."""
  prefix = str(tmp_path_factory.mktemp('slim_1001') / 'model.ckpt')
  slim_reference.save_random_checkpoint('lenet', prefix, 28, 1001, channels=1)
  return prefix


def _failure(prefix, num_classes, fine_tuning):
  model = nets_factory.build_model('lenet', num_classes, (28, 28, 1))
  with pytest.raises(ValueError) as raised:
    checkpoints.restore_model(model, prefix, fine_tuning=fine_tuning)
  return str(raised.value)


def test_another_label_set_is_fine_tuned_first(lenet_1001):
  # Evaluating on flowers' 5 classes: --labels_offset would have to be -996.
  message = _failure(lenet_1001, 5, fine_tuning=False)
  assert 'The checkpoint has 1001 classes, the net 5' in message
  assert ('train_image_classifier.py --checkpoint_path=%s --checkpoint_exclude_scopes='
          'LeNet/fc4 --trainable_scopes=LeNet/fc4 --train_dir=DIR' % lenet_1001
          ) in message
  assert 'labels_offset by' not in message
  # Training from it: a new classifier, with the flags that make one.
  message = _failure(lenet_1001, 5, fine_tuning=True)
  assert '--checkpoint_exclude_scopes=LeNet/fc4' in message
  assert 'labels_offset by' not in message and 'train_image_classifier.py' not in message


def test_one_class_apart_is_the_background_class(lenet_1001):
  assert 'raise --labels_offset by 1' in _failure(lenet_1001, 1002, fine_tuning=False)
  assert 'lower --labels_offset by 1' in _failure(lenet_1001, 1000, fine_tuning=False)


def test_a_net_not_built_here_is_not_offered_as_a_model_name(tmp_path):
  prefix = str(tmp_path / 'squeeze.ckpt')
  graph = tf.Graph()
  with graph.as_default():
    variables = [tf.compat.v1.get_variable('SqueezeNet/%s/weights' % name, shape)
                 for name, shape in (('conv1', [3, 3, 1, 8]), ('fire2', [1, 1, 8, 4]))]
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      tf.compat.v1.train.Saver(variables).save(sess, prefix, write_meta_graph=False)
  message = _failure(prefix, 10, fine_tuning=False)
  assert 'another net (SqueezeNet), which no --model_name here builds' in message
  assert '--model_name=SqueezeNet' not in message
