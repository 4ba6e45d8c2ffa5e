"""Image classification nets with TF-Slim's names, as Keras 3 models."""
