"""Duplicates: the near-duplicate threshold, the 1.33 M-hash search and the per-image hashing cost.

Three measurements, printed as JSON lines (docs/duplicates.md quotes them):

* ``threshold``: a corpus of near copies of the sample photos (`near_copies`: re-encoded at quality
  60, resized 0.7x, cropped 1-5% per side, brightened +10 levels), each converted as the converter
  stores it (default ImageSpec: 256 px shorter side, 256 x 256 centre crop) and hashed
  (`image/phash`). For each threshold: the fraction of copies within it of their original (recall,
  per kind of copy) and the pairs of distinct sample photos within it (false pairs).
* ``search``: `pairs_within` over N synthetic hashes (uniform random 64-bit values: the worst case
  for nothing, the typical case for the index; N = ImageNet's 1,331,167 train + validation) in a
  child process, its wall time and the child's peak RSS (generation included: ~11 MB).
* ``hashing``: per image, CPU time of `process_image` (decode, resize, crop, encode, statistics and
  the perceptual hash) against the perceptual hash alone and the content hash of the file
  (transforms/duplicates.py: opening it and a SHA-256 of its first 16 KiB, what a file whose size
  another file shares costs, i.e. nearly every file of an ImageNet-sized set; and, shown apart, the
  whole-file SHA-256 that only files with the same size and head as another pay: copies), on
  synthetic ImageNet-like files (benchmarks/synth.py), single thread, median of `repeats` passes.

Usage: ``python -m benchmarks.duplicates [--num_hashes 1331167] [--distance 8] [--num_images 300]``
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageOps

from benchmarks.micro import time_per_item

IMAGENET_HASHES = 1_331_167  # ILSVRC-2012 train (1,281,167) + validation (50,000)
THRESHOLDS = (4, 6, 8, 10, 12, 14)
SAMPLE_DIR = Path(__file__).resolve().parent.parent / 'data' / 'sample_images'


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG', quality=quality)
  return buffer.getvalue()


def near_copies(data: bytes, crops: Sequence[int] = (1, 2, 3, 4, 5)) -> Dict[str, bytes]:
  """Near copies of one photo's bytes: {kind: JPEG bytes}.

  Kinds: `q60` (re-encoded at quality 60), `resize0.7` (0.7x both sides, bilinear), `bright10`
  (+10 levels on every channel, clipped), and `crop{p}` for p in `crops` (p% of width and height cut
  from every side). All from the upright (EXIF-applied) RGB image, saved at quality 90 unless said.
  """
  image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert('RGB')
  width, height = image.size
  copies = {'q60': _jpeg(image, 60),
            'resize0.7': _jpeg(image.resize((round(width * 0.7), round(height * 0.7)),
                                            Image.Resampling.BILINEAR)),
            'bright10': _jpeg(Image.fromarray(
                np.clip(np.asarray(image, np.int16) + 10, 0, 255).astype(np.uint8)))}
  for percent in crops:
    dx, dy = round(width * percent / 100), round(height * percent / 100)
    copies[f'crop{percent}'] = _jpeg(image.crop((dx, dy, width - dx, height - dy)))
  return copies


def sample_photos(sample_dir: Path = SAMPLE_DIR) -> List[Path]:
  return sorted(p for p in sample_dir.glob('*/*') if p.is_file())


def threshold_table(photos: Iterable[Path], thresholds: Sequence[int] = THRESHOLDS) -> Dict:
  """Recall of each kind of near copy and false pairs among distinct photos, per threshold."""
  from transforms import image as image_lib  # pylint: disable=import-outside-toplevel
  from transforms.perceptual_hash import hamming_distance  # pylint: disable=import-outside-toplevel
  spec = image_lib.ImageSpec()
  originals, distances = {}, {}
  for path in photos:
    data = path.read_bytes()
    try:
      originals[path.name] = image_lib.process_image(data, spec).phash
    except image_lib.ImageRejected:
      continue
    for kind, copy in near_copies(data).items():
      distances.setdefault(kind, []).append(
          hamming_distance(originals[path.name], image_lib.process_image(copy, spec).phash))
  distinct = [hamming_distance(a, b) for a, b in itertools.combinations(originals.values(), 2)]
  return {
      'photos': len(originals), 'distinct_pairs': len(distinct),
      'closest_distinct_pairs': sorted(distinct)[:5],
      'copy_distance_max': {kind: max(d) for kind, d in distances.items()},
      'recall': {t: {kind: round(float(np.mean(np.array(d) <= t)), 3) for kind, d in distances.items()}
                 for t in thresholds},
      'false_pairs': {t: int(sum(d <= t for d in distinct)) for t in thresholds}}


def search_child(num_hashes: int, max_distance: int) -> None:
  """In a child process: synthetic hashes, one search, one JSON line on stdout."""
  from transforms.hamming_search import pairs_within  # pylint: disable=import-outside-toplevel
  hashes = np.random.default_rng(0).integers(-2**63, 2**63 - 1, num_hashes, dtype=np.int64)
  start = time.perf_counter()
  first, _, _ = pairs_within(hashes, max_distance)
  seconds = time.perf_counter() - start
  print(json.dumps({'hashes': num_hashes, 'distance': max_distance, 'pairs': int(len(first)),
                    'seconds': round(seconds, 1),
                    'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def search_benchmark(num_hashes: int, max_distance: int) -> Dict:
  """`search_child` in a fresh interpreter, so that its peak RSS is the search's."""
  result = subprocess.run([sys.executable, '-m', 'benchmarks.duplicates', '--search_child',
                           '--num_hashes', str(num_hashes), '--distance', str(max_distance)],
                          check=True, capture_output=True, text=True)
  return json.loads(result.stdout.strip().splitlines()[-1])


