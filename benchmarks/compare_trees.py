"""Levers end to end: the pipeline of several product versions, before/after, in one run.

Usage: ``python -m benchmarks.compare_trees --base REF [--tree NAME=REF[+PATCH...]] ...
[--repeats 5]``; each tree is ``git archive`` of REF (``benchmarks.run.export_commit``) with the
patches applied (benchmarks/patches/), e.g.
``--tree sums=0e9fa8d+benchmarks/patches/issue28-lever1-exact-sums-cv2-norm.patch``.
Each repeat runs every tree's pipeline (2 DirectRunner workers, defaults) on the small and the
large synthetic set, in an order that rotates between repeats; per tree, the marginal process-tree
CPU per image and images/s (``benchmarks.marginal``), and per repeat each tree's CPU and wall
relative to the base in that repeat (base ÷ tree: above 1 is faster); medians over repeats.
Prints a markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks import marginal
from benchmarks.run import DEFAULT_SIZES, Runner, contenders, export_commit
from benchmarks.synth import synthesize


def parse_tree(text: str) -> tuple[str, str, tuple[str, ...]]:
  """'NAME=REF+PATCH+PATCH' -> (name, ref, patches)."""
  name, _, spec = text.partition('=')
  ref, *patches = spec.split('+')
  if not name or not ref:
    raise argparse.ArgumentTypeError(f'expected NAME=REF[+PATCH...], got {text!r}')
  return name, ref, tuple(patches)


def compare(
  trees: dict[str, Path], profile: str, sizes: tuple[int, int], repeats: int, scratch: Path
) -> dict:
  """Interleaved repeats of every tree's pipeline on (small, large); figures and medians."""
  small_n, large_n = sizes
  small = synthesize(small_n, min(100, small_n), 0, profile=profile)
  large = synthesize(large_n, min(100, large_n), 0, profile=profile)
  pipeline = contenders(2)['pipeline']
  runners = {name: Runner(root, scratch / name, 0) for name, root in trees.items()}
  names = list(trees)
  for name in names:  # warm the page cache and imports; not recorded
    runners[name].converter(pipeline, small.root, small_n)
  per_repeat = []
  for r in range(repeats):
    order = names[r % len(names) :] + names[: r % len(names)]
    runs = {name: [] for name in names}
    for dataset, n in ((small, small_n), (large, large_n)):
      for name in order:
        runs[name].append(runners[name].converter(pipeline, dataset.root, n))
    figures = {name: marginal.marginal(*runs[name], os.cpu_count()) for name in names}
    per_repeat.append(figures)
    print(
      f'repeat {r + 1}/{repeats} (load {os.getloadavg()[0]:.1f}): '
      + ', '.join(
        f'{name} {_f(m["cpu_ms_per_image"])} ms/img {_f(m["images_per_s"], ".0f")} img/s'
        for name, m in figures.items()
      ),
      flush=True,
    )
  base = names[0]
  summary = {}
  for name in names:
    cpu = [f[name]['cpu_ms_per_image'] for f in per_repeat]
    rate = [f[name]['images_per_s'] for f in per_repeat]
    cpu_gain = [
      _ratio(f[base]['cpu_ms_per_image'], f[name]['cpu_ms_per_image']) for f in per_repeat
    ]
    wall_gain = [_ratio(f[name]['images_per_s'], f[base]['images_per_s']) for f in per_repeat]
    summary[name] = {
      'cpu_ms': marginal.spread(cpu),
      'images_per_s': marginal.spread(rate),
      'cpu_base_over_tree': marginal.spread(cpu_gain),
      'wall_tree_over_base': marginal.spread(wall_gain),
    }
  return {'profile': profile, 'sizes': sizes, 'repeats': per_repeat, 'summary': summary}


def _ratio(a, b):
  return a / b if a and b else None


def _f(value, fmt: str = '.3f') -> str:
  return 'n/a' if value is None else format(value, fmt)


def format_table(result: dict, labels: dict[str, str]) -> str:
  """Markdown: per tree, median (min-max) CPU ms/img, img/s and the ratios to the base."""
  lines = [
    '| tree | CPU ms/img | img/s | CPU base ÷ tree | wall rate tree ÷ base |',
    '|---|--:|--:|--:|--:|',
  ]

  def cell(s, fmt):
    return 'n/a' if s is None else f'{s["median"]:{fmt}} ({s["min"]:{fmt}}-{s["max"]:{fmt}})'

  for name, s in result['summary'].items():
    lines.append(
      f'| {name} ({labels[name]}) | {cell(s["cpu_ms"], ".2f")} '
      f'| {cell(s["images_per_s"], ".0f")} | {cell(s["cpu_base_over_tree"], ".3f")} '
      f'| {cell(s["wall_tree_over_base"], ".3f")} |'
    )
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--base', required=True, help='REF[+PATCH...]: the "before" tree')
  parser.add_argument(
    '--tree', action='append', default=[], type=parse_tree, help='NAME=REF[+PATCH...]'
  )
  parser.add_argument('--profile', default='imagenet')
  parser.add_argument('--small', type=int, default=0)
  parser.add_argument('--large', type=int, default=0)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args(argv)
  specs = [parse_tree('base=' + args.base), *args.tree]
  default_small, default_large = DEFAULT_SIZES[args.profile]
  sizes = (args.small or default_small, args.large or default_large)
  with tempfile.TemporaryDirectory(prefix='compare-trees-') as work:
    trees, labels = {}, {}
    for name, ref, patches in specs:
      root = Path(work) / name
      root.mkdir()
      commit = export_commit(ref, root, patches)
      trees[name] = root
      labels[name] = commit + ''.join(f' + {Path(p).stem}' for p in patches)
    result = compare(trees, args.profile, sizes, args.repeats, Path(work) / 'scratch')
  result['labels'] = labels
  print(format_table(result, labels))
  print(json.dumps(result, default=str))
  return 0


if __name__ == '__main__':
  sys.exit(main())
