"""What a converter hands to the shard writer: classes, splits and their records in order."""
import dataclasses

import numpy as np


@dataclasses.dataclass
class SplitSource:
  """One split's images in record order.

  kind 'array': payloads is uint8 [N, H, W, C]; each image is stored as PNG.
  kind 'file': payloads is a list of image file bytes or paths; JPEG/PNG bytes are kept,
    other formats become PNG, and files PIL cannot decode are skipped.
  """
  kind: str
  payloads: object
  labels: np.ndarray
  names: list = None  # per record, for warnings ('train/cat/0001.jpg')
  expect_size: tuple = None  # (width, height) every image must have, or None

  def __len__(self):
    return len(self.labels)

  def name(self, index):
    return self.names[index] if self.names else 'image %d' % index


@dataclasses.dataclass
class Plan:
  """A dataset ready to write: class names in label order and its splits in order."""
  name: str
  class_names: list
  splits: dict  # split name -> SplitSource
  default_num_shards: int = None  # per split; None: one shard per 10,000 images
  original_format: str = None  # 'png' when the official data is lossless (MNIST, CIFAR-10)
  extra_info: dict = None  # more dataset_info.json entries (ImageNet: the wnid of each label)
