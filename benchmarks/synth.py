"""Synthesise an ImageNet-like image folder from the repository's real sample photos.

Why synthetic: ImageNet cannot ship with the repository, but per-image cost depends mostly on the
JPEG geometry and entropy, so random crops/rescales/flips of real photos re-encoded the way ImageNet
files look give representative decode/resize/encode work. Two generator profiles, so that no
conclusion rests on one kind of file:

* ``imagenet`` (the default): mostly 500x375 / 375x500, a tail up to ~2000 px, quality 90-95, 4:2:0,
  baseline, luminance grain, no EXIF (~110 KB a file, as ImageNet's training files);
* ``phone``: phone and web photos: 4:3 and 16:9 sizes from 320x240 to 2592x1944 (46% above 1000 px),
  a third portrait, half of those stored sideways with an EXIF orientation tag, EXIF on 60% of the
  files, quality 75-98, 4:2:0 / 4:2:2 / 4:4:4, 10% progressive, coarse colour grain of 0-6 levels.

Layout written: ``<root>/n<8 digits>/<class>_<index:06d>.JPEG`` (``class = index % num_classes``),
an ImageNet-style synset folder per class. Image ``i`` depends only on ``(seed, i)``: the first N
images of a larger dataset are byte-identical to a smaller one with the same seed and class count.

Datasets are cached under ``default_cache_dir()`` keyed by (profile, N, C, seed, SYNTH_VERSION); a
``_COMPLETE`` marker is written last, so an interrupted build is redone, never half-used. The
``imagenet`` profile's files and cache names are those of the first version of this module.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SYNTH_VERSION = 1  # bump when the generator changes: the cache key includes it
SAMPLE_DIR = Path(__file__).resolve().parent.parent / 'data' / 'sample_images'
IMAGE_SUFFIXES = ('.jpeg', '.jpg', '.png')
TAIL_FRACTION = 0.12  # share of images with a long side in (500, MAX_LONG_SIDE_PX]
MAX_LONG_SIDE_PX = 2000
ASPECTS = (4 / 3, 4 / 3, 4 / 3, 3 / 2, 1.0, 5 / 4)  # ImageNet: 500x375 dominates
PORTRAIT_FRACTION = 0.25
NOISE_SIGMA = (3.0, 8.0)  # grey-level std of added luminance grain, uniform in this range

PROFILES = ('imagenet', 'phone')
# phone profile: (weight, (long side, short side)) of landscape sizes in pixels.
PHONE_SIZES = (
  (6, (640, 480)),
  (3, (800, 600)),
  (3, (1024, 768)),
  (2, (1280, 960)),
  (1, (1600, 1200)),
  (1, (2592, 1944)),  # 4:3
  (2, (854, 480)),
  (2, (1280, 720)),
  (2, (1920, 1080)),  # 16:9
  (2, (600, 400)),
  (1, (1500, 1000)),  # 3:2
  (1, (320, 240)),
  (1, (400, 300)),
  (1, (1080, 1080)),
)  # small (shorter side < 256) and square
PHONE_PORTRAIT_FRACTION = 0.35
PHONE_SIDEWAYS_FRACTION = 0.5  # of portrait photos: stored landscape + EXIF orientation 6 or 8
PHONE_EXIF_FRACTION = 0.6  # of the others: an EXIF block with orientation 1
PHONE_QUALITIES = (75, 80, 85, 88, 92, 95, 98)
PHONE_SUBSAMPLING = ((6, 2), (3, 1), (1, 0))  # (weight, Pillow subsampling): 4:2:0, 4:2:2, 4:4:4
PHONE_PROGRESSIVE_FRACTION = 0.1
PHONE_NOISE_SIGMA = (0.0, 6.0)  # per-channel grain std, drawn at half resolution (coarse, blotchy)


@dataclass(frozen=True)
class SynthDataset:
  """A generated dataset: ``root/<synset>/<file>.JPEG``, ``num_images`` files, ``total_bytes``."""

  root: Path
  num_images: int
  num_classes: int
  total_bytes: int
  profile: str = 'imagenet'


def default_cache_dir() -> Path:
  """``$FOLDER2TFRECORD_BENCH_CACHE`` or ``<tmp>/folder2tfrecord-bench`` (created on demand)."""
  return Path(
    os.environ.get(
      'FOLDER2TFRECORD_BENCH_CACHE', Path(tempfile.gettempdir()) / 'folder2tfrecord-bench'
    )
  )


def synset_name(label: int) -> str:
  """ImageNet-looking class folder name for class index ``label`` (e.g. ``n00000003``)."""
  return f'n{label:08d}'


def load_sources(sample_dir: Path = SAMPLE_DIR) -> list[Image.Image]:
  """All sample photos, upright (EXIF applied) RGB, in sorted path order. Raises if none found."""
  paths = sorted(p for p in sample_dir.glob('*/*') if p.suffix.lower() in IMAGE_SUFFIXES)
  if not paths:
    raise FileNotFoundError(f'no sample photos under {sample_dir}; expected <class>/<image> files')
  sources = []
  for path in paths:
    with Image.open(path) as im:
      sources.append(ImageOps.exif_transpose(im).convert('RGB'))
  return sources


def target_size(rng: random.Random) -> tuple[int, int]:
  """(width, height) in pixels: long side 500 (88%) or log-uniform in (500, 2000] (12%)."""
  long_side = 500
  if rng.random() < TAIL_FRACTION:
    long_side = int(round(math.exp(rng.uniform(math.log(520), math.log(MAX_LONG_SIDE_PX)))))
  short_side = int(round(long_side / rng.choice(ASPECTS)))
  if rng.random() < PORTRAIT_FRACTION:
    return short_side, long_side
  return long_side, short_side


def phone_size(rng: random.Random) -> tuple[int, int, int]:
  """phone profile: (width, height, EXIF orientation) of the upright photo; orientation 6 or 8 means
  the file stores it sideways (as phones do), 1 an upright file with EXIF, 0 no EXIF block."""
  weights, sizes = zip(*PHONE_SIZES)
  long_side, short_side = rng.choices(sizes, weights)[0]
  if rng.random() < PHONE_PORTRAIT_FRACTION:
    if rng.random() < PHONE_SIDEWAYS_FRACTION:
      return short_side, long_side, rng.choice((6, 8))
    return short_side, long_side, 1 if rng.random() < PHONE_EXIF_FRACTION else 0
  return long_side, short_side, 1 if rng.random() < PHONE_EXIF_FRACTION else 0


def synth_image(
  sources: list[Image.Image], seed: int, index: int, profile: str = 'imagenet'
) -> bytes:
  """JPEG bytes of image ``index``: a random crop of a random source, rescaled, maybe mirrored.

  The crop keeps the target aspect ratio and covers 35-100% of the largest such region of the
  source; then grain and the JPEG settings of ``profile`` (see the module docstring).
  Deterministic in (seed, index, profile, sources).
  """
  if profile not in PROFILES:
    raise ValueError(f'profile must be one of {PROFILES}, got {profile!r}')
  rng = random.Random(f'{seed}:{index}' if profile == 'imagenet' else f'{profile}:{seed}:{index}')
  src = sources[rng.randrange(len(sources))]
  if profile == 'imagenet':
    width, height = target_size(rng)
  else:
    width, height, orientation = phone_size(rng)
  aspect = width / height
  sw, sh = src.size
  cw, ch = (sw, sw / aspect) if sw / sh <= aspect else (sh * aspect, sh)
  scale = math.sqrt(rng.uniform(0.35, 1.0))
  cw, ch = cw * scale, ch * scale
  left, top = rng.uniform(0, sw - cw), rng.uniform(0, sh - ch)
  img = src.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
  if rng.random() < 0.5:
    img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  if profile == 'imagenet':
    return _imagenet_jpeg(img, rng, np.random.default_rng([seed, index]))
  return _phone_jpeg(img, orientation, rng, np.random.default_rng([seed, index, 1]))


def _imagenet_jpeg(img: Image.Image, rng: random.Random, noise_rng: np.random.Generator) -> bytes:
  # Sensor-like grain: rescaled crops are smoother than camera JPEGs; without it files are ~half
  # ImageNet's ~110 KB and decode faster than real ones.
  noise = noise_rng.standard_normal((img.height, img.width, 1), np.float32)
  noise *= rng.uniform(*NOISE_SIGMA)
  img = Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))
  buf = io.BytesIO()
  img.save(buf, 'JPEG', quality=rng.randint(90, 95))
  return buf.getvalue()


def _phone_jpeg(
  img: Image.Image, orientation: int, rng: random.Random, noise_rng: np.random.Generator
) -> bytes:
  """Coarse colour grain (drawn at half resolution, upscaled), then the file as a phone or a web
  server writes it: sideways + EXIF orientation, quality, chroma subsampling, progressive."""
  sigma = rng.uniform(*PHONE_NOISE_SIGMA)
  half = (
    noise_rng.standard_normal(((img.height + 1) // 2, (img.width + 1) // 2, 3), np.float32) * sigma
  )
  noise = np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)[: img.height, : img.width]
  img = Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))
  if orientation in (6, 8):  # Stored sideways; the tag says how to turn it upright.
    img = img.transpose(
      Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
    )
  weights, subsamplings = zip(*PHONE_SUBSAMPLING)
  options = {
    'quality': rng.choice(PHONE_QUALITIES),
    'subsampling': rng.choices(subsamplings, weights)[0],
    'progressive': rng.random() < PHONE_PROGRESSIVE_FRACTION,
  }
  if orientation:
    exif = Image.Exif()
    exif.update(
      {
        0x010F: 'SynthPhone',
        0x0110: 'Model 1',
        0x0131: 'folder2tfrecord benchmarks',
        0x0132: '2026:11:30 12:00:00',
        0x0112: orientation,
      }
    )
    options['exif'] = exif.tobytes()
  buf = io.BytesIO()
  img.save(buf, 'JPEG', **options)
  return buf.getvalue()


_WORKER_SOURCES: list[Image.Image] = []


def _init_worker() -> None:
  _WORKER_SOURCES[:] = load_sources()


def _write_one(job: tuple[Path, int, int, str]) -> int:
  path, seed, index, profile = job
  data = synth_image(_WORKER_SOURCES, seed, index, profile)
  path.write_bytes(data)
  return len(data)


def _cache_prefix(profile: str) -> str:
  """Cache folder name prefix: the first version's names for ``imagenet``, the profile otherwise."""
  return f'synth-v{SYNTH_VERSION}' + ('' if profile == 'imagenet' else f'-{profile}')


