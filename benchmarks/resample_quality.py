"""Speed and quality of the project's resampling paths, per method and per path.

For each ``--resample`` method (bilinear, bicubic, lanczos) and each path of
``transforms.imaging.image`` (``ImageSpec(fast=True)``: DCT-scaled decode + OpenCV bilinear where it
applies; ``fast=False``: the Pillow reference path), on the same images:
- CPU µs per image of ``process_image`` (decode → resize → crop → JPEG → exact sums), median of
  passes;
- PSNR (dB) of the resized crop *before JPEG* against the float64 Lanczos-3 reference of the same
  crop box (``benchmarks.imageops.reference_crop``; box from ``transforms.imaging.image.crop_box``).

The pre-JPEG crop is rebuilt from the project's public functions exactly as ``process_image`` does
for an upright RGB JPEG: ``open_image`` → ``draft('RGB', (side, side))`` on the fast bilinear path
(the libjpeg decode that ``process_image`` uses there gives the same pixels; tests/test_image.py) →
RGB → ``resize_and_crop``.
"""

from __future__ import annotations

import statistics

import numpy as np

from benchmarks import imageops as ops
from benchmarks.micro import time_per_item

METHODS = ('bilinear', 'bicubic', 'lanczos')


def pre_jpeg_crop(data: bytes, spec) -> np.ndarray:
  """uint8 RGB crop that ``process_image`` would JPEG-encode (upright RGB JPEG input)."""
  from transforms.imaging import image as image_lib

  image = image_lib.open_image(data, spec.max_image_pixels)
  if (
    spec.fast
    and spec.resample == 'bilinear'
    and image.format == 'JPEG'
    and spec.resize_shorter_side > 0
  ):
    # as process_image does
    image.draft('RGB', (spec.resize_shorter_side, spec.resize_shorter_side))
  return image_lib.resize_and_crop(image.convert('RGB'), spec)


def run_quality(
  blobs: list[bytes], psnr_images: int = 40, repeats: int = 3, side: int = 256, crop: int = 256
) -> list[dict]:
  """One row per (method, path): {'method', 'path', 'us', 'psnr_db'}; raises on a failing path."""
  import cv2
  from transforms.imaging import image as image_lib

  cv2.setNumThreads(1)
  refs, geoms = [], []
  for data in blobs[:psnr_images]:
    width, height = ops.header(data)[2:4]
    box, size = image_lib.crop_box(width, height, image_lib.ImageSpec(side, crop))
    assert size == (crop, crop), size
    geoms.append(ops.Geometry(width, height, box, crop))
    refs.append(ops.reference_crop(data, geoms[-1]))
  rows = []
  for method in METHODS:
    for fast in (True, False):
      spec = image_lib.ImageSpec(
        resize_shorter_side=side, center_crop=crop, resample=method, fast=fast
      )
      us = time_per_item(lambda d, spec=spec: image_lib.process_image(d, spec), blobs, repeats)
      mses = [
        float(np.mean((pre_jpeg_crop(d, spec).astype(np.float64) - ref) ** 2))
        for d, ref in zip(blobs, refs)
      ]
      rows.append(
        {
          'method': method,
          'path': 'fast' if fast else 'reference (Pillow)',
          'us': us,
          'psnr_db': ops.psnr(statistics.fmean(mses)),
        }
      )
  return rows


def format_quality(rows: list[dict]) -> str:
  lines = [
    '| resample | path | process_image µs/image | img/s/core | PSNR dB (pre-JPEG) vs Lanczos f64 |',
    '|---|---|--:|--:|--:|',
  ]
  lines += [
    f'| {r["method"]} | {r["path"]} | {r["us"]:.0f} | {1e6 / r["us"]:.0f} | {r["psnr_db"]:.1f} |'
    for r in rows
  ]
  return '\n'.join(lines)
