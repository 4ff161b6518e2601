"""Micro-benchmark of per-image decode / resize / encode / statistics options, single thread.

For each option: CPU µs per image (``time.process_time``, median of ``repeats`` passes over the same
in-memory images, OpenCV pinned to one thread) and, for resize paths, PSNR of the crop against the
float64 Lanczos-3 reference (before JPEG). Input for the converter's fast path; see
benchmarks/RESULTS.md for the numbers and the recommended combination.

Usage: ``python -m benchmarks.micro [--num_images 2000] [--sample 300] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from typing import Callable

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from benchmarks import imageops as ops
from benchmarks.synth import list_images, synthesize

SHORTER_SIDE = 256
CROP = 256
QUALITY = 90
PSNR_IMAGES = 60  # the reference is slow (float64 einsum): PSNR on the first images only


def time_per_item(fn: Callable, items: list, repeats: int) -> float:
  """Median over ``repeats`` passes of CPU seconds per item for ``fn(item)``, in µs."""
  passes = []
  for _ in range(repeats):
    start = time.process_time()
    for item in items:
      fn(item)
    passes.append((time.process_time() - start) / len(items))
  return statistics.median(passes) * 1e6


def aggregate_psnr(fn: Callable, items: list, refs: list[np.ndarray]) -> float:
  """PSNR (dB) of the mean squared error over the first len(refs) items against their references."""
  mses = [
    float(np.mean((fn(item).astype(np.float64) - ref) ** 2)) for item, ref in zip(items, refs)
  ]
  return ops.psnr(statistics.fmean(mses))


def resize_paths() -> dict[str, Callable]:
  """name -> fn((data, geometry)) -> RGB (CROP, CROP, 3) uint8."""
  S = SHORTER_SIDE
  return {
    'Pillow plain BILINEAR (full decode, whole image)': lambda it: ops.pil_plain_bilinear(*it),
    'Pillow draft + resize(box) BILINEAR': lambda it: ops.pil_draft_box(
      *it, S, Image.Resampling.BILINEAR
    ),
    'Pillow draft + resize(box) BICUBIC': lambda it: ops.pil_draft_box(
      *it, S, Image.Resampling.BICUBIC
    ),
    'Pillow draft + resize(box) LANCZOS': lambda it: ops.pil_draft_box(
      *it, S, Image.Resampling.LANCZOS
    ),
    'Pillow draft + cv2 INTER_LINEAR on box': lambda it: ops.pil_draft_cv2_linear(*it, S),
    'cv2 IMREAD_REDUCED + INTER_LINEAR on box': lambda it: ops.cv2_reduced(*it, S),
    'cv2 IMREAD_REDUCED + warpAffine LINEAR, exact box': lambda it: ops.cv2_reduced(
      *it, S, warp=True
    ),
    'cv2 IMREAD_REDUCED + INTER_AREA on box': lambda it: ops.cv2_reduced(*it, S, cv2.INTER_AREA),
    'cv2 full decode + INTER_LINEAR whole (AlexNet article)': lambda it: ops.cv2_full_linear(
      *it, S
    ),
    'simplejpeg pow2 + cv2 INTER_LINEAR on box': lambda it: ops.simplejpeg_linear(*it, S),
    'simplejpeg pow2 + warpAffine LINEAR, exact box': lambda it: ops.simplejpeg_linear(
      *it, S, warp=True
    ),
    'simplejpeg M/8 scale + cv2 INTER_LINEAR on box': lambda it: ops.simplejpeg_linear(
      *it, S, False
    ),
  }


def decoders() -> dict[str, Callable]:
  """name -> fn((data, geometry)) -> decoded array at the power-of-two DCT scale (no resize)."""

  def scale(g):
    return ops.dct_scale(g.width, g.height, SHORTER_SIDE)

  def pil(it):
    im = Image.open(io.BytesIO(it[0]))
    s = scale(it[1])
    im.draft('RGB', (-(-it[1].width // s), -(-it[1].height // s)))
    im.load()
    return im

  def sj(it, **kw):
    s = scale(it[1])
    return simplejpeg.decode_jpeg(
      it[0], 'RGB', min_height=-(-it[1].height // s), min_width=-(-it[1].width // s), **kw
    )

  return {
    'Pillow open + draft + load (RGB image)': pil,
    'cv2.imdecode IMREAD_REDUCED_COLOR_s (BGR)': lambda it: cv2.imdecode(
      np.frombuffer(it[0], np.uint8), ops._REDUCED[scale(it[1])] | cv2.IMREAD_IGNORE_ORIENTATION
    ),
    'simplejpeg.decode_jpeg pow2 (RGB)': sj,
    'simplejpeg.decode_jpeg pow2, fastdct + fastupsample': lambda it: sj(
      it, fastdct=True, fastupsample=True
    ),
  }


def _pil_encode(arr: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, 'JPEG', quality=QUALITY)
  return buf.getvalue()


def encoders() -> dict[str, Callable]:
  """name -> fn(RGB array) -> JPEG bytes (4:2:0, quality QUALITY). cv2 gets BGR, as its decode gives."""
  return {
    'Pillow save JPEG': _pil_encode,
    'simplejpeg.encode_jpeg': lambda a: simplejpeg.encode_jpeg(a, QUALITY, 'RGB', '420'),
    'cv2.imencode (BGR input)': lambda a: cv2.imencode(
      '.jpg', a, [cv2.IMWRITE_JPEG_QUALITY, QUALITY]
    )[1],
  }


def _pil_hist(arr: np.ndarray) -> list[int]:
  return Image.fromarray(arr).histogram()


def stats_options() -> dict[str, Callable]:
  """name -> fn((rgb_array, stored_jpeg)) -> 768-bin histogram or sums (for mean/std per channel)."""
  from transforms.imaging.image import channel_sums, stored_pixel_sums

  return {
    'stored JPEG: simplejpeg decode + exact channel sums (the project)': lambda it: (
      stored_pixel_sums(it[1])
    ),
    'pre-encode array: exact channel sums (transforms.imaging.image.channel_sums)': lambda it: (
      channel_sums(it[0])
    ),
    'stored JPEG: Pillow decode + histogram()': lambda it: Image.open(
      io.BytesIO(it[1])
    ).histogram(),
    'stored JPEG: simplejpeg decode + np.bincount': lambda it: _bincount(
      simplejpeg.decode_jpeg(it[1])
    ),
    'pre-encode array: Image.fromarray + histogram()': lambda it: _pil_hist(it[0]),
    'pre-encode array: np.bincount per channel': lambda it: _bincount(it[0]),
    'pre-encode array: cv2.calcHist per channel': lambda it: [
      cv2.calcHist([it[0]], [c], None, [256], [0, 256]) for c in range(3)
    ],
  }


def _bincount(arr: np.ndarray) -> list[np.ndarray]:
  flat = arr.reshape(-1, 3)
  return [np.bincount(flat[:, c], minlength=256) for c in range(3)]


def recommended(item) -> bytes:
  """The fastest correct combination measured here, end to end from bytes to stored JPEG + stats.

  Pillow header probe (format, mode, size, EXIF orientation; CMYK/YCCK and non-JPEG go to Pillow)
  → simplejpeg decode at the power-of-two scale from ``dct_scale`` → INTER_LINEAR on the crop box
  (< 2x) → simplejpeg encode → cv2.calcHist on the pre-encode crop.
  """
  data = item[0]
  fmt, mode, width, height, orientation = ops.header(data)
  assert fmt == 'JPEG' and mode in ('RGB', 'L') and orientation == 1, (
    'benchmark data are plain JPEGs'
  )
  crop = ops.simplejpeg_linear(data, ops.geometry(width, height, SHORTER_SIDE, CROP), SHORTER_SIDE)
  encoded = simplejpeg.encode_jpeg(crop, QUALITY, 'RGB', '420')
  [cv2.calcHist([crop], [c], None, [256], [0, 256]) for c in range(3)]
  return encoded


def project_paths(blobs: list[bytes], repeats: int) -> dict:
  """CPU µs per image of the project's own ``process_image`` and of its Pillow-decode path for the
  same JPEGs (the path every non-JPEG input and every JPEG libjpeg warns about takes)."""
  from transforms.imaging import image as image_lib

  spec = image_lib.ImageSpec()
  paths = {
    'transforms.imaging.image.process_image (simplejpeg decode, exact sums of the stored JPEG)': lambda d: (
      image_lib.process_image(d, spec)
    ),
    'the same through Pillow draft() decode (its fallback path)': lambda d: (
      image_lib._process_with_pillow(image_lib.open_image(d), d, spec)
    ),
  }
  return {name: {'us': time_per_item(fn, blobs, repeats)} for name, fn in paths.items()}


def run_micro(
  num_images: int = 2000,
  num_classes: int = 100,
  sample: int = 300,
  repeats: int = 3,
  seed: int = 0,
  with_project: bool = True,
) -> dict:
  """Measure every option on the first ``sample`` images of the synthetic dataset; returns a dict."""
  cv2.setNumThreads(1)
  dataset = synthesize(num_images, num_classes, seed)
  paths = [p for p, _ in list_images(dataset.root)][:sample]
  start = time.process_time()
  blobs = [p.read_bytes() for p in paths]
  read_us = (time.process_time() - start) / len(paths) * 1e6
  heads = [ops.header(d) for d in blobs]
  items = [(d, ops.geometry(h[2], h[3], SHORTER_SIDE, CROP)) for d, h in zip(blobs, heads)]
  refs = [ops.reference_crop(*it) for it in items[:PSNR_IMAGES]]
  result = {
    'images': len(items),
    'repeats': repeats,
    'read_bytes_us': read_us,
    'header_probe_us': time_per_item(ops.header, blobs, repeats),
    'mean_pixels': statistics.fmean(h[2] * h[3] for h in heads),
    'resize': {},
    'encode': {},
    'stats': {},
  }
  for name, fn in resize_paths().items():
    result['resize'][name] = {
      'us': time_per_item(fn, items, repeats),
      'psnr_db': aggregate_psnr(fn, items[:PSNR_IMAGES], refs),
    }
  for name, fn in decoders().items():
    result.setdefault('decode', {})[name] = {'us': time_per_item(fn, items, repeats)}
  crops_rgb = [ops.cv2_reduced(*it, SHORTER_SIDE) for it in items]
  for name, fn in encoders().items():
    inputs = [c[:, :, ::-1].copy() for c in crops_rgb] if 'cv2' in name else crops_rgb
    encoded = [fn(a) for a in inputs]
    decoded = [
      np.asarray(Image.open(io.BytesIO(bytes(e))).convert('RGB'), np.float64) for e in encoded
    ]
    mse = statistics.fmean(float(np.mean((d - c) ** 2)) for d, c in zip(decoded, crops_rgb))
    result['encode'][name] = {
      'us': time_per_item(fn, inputs, repeats),
      'bytes': statistics.fmean(len(e) for e in encoded),
      'psnr_db': ops.psnr(mse),
    }
  stored = [simplejpeg.encode_jpeg(c, QUALITY, 'RGB', '420') for c in crops_rgb]
  for name, fn in stats_options().items():
    result['stats'][name] = {'us': time_per_item(fn, list(zip(crops_rgb, stored)), repeats)}
  result['recommended_total_us'] = time_per_item(recommended, items, repeats)
  if with_project:
    result['project'] = project_paths(blobs, repeats)
  return result


def format_micro(result: dict) -> str:
  """Markdown tables of a run_micro() result."""
  lines = [
    f'Per-image CPU µs (single thread, median of {result["repeats"]}, {result["images"]} images, '
    f'mean {result["mean_pixels"] / 1e6:.2f} Mpixel; shorter side {SHORTER_SIDE}, crop {CROP}, q{QUALITY})',
    '',
    '| decode + resize path | µs/image | img/s/core | PSNR dB vs Lanczos f64 |',
    '|---|--:|--:|--:|',
  ]
  for name, r in result['resize'].items():
    lines.append(f'| {name} | {r["us"]:.0f} | {1e6 / r["us"]:.0f} | {r["psnr_db"]:.1f} |')
  lines += ['', '| decode only (power-of-two DCT scale, no resize) | µs/image |', '|---|--:|']
  lines += [f'| {name} | {r["us"]:.0f} |' for name, r in result.get('decode', {}).items()]
  lines += [
    '',
    '| encoder (256x256, q90, 4:2:0) | µs/image | bytes | PSNR dB vs its input |',
    '|---|--:|--:|--:|',
  ]
  for name, r in result['encode'].items():
    lines.append(f'| {name} | {r["us"]:.0f} | {r["bytes"]:.0f} | {r["psnr_db"]:.1f} |')
  lines += ['', '| statistics (per-channel histogram or sums) | µs/image |', '|---|--:|']
  for name, r in result['stats'].items():
    lines.append(f'| {name} | {r["us"]:.0f} |')
  lines += [
    '',
    f'read bytes from disk: {result["read_bytes_us"]:.0f} µs; Pillow header probe '
    f'(format, mode, size, EXIF orientation): {result["header_probe_us"]:.0f} µs',
    f'recommended combination end to end (Pillow probe + simplejpeg pow2 decode + INTER_LINEAR box + '
    f'simplejpeg encode + calcHist): {result["recommended_total_us"]:.0f} µs = '
    f'{1e6 / result["recommended_total_us"]:.0f} img/s/core (without read and Example)',
  ]
  if 'project' in result:
    lines += ['', '| the project, whole `process_image` | µs/image | img/s/core |', '|---|--:|--:|']
    lines += [
      f'| {name} | {r["us"]:.0f} | {1e6 / r["us"]:.0f} |' for name, r in result['project'].items()
    ]
  return '\n'.join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--num_images', type=int, default=2000)
  parser.add_argument('--num_classes', type=int, default=100)
  parser.add_argument('--sample', type=int, default=300)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--json', help='also write the result dict here')
  args = parser.parse_args(argv)
  result = run_micro(args.num_images, args.num_classes, args.sample, args.repeats)
  print(format_micro(result))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=1)


if __name__ == '__main__':
  main()
