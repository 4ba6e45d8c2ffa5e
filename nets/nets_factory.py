"""Registry of the nets by name, as TF-Slim's nets_factory.

    network_fn = get_network_fn('inception_v1', num_classes=5, weight_decay=4e-5,
                                is_training=True)
    logits, end_points = network_fn(images)   # builds network_fn.model
    model = build_model('resnet_v1_50', num_classes=10, input_shape=(224, 224, 3))

Each name has one NetSpec: the builder, its fixed keyword arguments, the default
image size, the preprocessing TF-Slim's preprocessing_factory would pick, the
Keras model name (Slim's model scope) and the classifier scopes that a
fine-tune on a new label set must leave out of the restore
(--checkpoint_exclude_scopes) and usually trains first (--trainable_scopes).
"""

import collections
import inspect

from nets import alexnet
from nets import cifarnet
from nets import conv_layers
from nets import custom_cnn
from nets import inception_resnet_v2
from nets import inception_v1
from nets import inception_v2
from nets import inception_v3
from nets import inception_v4
from nets import lenet
from nets import mobilenet_v1
from nets import mobilenet_v2
from nets import mobilenet_v3
from nets import nasnet
from nets import overfeat
from nets import pnasnet
from nets import resnet_v1
from nets import resnet_v2
from nets import vgg

NetSpec = collections.namedtuple('NetSpec', [
    'fn', 'kwargs', 'default_image_size', 'preprocessing', 'model_scope',
    'logits_scopes'])


def _spec(fn, size, preprocessing, logits, **kwargs):
  # NASNet and PNASNet have no model scope: their scopes are the Slim names.
  return NetSpec(fn, kwargs, size, preprocessing, fn.model_scope,
                 tuple('%s/%s' % (fn.model_scope, s) if fn.model_scope else s
                       for s in logits))


