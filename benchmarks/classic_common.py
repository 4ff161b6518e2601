"""Pieces shared by the two classic converters rebuilt for comparison (classic_tf, classic_opencv).

Both originals list ``root/<class>/*``, label classes in sorted order, split the file list into
contiguous shard ranges with ``np.linspace`` and build a tf.train.Example with the
build_imagenet_data.py keys. Shard count: ~1 per 1024 images, rounded up to a multiple of the
number of workers (build_imagenet_data.py requires num_shards % num_threads == 0).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from benchmarks.synth import list_images

START_TIME = time.perf_counter()  # set at first import: scripts report their own start-up cost


def num_shards_for(num_images: int, workers: int) -> int:
  """~1 shard per 1024 images, at least ``workers``, a multiple of ``workers``."""
  shards = max(1, math.ceil(num_images / 1024))
  return workers * math.ceil(shards / workers)


def shard_ranges(num_items: int, num_shards: int) -> list[tuple[int, int]]:
  """Contiguous [start, end) index ranges, as build_imagenet_data.py computes them."""
  spacing = np.linspace(0, num_items, num_shards + 1).astype(int)
  return [(int(spacing[i]), int(spacing[i + 1])) for i in range(num_shards)]


def int64_feature(value):
  import tensorflow as tf

  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def bytes_feature(value: bytes):
  import tensorflow as tf

  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def to_example(filename: str, encoded: bytes, label: int, synset: str, height: int, width: int):
  """tf.train.Example with the keys of build_imagenet_data.py's _convert_to_example."""
  import tensorflow as tf

  return tf.train.Example(
    features=tf.train.Features(
      feature={
        'image/height': int64_feature(height),
        'image/width': int64_feature(width),
        'image/colorspace': bytes_feature(b'RGB'),
        'image/channels': int64_feature(3),
        'image/class/label': int64_feature(label),
        'image/class/synset': bytes_feature(synset.encode()),
        'image/format': bytes_feature(b'JPEG'),
        'image/filename': bytes_feature(filename.encode()),
        'image/encoded': bytes_feature(encoded),
      }
    )
  )


def parse_args(description: str, argv=None) -> argparse.Namespace:
  """--input, --output, --workers, --resize_shorter_side (0 = keep bytes), --center_crop, --jpeg_quality."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument('--input', required=True)
  parser.add_argument('--output', required=True)
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument('--resize_shorter_side', type=int, default=256)
  parser.add_argument('--center_crop', type=int, default=256)
  parser.add_argument('--jpeg_quality', type=int, default=90)
  return parser.parse_args(argv)


def listing(root: str) -> list[tuple[str, int, str]]:
  """(path, label, synset) for every image, sorted by path."""
  return [(str(path), label, path.parent.name) for path, label in list_images(Path(root))]


def report(num_images: int, process_start: float) -> None:
  """Print the script's own timing as one JSON line: start-up (imports, listing) and processing."""
  end = time.perf_counter()
  print(
    json.dumps(
      {
        'images': num_images,
        'startup_s': process_start - START_TIME,
        'process_s': end - process_start,
      }
    )
  )