def hashing_cost(files: List[Path], repeats: int = 3) -> Dict:
  """CPU µs per image of the conversion, of its perceptual hash and of the content hash (module
  docstring), and the hashes' share of the conversion in percent."""
  import cv2  # pylint: disable=import-outside-toplevel
  from transforms import image as image_lib  # pylint: disable=import-outside-toplevel
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  from transforms.duplicates import HEAD_BYTES, file_digest  # pylint: disable=import-outside-toplevel
  from transforms.perceptual_hash import perceptual_hash  # pylint: disable=import-outside-toplevel
  cv2.setNumThreads(1)
  spec = image_lib.ImageSpec()
  datas = [path.read_bytes() for path in files]
  pixels = [image_lib.decode_stored_jpeg(image_lib.process_image(d, spec).encoded) for d in datas]
  timed = _Timed(perceptual_hash)
  image_lib.perceptual_hash = timed
  try:
    convert = time_per_item(lambda d: image_lib.process_image(d, spec), datas, repeats)
  finally:
    image_lib.perceptual_hash = perceptual_hash
  in_situ = timed.seconds / timed.calls * 1e6
  phash = time_per_item(perceptual_hash, pixels, repeats)
  filesystem = FileSystems.get_filesystem(str(files[0]))  # the shard writer's: one per split root
  head = time_per_item(lambda p: file_digest(str(p), HEAD_BYTES, filesystem), files, repeats)
  whole = time_per_item(lambda p: file_digest(str(p), None, filesystem), files, repeats)
  return {'images': len(files), 'mean_file_kb': round(np.mean([len(d) for d in datas]) / 1e3, 1),
          'convert_us': round(convert), 'phash_in_situ_us': round(in_situ, 1),
          'phash_alone_cold_us': round(phash, 1), 'head_hash_us': round(head, 1),
          'hashing_percent_of_conversion': round(100 * (in_situ + head) / convert, 2),
          'whole_file_hash_us_copies_only': round(whole)}


class _Timed:
  """A function that adds up the thread CPU time of its calls (the perceptual hash as
  process_image calls it: on the array it has just made, in cache)."""

  def __init__(self, fn):
    self._fn, self.seconds, self.calls = fn, 0.0, 0

  def __call__(self, *args):
    start = time.thread_time()
    try:
      return self._fn(*args)
    finally:
      self.seconds += time.thread_time() - start
      self.calls += 1


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--num_hashes', type=int, default=IMAGENET_HASHES)
  parser.add_argument('--distance', type=int, default=None,
                      help='bits; default: the converter\'s --near_duplicate_distance default')
  parser.add_argument('--num_images', type=int, default=300)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--skip', nargs='*', default=(), choices=('threshold', 'search', 'hashing'))
  parser.add_argument('--search_child', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.distance is None:
    from transforms.near_duplicates import DEFAULT_NEAR_DISTANCE  # pylint: disable=import-outside-toplevel
    args.distance = DEFAULT_NEAR_DISTANCE
  if args.search_child:
    search_child(args.num_hashes, args.distance)
    return
  with open('/proc/loadavg') as f:
    print(json.dumps({'loadavg_before': f.read().split()[:3]}), flush=True)
  if 'threshold' not in args.skip:
    print(json.dumps({'threshold': threshold_table(sample_photos())}), flush=True)
  if 'search' not in args.skip:
    print(json.dumps({'search': search_benchmark(args.num_hashes, args.distance)}), flush=True)
  if 'hashing' not in args.skip:
    from benchmarks.synth import list_images, synthesize  # pylint: disable=import-outside-toplevel
    with tempfile.TemporaryDirectory() as cache:
      dataset = synthesize(args.num_images, 10, seed=0, cache_dir=Path(cache), processes=1)
      files = [path for path, _ in list_images(dataset.root)]
      print(json.dumps({'hashing': hashing_cost(files, args.repeats)}), flush=True)
  with open('/proc/loadavg') as f:
    print(json.dumps({'loadavg_after': f.read().split()[:3]}), flush=True)


if __name__ == '__main__':
  main()