def synthesize(
  num_images: int,
  num_classes: int,
  seed: int = 0,
  cache_dir: Path | None = None,
  processes: int = 2,
  profile: str = 'imagenet',
) -> SynthDataset:
  """Build (or reuse from the cache) a dataset of ``num_images`` JPEGs in ``num_classes`` folders.

  Raises ValueError for num_images < num_classes, num_classes < 1 or an unknown ``profile``.
  """
  if num_classes < 1 or num_images < num_classes:
    raise ValueError(
      f'need num_images >= num_classes >= 1, got {num_images} images, {num_classes} classes'
    )
  if profile not in PROFILES:
    raise ValueError(f'profile must be one of {PROFILES}, got {profile!r}')
  cache_dir = Path(cache_dir or default_cache_dir())
  root = cache_dir / f'{_cache_prefix(profile)}-n{num_images}-c{num_classes}-s{seed}'
  marker = root / '_COMPLETE'
  if marker.exists():
    info = json.loads(marker.read_text())
    return SynthDataset(root, info['num_images'], info['num_classes'], info['total_bytes'], profile)
  if root.exists():
    shutil.rmtree(root)
  for label in range(num_classes):
    (root / synset_name(label)).mkdir(parents=True)
  jobs = [
    (
      root / synset_name(i % num_classes) / f'{synset_name(i % num_classes)}_{i:06d}.JPEG',
      seed,
      i,
      profile,
    )
    for i in range(num_images)
  ]
  # Image i depends only on (seed, i): link the first N of a larger cached dataset, or the whole of
  # the largest smaller one and synthesise the rest.
  cached, cached_images = _nearest_cached(
    cache_dir, _cache_prefix(profile), num_images, num_classes, seed
  )
  linked = min(cached_images, num_images)
  sizes = [_link(cached / path.relative_to(root), path) for path, _, _, _ in jobs[:linked]]
  if linked < num_images and processes > 1:
    with multiprocessing.get_context('fork').Pool(processes, initializer=_init_worker) as pool:
      sizes += pool.map(_write_one, jobs[linked:], chunksize=64)
  elif linked < num_images:
    _init_worker()
    sizes += [_write_one(job) for job in jobs[linked:]]
  info = {
    'num_images': num_images,
    'num_classes': num_classes,
    'total_bytes': sum(sizes),
    'seed': seed,
    'profile': profile,
  }
  marker.write_text(json.dumps(info))
  return SynthDataset(root, num_images, num_classes, info['total_bytes'], profile)


