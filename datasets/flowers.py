"""TF flowers: flower_photos.tgz (or its folder) -> 'train' and 'validation', JPEG kept.

Classes are the sorted sub-folder names (daisy, dandelion, roses, sunflowers, tulips).
The photos keep their original JPEG bytes and sizes, in 5 shards per split as in TF-Slim.
"""
import os

from datasets import download
from datasets import image_tree

REMOTES = [download.Remote(
    'flower_photos.tgz',
    ('http://download.tensorflow.org/example_images/flower_photos.tgz',
     'https://storage.googleapis.com/download.tensorflow.org/example_images/'
     'flower_photos.tgz'),
    'sha256', '4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c', 228813984)]
NUM_SHARDS = 5
# TF-Slim held out 350 of the 3670 photos; as a fraction it also fits partial copies.
VALIDATION_FRACTION = 350 / 3670


def build_plan(source, seed=0, validation_size=None, verify_official=True):
  """Flower photos (archive or folder) -> Plan; validation_size defaults to 350/3670."""
  if verify_official and os.path.isfile(source):
    download.check_local(source, REMOTES[0])
  return image_tree.build_plan('flowers', source, seed, validation_size,
                               VALIDATION_FRACTION, NUM_SHARDS)
