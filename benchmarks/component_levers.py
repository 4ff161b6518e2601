"""Issue 28's levers on their own component, before and after, in one process, interleaved.

Usage: ``python -m benchmarks.component_levers [--images 2000] [--passes 7]``. On the first
``--images`` files of the ImageNet-like synthetic set (``benchmarks.synth``), one thread (OpenCV
pinned to one), CPU time (``time.process_time``), every pass timing each variant in turn (the order
rotates), medians over passes and of the per-pass saving:

1. exact statistics of the 256 x 256 crops the product stores: ``channel_sums`` now (OpenCV's
   integer norms per plane) against ``previous_channel_sums`` (squares by ``cv2.multiply`` into
   float32, summed by ``cv2.sumElems``: the release before issue 28, verbatim but for names);
2. all perceptual hashes (``image_hashes``: image/phash and the five crop hashes from one shared
   32 x 32 downsample) against image/phash alone as the release before crop hashes computed it
   (``benchmarks.duplicates.previous_release_phash``);
3. the shard writer's per-file loop (``WriteShardFn._write_records`` with ``process_image`` stubbed,
   ``benchmarks.ceiling.writer_loop``'s set-up) now, and with the previous release's reading
   (``read(max_file_bytes + 1)``) and unbuffered shard writes put back, each alone.
Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np

from benchmarks.synth import list_images, synthesize


def previous_channel_sums(pixels: np.ndarray):
  """``channel_sums`` as the release before issue 28 computed it (float32 squares, one scratch
  buffer per thread, a block of rows at a time)."""
  sums = cv2.sumElems(pixels)[:3]
  height, width, channels = pixels.shape
  rows = max(1, min(height, (1 << 16) // width))
  scratch = getattr(_SCRATCH, 'squares', None)
  if scratch is None or scratch.size < rows * width * channels:
    scratch = _SCRATCH.squares = np.empty(rows * width * channels, np.float32)
  squares = [0, 0, 0]
  for top in range(0, height, rows):
    block = pixels[top : top + rows]
    block_squares = scratch[: block.shape[0] * width * channels].reshape(block.shape)
    cv2.multiply(block, block, dst=block_squares, dtype=cv2.CV_32F)
    squares = [a + int(b) for a, b in zip(squares, cv2.sumElems(block_squares)[:3])]
  return tuple(int(v) for v in sums), tuple(squares)


_SCRATCH = threading.local()


def previous_read_input(path, max_bytes, size=None, filesystem=None):
  """transforms/inputs/input_file.py `read_input` before issue 28: read(max_bytes + 1) of every file."""
  from transforms.inputs import input_file  # pylint: disable=import-outside-toplevel

  with input_file.open_input(path, max_bytes, size, filesystem) as src:
    data = src.read(max_bytes + 1)
  if len(data) > max_bytes:
    raise input_file.InputFileError('file larger than --max_file_bytes')
  return data


def interleaved(fns: dict, items: list, passes: int) -> dict:
  """CPU µs per item of each fn per pass: each fn over all items in turn, the order rotating."""
  names = list(fns)
  per_pass = {name: [] for name in names}
  for p in range(passes):
    for name in names[p % len(names) :] + names[: p % len(names)]:
      start = time.process_time()
      for item in items:
        fns[name](item)
      per_pass[name].append((time.process_time() - start) / len(items) * 1e6)
  return per_pass


def summarize(per_pass: dict, baseline: str) -> dict:
  """Median µs per item and median (min-max) saving against `baseline` within each pass."""
  out = {}
  for name, values in per_pass.items():
    savings = [b - v for b, v in zip(per_pass[baseline], values)]
    out[name] = {
      'us': statistics.median(values),
      'saving_us': statistics.median(savings),
      'saving_min_us': min(savings),
      'saving_max_us': max(savings),
    }
  return out


def writer_variants(root: Path, limit: int, spec, passes: int) -> dict:
  """Lever 3: the stubbed per-file loop now, with the previous reading, with unbuffered writes,
  with both (the previous release); µs per file."""
  from benchmarks.levers import ShardLoop, shard_refs  # pylint: disable=import-outside-toplevel
  from transforms.output import file_format, shard_writer  # pylint: disable=import-outside-toplevel
  from transforms.imaging import image as image_lib  # pylint: disable=import-outside-toplevel

  refs, split_roots = shard_refs(root, limit)
  stub = image_lib.process_image(Path(split_roots[refs[0].split], refs[0].key).read_bytes(), spec)
  process_image, image_lib.process_image = image_lib.process_image, lambda data, spec: stub
  unbuffered = types.SimpleNamespace(BufferedWriter=lambda raw, size: raw)

  def variant(read=None, unbuffer=False):
    def run(chunk):
      saved = shard_writer.read_input, file_format.io
      shard_writer.read_input = read or saved[0]
      file_format.io = unbuffered if unbuffer else saved[1]
      try:
        loop.run(chunk)
      finally:
        shard_writer.read_input, file_format.io = saved

    return run

  try:
    with tempfile.TemporaryDirectory(prefix='component-levers-') as out_dir:
      loop = ShardLoop(refs, split_roots, spec, out_dir)
      loop.run(refs[:20])
      fns = {
        'now (issue 28)': variant(),
        'previous reading only': variant(read=previous_read_input),
        'unbuffered writes only': variant(unbuffer=True),
        'previous release (both)': variant(read=previous_read_input, unbuffer=True),
      }
      per_pass = interleaved(fns, [refs], passes)
      loop.sampler.stop()
  finally:
    image_lib.process_image = process_image
  per_file = {name: [us / len(refs) for us in values] for name, values in per_pass.items()}
  return summarize(per_file, 'previous release (both)')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--images', type=int, default=2000)
  parser.add_argument('--passes', type=int, default=7)
  args = parser.parse_args(argv)
  # pylint: disable=import-outside-toplevel
  from benchmarks.duplicates import previous_release_phash
  from transforms.imaging.image import ImageSpec, channel_sums, decode_stored_jpeg, process_image
  from transforms.imaging.perceptual_hash import image_hashes

  cv2.setNumThreads(1)
  spec = ImageSpec()
  dataset = synthesize(4000, 100, 0)
  paths = [p for p, _ in list_images(dataset.root)][: args.images]
  crops = [decode_stored_jpeg(process_image(p.read_bytes(), spec).encoded) for p in paths]
  for crop in crops[:50]:
    assert channel_sums(crop) == previous_channel_sums(crop)
  results = {
    '1. exact statistics': summarize(
      interleaved(
        {
          'previous: float32 squares': previous_channel_sums,
          'now: integer norms per plane': channel_sums,
        },
        crops,
        args.passes,
      ),
      'previous: float32 squares',
    ),
    '2. perceptual hashes': summarize(
      interleaved(
        {
          'previous: image/phash alone': previous_release_phash,
          'now: image/phash + 5 crop hashes': image_hashes,
        },
        crops,
        args.passes,
      ),
      'previous: image/phash alone',
    ),
    '3. shard writer loop (image stubbed)': writer_variants(
      dataset.root, args.images, spec, args.passes
    ),
  }
  lines = [
    '| lever | variant | µs per image (median) | saving vs previous, µs (min-max) |',
    '|---|---|--:|--:|',
  ]
  for lever, variants in results.items():
    for name, r in variants.items():
      lines.append(
        f'| {lever} | {name} | {r["us"]:.1f} | {r["saving_us"]:.1f} '
        f'({r["saving_min_us"]:.1f} to {r["saving_max_us"]:.1f}) |'
      )
  print('\n'.join(lines))
  print(json.dumps({'images': len(crops), 'passes': args.passes, 'results': results}))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
