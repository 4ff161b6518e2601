"""What a --base version costs after a small addition, against a fresh conversion of the same input.

A synthetic ImageNet-like folder (benchmarks/synth.py) of N images; the base is converted from the
images whose index is below N x (1 - --added) (hard links: the same files, sizes and modification
times), then the whole folder is converted twice: fresh, and as a version of the base (--base). Each
run is one `python -m pipeline.run` process, measured with benchmarks/measure.py (CPU seconds of the
whole process tree, wall seconds); the version's manifest says how many shards it reused, rewrote
and added. The same flags for all three runs (--target_shard_mb small enough for many shards).

Usage: ``python -m benchmarks.versions --images 5000 [--classes 50] [--added 0.05]
[--target_shard_mb 4] [--work DIR]``; prints one JSON object and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import run_measured
from benchmarks.synth import synthesize


def _linked_input(source: Path, target: Path, below: int) -> int:
  """Links the synthetic files whose index is below `below` from `source` into `target`; returns how
  many. (synth names files `<class>_<index:06d>.JPEG`.)"""
  count = 0
  for path in sorted(source.glob('*/*.JPEG')):
    if int(path.stem.rsplit('_', 1)[1]) < below:
      (target / path.parent.name).mkdir(parents=True, exist_ok=True)
      os.link(path, target / path.parent.name / path.name)
      count += 1
  return count


def _convert(input_dir: Path, output: Path, flags: list) -> dict:
  cmd = [
    sys.executable,
    '-m',
    'pipeline.run',
    '--input',
    str(input_dir),
    '--output',
    str(output),
    *flags,
  ]
  measured = run_measured(cmd)
  if measured.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{measured.stderr[-2000:]}')
  return {
    'cpu_s': round(measured.cpu_s, 2),
    'wall_s': round(measured.wall_s, 2),
    'load_before': measured.load_before,
  }


def measure(images: int, classes: int, added: float, target_shard_mb: float, work: Path) -> dict:
  dataset = synthesize(images, classes)
  base_input, full_input = work / 'base_input', work / 'input'
  in_base = _linked_input(dataset.root, base_input, round(images * (1 - added)))
  _linked_input(dataset.root, full_input, images)
  flags = ['--validation_fraction', '0.1', '--target_shard_mb', str(target_shard_mb)]
  results = {
    'images': images,
    'classes': classes,
    'base_images': in_base,
    'flags': flags,
    'cpus': os.cpu_count(),
  }
  results['base'] = _convert(base_input, work / 'base', flags)
  results['fresh'] = _convert(full_input, work / 'fresh', flags)
  results['version'] = _convert(
    full_input, work / 'version', ['--base', str(work / 'base'), *flags]
  )
  manifest = json.loads((work / 'version' / 'manifest.json').read_text())
  results['changes'] = manifest['version']['changes']
  results['version_cpu_share'] = round(results['version']['cpu_s'] / results['fresh']['cpu_s'], 3)
  return results


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--images', type=int, default=5000)
  parser.add_argument('--classes', type=int, default=100)
  parser.add_argument('--added', type=float, default=0.05, help='fraction of the images added')
  parser.add_argument('--target_shard_mb', type=float, default=4.0)
  parser.add_argument(
    '--work',
    help='folder for the inputs and outputs (default: a temporary one, deleted afterwards)',
  )
  args = parser.parse_args(argv)
  work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix='versions-bench-'))
  try:
    results = measure(args.images, args.classes, args.added, args.target_shard_mb, work)
  finally:
    if not args.work:
      shutil.rmtree(work, ignore_errors=True)
  print(json.dumps(results, indent=2))
  c = results['changes']
  version, fresh = results['version'], results['fresh']
  print(
    f'{results["images"]} images, {c["files_added"]} added: version {version["cpu_s"]} s CPU '
    f'({version["wall_s"]} s wall) vs fresh {fresh["cpu_s"]} s CPU ({fresh["wall_s"]} s wall) '
    f'= {results["version_cpu_share"]:.0%}; shards '
    f'{c["shards_reused"]} reused, {c["shards_rewritten"]} rewritten, {c["shards_new"]} new'
  )


if __name__ == '__main__':
  main()
