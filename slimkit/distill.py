"""Knowledge distillation: a frozen teacher's soft targets for the student.

loss = (1 - lambda) * cross-entropy(labels, student)
       + lambda * T^2 * KL(softmax(teacher / T) || softmax(student / T))

(Hinton et al., 2015; the T^2 keeps the soft term's gradients at the scale of the
hard one when T changes.) lambda is --distillation_weight, T is
--distillation_temperature.

The teacher is any net of nets_factory restored from --teacher_checkpoint_path. It
runs in inference mode (batch norm on its moving statistics, no dropout), outside
the gradient tape, and is in neither the optimizer nor the student's checkpoint, so
it never changes. It may have another architecture and input size than the
student: each training image is preprocessed twice, once for each net, with the
same per-image seed, so when both nets use the same preprocessing family (e.g. two
CIFAR-style nets) the teacher sees the same flip and crop offsets as the student.
How the teacher was trained (image size, preprocessing, activation, grayscale)
comes from the run_config.json beside its checkpoint.
"""

import tensorflow as tf

from nets import nets_factory
from preprocessing import seeds as seeds_lib
from slimkit import checkpoints
from slimkit import run_config as run_config_lib

FLAG = '--teacher_checkpoint_path'


def check_config(config):
  """One-line ValueErrors for the distillation flags."""
  teacher = config.get('teacher_model_name')
  path = config.get('teacher_checkpoint_path')
  if bool(teacher) != bool(path):
    raise ValueError('--teacher_model_name and --teacher_checkpoint_path: expected '
                     'both (distillation) or neither, got only --%s'
                     % ('teacher_model_name' if teacher else 'teacher_checkpoint_path'))
  if not teacher:
    return
  temperature = config.get('distillation_temperature')
  if temperature is None or temperature <= 0:
    raise ValueError('--distillation_temperature must be > 0, got %s' % temperature)
  weight = config.get('distillation_weight')
  if weight is None or not 0.0 <= weight <= 1.0:
    raise ValueError('--distillation_weight must be in [0, 1], got %s' % weight)
  if config.get('mixup_alpha') or config.get('cutmix_alpha'):
    raise ValueError('--mixup_alpha/--cutmix_alpha: not supported with '
                     '--teacher_model_name (the teacher would need the same mix)')


def distillation_loss(student_logits, teacher_logits, temperature,
                      global_batch_size):
  """T^2 * KL(softmax(teacher/T) || softmax(student/T)), this replica's share.

  Summed over the replica's examples and divided by the global batch, as the
  cross-entropy of slimkit.step.compute_losses: summed over replicas it is the
  mean over the batch.
  """
  t = tf.cast(temperature, tf.float32)
  log_p_teacher = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / t)
  log_p_student = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / t)
  per_example = tf.reduce_sum(
      tf.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
  return tf.nn.compute_average_loss(per_example * t * t,
                                    global_batch_size=global_batch_size)


class Teacher(object):
  """The teacher net, its weights and its preprocessing, for one training run."""

  def __init__(self, config, num_classes, input_channels):
    self.model_name = config['teacher_model_name']
    self.path = config['teacher_checkpoint_path']
    prefix = checkpoints.require_latest(self.path, FLAG)
    run_config = run_config_lib.read(prefix)
    run_config_lib.check_model_name(self.model_name, run_config,
                                    '--teacher_model_name', prefix)
    run_config_lib.check_num_classes(
        num_classes, run_config, '%s=%s: the teacher was trained for %%(trained)d '
        'classes, the student trains on %%(classes)d' % (FLAG, prefix.replace('%', '%%')))
    given = {'explicit_flags': ()}  # every setting from the teacher's run_config
    net = run_config_lib.resolve_net(given, run_config, self.model_name,
                                     config.get('teacher_image_size'))
    self.image_size = net.image_size
    self.preprocess_fn = run_config_lib.preprocess_fn(net, is_training=True)
    self.channels = run_config_lib.output_channels(net, input_channels)
    self.net_options = net.net_options
    self.prefix = prefix
    self.num_classes = num_classes
    self.model = None

  def build(self):
    """Builds the net (call inside the strategy's scope) and restores its weights."""
    self.model = nets_factory.build_model(
        self.model_name, self.num_classes,
        (self.image_size, self.image_size, self.channels), **self.net_options)
    self.model.trainable = False
    checkpoints.restore_model(self.model, self.prefix, flag=FLAG)
    return self.model

  def paired_preprocessing(self, student_fn):
    """fn(image, h, w, seed=None) -> (student image, teacher image), one seed."""
    teacher_fn, size = self.preprocess_fn, self.image_size

    def paired(image, height, width, seed=None):
      seed = seeds_lib.resolve(seed)  # one seed for both views, even unseeded
      return (student_fn(image, height, width, seed=seed),
              teacher_fn(image, size, size, seed=seed))
    return paired

  def logits(self, images):
    """Float32 logits in inference mode, without gradients."""
    end_points = self.model(images, training=False)
    return tf.stop_gradient(tf.cast(end_points['Logits'], tf.float32))

  def describe(self):
    return '%s from %s at %dx%dx%d' % (self.model_name, self.prefix, self.image_size,
                                       self.image_size, self.channels)

