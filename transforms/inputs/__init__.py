"""The input: listing the image folder, its files, the label map and fingerprints."""
