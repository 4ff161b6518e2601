"""Duplicates: recall and false pairs, the 1.33 M-hash searches, the per-image hashing cost, storms.

Five measurements, printed as JSON lines (docs/duplicates.md quotes them):

* ``threshold``: copies of the sample photos (`transformed_copies`: centre crops of 2-10% a side,
  off-centre crops from two adjacent sides with 0.8x scaling and quality 75, scaling, quality,
  brightness, a flip), each converted as the converter stores it (default ImageSpec: 256 px shorter
  side, 256 x 256 centre crop) and hashed. For each distance: the fraction of copies found (recall)
  with image/phash alone and with the crop hashes (transforms/duplicates/near.py `are_near`), and
  the false pairs among the photos and synthetic distractors (`distractors`: each photo's
  quadrants).
* ``search``: `pairs_within` over N synthetic hashes (uniform random 64-bit values: the worst case
  for nothing, the typical case for the index; N = ImageNet's 1,331,167 train + validation) in a
  child process, its wall time and the child's peak RSS (generation included: ~11 MB).
* ``chance``: the groups `near_components` finds among N images whose image/phash and crop hashes
  are all uniformly random (chance pairs), its wall time and peak RSS, in a child process.
* ``identical``: `find_duplicates` (duplicates.jsonl's text included) over N records with one and
  the same hashes (the worst case for a pair search), wall time and peak RSS, in a child process.
* ``hashing``: per image, CPU time of `process_image` (decode, resize, crop, encode, statistics and
  the perceptual hash) against the perceptual hash alone and the content hash of the file
  (transforms/duplicates/exact.py: opening it and a SHA-256 of its first 16 KiB, what a file whose
  size another file shares costs, i.e. nearly every file of an ImageNet-sized set; and, shown apart,
  the whole-file SHA-256 that only files with the same size and head as another pay: copies), on
  synthetic ImageNet-like files (benchmarks/synth.py), single thread, median of `repeats` passes;
  then, per stored size (`HASH_SIZES`: the sample photos as the converter stores them at 256 x 256,
  224 x 224, --resize_longer_side 341, 32 x 32), all hashes (`image_hashes`) against image/phash as
  the previous release computed it (`previous_release_phash`), passes interleaved, median CPU time.

Usage: ``python -m benchmarks.duplicates [--num_hashes 1331167] [--distance 8] [--num_images 300]``

Storms (``--storm KIND ...``): the whole converter (2 DirectRunner workers, pass-through, 32 x 32
JPEGs in 100 classes) on a generated folder, then ``pipeline.verify``, measured with
benchmarks/measure.py (wall, peak RSS of the process tree) and the size of duplicates.jsonl; with
``--trees A B`` each case runs once per source tree (PYTHONPATH), interleaved, to compare two
versions on a shared machine. Kinds (`storm_folder`): ``distinct`` (uniform noise: no two alike),
``lookalike`` (smooth ramps in 8 directions plus noise, as documents, product shots or frames of one
camera: millions of near pairs), ``frames`` (one image, copies differing only in a JPEG comment, in
one class). ``--storm_images`` sets the count (``frames``: 2,000 unless given).
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
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageOps

from benchmarks.micro import time_per_item

IMAGENET_HASHES = 1_331_167  # ILSVRC-2012 train (1,281,167) + validation (50,000)
THRESHOLDS = (4, 6, 8, 10)
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
  image = _upright(data)
  width, height = image.size
  copies = {
    'q60': _jpeg(image, 60),
    'resize0.7': _jpeg(
      image.resize((round(width * 0.7), round(height * 0.7)), Image.Resampling.BILINEAR)
    ),
    'bright10': _jpeg(_brightened(image, 10)),
  }
  for percent in crops:
    copies[f'crop{percent}'] = _jpeg(_cropped(image, percent, (1, 1, 1, 1)))
  return copies


def _upright(data: bytes) -> Image.Image:
  return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert('RGB')


def _brightened(image: Image.Image, levels: int) -> Image.Image:
  return Image.fromarray(np.clip(np.asarray(image, np.int16) + levels, 0, 255).astype(np.uint8))


def _cropped(image: Image.Image, percent: float, sides: Tuple[int, int, int, int]) -> Image.Image:
  """`percent`% of width / height cut from each side whose flag is set in (left, top, right,
  bottom)."""
  width, height = image.size
  dx, dy = round(width * percent / 100), round(height * percent / 100)
  left, top, right, bottom = sides
  return image.crop((dx * left, dy * top, width - dx * right, height - dy * bottom))


def _scaled(image: Image.Image, factor: float) -> Image.Image:
  return image.resize(
    (round(image.width * factor), round(image.height * factor)), Image.Resampling.BILINEAR
  )


# Off-centre crops: `percent` from two adjacent sides (each corner in turn), then 0.8x, quality 75.
OFF_CENTRE_CORNERS = {
  'left+top': (1, 1, 0, 0),
  'right+top': (0, 1, 1, 0),
  'left+bottom': (1, 0, 0, 1),
  'right+bottom': (0, 0, 1, 1),
}


def transformed_copies(data: bytes) -> Dict[str, List[bytes]]:
  """The recall table's copies of one photo: {transformation: [JPEG bytes, ...]} (docs/duplicates.md).

  Centre crops of 2-10% a side (quality 90); off-centre crops of 5, 8 and 10% from two adjacent
  sides (one copy per corner) with 0.8x scaling and quality 75; 0.5x and 0.8x scaling; quality 60
  and 30; brightness +10 and +30 levels; a horizontal flip.
  """
  image = _upright(data)
  copies = {
    f'crop {p}% a side': [_jpeg(_cropped(image, p, (1, 1, 1, 1)))] for p in (2, 3, 5, 8, 10)
  }
  for p in (5, 8, 10):
    copies[f'off-centre {p}% from two sides, 0.8x, q75'] = [
      _jpeg(_scaled(_cropped(image, p, sides), 0.8), 75) for sides in OFF_CENTRE_CORNERS.values()
    ]
  copies.update(
    {
      'scale 0.8x': [_jpeg(_scaled(image, 0.8))],
      'scale 0.5x': [_jpeg(_scaled(image, 0.5))],
      'quality 60': [_jpeg(image, 60)],
      'quality 30': [_jpeg(image, 30)],
      'brightness +10': [_jpeg(_brightened(image, 10))],
      'brightness +30': [_jpeg(_brightened(image, 30))],
      'flip (not handled)': [_jpeg(ImageOps.mirror(image))],
    }
  )
  return copies


def distractors(data: bytes) -> List[bytes]:
  """Synthetic distractors from one photo: its four quadrants (half of each side), distinct
  pictures of the same kind of content."""
  image = _upright(data)
  width, height = image.size
  return [
    _jpeg(image.crop((x, y, x + width // 2, y + height // 2)))
    for y in (0, height // 2)
    for x in (0, width // 2)
  ]


def sample_photos(sample_dir: Path = SAMPLE_DIR) -> List[Path]:
  return sorted(p for p in sample_dir.glob('*/*') if p.is_file())


def recall_table(photos: Iterable[Path], thresholds: Sequence[int] = THRESHOLDS) -> Dict:
  """Copies found and false pairs per --near_duplicate_distance, with image/phash alone and with the
  crop hashes (transforms/duplicates/near.py `are_near`), each photo as the converter stores it
  (default ImageSpec: 256 px shorter side, 256 x 256 centre crop).

  Returns:
    {'photos', 'distractors', 'distinct_pairs', 'recall': {threshold: {transformation:
    {'phash': fraction, 'crop_hashes': fraction}}}, 'false_pairs': {threshold: {'phash': n,
    'crop_hashes': n}}}; false pairs are counted among the photos and the distractors (quadrants of
    every photo) together.
  """
  from transforms.imaging import image as image_lib  # pylint: disable=import-outside-toplevel
  from transforms.duplicates.near import are_near  # pylint: disable=import-outside-toplevel
  from transforms.imaging.perceptual_hash import hamming_distance  # pylint: disable=import-outside-toplevel

  spec = image_lib.ImageSpec()

  def hashes(data):
    stored = image_lib.process_image(data, spec)
    return stored.phash, stored.crop_phashes

  originals, pool, copies = [], [], {}
  for path in photos:
    data = path.read_bytes()
    try:
      original = hashes(data)
    except image_lib.ImageRejected:
      continue
    originals.append(original)
    pool.append(original)
    pool.extend(hashes(d) for d in distractors(data))
    for kind, datas in transformed_copies(data).items():
      copies.setdefault(kind, []).extend((original, hashes(d)) for d in datas)
  pairs = list(itertools.combinations(pool, 2))
  recall, false_pairs = {}, {}
  for t in thresholds:
    recall[t] = {
      kind: {
        'phash': round(float(np.mean([hamming_distance(a[0], b[0]) <= t for a, b in found])), 3),
        'crop_hashes': round(float(np.mean([are_near(*a, *b, t) for a, b in found])), 3),
      }
      for kind, found in copies.items()
    }
    false_pairs[t] = {
      'phash': sum(hamming_distance(a[0], b[0]) <= t for a, b in pairs),
      'crop_hashes': sum(are_near(*a, *b, t) for a, b in pairs),
    }
  return {
    'photos': len(originals),
    'distractors': len(pool) - len(originals),
    'distinct_pairs': len(pairs),
    'recall': recall,
    'false_pairs': false_pairs,
  }


def chance_child(num_images: int, max_distance: int) -> None:
  """In a child process: groups among `num_images` images whose image/phash and 5 crop hashes are
  uniformly random 64-bit values, found by transforms/duplicates/near.py; one JSON line on stdout."""
  from transforms.duplicates.near import near_components  # pylint: disable=import-outside-toplevel
  from transforms.imaging.perceptual_hash import NUM_CROP_HASHES  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(1)
  phashes = rng.integers(-(2**63), 2**63 - 1, num_images, dtype=np.int64)
  crops = rng.integers(-(2**63), 2**63 - 1, (num_images, NUM_CROP_HASHES), dtype=np.int64)
  start = time.perf_counter()
  labels = near_components(phashes, crops, max_distance)
  seconds = time.perf_counter() - start
  _, sizes = np.unique(labels, return_counts=True)
  print(
    json.dumps(
      {
        'images': num_images,
        'distance': max_distance,
        'seconds': round(seconds, 1),
        'groups': int((sizes > 1).sum()),
        'images_in_groups': int(sizes[sizes > 1].sum()),
        'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
      }
    )
  )


def identical_child(num_images: int, max_distance: int) -> None:
  """In a child process: find_duplicates (the whole step, duplicates.jsonl's text included) over
  `num_images` records with one image/phash and one set of crop hashes; one JSON line on stdout."""
  from transforms.duplicates.near import find_duplicates  # pylint: disable=import-outside-toplevel

  stored = [
    (f'c{i % 1000:03d}/{i:07d}.jpg', 'train', 0x5A5A5A5A5A5A5A5A, (1, 2, 3, 4, 5))
    for i in range(num_images)
  ]
  start = time.perf_counter()
  found = find_duplicates(stored, [], max_distance)
  seconds = time.perf_counter() - start
  print(
    json.dumps(
      {
        'images': num_images,
        'distance': max_distance,
        'seconds': round(seconds, 1),
        'lines': found.text.count('\n'),
        'jsonl_bytes': len(found.text.encode()),
        'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
      }
    )
  )


def search_child(num_hashes: int, max_distance: int) -> None:
  """In a child process: synthetic hashes, one search, one JSON line on stdout."""
  from transforms.duplicates.hamming_search import pairs_within  # pylint: disable=import-outside-toplevel

  hashes = np.random.default_rng(0).integers(-(2**63), 2**63 - 1, num_hashes, dtype=np.int64)
  start = time.perf_counter()
  first, _, _ = pairs_within(hashes, max_distance)
  seconds = time.perf_counter() - start
  print(
    json.dumps(
      {
        'hashes': num_hashes,
        'distance': max_distance,
        'pairs': int(len(first)),
        'seconds': round(seconds, 1),
        'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
      }
    )
  )


def child_benchmark(child: str, num_hashes: int, max_distance: int) -> Dict:
  """A `*_child` function in a fresh interpreter, so that its peak RSS is its own."""
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'benchmarks.duplicates',
      '--child',
      child,
      '--num_hashes',
      str(num_hashes),
      '--distance',
      str(max_distance),
    ],
    check=True,
    capture_output=True,
    text=True,
  )
  return json.loads(result.stdout.strip().splitlines()[-1])


def hashing_cost(files: List[Path], repeats: int = 3) -> Dict:
  """CPU µs per image of the conversion, of all its perceptual hashing (image/phash and the crop
  hashes, `image_hashes`) in situ and alone, of image/phash alone (`previous_release_phash`, what
  the converter computed before crop hashes) and of the content hash (module docstring), and the
  hashes' share of the conversion in percent."""
  import cv2  # pylint: disable=import-outside-toplevel
  from transforms.imaging import image as image_lib  # pylint: disable=import-outside-toplevel
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  from transforms.duplicates.exact import HEAD_BYTES, file_digest  # pylint: disable=import-outside-toplevel
  from transforms.imaging.perceptual_hash import image_hashes  # pylint: disable=import-outside-toplevel

  cv2.setNumThreads(1)
  spec = image_lib.ImageSpec()
  datas = [path.read_bytes() for path in files]
  pixels = [image_lib.decode_stored_jpeg(image_lib.process_image(d, spec).encoded) for d in datas]
  timed = _Timed(image_hashes)
  image_lib.image_hashes = timed
  try:
    convert = time_per_item(lambda d: image_lib.process_image(d, spec), datas, repeats)
  finally:
    image_lib.image_hashes = image_hashes
  in_situ = timed.seconds / timed.calls * 1e6
  hashes = phash = 0.0
  for _ in range(2):  # interleaved, so that both see the same load
    hashes += time_per_item(image_hashes, pixels, repeats) / 2
    phash += time_per_item(previous_release_phash, pixels, repeats) / 2
  filesystem = FileSystems.get_filesystem(str(files[0]))  # the shard writer's: one per split root
  head = time_per_item(lambda p: file_digest(str(p), HEAD_BYTES, filesystem), files, repeats)
  whole = time_per_item(lambda p: file_digest(str(p), None, filesystem), files, repeats)
  return {
    'images': len(files),
    'mean_file_kb': round(np.mean([len(d) for d in datas]) / 1e3, 1),
    'convert_us': round(convert),
    'all_hashes_in_situ_us': round(in_situ, 1),
    'all_hashes_alone_us': round(hashes, 1),
    'phash_only_alone_us': round(phash, 1),
    'head_hash_us': round(head, 1),
    'hashing_percent_of_conversion': round(100 * (in_situ + head) / convert, 2),
    'whole_file_hash_us_copies_only': round(whole),
  }


HASH_SIZES = {  # name -> ImageSpec keyword arguments
  '256x256': {},
  '224x224': {'resize_shorter_side': 224, 'center_crop': 224},
  'longer_side_341': {'resize_shorter_side': 0, 'center_crop': 0, 'resize_longer_side': 341},
  '32x32': {'resize_shorter_side': 32, 'center_crop': 32},
}


def previous_release_phash(pixels: np.ndarray) -> int:
  """image/phash as the release before crop hashes computed it (transforms/imaging/perceptual_hash.py
  at commit ce855ca, verbatim but for names): the reference `image_hashes`' first value must equal
  bit for bit (tests/test_perceptual_hash.py) and whose cost it must not exceed."""
  import cv2  # pylint: disable=import-outside-toplevel
  from transforms.imaging import perceptual_hash as ph  # pylint: disable=import-outside-toplevel

  if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
    raise ValueError(f'expected uint8 [H, W, 3 or 4] pixels, got {pixels.dtype} {pixels.shape}')
  while min(pixels.shape[:2]) >= 128:
    pixels = cv2.resize(
      pixels, (pixels.shape[1] // 2, pixels.shape[0] // 2), interpolation=cv2.INTER_AREA
    )
  grey = cv2.cvtColor(
    np.ascontiguousarray(pixels), {3: cv2.COLOR_RGB2GRAY, 4: cv2.COLOR_RGBA2GRAY}[pixels.shape[2]]
  )
  grey = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
  dct_rows = ph._DCT_ROWS  # pylint: disable=protected-access
  coefficients = (dct_rows @ np.asarray(grey, np.float64) @ dct_rows.T).ravel()
  middle = np.partition(coefficients, (31, 32))
  median = (middle[31] + middle[32]) / 2
  return ph.to_signed(int(np.packbits(coefficients > median).view('>u8')[0]))


def hash_cost_by_size(photos: Iterable[Path], repeats: int = 15, passes: int = 10) -> Dict:
  """CPU µs per image of `image_hashes` (all six hashes) and of `previous_release_phash` on the
  photos as the converter stores them at each of `HASH_SIZES` (the decoded stored JPEG: the shape
  and nearly the pixels it hashes), single thread; `repeats` rounds, each one timed pass of each
  function (`passes` times over the photos) in turn, medians and their ratio."""
  import cv2  # pylint: disable=import-outside-toplevel
  from transforms.imaging import image as image_lib  # pylint: disable=import-outside-toplevel
  from transforms.imaging.perceptual_hash import image_hashes  # pylint: disable=import-outside-toplevel

  cv2.setNumThreads(1)
  datas = [path.read_bytes() for path in photos]
  results = {}
  for name, spec_args in HASH_SIZES.items():
    spec = image_lib.ImageSpec(**spec_args)
    pixels = []
    for data in datas:
      try:
        pixels.append(image_lib.decode_stored_jpeg(image_lib.process_image(data, spec).encoded))
      except image_lib.ImageRejected:
        continue
    times = {'all_hashes_us': [], 'previous_phash_us': []}
    for _ in range(repeats):
      times['all_hashes_us'].append(time_per_item(image_hashes, pixels * passes, 1))
      times['previous_phash_us'].append(time_per_item(previous_release_phash, pixels * passes, 1))
    medians = {key: float(np.median(values)) for key, values in times.items()}
    results[name] = {
      'images': len(pixels),
      'shapes': sorted({p.shape[:2] for p in pixels})[:3],
      **{key: round(value, 1) for key, value in medians.items()},
      'ratio': round(medians['all_hashes_us'] / medians['previous_phash_us'], 3),
    }
  return results


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


STORM_KINDS = ('distinct', 'lookalike', 'frames')
STORM_SIDE = 32  # pixels per side of a storm image
STORM_CLASSES = 100


def storm_image(kind: str, index: int, seed: int = 0) -> bytes:
  """One storm image (module docstring), as baseline JPEG bytes; depends only on (kind, index, seed)."""
  if kind == 'frames':
    data = storm_image('lookalike', 0, seed)
    comment = f'frame {index}'.encode()
    return data[:2] + b'\xff\xfe' + (len(comment) + 2).to_bytes(2, 'big') + comment + data[2:]
  rng = np.random.default_rng([seed, index, STORM_KINDS.index(kind)])
  if kind == 'distinct':
    pixels = rng.integers(0, 256, (STORM_SIDE, STORM_SIDE, 3))
  else:  # one of 8 ramps with a fixed smooth bump field, plus grain: ~5,000 pairs among 4,000
    import cv2  # pylint: disable=import-outside-toplevel

    direction = index % 8
    bumps = np.random.default_rng([7, direction]).normal(0, 1, (4, 4))
    field = cv2.resize(bumps, (STORM_SIDE, STORM_SIDE), interpolation=cv2.INTER_CUBIC)
    y, x = np.mgrid[0:STORM_SIDE, 0:STORM_SIDE] / STORM_SIDE
    angle = np.pi / 4 * direction
    ramp = 64 + 64 * (np.cos(angle) * x + np.sin(angle) * y + 1) + 10 * field
    pixels = ramp[:, :, None] + rng.normal(0, 4, (STORM_SIDE, STORM_SIDE, 3))
  return _jpeg(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), 90)


def storm_folder(root: Path, kind: str, num_images: int, seed: int = 0) -> Path:
  """root/<class>/<index>.jpg for `num_images` storm images of `kind` (`frames`: one class); kept when
  complete (a `_COMPLETE` marker written last), files already there are kept (image `i` depends only
  on (kind, i, seed))."""
  if (root / '_COMPLETE').exists():
    return root
  for index in range(num_images):
    folder = root / (f'c{index % STORM_CLASSES:03d}' if kind != 'frames' else 'c000')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{index:07d}.jpg'
    if not path.exists():  # an interrupted build (or a hard-linked smaller one) goes on
      path.write_bytes(storm_image(kind, index, seed))
  (root / '_COMPLETE').write_text('')
  return root


def storm_run(tree: str, root: Path, output: Path) -> Dict:
  """The converter on `root`, then verify, with `tree` first on PYTHONPATH; measured."""
  import os  # pylint: disable=import-outside-toplevel
  import shutil  # pylint: disable=import-outside-toplevel
  from benchmarks.measure import run_measured  # pylint: disable=import-outside-toplevel

  shutil.rmtree(output, ignore_errors=True)
  env = dict(os.environ, PYTHONPATH=tree)
  convert = run_measured(
    [
      sys.executable,
      '-m',
      'pipeline.run',
      '--input',
      str(root),
      '--output',
      str(output),
      '--resize_shorter_side',
      '0',
      '--center_crop',
      '0',
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    ],
    env=env,
    cwd=tree,
  )
  verify = run_measured([sys.executable, '-m', 'pipeline.verify', str(output)], env=env, cwd=tree)
  duplicates = output / 'duplicates.jsonl'
  result = {
    'tree': tree,
    'exit': convert.returncode,
    'wall_s': round(convert.wall_s, 1),
    'peak_rss_mib': round(convert.peak_rss_bytes / 2**20),
    'largest_process_mib': round(max(convert.peak_rss_by_process.values(), default=0) / 2**20),
    'load_before_after': [round(convert.load_before, 2), round(convert.load_after, 2)],
    'duplicates_jsonl_bytes': duplicates.stat().st_size if duplicates.exists() else None,
    'duplicates_line': next(
      (line for line in convert.stdout.splitlines() if line.startswith('duplicates:')), None
    ),
    'verify_exit': verify.returncode,
    'verify_wall_s': round(verify.wall_s, 1),
    'verify_peak_rss_mib': round(verify.peak_rss_bytes / 2**20),
  }
  if convert.returncode:
    result['stderr_tail'] = convert.stderr[-2000:]
  shutil.rmtree(output, ignore_errors=True)
  return result


def storms(
  kinds: Sequence[str], num_images: Optional[int], trees: Sequence[str], work: Path
) -> None:
  """Every storm kind, each tree in turn (interleaved), one JSON line a run."""
  for kind in kinds:
    count = num_images or (2000 if kind == 'frames' else 100_000)
    root = storm_folder(work / f'{kind}-{count}', kind, count)
    for tree in trees:
      with open('/proc/loadavg') as f:
        load = f.read().split()[:3]
      print(
        json.dumps(
          {'storm': kind, 'images': count, 'loadavg': load, **storm_run(tree, root, work / 'out')}
        ),
        flush=True,
      )


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--num_hashes', type=int, default=IMAGENET_HASHES)
  parser.add_argument(
    '--distance',
    type=int,
    default=None,
    help="bits; default: the converter's --near_duplicate_distance default",
  )
  parser.add_argument('--num_images', type=int, default=300)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument(
    '--skip',
    nargs='*',
    default=(),
    choices=('threshold', 'search', 'chance', 'identical', 'hashing'),
  )
  parser.add_argument('--child', choices=('search', 'chance', 'identical'), help=argparse.SUPPRESS)
  parser.add_argument('--storm', nargs='*', choices=STORM_KINDS, default=None)
  parser.add_argument('--storm_images', type=int, default=None)
  parser.add_argument('--trees', nargs='*', default=[str(Path(__file__).resolve().parent.parent)])
  parser.add_argument('--work', default='/tmp/duplicate_storms')
  args = parser.parse_args(argv)
  if args.storm is not None:
    storms(args.storm or STORM_KINDS, args.storm_images, args.trees, Path(args.work))
    return
  if args.distance is None:
    from transforms.duplicates.near import DEFAULT_NEAR_DISTANCE  # pylint: disable=import-outside-toplevel

    args.distance = DEFAULT_NEAR_DISTANCE
  if args.child:
    {'search': search_child, 'chance': chance_child, 'identical': identical_child}[args.child](
      args.num_hashes, args.distance
    )
    return
  with open('/proc/loadavg') as f:
    print(json.dumps({'loadavg_before': f.read().split()[:3]}), flush=True)
  if 'threshold' not in args.skip:
    print(json.dumps({'threshold': recall_table(sample_photos())}), flush=True)
  for child in ('search', 'chance', 'identical'):
    if child not in args.skip:
      print(json.dumps({child: child_benchmark(child, args.num_hashes, args.distance)}), flush=True)
  if 'hashing' not in args.skip:
    from benchmarks.synth import list_images, synthesize  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory() as cache:
      dataset = synthesize(args.num_images, 10, seed=0, cache_dir=Path(cache), processes=1)
      files = [path for path, _ in list_images(dataset.root)]
      print(json.dumps({'hashing': hashing_cost(files, args.repeats)}), flush=True)
    print(json.dumps({'hashing_by_size': hash_cost_by_size(sample_photos())}), flush=True)
  with open('/proc/loadavg') as f:
    print(json.dumps({'loadavg_after': f.read().split()[:3]}), flush=True)


if __name__ == '__main__':
  main()
