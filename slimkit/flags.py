"""Command-line flags, defined once and shared by the scripts.

TF-Slim's names and defaults are kept; additions are marked '(new)' in their help
and described in docs/training.md and docs/evaluation.md. Each group has a definer; the scripts call the ones they need
and hand `config(FLAGS)`, a plain dict of values, to the library, which never reads
FLAGS itself. Nothing here imports TensorFlow, so `--help` (slimkit/usage.py) is
instant; each flag carries its help group (TF-Slim's: General, Optimization,
Learning rate, Dataset, Fine-tuning) as `flag.help_group`.
"""

import functools

from absl import flags

_DEFINED = []  # names of the flags defined here, in definition order
_TARGET = [flags.FLAGS]  # where the definers write; see define_into()
_GROUP = ['General']  # the help group of the flags being defined; see _group()


def _define(kind, name, default, help_text, *args, **kwargs):
  target = _TARGET[0]
  if name in target:  # a shared group defined twice into one FlagValues
    if target[name].default != default:
      raise ValueError('flag --%s defined twice with different defaults (%r, %r): '
                       'train and eval flags cannot share one FlagValues'
                       % (name, target[name].default, default))
    return
  kwargs['flag_values'] = target
  if kind == 'enum':  # absl takes the choices before the help text
    flags.DEFINE_enum(name, default, args[0], help_text, **kwargs)
  else:
    getattr(flags, 'DEFINE_' + kind)(name, default, help_text, *args, **kwargs)
  target[name].help_group = _GROUP[0]
  if name not in _DEFINED:
    _DEFINED.append(name)


def _group(name):
  """The flags defined next are listed under `name` by --help."""
  _GROUP[0] = name


def define_into(flag_values, definer):
  """Runs a definer against another FlagValues (tests, tools) and returns it."""
  _TARGET.insert(0, flag_values)
  try:
    definer()
  finally:
    _TARGET.pop(0)
  return flag_values


# Enum choices as the modules that implement them list them (slimkit.optimizers,
# slimkit.learning_rate, nets.custom_cnn, preprocessing.grayscale and .filters;
# tests/test_project.py checks they agree), written out because those modules
# import TensorFlow.
OPTIMIZERS = ['adadelta', 'adagrad', 'adam', 'adamw', 'ftrl', 'momentum', 'rmsprop',
              'sgd']
DECAY_TYPES = ['fixed', 'exponential', 'polynomial', 'cosine']
ACTIVATIONS = ['relu', 'elu', 'tanh', 'sigmoid', 'swish', 'leaky_relu']
GRAYSCALE_FORMULAS = ['rec601', 'rec709', 'mean']
IMAGE_FILTERS = ['median', 'mean', 'trimmed_mean', 'trimmed_mean_quarter',
                 'closest_to_mean', 'adaptive_mean']
EVAL_TTA = ['none', 'flip', 'flip_translate']  # slimkit.evaluate.TTA_VIEWS


def _define_labels_offset():
  _define('integer', 'labels_offset', 0,
          'An offset for the labels in the dataset. Useful when a model was trained '
          'with a background class (1001 ImageNet classes) and is used with 1000.',
          lower_bound=0)


def define_dataset_flags(split_name, batch_size):
  _group('Dataset')
  _define('string', 'dataset_name', 'imagenet', 'The name of the dataset to load.')
  _define('string', 'dataset_split_name', split_name, 'The name of the split to use.')
  _define('string', 'dataset_dir', None,
          'The directory where the dataset files are stored (as written by '
          'download_and_convert_data.py).')
  _define_labels_offset()
  _define('integer', 'batch_size', batch_size,
          'The number of samples in each batch (global, over all replicas).',
          lower_bound=1)
  _group('General')
  _define('integer', 'num_readers', 4,
          'The number of parallel readers that read data from the dataset.',
          lower_bound=1)
  _define('integer', 'num_preprocessing_threads', 4,
          'The number of threads used to create the batches.', lower_bound=1)


def define_model_flags():
  """The net and its input transforms, plus how training/eval computes."""
  define_net_flags()
  _group('General')
  _define('enum', 'mixed_precision', None,
          '(new) Compute in bfloat16 (CPUs with AVX-512 bf16, TPUs, recent GPUs) or '
          'float16 (GPUs, with loss scaling); variables stay float32. float32 turns '
          'it off (e.g. over a --preset that sets it).',
          ['bfloat16', 'float16', 'float32'])
  _define('enum', 'jit_compile', 'auto',
          '(new) Compile the step with XLA. auto: training tries both on its first '
          'steps and keeps the faster (cached per machine, net, batch and '
          'precision; short runs and multi-process runs go without); evaluation '
          'compiles only with true.',
          ['auto', 'true', 'false'])
  _define('bool', 'clone_on_cpu', False, 'Use CPUs to deploy clones.')


