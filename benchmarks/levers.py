"""The levers of issue 11, measured without changing the product: µs per image before/after, and PSNR.

Usage: ``python -m benchmarks.levers [--sets imagenet,phone] [--images 600] [--passes 5] [--commit
HEAD] [--profile]``. On the first ``--images`` files of each synthetic set (``benchmarks.synth``),
in this process, one thread (OpenCV pinned to one), CPU time:

1. per-image variants of ``process_image`` (``benchmarks.variants``): statistics over the pre-encode
   pixels, the simplejpeg header probe with EXIF parsed only when an APP1 segment exists, fast IDCT
   / fast upsampling, M/8 DCT scales, and combinations;
2. the shard writer's per-image work outside the image: ``WriteShardFn._write_records`` (the
   product's per-shard loop, in a Beam metrics container, appending to a real shard) against reading
   with ``open`` + ``process_image`` alone, and with one piece taken away at a time
   (FileSystems.open -> open, progress bookkeeping, the counter, Example building, TFRecord
   framing);
3. PSNR (dB) of each variant's pre-JPEG crop against the float64 Lanczos-3 reference of the same box
   (``benchmarks.imageops.reference_crop``) on the first ``--psnr_images``; the issue's rule: a
   lever that changes pixels is allowed only where PSNR drops by <= 0.2 dB;
4. ``--profile``: cProfile of ``_write_records`` over the files (top functions by own time).

Timing: every variant runs once per pass over the same in-memory files, in rotating order; a
variant's saving is the median over passes of (baseline - variant) within the pass, so the machine's
load weighs on both alike. Each variant's records are compared with the product's, byte for byte.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from benchmarks import imageops as ops
from benchmarks.synth import list_images, synthesize
from benchmarks.variants import BASELINE, Variant, crop_variant, process_variant

VARIANTS = {
  'product process_image (baseline)': None,
  'product path rebuilt in benchmarks (no lever)': BASELINE,
  '1. sums of the pre-encode pixels': Variant(sums='array'),
  '2-. Pillow open + getexif probe (the product before 33246bf)': Variant(probe='pillow'),
  '2. simplejpeg header + Pillow open only with APP1 Exif': Variant(probe='simplejpeg'),
  '2b. simplejpeg header + Exif().load of the APP1 segment': Variant(
    probe='simplejpeg', exif='segment'
  ),
  '4a. fastdct': Variant(fastdct=True),
  '4b. fastupsample': Variant(fastupsample=True),
  '4c. fastdct + fastupsample': Variant(fastdct=True, fastupsample=True),
  '4d. M/8 DCT scales': Variant(scale='m8'),
  '1+2b': Variant(sums='array', probe='simplejpeg', exif='segment'),
  '1+2b+4a': Variant(sums='array', probe='simplejpeg', exif='segment', fastdct=True),
  '5a. EXIF-rotated files: resize as stored, turn the result': Variant(rotate_late=True),
  '5b. decode into a reused buffer': Variant(reuse_buffer=True),
  '1+2b+5a+5b': Variant(
    sums='array', probe='simplejpeg', exif='segment', rotate_late=True, reuse_buffer=True
  ),
}
PSNR_RULE_DB = 0.2


def interleaved(fns: dict[str, Callable], items, passes: int) -> dict[str, list[float]]:
  """CPU µs per item of each fn, per pass. Interleaved image by image: every fn runs on an item
  before the next item, in an order that rotates with the item and the pass, so load changes (and
  which fn meets the item's bytes first in the cache) weigh on all fns alike."""
  names = list(fns)
  n, clock = len(names), time.process_time
  per_pass = {name: [] for name in names}
  items = list(items)
  for p in range(passes):
    totals = dict.fromkeys(names, 0.0)
    for i, item in enumerate(items):
      k = (p + i) % n
      for name in names[k:] + names[:k]:
        start = clock()
        fns[name](item)
        totals[name] += clock() - start
    for name in names:
      per_pass[name].append(totals[name] / len(items) * 1e6)
  return per_pass


def paired(per_pass: dict[str, list[float]], baseline: str) -> dict[str, dict]:
  """Median µs per item, and median (min-max) of the saving against ``baseline`` in the same pass."""
  out = {}
  for name, values in per_pass.items():
    savings = [b - v for b, v in zip(per_pass[baseline], values)]
    out[name] = {
      'us': statistics.median(values),
      'saving_us': statistics.median(savings),
      'saving_min_us': min(savings),
      'saving_max_us': max(savings),
      'passes': values,
    }
  return out


def components(blobs: list[bytes], spec, passes: int) -> dict[str, dict]:
  """Each lever's own step before/after, timed alone (interleaved per image, per group)."""
  from transforms.imaging import image as image_lib
  from benchmarks import variants as vs

  items = []
  for data in blobs:
    head = vs.probe(data, spec, vs.BASELINE)
    crop = vs.crop_variant(data, spec, vs.BASELINE)
    if head is None or crop is None:
      continue
    items.append((data, head, crop[0], image_lib._encode(crop[0], spec.jpeg_quality)))

  def dec(variant):
    return lambda it: vs.decode(it[0], it[1][0], it[1][1], spec, variant)

  groups = {
    'probe': {
      'transforms.imaging.image.jpeg_header (product)': lambda it: vs.probe(
        it[0], spec, vs.BASELINE
      ),
      'Pillow open_image + EXIF orientation (the product before 33246bf)': lambda it: vs.probe(
        it[0], spec, vs.Variant(probe='pillow')
      ),
      'simplejpeg header + APP1 scan, Pillow open only with Exif': lambda it: vs.probe(
        it[0], spec, vs.Variant(probe='simplejpeg')
      ),
      'simplejpeg header + APP1 scan + Exif().load of the segment': lambda it: vs.probe(
        it[0], spec, vs.Variant(probe='simplejpeg', exif='segment')
      ),
    },
    'statistics': {
      'decode the stored JPEG + exact sums (product)': lambda it: image_lib.stored_pixel_sums(
        it[3]
      ),
      'exact sums of the pre-encode pixels': lambda it: image_lib.channel_sums(it[2]),
    },
    'decode': {
      'accurate IDCT, fancy upsampling, power-of-two scale (product)': dec(vs.BASELINE),
      'fastdct': dec(vs.Variant(fastdct=True)),
      'fastupsample': dec(vs.Variant(fastupsample=True)),
      'fastdct + fastupsample': dec(vs.Variant(fastdct=True, fastupsample=True)),
      'M/8 scale': dec(vs.Variant(scale='m8')),
    },
  }
  return {
    group: paired(interleaved(fns, items, passes), next(iter(fns))) | {'images': len(items)}
    for group, fns in groups.items()
  }


def reference_geometry(data: bytes, spec) -> ops.Geometry:
  """The product's crop box on the upright image, as a Geometry for ``reference_crop``."""
  from transforms.imaging import image as image_lib

  with image_lib.open_image(data) as im:
    width, height = im.size
    if image_lib._orientation(im) >= 5:
      width, height = height, width
  box, size = image_lib.crop_box(width, height, spec)
  assert size == (spec.center_crop, spec.center_crop), size
  return ops.Geometry(width, height, box, spec.center_crop)


def psnr_table(blobs: list[bytes], spec) -> dict[str, dict]:
  """PSNR (dB) of each variant's pre-JPEG crop against the Lanczos reference; files the variant
  leaves to the product's Pillow path are skipped (counted in 'images')."""
  refs = [ops.reference_crop(d, reference_geometry(d, spec)) for d in blobs]
  out = {}
  for name, variant in VARIANTS.items():
    if variant is None:
      continue
    mses = []
    for data, ref in zip(blobs, refs):
      crop = crop_variant(data, spec, variant)
      if crop is not None:
        mses.append(float(np.mean((crop[0][..., :3].astype(np.float64) - ref) ** 2)))
    out[name] = {'psnr_db': ops.psnr(statistics.fmean(mses)), 'images': len(mses)}
  return out


def compare_records(blobs: list[bytes], spec) -> dict[str, dict]:
  """Per variant: files whose stored JPEG bytes equal the product's, and the largest change of a
  channel mean (0-255 levels) of the set's statistics."""
  from transforms.imaging.image import process_image

  base = [process_image(d, spec) for d in blobs]
  pixels = sum(b.height * b.width for b in base)
  base_means = np.sum([b.channel_sums for b in base], axis=0) / pixels
  out = {}
  for name, variant in VARIANTS.items():
    if variant is None:
      continue
    got = [process_variant(d, spec, variant) for d in blobs]
    means = np.sum([g.channel_sums for g in got], axis=0) / sum(g.height * g.width for g in got)
    out[name] = {
      'identical_bytes': sum(g.encoded == b.encoded for g, b in zip(got, base)),
      'images': len(blobs),
      'max_mean_change': float(np.max(np.abs(means - base_means))),
    }
  return out


def shard_refs(root: Path, limit: int):
  """ImageRefs of the first ``limit`` files (one shard) and the split roots the writer needs."""
  from transforms.split.sharding import UNSPLIT, ImageRef

  files = list_images(root)[:limit]
  refs = [
    ImageRef(UNSPLIT, label, path.parent.name, f'{path.parent.name}/{path.name}')
    for path, label in files
  ]
  return refs, {UNSPLIT: str(root)}


class ShardLoop:
  """The product's per-shard loop (``WriteShardFn._write_records``) on local files, in a metrics container."""

  def __init__(self, refs, split_roots, spec, out_dir: str):
    from apache_beam.metrics.execution import MetricsContainer
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory
    from transforms.output.layout import OutputLayout
    from transforms.imaging.convert import RecordRecipe
    from transforms.output.shard_writer import WriteShardFn

    # As in an SDK worker: a state sampler (its thread samples every 200 ms) whose 'process'
    # state carries the step's metrics container, so that the counters really count.
    self.sampler = statesampler.StateSampler('levers', CounterFactory())
    self.state = self.sampler.scoped_state(
      'WriteShard', 'process', metrics_container=MetricsContainer('WriteShard')
    )
    self.sampler.start()
    self.fn = WriteShardFn(OutputLayout(out_dir), RecordRecipe(split_roots, spec), 0, False)
    self.fn.setup()
    self.refs, self.out_dir = refs, out_dir

  def run(self, refs) -> None:
    """One pass of the loop over ``refs`` into a new shard file."""
    with (
      self.state,
      self.fn._format.create(os.path.join(self.out_dir, 'shard.tmp'), 'none') as write,
    ):
      self.fn._write_records(write, 'train-00000-of-00001', 'train', refs)

  def some(self, refs) -> None:
    """The loop over a few files, appending to an open shard (a per-call fixed cost comes with it)."""
    with self.state:
      self.fn._write_records(self.sink, 'train-00000-of-00001', 'train', refs)

  def open(self) -> None:
    self._shard = self.fn._format.create(os.path.join(self.out_dir, 'one.tmp'), 'none')
    self.sink = self._shard.__enter__()

  def close(self) -> None:
    self._shard.__exit__(None, None, None)


WRITER_CHUNK = 10  # files per call of the loop: per-shard costs amortised, load drift still cancels


def writer_in_situ(loop: ShardLoop, refs, split_roots, spec, passes: int) -> dict[str, dict]:
  """The per-shard loop on WRITER_CHUNK files per call, as the product runs it and with one piece of
  its per-image work outside the image taken away (patched on the live objects for that call only):
  each piece's cost where it runs, between decodes, with the caches as they are there. µs per file."""
  import types
  from transforms.output import shard_writer
  from transforms.imaging.image import process_image

  def without(target, attr, value):
    def run(chunk):
      old = getattr(target, attr)
      setattr(target, attr, value)
      try:
        loop.some(chunk)
      finally:
        setattr(target, attr, old)

    return run

  def plain_open(path, compression_type=None):
    return open(path, 'rb')

  plain_fs = types.SimpleNamespace(open=plain_open)  # the local filesystem, as builtin open()
  # convert_file (transforms/imaging/convert.py) builds through it
  from transforms.imaging import example

  fixed = example.build_example(b'x' * 20000, 256, 256, 'n0/x.JPEG', 0, 'n0')
  fns = {
    '_write_records (product)': loop.some,
    'open + read + process_image only': lambda chunk: [
      process_image(Path(split_roots[r.split], r.key).read_bytes(), spec) for r in chunk
    ],
    'with open() instead of FileSystems': without(
      shard_writer,
      'FileSystems',
      types.SimpleNamespace(open=plain_open, get_filesystem=lambda path: plain_fs),
    ),
    'without progress bookkeeping': without(
      loop.fn, '_progress', types.SimpleNamespace(add=lambda **kw: None)
    ),
    'without the images_written counter': without(
      loop.fn, '_written', types.SimpleNamespace(inc=lambda n=1: None)
    ),
    'without building the Example (fixed bytes)': without(
      example, 'build_example', lambda *a: fixed
    ),
    'without TFRecord framing + write': without(loop, 'sink', lambda record: None),
  }
  chunks = [refs[i : i + WRITER_CHUNK] for i in range(0, len(refs), WRITER_CHUNK)]
  result = paired(interleaved(fns, chunks, passes), '_write_records (product)')
  for r in result.values():  # µs per chunk -> per file
    for key in ('us', 'saving_us', 'saving_min_us', 'saving_max_us'):
      r[key] /= len(refs) / len(chunks)
  return result


def profile_loop(loop: ShardLoop, top: int = 25) -> str:
  """cProfile of one pass of the per-shard loop: the top functions by own (tottime) time."""
  profiler = cProfile.Profile()
  profiler.enable()
  loop.run(loop.refs)
  profiler.disable()
  buf = io.StringIO()
  pstats.Stats(profiler, stream=buf).sort_stats('tottime').print_stats(top)
  return buf.getvalue()


def measure_set(profile: str, args) -> dict:
  from transforms.imaging.image import ImageSpec, process_image

  cv2.setNumThreads(1)
  spec = ImageSpec()
  from benchmarks.run import DEFAULT_SIZES

  num_images = args.num_images or DEFAULT_SIZES[profile][1]
  dataset = synthesize(num_images, min(100, num_images), 0, profile=profile)
  paths = [p for p, _ in list_images(dataset.root)][: args.images]
  blobs = [p.read_bytes() for p in paths]
  fns = {
    name: (lambda d: process_image(d, spec))
    if v is None
    else (lambda d, v=v: process_variant(d, spec, v))
    for name, v in VARIANTS.items()
  }
  print(
    f'[{profile}] {len(blobs)} images, {args.passes} interleaved passes of {len(fns)} variants',
    flush=True,
  )
  result = {'profile': profile, 'images': len(blobs), 'load_before': os.getloadavg()[0]}
  result['variants'] = paired(
    interleaved(fns, blobs, args.passes), 'product process_image (baseline)'
  )
  result['components'] = components(blobs, spec, args.passes)
  result['records'] = compare_records(blobs, spec)
  print(f'[{profile}] PSNR on {args.psnr_images} images', flush=True)
  result['psnr'] = psnr_table(blobs[: args.psnr_images], spec)
  with tempfile.TemporaryDirectory(prefix='levers-') as out_dir:
    refs, split_roots = shard_refs(dataset.root, args.images)
    loop = ShardLoop(refs, split_roots, spec, out_dir)
    loop.open()
    empty = interleaved(
      {'empty': lambda _: loop.fn._write_records(loop.sink, 'x', 'train', [])}, refs, 1
    )
    result['writer'] = {
      'variants': writer_in_situ(loop, refs, split_roots, spec, args.passes),
      'per_call_us': statistics.median(empty['empty']),
    }
    loop.close()
    if args.profile:
      result['profile_text'] = profile_loop(loop)
    loop.sampler.stop()
  result['load_after'] = os.getloadavg()[0]
  return result


def format_set(r: dict) -> str:
  base_psnr = r['psnr']['product path rebuilt in benchmarks (no lever)']['psnr_db']
  lines = [
    f"### Set '{r['profile']}': {r['images']} images, load {r['load_before']:.1f}-{r['load_after']:.1f}",
    '',
    '| variant | µs/image (median) | saving µs (median, min-max over passes) | PSNR dB | ΔPSNR dB '
    '| rule (ΔPSNR >= -0.2) | records identical | max Δ channel mean |',
    '|---|--:|--:|--:|--:|---|--:|--:|',
  ]
  for name, t in r['variants'].items():
    q, rec = r['psnr'].get(name), r['records'].get(name)
    delta = q['psnr_db'] - base_psnr if q else None
    lines.append(
      f'| {name} | {t["us"]:.0f} | {t["saving_us"]:+.0f} ({t["saving_min_us"]:+.0f} to '
      f'{t["saving_max_us"]:+.0f}) '
      f'| {q["psnr_db"]:.2f} | {delta:+.2f} | {"allowed" if delta >= -PSNR_RULE_DB else "NOT allowed"} '
      f'| {rec["identical_bytes"]}/{rec["images"]} | {rec["max_mean_change"]:.3f} |'
      if q
      else f'| {name} | {t["us"]:.0f} | (the baseline) | | | | | |'
    )
  for group, rows in r['components'].items():
    lines += [
      '',
      f'| {group}: the step alone ({rows["images"]} images) | µs/image | saving µs (min-max) |',
      '|---|--:|--:|',
    ]
    lines += [
      f'| {name} | {t["us"]:.1f} | {t["saving_us"]:+.1f} ({t["saving_min_us"]:+.1f} to '
      f'{t["saving_max_us"]:+.1f}) |'
      for name, t in rows.items()
      if name != 'images'
    ]
  w = r['writer']
  product = w['variants']['_write_records (product)']['us']
  alone = w['variants']['open + read + process_image only']['us']
  lines += [
    '',
    f'shard writer, `_write_records` on {WRITER_CHUNK} files a call ({w["per_call_us"]:.0f} µs a call '
    f'with no file): {product - alone:+.0f} µs/image over open + read + process_image',
    '',
    '| per-shard loop (in situ, interleaved per file) | µs/image | saving µs (median, min-max) |',
    '|---|--:|--:|',
  ]
  lines += [
    f'| {name} | {t["us"]:.0f} | {t["saving_us"]:+.0f} ({t["saving_min_us"]:+.0f} to '
    f'{t["saving_max_us"]:+.0f}) |'
    for name, t in w['variants'].items()
  ]
  if r.get('profile_text'):
    lines += ['', '```', r['profile_text'].strip(), '```']
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sets', default='imagenet,phone')
  parser.add_argument(
    '--num_images', type=int, default=0, help='synthetic set size (0: as benchmarks.run)'
  )
  parser.add_argument('--images', type=int, default=600, help='files measured per set')
  parser.add_argument('--psnr_images', type=int, default=60)
  parser.add_argument('--passes', type=int, default=5)
  parser.add_argument(
    '--profile', action='store_true', help='also print a cProfile of the per-shard loop'
  )
  parser.add_argument(
    '--commit', default='', help='measure the product code of this commit (git archive)'
  )
  parser.add_argument('--results', default=str(Path(__file__).resolve().parent / 'results'))
  args = parser.parse_args(argv)
  if args.commit:
    return _rerun_at_commit(args.commit, argv if argv is not None else sys.argv[1:])
  from benchmarks.run import code_state, git

  results = {
    'commit': git('rev-parse', '--short', 'HEAD'),
    'code': code_state(Path.cwd()),
    'argv': sys.argv[1:],
    'sets': [],
  }
  for profile in args.sets.split(','):
    results['sets'].append(measure_set(profile, args))
    print('\n' + format_set(results['sets'][-1]), flush=True)
  Path(args.results).mkdir(parents=True, exist_ok=True)
  stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime())
  (
    Path(args.results) / f'levers-{stamp}-{os.environ.get("BENCH_COMMIT", results["commit"])}.json'
  ).write_text(json.dumps(results, indent=1, default=str))
  return 0


def _rerun_at_commit(ref: str, argv: list[str]) -> int:
  """Run this module again inside a ``git archive`` of ``ref`` (with this checkout's benchmarks/)."""
  import subprocess
  from benchmarks.run import export_commit

  rest = [
    a
    for i, a in enumerate(argv)
    if a != '--commit' and (i == 0 or argv[i - 1] != '--commit') and not a.startswith('--commit=')
  ]
  results = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a == '--results'), None)
  with tempfile.TemporaryDirectory(prefix='bench-code-') as snapshot:
    commit = export_commit(ref, Path(snapshot))
    env = dict(os.environ, PYTHONPATH=snapshot, BENCH_COMMIT=commit)
    extra = [] if results else ['--results', str(Path(__file__).resolve().parent / 'results')]
    return subprocess.run(
      [sys.executable, '-m', 'benchmarks.levers', *rest, *extra], cwd=snapshot, env=env
    ).returncode


if __name__ == '__main__':
  sys.exit(main())
