"""Knowledge distillation: the loss against numpy, a frozen teacher of another
architecture and input size, and one-line errors for bad teacher flags."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest
import tensorflow as tf

from conftest import train_config
from slimkit import checkpoints
from slimkit import distill
from slimkit import hooks
from slimkit import loop
from slimkit import step
from slimkit import summaries
from slimkit import train


def numpy_kl_term(student, teacher, temperature):
  """Mean over examples of T^2 * sum p_t * (log p_t - log p_s)."""
  def log_softmax(x):
    x = x / temperature
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
  log_t, log_s = log_softmax(teacher), log_softmax(student)
  per_example = (np.exp(log_t) * (log_t - log_s)).sum(axis=-1)
  return temperature ** 2 * per_example.mean()


STUDENT = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 3.0, -2.0],
                    [-1.5, 1.0, 1.0, 0.3]], np.float32)
TEACHER = np.array([[3.0, 0.0, -1.0, 0.5], [0.0, 0.0, 4.0, -1.0],
                    [1.0, 2.0, -0.5, 0.0]], np.float32)


@pytest.mark.parametrize('temperature', [1.0, 2.0, 4.0])
def test_distillation_loss_matches_numpy(temperature):
  got = distill.distillation_loss(STUDENT, TEACHER, temperature, global_batch_size=3)
  np.testing.assert_allclose(got.numpy(), numpy_kl_term(STUDENT, TEACHER, temperature),
                             rtol=1e-5)
  # Zero when the student matches the teacher; positive otherwise.
  same = distill.distillation_loss(TEACHER, TEACHER, temperature, 3)
  np.testing.assert_allclose(same.numpy(), 0.0, atol=1e-6)
  assert got.numpy() > 0.01


def test_total_loss_mixes_cross_entropy_and_distillation_by_weight():
  labels = np.array([0, 2, 1])
  targets = step.targets_for(tf.constant(labels), 4)
  weight, temperature = 0.3, 3.0
  losses = step.compute_losses({'Logits': tf.constant(STUDENT)}, targets, [], 3,
                               (tf.constant(TEACHER), temperature, weight))
  shifted = STUDENT - STUDENT.max(axis=-1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
  cross_entropy = -log_p[np.arange(3), labels].mean()
  kl_term = numpy_kl_term(STUDENT, TEACHER, temperature)
  np.testing.assert_allclose(losses['cross_entropy'].numpy(), cross_entropy, rtol=1e-5)
  np.testing.assert_allclose(losses['distillation_loss'].numpy(), kl_term, rtol=1e-5)
  np.testing.assert_allclose(losses['total_loss'].numpy(),
                             (1 - weight) * cross_entropy + weight * kl_term, rtol=1e-5)


def make_config(train_dir, dataset_dir, **changes):
  return train_config(train_dir, dataset_dir, **dict(
      dict(dataset_name='cifar10', batch_size=8, learning_rate=0.05,
           log_every_n_steps=1), **changes))


@pytest.fixture(scope='module')
def teacher_dir(tmp_path_factory, tiny_cifar_dir):
  """CifarNet trained 2 steps at 40x40: another net and input size than LeNet's 28."""
  train_dir = tmp_path_factory.mktemp('teacher')
  train.run(make_config(train_dir, tiny_cifar_dir, model_name='cifarnet',
                        train_image_size=40, max_number_of_steps=2))
  return str(train_dir)


def soft_target_loss(state, batches):
  """The student's mean distillation loss on the teacher's outputs over batches."""
  temperature = state.config['distillation_temperature']
  total = 0.0
  for (student_images, teacher_images), _ in batches:
    student = state.model(student_images, training=False)['Logits']
    total += float(distill.distillation_loss(
        student, state.teacher.logits(teacher_images), temperature,
        student_images.shape[0]))
  return total / len(batches)