def define_net_flags():
  """The net, its weights' averages and its input transforms (train, eval, export)."""
  _group('Dataset')  # as TF-Slim's, which listed the net among the dataset flags
  _define('string', 'model_name', 'inception_v3', 'The name of the architecture.')
  _define('string', 'preprocessing_name', None,
          'The name of the preprocessing to use. If left as None, the model_name '
          'flag is used.')
  _define('bool', 'use_grayscale', False,
          'Whether to convert input images to grayscale.')
  _define('enum', 'grayscale_formula', 'rec601',
          '(new) Luma weights for --use_grayscale: Rec. 601, Rec. 709 or the plain '
          'mean.', GRAYSCALE_FORMULAS)
  _define('enum', 'image_filter', None,
          '(new) Noise filter applied to each input image before preprocessing.',
          IMAGE_FILTERS)
  _define('integer', 'filter_size', 3,
          '(new) Window size (odd) of --image_filter.', lower_bound=1)
  _define('enum', 'activation', None,
          '(new) Activation of custom_cnn (its default when unset).', ACTIVATIONS)
  _group('Learning rate')
  _define('float', 'moving_average_decay', None,
          'The decay to use for the moving average. If left as None, then moving '
          'averages are not used.')


def define_train_flags():
  """Every flag of TF-Slim's train_image_classifier.py, plus the (new) ones."""
  _group('General')
  _define('string', 'master', '', 'The address of the TensorFlow master to use.')
  _define('string', 'train_dir', '/tmp/tfmodel/',
          'Directory where checkpoints and event logs are written to.')
  _define('float', 'warmup_epochs', 0,
          'Linearly warm up the learning rate from 0 over this many epochs.')
  _define('integer', 'num_clones', 1,
          'Number of model clones to deploy (replicas of the model on this machine: '
          'GPUs, or logical CPU devices with --clone_on_cpu).', lower_bound=1)
  _define('integer', 'worker_replicas', 1, 'Number of worker replicas.',
          lower_bound=1)
  _define('integer', 'num_ps_tasks', 0,
          'The number of parameter servers. If the value is 0, then the parameters '
          'are handled locally by the worker.', lower_bound=0)
  _define('integer', 'log_every_n_steps', 10,
          'The frequency with which logs are printed.', lower_bound=1)
  _define('integer', 'save_summaries_secs', 600,
          'The frequency with which summaries are saved, in seconds.')
  _define('integer', 'save_interval_secs', 600,
          'The frequency with which the model is saved, in seconds.')
  _define('integer', 'save_summaries_steps', None,
          '(new) Save summaries every N steps instead of every N seconds.',
          lower_bound=1)
  _define('integer', 'save_interval_steps', None,
          '(new) Save a checkpoint every N steps instead of every N seconds.',
          lower_bound=1)
  _define('integer', 'max_checkpoints_to_keep', 5,
          '(new) Older checkpoints are deleted once a newer one is safely written.',
          lower_bound=1)
  _define('integer', 'task', 0, 'Task id of the replica running the training.',
          lower_bound=0)
  _define('string', 'worker_hosts', None,
          '(new) Comma-separated host:port of every worker, in --task order; builds '
          'TF_CONFIG for --worker_replicas > 1 when TF_CONFIG is unset.')
  _define('integer', 'random_seed', None,
          '(new) Seed for initialisation, shuffling and augmentation; set it for a '
          'reproducible run.')
  _define('bool', 'summarize_histograms', False,
          '(new) Also write a histogram of every trainable weight (slower).')
  _define('string', 'preset', None,
          '(new) Named recipe (see slimkit/presets.py) that sets defaults; flags '
          'given on the command line win.')
  define_dataset_flags('train', 32)
  define_model_flags()
  _define('enum', 'conv_gradients', 'auto',
          '(new) How conv layers compute their gradients: auto = the fastest exact '
          'formulation for each layer shape, measured once per machine and cached '
          '(nets/conv_grad_auto.py); tf = TensorFlow\'s own gradient kernels.',
          ['auto', 'tf'])
  _group('Optimization')
  _define('float', 'weight_decay', 0.00004,
          'The weight decay on the model weights.')
  _define('enum', 'optimizer', 'rmsprop', 'The name of the optimizer.', OPTIMIZERS)
  _define('float', 'adadelta_rho', 0.95, 'The decay rate for adadelta.')
  _define('float', 'adagrad_initial_accumulator_value', 0.1,
          'Starting value for the AdaGrad accumulators.')
  _define('float', 'adam_beta1', 0.9,
          'The exponential decay rate for the 1st moment estimates.')
  _define('float', 'adam_beta2', 0.999,
          'The exponential decay rate for the 2nd moment estimates.')
  _define('float', 'opt_epsilon', 1.0, 'Epsilon term for the optimizer.')
  _define('float', 'ftrl_learning_rate_power', -0.5, 'The learning rate power.')
  _define('float', 'ftrl_initial_accumulator_value', 0.1,
          'Starting value for the FTRL accumulators.')
  _define('float', 'ftrl_l1', 0.0, 'The FTRL l1 regularization strength.')
  _define('float', 'ftrl_l2', 0.0, 'The FTRL l2 regularization strength.')
  _define('float', 'momentum', 0.9,
          'The momentum for the MomentumOptimizer and RMSPropOptimizer.')
  _define('float', 'rmsprop_momentum', 0.9, 'Momentum.')
  _define('float', 'rmsprop_decay', 0.9, 'Decay term for RMSProp.')
  _define('integer', 'quantize_delay', -1,
          'Number of steps to start quantized training. Set to -1 would disable '
          'quantized training.')
  _group('Learning rate')
  _define('enum', 'learning_rate_decay_type', 'exponential',
          'Specifies how the learning rate is decayed.', DECAY_TYPES)
  _define('float', 'learning_rate', 0.01, 'Initial learning rate.')
  _define('float', 'end_learning_rate', 0.0001,
          'The minimal end learning rate used by a polynomial decay learning rate.')
  _define('float', 'label_smoothing', 0.0, 'The amount of label smoothing.')
  _define('float', 'learning_rate_decay_factor', 0.94,
          'Learning rate decay factor.')
  _define('float', 'num_epochs_per_decay', 2.0,
          'Number of epochs after which learning rate decays.')
  _define('bool', 'sync_replicas', False,
          'Whether or not to synchronize the replicas during training.')
  _define('integer', 'replicas_to_aggregate', 1,
          'The Number of gradients to collect before updating params.',
          lower_bound=1)
  _group('Dataset')
  _define('integer', 'train_image_size', None, 'Train image size',
          lower_bound=1)
  _define('integer', 'max_number_of_steps', None,
          'The maximum number of training steps.',
          lower_bound=0)
  _group('Fine-tuning')
  _define('string', 'checkpoint_path', None,
          'The path to a checkpoint from which to fine-tune.')
  _define('string', 'checkpoint_exclude_scopes', None,
          'Comma-separated list of scopes of variables to exclude when restoring '
          'from a checkpoint.')
  _define('string', 'trainable_scopes', None,
          'Comma-separated list of scopes to filter the set of variables to train. '
          'By default, None would train all the variables.')
  _define('bool', 'ignore_missing_vars', False,
          'When restoring a checkpoint would ignore missing variables.')
  _group('Augmentation (new)')  # on top of what the preprocessing itself does
  _define('integer', 'pad_crop', 0,
          '(new) Pad by N pixels and crop back at random. For the cifar and cifarnet '
          'preprocessings it sets their own padding (cifarnet keeps Slim\'s zero '
          'padding) instead of adding a second shift.', lower_bound=0)
  _define('float', 'color_jitter', 0.0,
          '(new) Strength of random brightness/contrast/saturation jitter (0 = off).',
          lower_bound=0.0)
  _define('float', 'cutout_size', 0.0,
          '(new) Random erasing: side of the erased square as a fraction of the image '
          '(0 = off).', lower_bound=0.0, upper_bound=1.0)
  _define('float', 'cutout_prob', 1.0,
          '(new) Probability of random erasing per image.', lower_bound=0.0,
          upper_bound=1.0)
  _group('Learning rate')
  _define('float', 'batch_norm_decay', None,
          '(new) Decay of the batch norm moving averages (default: the net\'s own, as '
          'in TF-Slim: 0.9997 Inception V1 and MobileNet V1, 0.997 ResNet, 0.9 '
          'custom_cnn). Runs of a few thousand steps need 0.99 or less, or evaluation '
          'uses statistics that never caught up with the weights.',
          lower_bound=0.0)
  _group('Distillation (new)')
  _define('string', 'teacher_model_name', None,
          '(new) Distil from this net of nets_factory (with '
          '--teacher_checkpoint_path); it may differ from --model_name.')
  _define('string', 'teacher_checkpoint_path', None,
          '(new) The teacher\'s checkpoint or train dir; never updated.')
  _define('integer', 'teacher_image_size', None,
          '(new) Teacher input size (default: from its run_config.json, else its '
          'net\'s default).', lower_bound=1)
  _define('float', 'distillation_temperature', 4.0,
          '(new) Softmax temperature T of teacher and student (2 to 5 typical).')
  _define('float', 'distillation_weight', 0.3,
          '(new) lambda: loss = (1 - lambda) * cross-entropy + lambda * T^2 * '
          'KL(teacher || student).')
  _group('Augmentation (new)')
  _define('float', 'mixup_alpha', 0.0, '(new) Mixup Beta(alpha, alpha) (0 = off).',
          lower_bound=0.0)
  _define('float', 'cutmix_alpha', 0.0, '(new) CutMix Beta(alpha, alpha) (0 = off).',
          lower_bound=0.0)