# '_cifar' names: the small_input stem (no early stride-2 stages, output stride
# 8), default size 32 and the CIFAR preprocessing; see docs/nets.md.
networks_map = {
    'cifarnet': _spec(cifarnet.cifarnet, 32, 'cifarnet', ['logits']),
    'lenet': _spec(lenet.lenet, 28, 'lenet', ['fc4']),
    'custom_cnn': _spec(custom_cnn.custom_cnn, 32, 'cifar', ['Logits']),
    # 1.5x the widths: a larger teacher for distillation (benchmarks/distill_bench.py).
    'custom_cnn_wide': _spec(custom_cnn.custom_cnn, 32, 'cifar', ['Logits'],
                             widths=(96, 192, 384)),
    'inception_v1': _spec(inception_v1.inception_v1, 224, 'inception',
                          ['Logits']),
    'inception_v1_cifar': _spec(inception_v1.inception_v1, 32, 'cifar',
                                ['Logits'], small_input=True),
    'inception_v2': _spec(inception_v2.inception_v2, 224, 'inception',
                          ['Logits']),
    # The aux head is a classifier too: a new label set excludes both.
    'inception_v3': _spec(inception_v3.inception_v3, 299, 'inception',
                          ['Logits', 'AuxLogits']),
    'inception_v4': _spec(inception_v4.inception_v4, 299, 'inception',
                          ['Logits', 'AuxLogits']),
    'inception_resnet_v2': _spec(inception_resnet_v2.inception_resnet_v2, 299,
                                 'inception', ['Logits', 'AuxLogits']),
    'resnet_v1_50': _spec(resnet_v1.resnet_v1_50, 224, 'vgg', ['logits']),
    'resnet_v1_101': _spec(resnet_v1.resnet_v1_101, 224, 'vgg', ['logits']),
    'resnet_v1_152': _spec(resnet_v1.resnet_v1_152, 224, 'vgg', ['logits']),
    'resnet_v1_50_cifar': _spec(resnet_v1.resnet_v1_50, 32, 'cifar',
                                ['logits'], small_input=True),
    # TF-Slim's preprocessing_factory gives resnet_v2 'vgg'; its published
    # checkpoints want 'inception' at 299 (slim_checkpoint.PUBLISHED, docs/nets.md).
    'resnet_v2_50': _spec(resnet_v2.resnet_v2_50, 224, 'vgg', ['logits']),
    'resnet_v2_101': _spec(resnet_v2.resnet_v2_101, 224, 'vgg', ['logits']),
    'resnet_v2_152': _spec(resnet_v2.resnet_v2_152, 224, 'vgg', ['logits']),
    'resnet_v2_200': _spec(resnet_v2.resnet_v2_200, 224, 'vgg', ['logits']),
    'vgg_a': _spec(vgg.vgg_a, 224, 'vgg', ['fc8']),
    'vgg_16': _spec(vgg.vgg_16, 224, 'vgg', ['fc8']),
    'vgg_19': _spec(vgg.vgg_19, 224, 'vgg', ['fc8']),
    'alexnet_v2': _spec(alexnet.alexnet_v2, 224, 'vgg', ['fc8']),
    'overfeat': _spec(overfeat.overfeat, 231, 'vgg', ['fc8']),
    'mobilenet_v1': _spec(mobilenet_v1.mobilenet_v1, 224, 'inception',
                          ['Logits']),
    'mobilenet_v1_075': _spec(mobilenet_v1.mobilenet_v1, 224, 'inception',
                              ['Logits'], depth_multiplier=0.75),
    'mobilenet_v1_050': _spec(mobilenet_v1.mobilenet_v1, 224, 'inception',
                              ['Logits'], depth_multiplier=0.50),
    'mobilenet_v1_025': _spec(mobilenet_v1.mobilenet_v1, 224, 'inception',
                              ['Logits'], depth_multiplier=0.25),
    'mobilenet_v1_cifar': _spec(mobilenet_v1.mobilenet_v1, 32, 'cifar',
                                ['Logits'], small_input=True),
    # MobileNet V2 widths of the published checkpoints; below 1.0 they keep
    # Conv_1 at 1280 (finegrain_classification_mode, as TF-Slim's _035).
    'mobilenet_v2': _spec(mobilenet_v2.mobilenet_v2, 224, 'inception', ['Logits']),
    'mobilenet_v2_140': _spec(mobilenet_v2.mobilenet_v2, 224, 'inception',
                              ['Logits'], depth_multiplier=1.4),
    'mobilenet_v2_130': _spec(mobilenet_v2.mobilenet_v2, 224, 'inception',
                              ['Logits'], depth_multiplier=1.3),
    'mobilenet_v2_075': _spec(mobilenet_v2.mobilenet_v2, 224, 'inception',
                              ['Logits'], depth_multiplier=0.75,
                              finegrain_classification_mode=True),
    'mobilenet_v2_050': _spec(mobilenet_v2.mobilenet_v2, 224, 'inception',
                              ['Logits'], depth_multiplier=0.5,
                              finegrain_classification_mode=True),
    'mobilenet_v2_035': _spec(mobilenet_v2.mobilenet_v2, 224, 'inception',
                              ['Logits'], depth_multiplier=0.35,
                              finegrain_classification_mode=True),
    'mobilenet_v2_cifar': _spec(mobilenet_v2.mobilenet_v2, 32, 'cifar',
                                ['Logits'], small_input=True),
    # MobileNet V3; the published 0.75 checkpoints keep Conv_2 unscaled.
    'mobilenet_v3_large': _spec(mobilenet_v3.mobilenet_v3, 224, 'inception',
                                ['Logits'], conv_defs='large'),
    'mobilenet_v3_small': _spec(mobilenet_v3.mobilenet_v3, 224, 'inception',
                                ['Logits'], conv_defs='small'),
    'mobilenet_v3_large_075': _spec(
        mobilenet_v3.mobilenet_v3, 224, 'inception', ['Logits'],
        conv_defs='large', depth_multiplier=0.75,
        finegrain_classification_mode=True),
    'mobilenet_v3_small_075': _spec(
        mobilenet_v3.mobilenet_v3, 224, 'inception', ['Logits'],
        conv_defs='small', depth_multiplier=0.75,
        finegrain_classification_mode=True),
    'mobilenet_v3_large_minimalistic': _spec(
        mobilenet_v3.mobilenet_v3, 224, 'inception', ['Logits'],
        conv_defs='large_minimalistic'),
    'mobilenet_v3_small_minimalistic': _spec(
        mobilenet_v3.mobilenet_v3, 224, 'inception', ['Logits'],
        conv_defs='small_minimalistic'),
    'mobilenet_v3_large_cifar': _spec(mobilenet_v3.mobilenet_v3, 32, 'cifar',
                                      ['Logits'], conv_defs='large',
                                      small_input=True),
    'mobilenet_v3_small_cifar': _spec(mobilenet_v3.mobilenet_v3, 32, 'cifar',
                                      ['Logits'], conv_defs='small',
                                      small_input=True),
    # NASNet-A / PNASNet-5: no model scope; 'aux_<n>' is the aux classifier.
    'nasnet_cifar': _spec(nasnet.nasnet_cifar, 32, 'cifarnet',
                          ['final_layer', 'aux_11']),
    'nasnet_mobile': _spec(nasnet.nasnet_mobile, 224, 'inception',
                           ['final_layer', 'aux_7']),
    'nasnet_large': _spec(nasnet.nasnet_large, 331, 'inception',
                          ['final_layer', 'aux_11']),
    'pnasnet_mobile': _spec(pnasnet.pnasnet_mobile, 224, 'inception',
                            ['final_layer', 'aux_5']),
    'pnasnet_large': _spec(pnasnet.pnasnet_large, 331, 'inception',
                           ['final_layer', 'aux_7']),
}


