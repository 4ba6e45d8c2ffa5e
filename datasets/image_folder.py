"""Users' own images: '<class>/<image>' folders (or an archive of them) -> TFRecords.

Split folders train/, validation/ (or val/) and test/ above the class folders are used
as they are; without them a seeded, class-stratified 10% goes to 'validation'. Any image
PIL can decode is accepted (JPEG and PNG kept, BMP, GIF, TIFF, WebP stored as PNG).
"""
from datasets import image_tree

REMOTES = []  # there is nothing to download: --source is required
VALIDATION_FRACTION = 0.1


def build_plan(source, seed=0, validation_size=None, verify_official=True):
  """Class folders (folder or archive) -> Plan named 'image_folder'."""
  del verify_official  # no official files to check against
  return image_tree.build_plan('image_folder', source, seed, validation_size,
                               VALIDATION_FRACTION)
