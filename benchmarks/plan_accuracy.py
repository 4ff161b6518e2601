"""The plan against a real run on a synthetic ImageNet-like set: ``python -m
benchmarks.plan_accuracy``.

For each set (``benchmarks.synth``; default the ``imagenet`` profile, 4,000 images in 100 classes,
the set ``benchmarks.run`` measures), with the converter's flags (default ``--validation_fraction
0.1``, automatic shard counts; ``--flags`` replaces them):

1. the plan, in this process, as ``--plan`` makes it (``parse_args``, ``plan_dataset``,
   ``make_plan``), timed; nothing is written;
2. the real run as a user starts it, ``python -m pipeline.run --input I --output O FLAGS
   --direct_running_mode=multi_processing --direct_num_workers=W`` (W: ``--workers``, default 2),
   measured by ``benchmarks.measure`` (wall, CPU of the process tree);
3. per split and in total: predicted bytes (95% interval) against the bytes written (shards and
   metadata, ``_work/`` left out, as ``benchmarks.measure.output_bytes`` counts), examples, shard
   counts and MB per shard; the projected wall time on W workers against the run's; the 1-minute
   load before and after. Exits 1 when a predicted total is off by more than 10%.

``--json PATH`` also writes the figures. A 4,000-image run takes ~25 s here (2 cores), plus ~1 min
the first time to synthesise the set.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.measure import output_bytes, run_measured
from benchmarks.synth import PROFILES, synthesize

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FLAGS = '--validation_fraction 0.1'
TOLERANCE = 0.10  # the bound on the predicted total


def plan_figures(input_dir: Path, output_dir: Path, flags: list[str]):
  """The plan (pipeline.plan.Plan) of a run, made in this process (nothing is written)."""
  from pipeline.graph import plan_dataset
  from pipeline.options import parse_args
  from pipeline.plan import make_plan

  opts, _ = parse_args(['--input', str(input_dir), '--output', str(output_dir), *flags])
  return make_plan(opts, plan_dataset(opts))


def run_figures(input_dir: Path, output_dir: Path, flags: list[str], workers: int) -> dict:
  """A real run, measured; its bytes per split (manifest.json) and in total."""
  shutil.rmtree(output_dir, ignore_errors=True)
  cmd = [
    sys.executable,
    '-m',
    'pipeline.run',
    '--input',
    str(input_dir),
    '--output',
    str(output_dir),
    *flags,
    '--direct_running_mode=multi_processing',
    f'--direct_num_workers={workers}',
  ]
  env = dict(
    os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')]))
  )
  m = run_measured(cmd, env=env, cwd=str(REPO))
  if m.returncode != 0:
    raise RuntimeError(f'the run failed ({m.returncode}):\n{m.stderr[-3000:]}')
  manifest = json.loads((output_dir / 'manifest.json').read_text())
  stats = json.loads((output_dir / 'stats.json').read_text())
  splits = {
    split: {
      'bytes': sum((output_dir / s['file']).stat().st_size for s in entry['shards']),
      'shards': entry['num_shards'],
      'examples': entry['num_examples'],
      'rejected': stats[split]['num_rejected'],
    }
    for split, entry in manifest['splits'].items()
  }
  return {
    'splits': splits,
    'total': output_bytes(str(output_dir)),
    'wall_s': m.wall_s,
    'cpu_s': m.cpu_s,
    'load': (m.load_before, m.load_after),
  }


def compare(
  profile: str, images: int, classes: int, flags: list[str], workers: int, scratch: Path
) -> dict:
  """Plan and run one set; returns the figures (also printed)."""
  from pipeline.plan import LOCAL_STARTUP_SECONDS

  dataset = synthesize(images, min(classes, images), profile=profile)
  plan = plan_figures(dataset.root, scratch / 'out', flags)
  actual = run_figures(dataset.root, scratch / 'out', flags, workers)
  rows = []
  for s in plan.splits:
    real = actual['splits'][s.split]
    rows.append(
      {
        'split': s.split,
        'predicted_bytes': s.num_bytes.value,
        'low': s.num_bytes.low,
        'high': s.num_bytes.high,
        'actual_bytes': real['bytes'],
        'predicted_examples': s.examples,
        'actual_examples': real['examples'],
        'predicted_shards': s.num_shards,
        'actual_shards': real['shards'],
      }
    )
  total = plan.total_bytes
  result = {
    'profile': profile,
    'images': images,
    'classes': classes,
    'flags': flags,
    'workers': workers,
    'plan_sample_files': len(plan.sample.files),
    'plan_s': plan.seconds,
    'cpu_ms_per_image': plan.cpu_ms,
    'splits': rows,
    'total': {
      'predicted': total.value,
      'low': total.low,
      'high': total.high,
      'actual': actual['total'],
      'error': total.value / actual['total'] - 1,
    },
    'time': {
      'predicted_s': LOCAL_STARTUP_SECONDS + plan.conversion_seconds(workers),
      'actual_s': actual['wall_s'],
      'actual_cpu_s': actual['cpu_s'],
    },
    'load': actual['load'],
  }
  print(render(result), flush=True)
  return result


def _mb(value: float) -> str:
  return f'{value / 1e6:.2f}'


def render(r: dict) -> str:
  """The printed comparison of one set."""
  lines = [
    f"== set '{r['profile']}': {r['images']} images, {r['classes']} classes; flags "
    f'{" ".join(r["flags"])}; plan of {r["plan_sample_files"]} sampled images in {r["plan_s"]:.1f} s',
    f'  {"split":<12}{"predicted MB":>14}{"95% interval":>18}{"actual MB":>12}{"error":>8}'
    f'{"examples pred/real":>20}{"shards":>10}{"MB/shard pred/real":>20}',
  ]
  for row in r['splits']:
    interval = f'{_mb(row["low"])}-{_mb(row["high"])}'
    examples = f'{row["predicted_examples"]:.0f} / {row["actual_examples"]}'
    shards = f'{row["predicted_shards"]} / {row["actual_shards"]}'
    per_shard = (
      f'{_mb(row["predicted_bytes"] / row["predicted_shards"])} / '
      f'{_mb(row["actual_bytes"] / row["actual_shards"])}'
    )
    error = row['predicted_bytes'] / row['actual_bytes'] - 1
    lines.append(
      f'  {row["split"]:<12}{_mb(row["predicted_bytes"]):>14}{interval:>18}'
      f'{_mb(row["actual_bytes"]):>12}{error:>+8.1%}{examples:>20}{shards:>10}{per_shard:>20}'
    )
  t = r['total']
  interval = f'{_mb(t["low"])}-{_mb(t["high"])}'
  lines.append(
    f'  {"total":<12}{_mb(t["predicted"]):>14}{interval:>18}{_mb(t["actual"]):>12}'
    f'{t["error"]:>+8.1%}   (shards and metadata; _work/ left out)'
  )
  tm = r['time']
  lines.append(
    f'  time on {r["workers"]} workers: predicted {tm["predicted_s"]:.1f} s wall '
    f'({r["cpu_ms_per_image"]:.2f} ms CPU an image, {r["images"] * r["cpu_ms_per_image"] / 1e3:.1f} s '
    f'for the images), actual {tm["actual_s"]:.1f} s wall ({tm["actual_cpu_s"]:.1f} s CPU in all '
    f'processes, start-up included); 1-minute load {r["load"][0]:.2f} before, {r["load"][1]:.2f} after'
  )
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    '--sets', default='imagenet', help=f'comma-separated synth profiles {PROFILES}'
  )
  parser.add_argument('--images', type=int, default=4000)
  parser.add_argument('--classes', type=int, default=100)
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument(
    '--flags', default=DEFAULT_FLAGS, help='the converter flags of plan and run (one string)'
  )
  parser.add_argument('--json', help='also write the figures to this file')
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory(prefix='plan-accuracy-') as scratch:
    results = [
      compare(
        profile, args.images, args.classes, shlex.split(args.flags), args.workers, Path(scratch)
      )
      for profile in args.sets.split(',')
      if profile
    ]
  if args.json:
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
  return 0 if all(abs(r['total']['error']) <= TOLERANCE for r in results) else 1


if __name__ == '__main__':
  sys.exit(main())
