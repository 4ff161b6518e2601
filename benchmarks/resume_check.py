"""What --resume's fingerprint check costs per input file, on a converted output.

Reported in docs/running_at_scale.md ("Resume, claims and provenance").

The check is: list the class folders with each file's size and mtime
(`transforms/inputs/listing.py`), per shard order its files and hash their names, sizes and mtimes
(`sharding.order_key`, `fingerprint.shard_inputs`), then read the shard's sidecar and match the
shard file (`resume.read_finished`). Each part is timed alone, single thread, in CPU seconds
(`time.process_time`, median of `--repeats` passes; steadier than wall time on a shared machine) and
in wall seconds, and reported per 10,000 input files. The folder reads are also timed alone, with
and without the stat per file that gives the size and mtime (what the listing added for the
fingerprint). The file system's caches are warm after the first pass: a first resume after a reboot
reads the inodes from disk.

Usage: ``python -m benchmarks.resume_check --input DIR --output DIR [--repeats 3]`` (an output
converted from that input, e.g. ``python -m pipeline.run --input DIR --output DIR`` first).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import time
from typing import Callable, Dict, List

from transforms.output import layout, resume
from transforms.inputs.fingerprint import shard_inputs
from transforms.inputs.listing import discover_layout, list_children, list_class_dir
from transforms.split.sharding import ImageRef, order_key

PER_FILES = 10_000


def _timed(fn: Callable, repeats: int) -> Dict[str, float]:
  """Median CPU and wall seconds of `fn()` over `repeats` calls."""
  cpu, wall = [], []
  for _ in range(repeats):
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    fn()
    cpu.append(time.process_time() - start_cpu)
    wall.append(time.perf_counter() - start_wall)
  return {'cpu_s': statistics.median(cpu), 'wall_s': statistics.median(wall)}


def _list(elements, label_map) -> List[ImageRef]:
  return [
    ref
    for element in elements
    for ref in list_class_dir(element, label_map, 0)
    if isinstance(ref, ImageRef)
  ]


def _scandir(elements, stat: bool) -> int:
  """The folder reads alone, with or without one stat per file: the stat's share of the listing."""
  count = 0
  for _, root, synset in elements:
    with os.scandir(os.path.join(root, synset)) as entries:
      for entry in entries:
        if stat:
          entry.stat()
        count += 1
  return count


def measure(input_dir: str, output_dir: str, repeats: int) -> Dict:
  """{part: {cpu_s, wall_s, cpu_s_per_10k_files, wall_s_per_10k_files}} and the counts."""
  split_roots = discover_layout(input_dir).split_roots
  elements = [
    (split, root, synset)
    for split, root in split_roots.items()
    for synset in list_children(root)[0]
  ]
  label_map = {synset: i for i, (_, _, synset) in enumerate(sorted(elements))}
  refs = _list(elements, label_map)
  manifest = layout.read_json(os.path.join(output_dir, layout.MANIFEST_FILE))
  seed = manifest['options']['seed']
  shards = [s['file'] for e in manifest['splits'].values() for s in e['shards']]
  # The shard writer's input: the refs of each shard (round-robin as transforms/split/sharding.py;
  # the exact assignment does not change the cost).
  per_shard = collections.defaultdict(list)
  for i, ref in enumerate(sorted(refs, key=lambda r: order_key(seed, r))):
    per_shard[shards[i % len(shards)]].append(ref)
  output = layout.OutputLayout(output_dir)
  parts = {
    'listing (list_class_dir)': lambda: _list(elements, label_map),
    '  of which scandir': lambda: _scandir(elements, stat=False),
    '  of which scandir + stat': lambda: _scandir(elements, stat=True),
    'order and fingerprint per shard': lambda: [
      shard_inputs(sorted(files, key=lambda r: order_key(seed, r))) for files in per_shard.values()
    ],
    'sidecar and shard match per shard': lambda: [
      resume.read_finished(output, name) for name in shards
    ],
  }
  results = {
    'files': len(refs),
    'shards': len(shards),
    'repeats': repeats,
    'load_1min': os.getloadavg()[0],
    'parts': {},
  }
  for name, fn in parts.items():
    timed = _timed(fn, repeats)
    timed.update(
      {f'{key}_per_10k_files': value * PER_FILES / len(refs) for key, value in list(timed.items())}
    )
    results['parts'][name] = timed
  return results


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--input', required=True)
  parser.add_argument('--output', required=True)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args(argv)
  results = measure(args.input, args.output, args.repeats)
  print(json.dumps(results, indent=2))
  print(f'{results["files"]} files, {results["shards"]} shards, load {results["load_1min"]:.1f}:')
  for name, timed in results['parts'].items():
    print(
      f'  {name:<36} {timed["cpu_s_per_10k_files"]:7.3f} s CPU, '
      f'{timed["wall_s_per_10k_files"]:7.3f} s wall per 10,000 files'
    )


if __name__ == '__main__':
  main()
