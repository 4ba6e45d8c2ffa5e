"""Dataset converters (to sharded TFRecords) and readers."""