def test_teacher_stays_frozen_while_the_student_learns_its_outputs(tmp_path,
                                                                   tiny_cifar_dir,
                                                                   teacher_dir):
  before = checkpoints.read_variables(checkpoints.latest(teacher_dir))
  config = make_config(tmp_path / 'student', tiny_cifar_dir, model_name='lenet',
                       max_number_of_steps=8, teacher_model_name='cifarnet',
                       teacher_checkpoint_path=teacher_dir,
                       distillation_temperature=4.0, distillation_weight=1.0,
                       learning_rate=0.01)
  data = train.training_input(config)
  state = train.build_state(config, tf.distribute.get_strategy(), data)
  state.initialize()
  teacher = state.teacher
  assert (teacher.image_size, data.image_size) == (40, 28)
  assert not teacher.model.trainable_variables
  assert not {id(v) for v in teacher.model.variables} & {
      id(v) for v in state.variables_to_train}
  restored = {v.path: v.numpy() for v in teacher.model.variables}
  for path, value in before.items():
    np.testing.assert_array_equal(restored[path], value, err_msg=path)
  # A fixed set of paired (student, teacher) batches to measure on.
  batches = list(data.dataset_fn(tf.distribute.InputContext()).take(4))
  untaught = soft_target_loss(state, batches)
  writer = summaries.Writer(config['train_dir'])
  saver = hooks.Saver(config['save_interval_steps'], config['save_interval_secs'])
  runner = step.Runner(state, distillation=(config['distillation_temperature'],
                                            config['distillation_weight']),
                       jit_compile=config['jit_compile'])
  steps = loop.Loop(runner, [hooks.Summaries(writer, config['save_summaries_steps'],
                                             config['save_summaries_secs'],
                                             distilling=True), saver],
                    max_steps=config['max_number_of_steps'])
  assert steps.run(data.dataset_fn) == 8
  writer.close()
  # Learning: with weight 1 the only signal is the teacher's, and the student's
  # loss on the teacher's outputs falls.
  taught = soft_target_loss(state, batches)
  assert taught < 0.5 * untaught, (untaught, taught)
  for v in teacher.model.variables:  # batch norm statistics included
    np.testing.assert_array_equal(v.numpy(), restored[v.path], err_msg=v.path)
  student = checkpoints.read_variables(saver.path)
  assert set(student) == {v.path for v in checkpoints.model_variables(state.model)}
  soft = summaries.read_scalars(config['train_dir'])['losses/distillation_loss']
  assert all(np.isfinite(value) and value > 0 for _, value in soft)
  after = checkpoints.read_variables(checkpoints.latest(teacher_dir))
  assert set(after) == set(before)


def test_distillation_changes_the_update(tmp_path, tiny_cifar_dir, teacher_dir):
  common = dict(model_name='lenet', max_number_of_steps=2)
  plain = train.run(make_config(tmp_path / 'plain', tiny_cifar_dir, **common))
  taught = train.run(make_config(tmp_path / 'taught', tiny_cifar_dir,
                                 teacher_model_name='cifarnet',
                                 teacher_checkpoint_path=teacher_dir,
                                 distillation_weight=0.9, **common))
  a = checkpoints.read_variables(plain['checkpoint'])['fc4/kernel']
  b = checkpoints.read_variables(taught['checkpoint'])['fc4/kernel']
  assert not np.allclose(a, b)


@pytest.mark.parametrize('changes, message', [
    ({'teacher_model_name': 'cifarnet'},
     '--teacher_model_name and --teacher_checkpoint_path: expected both'),
    ({'teacher_model_name': 'cifarnet', 'teacher_checkpoint_path': '/nonexistent'},
     '--teacher_checkpoint_path'),
    ({'teacher_model_name': 'lenet', 'teacher_checkpoint_path': 'TEACHER'},
     '--teacher_model_name=lenet but .* was trained as cifarnet'),
    ({'teacher_model_name': 'cifarnet', 'teacher_checkpoint_path': 'TEACHER',
      'distillation_weight': 1.5}, '--distillation_weight must be in'),
    ({'teacher_model_name': 'cifarnet', 'teacher_checkpoint_path': 'TEACHER',
      'mixup_alpha': 0.2}, 'not supported with --teacher_model_name'),
    ({'teacher_model_name': 'cifarnet', 'teacher_checkpoint_path': 'TEACHER',
      'labels_offset': 5}, 'trained for 10 classes, the student trains on 5'),
])
def test_bad_teacher_flags_fail_before_training(tmp_path, tiny_cifar_dir, teacher_dir,
                                                changes, message):
  if changes.get('teacher_checkpoint_path') == 'TEACHER':
    changes = dict(changes, teacher_checkpoint_path=teacher_dir)
  config = make_config(tmp_path / 'bad', tiny_cifar_dir, model_name='lenet',
                       max_number_of_steps=1, **changes)
  with pytest.raises((ValueError, FileNotFoundError), match=message):
    train.run(config)
  assert checkpoints.latest(config['train_dir']) is None
