"""The metadata files: stats.json, labels, TFDS, Model Garden, provenance."""
