"""Per-net input transforms (TF-Slim's preprocessing_factory) and augmentation."""