def list_networks():
  return sorted(networks_map)


def get_spec(name):
  """The NetSpec of a name; ValueError naming the known names otherwise."""
  if name not in networks_map:
    raise ValueError('model_name: unknown network %r; available: %s'
                     % (name, ', '.join(list_networks())))
  return networks_map[name]


def default_image_size(name):
  return get_spec(name).default_image_size


def preprocessing_name(name):
  """The preprocessing TF-Slim's preprocessing_factory uses for this net."""
  return get_spec(name).preprocessing


def logits_scopes(name):
  """Slim scopes of the classifier, e.g. ('InceptionV1/Logits',)."""
  return get_spec(name).logits_scopes


def _builder_kwargs(name, spec, kwargs):
  """Fixed kwargs of the name, overridden by the caller's non-None ones."""
  merged = dict(spec.kwargs)
  merged.update((k, v) for k, v in kwargs.items() if v is not None)
  accepted = inspect.signature(spec.fn).parameters
  unknown = sorted(k for k in merged if k not in accepted)
  if unknown:
    options = sorted(k for k in accepted if k not in ('num_classes',
                                                      'input_shape'))
    raise ValueError('unknown option(s) %s for network %r; it accepts: %s'
                     % (', '.join(unknown), name, ', '.join(options)))
  return merged


def builder_defaults(name):
  """{option: default} of the name's builder, its fixed kwargs included."""
  spec = get_spec(name)
  defaults = {k: p.default for k, p in inspect.signature(spec.fn).parameters.items()
              if p.default is not inspect.Parameter.empty}
  defaults.update(spec.kwargs)
  return defaults


def build_model(name, num_classes, input_shape=None, weight_decay=0.0,
                conv_gradients=None, **kwargs):
  """Builds the named net as a keras.Model whose call returns end_points.

  Args:
    name: a key of networks_map.
    num_classes: classifier size; 0 or None gives only end_points['PreLogits'].
    input_shape: (height, width, channels); default (size, size, 3) with the
      name's default_image_size.
    weight_decay: L2 weight decay on kernels (Slim's scale: wd * sum(w**2) / 2).
    conv_gradients: 'auto' (conv gradients by the fastest exact formulation,
      measured; nets/conv_layers.py) or 'tf'/None (TensorFlow's kernels).
    **kwargs: builder options (e.g. dropout_keep_prob, batch_norm_decay,
      activation for custom_cnn); None values keep the builder's default.

  Returns:
    keras.Model named with the net's Slim model scope.
  """
  spec = get_spec(name)
  options = _builder_kwargs(name, spec, kwargs)
  if input_shape is None:
    input_shape = (spec.default_image_size, spec.default_image_size, 3)
  with conv_layers.gradients(conv_gradients):
    return spec.fn(num_classes=num_classes, input_shape=tuple(input_shape),
                   weight_decay=weight_decay, **options)


def get_network_fn(name, num_classes, weight_decay=0.0, is_training=False,
                   **kwargs):
  """Slim's get_network_fn: fn(images) -> (logits, end_points).

  The model is built on the first call from the images' static shape and kept as
  fn.model; later calls must use the same height, width and channels. With
  num_classes 0 or None the first result is end_points['PreLogits'].
  """
  spec = get_spec(name)
  _builder_kwargs(name, spec, kwargs)  # Fail on bad options before any build.

  def network_fn(images):
    shape = tuple(images.shape[1:])
    if network_fn.model is None:
      network_fn.model = build_model(name, num_classes, shape,
                                     weight_decay=weight_decay, **kwargs)
    elif shape != tuple(network_fn.model.input_shape[1:]):
      raise ValueError(
          'images: %s was built for images of shape %s, got %s; make another '
          'network_fn for another size' % (name, tuple(
              network_fn.model.input_shape[1:]), shape))
    end_points = network_fn.model(images, training=is_training)
    key = 'Logits' if num_classes else 'PreLogits'
    return end_points[key], end_points

  network_fn.model = None
  network_fn.default_image_size = spec.default_image_size
  network_fn.model_scope = spec.model_scope
  network_fn.logits_scopes = spec.logits_scopes
  network_fn.preprocessing_name = spec.preprocessing
  return network_fn
