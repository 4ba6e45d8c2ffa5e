"""Named training recipes for --preset.

A preset is a plain dict of flag values. It replaces the flags' defaults; any flag
given on the command line wins over it. The resolved values are what the run uses
and what run_config.json records.
"""

PRESETS = {
    # The recipe of the thesis, and of TF-Slim's scripts/train_lenet_on_mnist.sh:
    # plain SGD at a fixed 0.01, batch 50, no weight decay, 60k steps.
    'thesis': dict(
        optimizer='sgd',
        learning_rate=0.01,
        learning_rate_decay_type='fixed',
        batch_size=50,
        weight_decay=0.0,
        max_number_of_steps=60000,
        save_interval_secs=60,
        save_summaries_secs=60,
        log_every_n_steps=100,
    ),
    # A fast recipe for small images at native size (custom_cnn, *_cifar nets):
    # momentum SGD, 1 warm-up epoch then a cosine to zero, label smoothing, weight
    # decay, bfloat16 compute. The 7000 steps of 256 (35.8 CIFAR-10 epochs) took
    # 23.7 minutes for custom_cnn on a 2-core AVX-512 CPU (88.6 % top-1 on the JPEG
    # copy; README). Flips and 4-pixel crops come with the 'cifar' preprocessing.
    'cifar_fast': dict(
        optimizer='momentum',
        momentum=0.9,
        learning_rate=0.4,
        learning_rate_decay_type='cosine',
        end_learning_rate=0.0,
        warmup_epochs=1.0,
        batch_size=256,
        weight_decay=5e-4,
        label_smoothing=0.1,
        # Slim's 0.9997 (Inception, MobileNet) leaves the statistics near their
        # initial values after a few thousand steps; custom_cnn's own 0.9 does not.
        batch_norm_decay=0.9,
        mixed_precision='bfloat16',
        max_number_of_steps=7000,
        save_interval_secs=600,
        save_summaries_secs=60,
        log_every_n_steps=100,
    ),
    # TF-Slim's scripts/train_cifarnet_on_cifar10.sh.
    'slim_cifarnet_cifar10': dict(
        dataset_name='cifar10',
        model_name='cifarnet',
        preprocessing_name='cifarnet',
        optimizer='sgd',
        learning_rate=0.1,
        learning_rate_decay_type='exponential',
        learning_rate_decay_factor=0.1,
        num_epochs_per_decay=200,
        batch_size=128,
        weight_decay=0.004,
        max_number_of_steps=100000,
        save_interval_secs=120,
        save_summaries_secs=120,
        log_every_n_steps=100,
    ),
}


def _thesis_net_on_cifar10(model_name, steps):
  """A thesis net (its ImageNet architecture) trained on CIFAR-10 upscaled to 64x64
  with cifar_fast's recipe, within an hour of a 2-core CPU (docs/benchmarks.md has
  what each reached against the thesis).

  64x64 keeps four times the ImageNet layout's 32x32 maps (2x2 before the global
  pool, not 1x1) for a quarter of the <net>_cifar variants' cost (their output
  stride 8 makes them as costly as the ImageNet net at 128x128).
  """
  return dict(PRESETS['cifar_fast'], model_name=model_name, dataset_name='cifar10',
              dataset_split_name='train', preprocessing_name='cifar',
              train_image_size=64, max_number_of_steps=steps)


# The thesis's nets on CIFAR-10 (benchmarks/thesis_table.py --recipes=beat).
PRESETS.update({
    'inception_v1_cifar10': _thesis_net_on_cifar10('inception_v1', 2400),
    'resnet_v1_50_cifar10': _thesis_net_on_cifar10('resnet_v1_50', 1800),
    'mobilenet_v1_cifar10': _thesis_net_on_cifar10('mobilenet_v1', 1600),
})


def resolve(config, explicit=(), presets=None):
  """config with the preset named by config['preset'] filled in under explicit flags.

  config: the flags' values (slimkit.flags.config); explicit: names of the flags
  given on the command line (slimkit.flags.explicitly_set), which keep their values.
  Returns a new dict; raises ValueError for an unknown preset or a preset key that
  is not a flag.
  """
  presets = PRESETS if presets is None else presets
  name = config.get('preset')
  if not name:
    return dict(config)
  if name not in presets:
    raise ValueError('--preset: unknown %r; expected one of %s'
                     % (name, '|'.join(sorted(presets))))
  out = dict(config)
  for key, value in presets[name].items():
    if key not in config:
      raise ValueError('--preset=%s sets %r, which is not a flag' % (name, key))
    if key not in explicit:
      out[key] = value
  return out
