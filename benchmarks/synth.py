"""Synthesise an ImageNet-like image folder from the repository's real sample photos.

Why synthetic: ImageNet cannot ship with the repository, but per-image cost depends mostly on the
JPEG geometry and entropy, so random crops/rescales/flips of real photos re-encoded the way ImageNet
files look (mostly 500x375 / 375x500, a tail up to ~2000 px, quality 90-95, ~110 KB a file on
ImageNet) give representative decode/resize/encode work.

Layout written: ``<root>/n<8 digits>/<class>_<index:06d>.JPEG`` (``class = index % num_classes``), an
ImageNet-style synset folder per class. Image ``i`` depends only on ``(seed, i)``: the first N images
of a larger dataset are byte-identical to a smaller one with the same seed and class count.

Datasets are cached under ``default_cache_dir()`` keyed by (N, C, seed, SYNTH_VERSION); a
``_COMPLETE`` marker is written last, so an interrupted build is redone, never half-used.
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


@dataclass(frozen=True)
class SynthDataset:
    """A generated dataset: ``root/<synset>/<file>.JPEG``, ``num_images`` files, ``total_bytes``."""
    root: Path
    num_images: int
    num_classes: int
    total_bytes: int


def default_cache_dir() -> Path:
    """``$FOLDER2TFRECORD_BENCH_CACHE`` or ``<tmp>/folder2tfrecord-bench`` (created on demand)."""
    return Path(os.environ.get('FOLDER2TFRECORD_BENCH_CACHE',
                               Path(tempfile.gettempdir()) / 'folder2tfrecord-bench'))


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


def synth_image(sources: list[Image.Image], seed: int, index: int) -> bytes:
    """JPEG bytes of image ``index``: a random crop of a random source, rescaled, maybe mirrored.

    The crop keeps the target aspect ratio and covers 35-100% of the largest such region of the
    source; grain of NOISE_SIGMA is added; quality is uniform in 90..95. Deterministic in
    (seed, index, sources).
    """
    rng = random.Random(f'{seed}:{index}')
    src = sources[rng.randrange(len(sources))]
    width, height = target_size(rng)
    aspect = width / height
    sw, sh = src.size
    cw, ch = (sw, sw / aspect) if sw / sh <= aspect else (sh * aspect, sh)
    scale = math.sqrt(rng.uniform(0.35, 1.0))
    cw, ch = cw * scale, ch * scale
    left, top = rng.uniform(0, sw - cw), rng.uniform(0, sh - ch)
    img = src.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Sensor-like grain: rescaled crops are smoother than camera JPEGs; without it files are ~half
    # ImageNet's ~110 KB and decode faster than real ones.
    noise = np.random.default_rng([seed, index]).standard_normal((height, width, 1), np.float32)
    noise *= rng.uniform(*NOISE_SIGMA)
    img = Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, 'JPEG', quality=rng.randint(90, 95))
    return buf.getvalue()


_WORKER_SOURCES: list[Image.Image] = []


def _init_worker() -> None:
    _WORKER_SOURCES[:] = load_sources()


def _write_one(job: tuple[Path, int, int]) -> int:
    path, seed, index = job
    data = synth_image(_WORKER_SOURCES, seed, index)
    path.write_bytes(data)
    return len(data)


def synthesize(num_images: int, num_classes: int, seed: int = 0, cache_dir: Path | None = None,
               processes: int = 2) -> SynthDataset:
    """Build (or reuse from the cache) a dataset of ``num_images`` JPEGs in ``num_classes`` folders.

    Raises ValueError for num_images < num_classes or num_classes < 1.
    """
    if num_classes < 1 or num_images < num_classes:
        raise ValueError(f'need num_images >= num_classes >= 1, got {num_images} images, {num_classes} classes')
    cache_dir = Path(cache_dir or default_cache_dir())
    root = cache_dir / f'synth-v{SYNTH_VERSION}-n{num_images}-c{num_classes}-s{seed}'
    marker = root / '_COMPLETE'
    if marker.exists():
        info = json.loads(marker.read_text())
        return SynthDataset(root, info['num_images'], info['num_classes'], info['total_bytes'])
    if root.exists():
        shutil.rmtree(root)
    for label in range(num_classes):
        (root / synset_name(label)).mkdir(parents=True)
    jobs = [(root / synset_name(i % num_classes) / f'{synset_name(i % num_classes)}_{i:06d}.JPEG', seed, i)
            for i in range(num_images)]
    larger = _larger_cached(cache_dir, num_images, num_classes, seed)
    if larger is not None:  # image i depends only on (seed, i): link the first N of a larger dataset
        sizes = [_link(larger / path.relative_to(root), path) for path, _, _ in jobs]
    elif processes > 1:
        with multiprocessing.get_context('fork').Pool(processes, initializer=_init_worker) as pool:
            sizes = pool.map(_write_one, jobs, chunksize=64)
    else:
        _init_worker()
        sizes = [_write_one(job) for job in jobs]
    info = {'num_images': num_images, 'num_classes': num_classes, 'total_bytes': sum(sizes), 'seed': seed}
    marker.write_text(json.dumps(info))
    return SynthDataset(root, num_images, num_classes, info['total_bytes'])


def _larger_cached(cache_dir: Path, num_images: int, num_classes: int, seed: int) -> Path | None:
    """A complete cached dataset with the same classes and seed and at least ``num_images`` images."""
    for marker in cache_dir.glob(f'synth-v{SYNTH_VERSION}-n*-c{num_classes}-s{seed}/_COMPLETE'):
        if json.loads(marker.read_text())['num_images'] >= num_images:
            return marker.parent
    return None


def _link(src: Path, dst: Path) -> int:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    return dst.stat().st_size


def list_images(root: Path) -> list[tuple[Path, int]]:
    """(path, label) for every image under ``root/<class>/``, sorted by path; label = sorted class index."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    return [(path, label) for label, name in enumerate(classes)
            for path in sorted((root / name).iterdir()) if not path.name.startswith('.')]