def define_eval_flags():
  """Every flag of TF-Slim's eval_image_classifier.py, plus the (new) ones."""
  _group('General')
  _define('integer', 'max_num_batches', None,
          'Max number of batches to evaluate; by default use all.',
          lower_bound=1)
  _define('string', 'master', '', 'The address of the TensorFlow master to use.')
  _define('string', 'checkpoint_path', '/tmp/tfmodel/',
          'The directory where the model was written to or an absolute path to a '
          'checkpoint file.')
  _define('string', 'eval_dir', None,
          'Directory where the results are saved to. (new) Never the train dir: '
          'given as the train dir (as TF-Slim\'s scripts do), or unset (TF-Slim: '
          '/tmp/tfmodel/), it is <train dir>/eval, beside the checkpoints.')
  _define('integer', 'eval_image_size', None, 'Eval image size',
          lower_bound=1)
  _define('bool', 'quantize', False, 'whether to use quantized graph or not.')
  _define('integer', 'eval_interval_secs', None,
          '(new) Keep evaluating each new checkpoint, polling this often; unset = '
          'evaluate once, as TF-Slim.',
          lower_bound=1)
  _define('integer', 'timeout', None,
          '(new) With --eval_interval_secs: stop after this many seconds without a '
          'new checkpoint.',
          lower_bound=1)
  _define('enum', 'eval_tta', 'none',
          '(new) Test-time augmentation: average the logits of views of each '
          'preprocessed image. flip: the image and its left-right mirror (2 '
          'forward passes); flip_translate: those two at weight 1/4 each, and the '
          'image shifted by 1 pixel down-right and up-left (borders reflected) '
          'and their mirrors at 1/8 each (6 passes).', EVAL_TTA)
  define_dataset_flags('test', 100)
  define_model_flags()


