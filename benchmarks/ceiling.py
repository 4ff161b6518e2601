"""Two single-core yardsticks, measured image by image in one tight loop over the same files.

* **floor**: the least work that turns a JPEG into the stored one: libjpeg-turbo decode (simplejpeg)
  at the power-of-two DCT scale the product picks, one ``cv2.resize`` INTER_LINEAR step of the crop
  box rounded to whole pixels (the product's bilinear step), a 4:2:0 JPEG encode at the same
  quality. No header probe, no EXIF orientation (turning a 256x256 crop costs microseconds), no
  statistics, no validation, no record. Reading the bytes is timed apart (``read_us_per_image``).
* **ceiling**: the project's own per-image functions: ``transforms.imaging.image.process_image(data,
  spec)`` →
  ``transforms.imaging.example.build_example`` (build + deterministic serialization). No Beam, no shard files:
  what one core does at best with the converter's functions.
* **extras**: with the ceiling, what the product must do per image beyond the floor, each timed
  alone on the floor's own bytes and pixels: the JPEG header and EXIF probe (``jpeg_header``), the
  exact channel statistics (``channel_sums``), the perceptual hashes (``image_hashes``: image/phash
  and the crop hashes) and the record (``build_example``). Their sum is most of ceiling - floor; the
  rest is glue.
* **writer loop**: with the ceiling, the shard writer's per-file loop
  (``WriteShardFn._write_records``: reading the file, the record, framing, checksum, counters,
  sidecar fields) over the same files with ``process_image`` stubbed (it returns one finished
  image), appending to a real shard.

Each image is read once, then the floor and the ceiling run on the same bytes back to back, so the
two see the same cache and the same load. CPU time (``time.process_time``) of this process, one
thread (OpenCV pinned to one), imports and one warm-up image excluded.

Usage: ``python -m benchmarks.ceiling --input DIR [--resize_shorter_side 256 --center_crop 256]
[--no_ceiling]``; prints one JSON line: images, floor_us_per_image, ceiling_us_per_image and
extras_us_per_image ({header, statistics, hashes, record}) and writer_loop_us_per_image (all three
absent with --no_ceiling), read_us_per_image, record_bytes, cpu_s, wall_s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import simplejpeg

from benchmarks.synth import list_images


def floor_image(data: bytes, spec) -> bytes:
  """Decode at the product's DCT scale, one bilinear step on the rounded crop box, encode (RGB JPEG
  in).

  ``spec`` is a ``transforms.imaging.image.ImageSpec`` with resize_shorter_side > 0 (bilinear).
  """
  return floor_image_and_pixels(data, spec)[0]


def floor_image_and_pixels(data: bytes, spec):
  """``floor_image``'s JPEG and the uint8 [H, W, 3] RGB pixels it encoded."""
  from transforms.imaging.image import crop_box

  height, width = simplejpeg.decode_jpeg_header(data)[:2]
  target = spec.resize_shorter_side
  scale = next(s for s in (8, 4, 2, 1) if min(width, height) // target >= s or s == 1)
  pixels = simplejpeg.decode_jpeg(
    data, 'RGB', min_height=-(-height // scale), min_width=-(-width // scale)
  )
  box, size = crop_box(pixels.shape[1], pixels.shape[0], spec)
  x0, y0, x1, y1 = (int(round(v)) for v in box)
  resized = cv2.resize(pixels[y0:y1, x0:x1], size, interpolation=cv2.INTER_LINEAR)
  encoded = simplejpeg.encode_jpeg(
    resized, quality=spec.jpeg_quality, colorspace='RGB', colorsubsampling='420'
  )
  return encoded, resized


def measure(files: list[tuple[Path, int, str, str]], spec, with_ceiling: bool = True) -> dict:
  """CPU µs per image of the floor (and the ceiling) over ``files`` = [(path, label, synset, key)]."""
  from transforms.imaging.example import build_example
  from transforms.imaging.image import process_image

  cv2.setNumThreads(1)
  warm = files[0][0].read_bytes()
  floor_image(warm, spec)
  stored = process_image(warm, spec)
  build_example(stored.encoded, stored.height, stored.width, files[0][3], 0, files[0][2])

  read_s = floor_s = ceiling_s = 0.0
  extras_s = dict.fromkeys(EXTRAS, 0.0)
  record_bytes = 0
  clock = time.process_time
  cpu0, wall0 = clock(), time.perf_counter()
  for path, label, synset, key in files:
    t0 = clock()
    data = path.read_bytes()
    t1 = clock()
    encoded, pixels = floor_image_and_pixels(data, spec)
    t2 = clock()
    read_s += t1 - t0
    floor_s += t2 - t1
    if with_ceiling:
      stored = process_image(data, spec)
      record_bytes += len(
        build_example(stored.encoded, stored.height, stored.width, key, label, synset)
      )
      ceiling_s += clock() - t2
      for name, step in _extras(data, encoded, pixels, key, label, synset):
        t3 = clock()
        step()
        extras_s[name] += clock() - t3
  n = len(files)
  result = {
    'images': n,
    'floor_us_per_image': floor_s / n * 1e6,
    'read_us_per_image': read_s / n * 1e6,
    'cpu_s': clock() - cpu0,
    'wall_s': time.perf_counter() - wall0,
  }
  if with_ceiling:
    result.update(
      ceiling_us_per_image=ceiling_s / n * 1e6,
      record_bytes=record_bytes,
      extras_us_per_image={name: s / n * 1e6 for name, s in extras_s.items()},
    )
  return result


EXTRAS = ('header', 'statistics', 'hashes', 'record')


def _extras(data, encoded, pixels, key, label, synset):
  """(name, call) of each per-image step the product adds to the floor (module docstring)."""
  from transforms.imaging.example import build_example
  from transforms.imaging.image import channel_sums, jpeg_header
  from transforms.imaging.perceptual_hash import image_hashes

  height, width = pixels.shape[:2]
  return (
    ('header', lambda: jpeg_header(data)),
    ('statistics', lambda: channel_sums(pixels)),
    ('hashes', lambda: image_hashes(pixels)),
    ('record', lambda: build_example(encoded, height, width, key, label, synset, phash=0)),
  )


def writer_loop(root: Path, limit: int, spec, passes: int = 3) -> float:
  """CPU µs per file of the shard writer's loop over the first ``limit`` files of ``root`` with
  ``process_image`` stubbed (module docstring), median of ``passes`` passes."""
  import statistics
  import tempfile
  from benchmarks.levers import ShardLoop, shard_refs
  from transforms.imaging import image as image_lib

  refs, split_roots = shard_refs(root, limit)
  stub = image_lib.process_image(Path(split_roots[refs[0].split], refs[0].key).read_bytes(), spec)
  process_image, image_lib.process_image = image_lib.process_image, lambda data, spec: stub
  try:
    with tempfile.TemporaryDirectory(prefix='writer-loop-') as out_dir:
      loop = ShardLoop(refs, split_roots, spec, out_dir)
      loop.run(refs[:20])  # warm-up
      times = []
      for _ in range(passes):
        start = time.process_time()
        loop.run(refs)
        times.append((time.process_time() - start) / len(refs) * 1e6)
      loop.sampler.stop()
  finally:
    image_lib.process_image = process_image
  return statistics.median(times)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--input', required=True)
  parser.add_argument('--resize_shorter_side', type=int, default=256)
  parser.add_argument('--center_crop', type=int, default=256)
  parser.add_argument('--jpeg_quality', type=int, default=90)
  parser.add_argument('--limit', type=int, default=0, help='only the first N files (0 = all)')
  parser.add_argument('--no_ceiling', action='store_true', help='time the floor only')
  args = parser.parse_args(argv)
  from transforms.imaging.image import ImageSpec

  spec = ImageSpec(
    resize_shorter_side=args.resize_shorter_side,
    center_crop=args.center_crop,
    jpeg_quality=args.jpeg_quality,
  )
  root = Path(args.input)
  files = [
    (path, label, path.parent.name, str(path.relative_to(root)))
    for path, label in list_images(root)
  ]
  files = files[: args.limit or None]
  result = measure(files, spec, with_ceiling=not args.no_ceiling)
  if not args.no_ceiling:
    result['writer_loop_us_per_image'] = writer_loop(root, len(files), spec)
  print(json.dumps(result))


if __name__ == '__main__':
  main()
