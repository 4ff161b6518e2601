"""The classic OpenCV converter, rebuilt: the "AlexNet / ImageNet preprocessing with TFRecord" article.

What the widely copied script does (adeveloperdiary.com, "Imagenet PreProcessing using TFRecord and
Tensorflow 2.0 Data API"): ``cv2.imread``; resize so the shorter side is 256 with ``cv2.resize``
INTER_LINEAR (no antialiasing); center crop 256x256; ``cv2.imencode('.jpg', q90)``; a
``multiprocessing.Pool`` with one task per output file, each worker writing its chunk with
``tf.io.TFRecordWriter``. OpenCV's own threading is left at its default, as in the article.

Usage: ``python -m benchmarks.classic_opencv --input DIR --output DIR --workers 2``
"""

from __future__ import annotations

import multiprocessing
import os
import time

from benchmarks import classic_common as common

import cv2  # noqa: E402
import tensorflow as tf  # noqa: E402


def resize_shorter_side(img, size: int):
  h, w = img.shape[:2]
  if h < w:
    new_h, new_w = size, int(round(w * size / h))
  else:
    new_h, new_w = int(round(h * size / w)), size
  return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


def center_crop(img, size: int):
  h, w = img.shape[:2]
  top, left = (h - size) // 2, (w - size) // 2
  return img[top : top + size, left : left + size]


def write_chunk(task) -> int:
  path, chunk, shorter_side, crop, quality = task
  with tf.io.TFRecordWriter(path) as writer:
    for filename, label, synset in chunk:
      img = cv2.imread(filename)
      if shorter_side:
        img = resize_shorter_side(img, shorter_side)
      if crop:
        img = center_crop(img, crop)
      ok, buf = cv2.imencode('.jpg', img, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
      assert ok, filename
      example = common.to_example(
        os.path.basename(filename), buf.tobytes(), label, synset, img.shape[0], img.shape[1]
      )
      writer.write(example.SerializeToString())
  return len(chunk)


def main(argv=None) -> None:
  args = common.parse_args(__doc__.splitlines()[0], argv)
  files = common.listing(args.input)
  os.makedirs(args.output, exist_ok=True)
  num_shards = common.num_shards_for(len(files), args.workers)
  tasks = [
    (
      os.path.join(args.output, 'train-%.5d-of-%.5d' % (shard, num_shards)),
      files[start:end],
      args.resize_shorter_side,
      args.center_crop,
      args.jpeg_quality,
    )
    for shard, (start, end) in enumerate(common.shard_ranges(len(files), num_shards))
  ]
  process_start = time.perf_counter()
  with multiprocessing.Pool(processes=args.workers) as pool:
    written = sum(pool.map(write_chunk, tasks))
  common.report(written, process_start)


if __name__ == '__main__':
  main()