def _nearest_cached(
  cache_dir: Path, prefix: str, num_images: int, num_classes: int, seed: int
) -> tuple[Path | None, int]:
  """(folder, images) of a complete cached dataset with the same profile, classes and seed: the
  smallest with >= ``num_images`` images, else the largest smaller one; (None, 0) when none."""
  found = []
  for marker in cache_dir.glob(f'{prefix}-n*-c{num_classes}-s{seed}/_COMPLETE'):
    found.append((json.loads(marker.read_text())['num_images'], marker.parent))
  larger = [entry for entry in found if entry[0] >= num_images]
  if larger:
    count, folder = min(larger)
  elif found:
    count, folder = max(found)
  else:
    return None, 0
  return folder, count


def _link(src: Path, dst: Path) -> int:
  try:
    os.link(src, dst)
  except OSError:
    shutil.copyfile(src, dst)
  return dst.stat().st_size


def list_images(root: Path) -> list[tuple[Path, int]]:
  """(path, label) for every image under ``root/<class>/``, sorted by path; label = sorted class index."""
  classes = sorted(p.name for p in root.iterdir() if p.is_dir())
  return [
    (path, label)
    for label, name in enumerate(classes)
    for path in sorted((root / name).iterdir())
    if not path.name.startswith('.')
  ]
