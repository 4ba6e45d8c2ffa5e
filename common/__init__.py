"""The leaf: standard-library helpers every layer may import (errors, files, caches).

Nothing here imports TensorFlow or another package of this project.
"""
