"""One command for issue 11's comparison: ``python -m benchmarks.run`` (from the repository root).

For each synthetic set (``benchmarks.synth`` profiles ``imagenet`` and ``phone``), ``--repeats``
interleaved repeats of

    pipeline N_small, script N_small, pipeline N_large, script N_large, floor (+ ceiling)

(the pipeline/script order alternates between repeats; the TF-threads script joins the first
``--tf_repeats`` repeats), where

* pipeline = the product as a user runs it: ``python -m pipeline.run --input I --output O
  --direct_running_mode=multi_processing --direct_num_workers=2`` (defaults: shorter side 256, crop
  256, q90);
* script = the hand-written OpenCV + multiprocessing.Pool converter (``benchmarks.classic_opencv``);
  TF = the build_imagenet_data.py-style converter on threads (``benchmarks.classic_tf``);
* floor / ceiling = ``benchmarks.ceiling``: decode at the product's scale + resize + encode, and the
  product's own per-image functions, one thread, CPU time, over the N_large files.

Each converter runs as a subprocess measured by ``benchmarks.measure`` (CPU of the whole process tree:
driver and every worker). ``benchmarks.marginal`` turns each (small, large) pair into start-up-free
CPU ms per image and images/s, takes the ratios within each repeat and their medians, and checks the
targets. Prints the machine, the load before/after, the commit measured, and writes
``<results>/run-<time>-<commit>.json`` plus ``results.json`` and ``summary.md`` (the latest run).

``--commit REF`` measures the product code of a commit (exported with ``git archive`` to a temporary
folder, the benchmark's own code copied over it) instead of the working tree, whose uncommitted
edits would otherwise be measured and listed; ``--patch benchmarks/patches/X.patch`` then applies a
product change to that copy only (written as results-patched.json), to measure a change end to end
before making it. ``--memory`` adds the slow check that the pipeline's peak RSS is flat in N;
``--quick`` is a smoke run (tiny sets, 2 repeats: runs, prints, never a real figure). A default run
took 19 min here (2 cores, 1-minute load 2-9 from other work), plus ~5 min the first time to
synthesize the two sets; ``--quick`` 1.5-4.5 min.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import marginal
from benchmarks.measure import run_measured
from benchmarks.synth import PROFILES, list_images, synthesize

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
PRODUCT_PATHS = ('transforms', 'pipeline', 'beam_private', 'setup.py')
# (small, large) images per profile: the phone set's files cost ~2x as much to convert.
DEFAULT_SIZES = {'imagenet': (200, 4000), 'phone': (100, 2000)}
QUICK_SIZES = (8, 24)
SAMPLE_INTERVAL_S = 0.1  # RSS/CPU sampling of the measured tree (the sampler shares the 2 cores)


@dataclass(frozen=True)
class Contender:
  """A converter run as ``python -m <module> --input I --output O <flags>``."""

  key: str
  label: str
  module: str
  flags: tuple[str, ...]

  def argv(self, input_dir: Path, output_dir: Path) -> list[str]:
    return [
      sys.executable,
      '-m',
      self.module,
      '--input',
      str(input_dir),
      '--output',
      str(output_dir),
      *self.flags,
    ]


def contenders(workers: int) -> dict[str, Contender]:
  return {
    c.key: c
    for c in (
      Contender(
        'pipeline',
        f'pipeline (DirectRunner multi_processing, {workers} workers)',
        'pipeline.run',
        ('--direct_running_mode=multi_processing', f'--direct_num_workers={workers}'),
      ),
      Contender(
        'script',
        f'OpenCV + multiprocessing.Pool script ({workers} processes)',
        'benchmarks.classic_opencv',
        ('--workers', str(workers)),
      ),
      Contender(
        'tf',
        f'TF ops on threads (build_imagenet_data.py + resize, {workers} threads)',
        'benchmarks.classic_tf',
        ('--workers', str(workers)),
      ),
    )
  }


def git(*args: str) -> str:
  try:
    return subprocess.run(
      ['git', *args], cwd=REPO, capture_output=True, text=True, timeout=30
    ).stdout.strip()
  except OSError:
    return ''


def code_state(code_root: Path) -> dict:
  """The commit measured and, for the working tree, its uncommitted product files and their hash."""
  digest = hashlib.sha256()
  for path in sorted(
    p
    for name in PRODUCT_PATHS
    for p in (
      (code_root / name).rglob('*.py') if (code_root / name).is_dir() else [code_root / name]
    )
    if p.is_file()
  ):
    digest.update(str(path.relative_to(code_root)).encode() + path.read_bytes())
  return {
    'product_sha256': digest.hexdigest()[:16],
    'uncommitted': git('status', '--porcelain', '--', *PRODUCT_PATHS).splitlines()
    if code_root == REPO
    else [],
  }


def machine_info() -> dict:
  """Cores, CPU model, memory, Python and library versions."""
  import cv2
  import psutil
  import simplejpeg

  model = (
    next(
      (
        line.split(':', 1)[1].strip()
        for line in Path('/proc/cpuinfo').read_text().splitlines()
        if line.startswith('model name')
      ),
      'unknown',
    )
    if Path('/proc/cpuinfo').exists()
    else 'unknown'
  )
  return {
    'nproc': os.cpu_count(),
    'cpu_model': model,
    'memory_gib': round(psutil.virtual_memory().total / 2**30, 1),
    'python': platform.python_version(),
    'platform': platform.platform(),
    'opencv': cv2.__version__,
    'simplejpeg': simplejpeg.__version__,
  }


def export_commit(ref: str, dest: Path, patches: tuple[str, ...] = ()) -> str:
  """Product code at ``ref`` in ``dest`` (git archive), with this checkout's benchmarks/ over it, and
  ``patches`` (unified diffs, e.g. benchmarks/patches/*.patch) applied to that copy only: a
  product change measured without touching the product's files."""
  commit = git('rev-parse', '--short', ref)
  if not commit:
    raise SystemExit(f'--commit {ref}: not a commit of {REPO}')
  archive = subprocess.run(
    ['git', 'archive', '--format=tar', commit], cwd=REPO, capture_output=True, check=True
  )
  subprocess.run(['tar', '-x', '-C', str(dest)], input=archive.stdout, check=True)
  shutil.copytree(
    REPO / 'benchmarks',
    dest / 'benchmarks',
    dirs_exist_ok=True,
    ignore=shutil.ignore_patterns('results', '__pycache__'),
  )
  for patch in patches:
    subprocess.run(['git', 'apply', '-p1', str(Path(patch).resolve())], cwd=dest, check=True)
  return commit


class Runner:
  """Runs and records the measured subprocesses of one benchmark run."""

  def __init__(self, code_root: Path, scratch: Path, nice: int):
    self.code_root, self.scratch, self.nice = code_root, scratch, nice
    self.env = dict(
      os.environ,
      PYTHONPATH=os.pathsep.join(filter(None, [str(code_root), os.environ.get('PYTHONPATH')])),
    )
    self.env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

  def _run(self, cmd: list[str], what: str, interval_s: float = SAMPLE_INTERVAL_S):
    m = run_measured(
      cmd, env=self.env, cwd=str(self.code_root), nice=self.nice, interval_s=interval_s
    )
    if m.returncode != 0:
      raise RuntimeError(f'{what} failed with exit code {m.returncode}:\n{m.stderr[-3000:]}')
    return m

  def converter(
    self, contender: Contender, input_dir: Path, images: int, interval_s: float = SAMPLE_INTERVAL_S
  ) -> dict:
    """One measured conversion: wall, CPU (tree and per process role), peak RSS, load."""
    out = self.scratch / f'out-{contender.key}-{images}'
    shutil.rmtree(out, ignore_errors=True)
    m = self._run(contender.argv(input_dir, out), f'{contender.key} on {images} images', interval_s)
    shutil.rmtree(out, ignore_errors=True)
    roles: dict[str, float] = {}
    for key, cpu in m.cpu_s_by_process.items():
      role = key.split(' ', 1)[1]
      roles[role] = roles.get(role, 0.0) + cpu
    return {
      'contender': contender.key,
      'images': images,
      'wall_s': m.wall_s,
      'cpu_s': m.cpu_s,
      'peak_rss_mib': m.peak_rss_bytes / MIB,
      'load_before': m.load_before,
      'load_after': m.load_after,
      'cpu_s_by_role': roles,
      'peak_rss_mib_by_process': {
        k: round(v / MIB)
        for k, v in sorted(m.peak_rss_by_process.items(), key=lambda kv: -kv[1])[:6]
      },
    }

  def floor(self, input_dir: Path, with_ceiling: bool) -> dict:
    cmd = [sys.executable, '-m', 'benchmarks.ceiling', '--input', str(input_dir)]
    m = self._run(cmd + ([] if with_ceiling else ['--no_ceiling']), 'floor/ceiling')
    return {
      **json.loads(m.stdout.strip().splitlines()[-1]),
      'load_before': m.load_before,
      'load_after': m.load_after,
    }


def repeat_order(repeat: int, tf_repeats: int) -> list[str]:
  """Contenders of repeat ``repeat`` (0-based), in running order: pipeline and script alternate who
  goes first; the TF script joins the first ``tf_repeats`` repeats, last."""
  keys = ['pipeline', 'script'] if repeat % 2 == 0 else ['script', 'pipeline']
  return keys + (['tf'] if repeat < tf_repeats else [])


def dataset_profile(root: Path) -> dict:
  """Mean Mpixel, share of files with a side > 1000 px, of portrait files (stored size)."""
  import simplejpeg

  sizes = [simplejpeg.decode_jpeg_header(p.read_bytes())[:2] for p, _ in list_images(root)]
  return {
    'mean_mpixel': statistics.fmean(h * w for h, w in sizes) / 1e6,
    'share_over_1000px': sum(max(h, w) > 1000 for h, w in sizes) / len(sizes),
    'share_portrait_stored': sum(h > w for h, w in sizes) / len(sizes),
  }


def measure_set(runner: Runner, profile: str, sizes: tuple[int, int], args, everyone: dict) -> dict:
  """The interleaved repeats on one synthetic set; returns its results dict."""
  small_n, large_n = sizes
  large = synthesize(large_n, min(args.num_classes, large_n), args.seed, profile=profile)
  small = synthesize(small_n, min(args.num_classes, small_n), args.seed, profile=profile)
  data = {
    'profile': profile,
    'small': small_n,
    'large': large_n,
    'dataset': {**asdict(large), 'root': str(large.root), **dataset_profile(large.root)},
    'runs': [],
    'floors': [],
    'repeats': [],
    'loads': [],
  }
  print(
    f"\n== set '{profile}': {large_n} vs {small_n} images, "
    f'{large.total_bytes / large_n / 1024:.0f} KiB/file, '
    f'{data["dataset"]["mean_mpixel"]:.2f} Mpixel/file, {large.root}',
    flush=True,
  )
  if not args.quick:  # Warm the page cache and the imports once; not recorded in the results.
    for key in repeat_order(0, args.tf_repeats):
      runner.converter(everyone[key], small.root, small_n)
  for r in range(args.repeats):
    keys = repeat_order(r, args.tf_repeats)
    load_before = os.getloadavg()[0]
    pair = {}
    for dataset, n in ((small, small_n), (large, large_n)):
      for key in keys:
        run = runner.converter(everyone[key], dataset.root, n)
        data['runs'].append({**run, 'repeat': r})
        pair.setdefault(key, []).append(run)
    floor = runner.floor(large.root, with_ceiling=not args.no_ceiling)
    data['floors'].append({**floor, 'repeat': r})
    cores = os.cpu_count()
    summary = marginal.repeat_summary(
      *(marginal.marginal(*pair[k], cores) for k in ('pipeline', 'script')),
      floor,
      marginal.marginal(*pair['tf'], cores) if 'tf' in pair else None,
    )
    data['repeats'].append(summary)
    data['loads'].append((load_before, os.getloadavg()[0]))
    print(
      f'repeat {r + 1}/{args.repeats} (load {load_before:.1f}-{os.getloadavg()[0]:.1f}): pipeline '
      f'{_ms(summary["pipeline"])} ms/img, script {_ms(summary["script"])} ms/img, floor '
      f'{summary["floor_ms_per_image"]:.2f} ms/img; CPU script/pipeline {_x(summary["cpu_ratio"])}, '
      f'wall pipeline/script {_x(summary["wall_ratio"])}',
      flush=True,
    )
  data['summary'] = marginal.summarize(data['repeats'], profile)
  return data


def extras_line(floors: list[dict], pipeline_ms: float | None = None) -> str:
  """Where the time goes, per image, next to the floor: each piece of work the product adds to
  the floor (benchmarks.ceiling extras, one thread), the rest of the ceiling, reading the file,
  the shard writer's loop with the image stubbed, and what is left of the pipeline's marginal CPU
  per image (``pipeline_ms``: Beam's stages, the driver, the duplicate search); medians over the
  repeats, µs; '' when the ceiling was not measured."""
  floors = [f for f in floors if f.get('extras_us_per_image')]
  if not floors:
    return ''

  def median(key):
    values = [f[key] for f in floors if f.get(key) is not None]
    return statistics.median(values) if values else None

  floor_us, ceiling_us, read_us = (
    median('floor_us_per_image'),
    median('ceiling_us_per_image'),
    median('read_us_per_image'),
  )
  medians = {
    name: statistics.median(f['extras_us_per_image'][name] for f in floors)
    for name in floors[0]['extras_us_per_image']
  }
  total = sum(medians.values())
  parts = [f'floor (decode, resize, encode) {floor_us:.0f}']
  parts += [f'{name} {us:.0f}' for name, us in medians.items()]
  parts.append(f'rest of process_image {ceiling_us - floor_us - total:.0f}')
  writer_us = median('writer_loop_us_per_image')
  if writer_us is not None:
    parts.append(f'shard writer loop incl. read (image stubbed) {writer_us:.0f}')
  else:
    parts.append(f'read {read_us:.0f}')
  if pipeline_ms is not None:
    rest = pipeline_ms * 1e3 - ceiling_us - (writer_us if writer_us is not None else read_us)
    parts.append(f'rest of the pipeline (Beam, driver, duplicates; 2-process CPU) {rest:.0f}')
  return (
    'where the time goes, µs per image (median; one thread but the last): '
    + ', '.join(parts)
    + f'; the extras ({", ".join(medians)}) together {total:.0f} µs = '
    f'{total / floor_us:.1%} of the floor'
  )


def _ms(m: dict) -> str:
  return 'n/a' if m['cpu_ms_per_image'] is None else f'{m["cpu_ms_per_image"]:.2f}'


def _x(v) -> str:
  return 'n/a' if v is None else f'{v:.3f}'


def measure_memory(runner: Runner, pipeline: Contender, sizes: list[int], args) -> dict:
  """Peak RSS of the pipeline's whole process tree at each size (imagenet profile, 20 ms sampling)."""
  points = []
  for n in sorted(sizes, reverse=True):
    synthesize(n, min(args.num_classes, n), args.seed)
  for n in sorted(sizes):
    dataset = synthesize(n, min(args.num_classes, n), args.seed)
    run = runner.converter(pipeline, dataset.root, n, interval_s=0.02)
    points.append(
      {
        'images': n,
        'peak_rss_mib': run['peak_rss_mib'],
        'by_process': run['peak_rss_mib_by_process'],
        'load_before': run['load_before'],
      }
    )
    print(f'memory: {n} images -> peak RSS {run["peak_rss_mib"]:.0f} MiB', flush=True)
  growth = points[-1]['peak_rss_mib'] / points[0]['peak_rss_mib'] - 1
  return {'points': points, 'growth': growth, 'flat': abs(growth) <= 0.10}


def pipeline_split(data: dict) -> str:
  """Marginal CPU ms per image of the pipeline's driver and SDK workers (sampled per process)."""
  by_repeat = {}
  for run in data['runs']:
    if run['contender'] == 'pipeline':
      by_repeat.setdefault(run['repeat'], []).append(run)
  roles: dict[str, list[float]] = {}
  for small, large in by_repeat.values():
    for role in large['cpu_s_by_role']:
      delta = large['cpu_s_by_role'][role] - small['cpu_s_by_role'].get(role, 0.0)
      roles.setdefault(role, []).append(delta / (large['images'] - small['images']) * 1e3)
  return ', '.join(
    f'{role}: {statistics.median(v):.2f} ms/img' for role, v in sorted(roles.items())
  )


def render(results: dict) -> str:
  """The printed/markdown summary of a results dict (as saved in results.json)."""
  info, code = results['machine'], results['code']
  lines = [
    f'machine: {info["nproc"]} cores, {info["cpu_model"]}, {info["memory_gib"]} GiB RAM; Python '
    f'{info["python"]}, OpenCV {info["opencv"]}, simplejpeg {info["simplejpeg"]}',
    f'code measured: commit {code["commit"]} ({code["source"]}; last product change '
    f'{code.get("product_commit", "unknown")}); product sha256 {code["start"]["product_sha256"]}'
    + (f'; PATCHED with {", ".join(code["patches"])}' if code.get('patches') else '')
    + (
      f'; UNCOMMITTED product changes: {", ".join(code["start"]["uncommitted"])}'
      if code['start']['uncommitted']
      else ''
    )
    + (
      ''
      if code['start']['product_sha256'] == code['end']['product_sha256']
      else '; WARNING: the product code CHANGED during the run'
    ),
    f'1-minute load average: {results["load_start"]:.2f} before, {results["load_end"]:.2f} after; '
    f'{results["repeats"]} repeats; total {results["total_s"] / 60:.1f} min',
  ]
  for data in results['sets']:
    ds = data['dataset']
    lines += [
      '',
      f"### Set '{data['profile']}': {data['large']} - {data['small']} images "
      f'({ds["total_bytes"] / ds["num_images"] / 1024:.0f} KiB/file, {ds["mean_mpixel"]:.2f} Mpixel/file, '
      f'{ds["share_over_1000px"]:.0%} with a side > 1000 px)',
      '',
      marginal.format_repeats(data['repeats'], data['loads']),
      '',
      marginal.format_targets(data['summary']),
      '',
    ]
    s = data['summary']
    lines.append(
      'start-up (wall s, median): '
      + ', '.join(
        f'{k} {_x(s[k + "_startup_s"] and s[k + "_startup_s"]["median"])}'
        for k in ('pipeline', 'script')
      )
      + f'; pipeline marginal CPU by process (sampled): {pipeline_split(data)}'
    )
    pipeline_ms = s['pipeline_cpu_ms'] and s['pipeline_cpu_ms']['median']
    extras = extras_line(data['floors'], pipeline_ms)
    if extras:
      lines.append(extras)
  if results.get('memory'):
    mem = results['memory']
    lines += [
      '',
      'pipeline peak RSS, all processes: '
      + ', '.join(f'{p["images"]} images {p["peak_rss_mib"]:.0f} MiB' for p in mem['points'])
      + f'; growth {mem["growth"]:+.1%} ({"flat: within 10%" if mem["flat"] else "NOT within 10%"})',
    ]
  if results.get('quality'):
    from benchmarks.resample_quality import format_quality

    lines += [
      '',
      'resample methods x paths of process_image (PSNR before JPEG vs float64 Lanczos):',
      '',
      format_quality(results['quality']),
    ]
  if results.get('micro'):
    from benchmarks.micro import format_micro

    lines += ['', format_micro(results['micro'])]
  return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    '--sets', default=','.join(PROFILES), help=f'comma-separated synth profiles {PROFILES}'
  )
  parser.add_argument(
    '--small', type=int, default=0, help='images in the small runs (0: per-set default)'
  )
  parser.add_argument(
    '--large', type=int, default=0, help='images in the large runs (0: per-set default)'
  )
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument(
    '--tf_repeats', type=int, default=2, help='repeats that include the TF-threads script'
  )
  parser.add_argument(
    '--workers', type=int, default=2, help='pipeline workers = script processes/threads'
  )
  parser.add_argument('--num_classes', type=int, default=100)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument(
    '--no_ceiling', action='store_true', help='time the floor only (saves ~20 s a repeat)'
  )
  parser.add_argument(
    '--memory',
    default='',
    metavar='N,N',
    help='also check peak RSS flat in N, e.g. 2000,8000 (slow; imagenet set)',
  )
  parser.add_argument('--micro', action='store_true', help='also run benchmarks.micro')
  parser.add_argument(
    '--quality_images',
    type=int,
    default=0,
    help='also the resample method x path table (benchmarks.resample_quality) on N images',
  )
  parser.add_argument(
    '--commit', default='', help='measure the product code of this commit, not the working tree'
  )
  parser.add_argument(
    '--patch',
    default='',
    metavar='FILE[,FILE]',
    help='with --commit: apply these diffs to the exported copy (benchmarks/patches/)',
  )
  parser.add_argument(
    '--quick', action='store_true', help='smoke run: tiny sets, 2 repeats, no warm-up'
  )
  parser.add_argument('--nice', type=int, default=0, help='niceness of the measured subprocesses')
  parser.add_argument('--results', default=str(REPO / 'benchmarks' / 'results'))
  parser.add_argument('--render', metavar='RESULTS_JSON', help='only re-print a saved results JSON')
  args = parser.parse_args(argv)
  if args.patch and not args.commit:
    parser.error(
      '--patch needs --commit (patches are applied to an exported copy, never to this checkout)'
    )
  if args.quick:
    args.small, args.large = args.small or QUICK_SIZES[0], args.large or QUICK_SIZES[1]
    args.repeats, args.tf_repeats, args.num_classes = (
      min(args.repeats, 2),
      min(args.tf_repeats, 1),
      4,
    )
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  results_dir = Path(args.results)
  results_dir.mkdir(parents=True, exist_ok=True)
  if args.render:
    print(render(json.loads(Path(args.render).read_text())))
    return 0
  with tempfile.TemporaryDirectory(prefix='bench-code-') as snapshot:
    results = measure_all(args, results_dir, Path(snapshot) if args.commit else REPO)
  summary = render(results)
  print('\n' + summary)
  stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime(results['started']))
  text = json.dumps(results, indent=1, default=str)
  # never the latest unpatched results
  patched = '-patched' if results['code'].get('patches') else ''
  (results_dir / f'run-{stamp}-{results["code"]["commit"]}{patched}.json').write_text(text)
  (results_dir / f'results{patched}.json').write_text(text)
  (results_dir / f'summary{patched}.md').write_text(summary + '\n')
  return 0


def measure_all(args, results_dir: Path, code_root: Path) -> dict:
  started, t0, load_start = time.time(), time.perf_counter(), os.getloadavg()[0]
  patches = tuple(p for p in args.patch.split(',') if p)
  commit = (
    export_commit(args.commit, code_root, patches)
    if args.commit
    else git('rev-parse', '--short', 'HEAD') or 'unknown'
  )
  code = {
    'commit': commit,
    'source': f'git archive of {args.commit}' if args.commit else 'working tree',
    'patches': [Path(p).name for p in patches],
    'product_commit': git('log', '-1', '--format=%h', commit, '--', *PRODUCT_PATHS) or 'unknown',
    'start': code_state(code_root),
  }
  info = machine_info()
  uncommitted = ' '.join(code['start']['uncommitted'])
  print(
    f'machine: {info["nproc"]} cores, {info["cpu_model"]}; load {os.getloadavg()}; commit {commit} '
    f'({code["source"]}){"; uncommitted: " + uncommitted if uncommitted else ""}',
    flush=True,
  )
  runner = Runner(code_root, results_dir / 'scratch', args.nice)
  everyone = contenders(args.workers)
  sets = []
  for profile in [p for p in args.sets.split(',') if p]:
    default_small, default_large = DEFAULT_SIZES[profile]
    sets.append(
      measure_set(
        runner, profile, (args.small or default_small, args.large or default_large), args, everyone
      )
    )
  memory = (
    measure_memory(runner, everyone['pipeline'], [int(n) for n in args.memory.split(',')], args)
    if args.memory
    else None
  )
  quality = None
  if args.quality_images:
    from benchmarks.resample_quality import run_quality

    dataset = synthesize(DEFAULT_SIZES['imagenet'][1], args.num_classes, args.seed)
    quality = run_quality(
      [p.read_bytes() for p, _ in list_images(dataset.root)[: args.quality_images]]
    )
  micro = None
  if args.micro:
    from benchmarks.micro import run_micro

    micro = run_micro(DEFAULT_SIZES['imagenet'][1], args.num_classes, repeats=3, seed=args.seed)
  shutil.rmtree(results_dir / 'scratch', ignore_errors=True)
  code['end'] = code_state(code_root)
  return {
    'machine': info,
    'code': code,
    'started': started,
    'repeats': args.repeats,
    'workers': args.workers,
    'argv': sys.argv[1:],
    'sets': sets,
    'memory': memory,
    'micro': micro,
    'quality': quality,
    'load_start': load_start,
    'load_end': os.getloadavg()[0],
    'total_s': time.perf_counter() - t0,
  }


if __name__ == '__main__':
  sys.exit(main())