def define_export_flags():
  """TF-Slim's export_inference_graph.py flags (no video nets here), plus (new) ones."""
  define_net_flags()
  _group('General')
  _define('bool', 'is_training', False,
          'Whether to save out a training-focused version of the model (not '
          'supported: the export serves inference).')
  _define('integer', 'image_size', None,
          'The image size to use; default: the train image size of the checkpoint\'s '
          'run_config.json, else the net\'s default.', lower_bound=1)
  _define('integer', 'batch_size', None,
          'Batch size for the exported model. Defaulted to "None" so batch size can be '
          'specified at model runtime.', lower_bound=1)
  _group('Dataset')
  _define('string', 'dataset_name', 'imagenet',
          'The name of the dataset to use with the model.')
  _define_labels_offset()
  _group('General')
  _define('string', 'output_file', '',
          'Where to save the resulting SavedModel (a directory).')
  _group('Dataset')
  _define('string', 'dataset_dir', None,
          'Directory of the converted dataset: its labels.txt names the classes and '
          'its dataset_info.json gives the class count. Unset, without a train run\'s '
          'run_config.json: --dataset_name=imagenet gives 1001 numbered classes.')
  _group('General')
  _define('bool', 'quantize', False,
          'With --tflite: dynamic-range int8 weights in model.tflite.')
  _define('bool', 'write_text_graphdef', False,
          'Also write the serving_default GraphDef as text (graph.pbtxt).')
  _define('string', 'checkpoint_path', None,
          '(new) Checkpoint (or train dir: its newest) whose weights are exported; '
          'unset exports freshly initialised weights.')
  _define('bool', 'tflite', False,
          '(new) Also write model.tflite (the predict_images signature).')


def config(flag_values):
  """The values of the flags defined here, as a plain dict."""
  return {name: flag_values[name].value for name in _DEFINED if name in flag_values}


def defaults(flag_values):
  """The defaults of the flags defined here, as a plain dict (ignores parsing)."""
  return {name: flag_values[name].default for name in _DEFINED if name in flag_values}


def eval_defaults():
  """The eval flags' defaults: what evaluate.run assumes for a key it is not given."""
  return dict(_eval_defaults())


@functools.lru_cache(maxsize=None)
def _eval_defaults():
  # Defining the flags into a FlagValues of their own: once per process, not once
  # per evaluate.run / resolve / Evaluator call.
  return defaults(define_into(flags.FlagValues(), define_eval_flags))


def explicitly_set(flag_values):
  """Names of the flags given on the command line (they win over presets)."""
  return {name for name in _DEFINED if name in flag_values and flag_values[name].present}
