"""One command for the whole benchmark: ``python -m benchmarks.run`` (from the repository root).

On one synthetic ImageNet-like dataset (``benchmarks.synth``), side by side and measured the same way
(``benchmarks.measure``: wall, CPU of the whole process tree, peak summed RSS, output bytes):
- the per-core ceiling (``benchmarks.ceiling``: the project's per-image functions in a tight loop);
- the Beam pipeline (``python -m pipeline.run``) on the DirectRunner, multi_processing, 1 and 2
  workers, and in pass-through mode (``--resize_shorter_side 0 --center_crop 0``);
- the classic converters rebuilt in ``benchmarks/``: TF ops on threads (build_imagenet_data.py, with
  resize, and as the original: bytes kept) and OpenCV + multiprocessing.Pool (the AlexNet article);
- peak RSS of the 2-worker pipeline at two dataset sizes (flat memory: within 10%);
- per resample method and path: ``process_image`` speed and PSNR before JPEG (resample_quality);
- optionally (``--micro``) the per-image decode/resize/encode micro-benchmark (benchmarks.micro).

"Steady" throughput excludes start-up: (N - n) / (wall(N) - wall(n)) with a tiny run of n images
through the same command. The ceiling's rate is per core: 1 / (CPU seconds per image) of its timed
loop, i.e. what one core does when it is all ours. "x ceiling" = steady rate / ceiling rate; "% of ideal" divides by ``min(workers, cores) x ceiling``;
"CPU eff." = ceiling CPU per image / the approach's steady CPU per image (overhead, independent of
how busy the machine is). The 1-minute load average is printed per run: the machine may be shared,
and on a busy machine every wall-clock rate drops. ``--render results.json`` re-prints a saved run.

Writes ``<results>/results.json``, ``<results>/summary.md`` and the plot (``--plot``, PNG).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.measure import Measurement, output_bytes, run_measured
from benchmarks.synth import SynthDataset, list_images, synthesize

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20


@dataclass(frozen=True)
class Approach:
    """A converter run as a subprocess: ``argv(input, output)``; ``ceiling_key`` picks its yardstick."""
    name: str
    module: str
    workers: int
    extra: tuple[str, ...] = ()
    ceiling_key: str = 'resize'  # 'resize' or 'passthrough'

    def argv(self, input_dir: Path, output_dir: Path) -> list[str]:
        cmd = [sys.executable, '-m', self.module, '--input', str(input_dir), '--output', str(output_dir)]
        if self.module == 'pipeline.run':
            cmd += ['--runner=DirectRunner', '--direct_running_mode=multi_processing',
                    f'--direct_num_workers={self.workers}']
        else:
            cmd += ['--workers', str(self.workers)]
        return cmd + list(self.extra)


PASSTHROUGH = ('--resize_shorter_side', '0', '--center_crop', '0')
APPROACHES = (
    Approach('pipeline, DirectRunner multi_processing, 1 worker', 'pipeline.run', 1),
    Approach('pipeline, DirectRunner multi_processing, 2 workers', 'pipeline.run', 2),
    Approach('classic TF ops on threads (build_imagenet_data.py + resize), 2 threads', 'benchmarks.classic_tf', 2),
    Approach('classic OpenCV + multiprocessing.Pool (AlexNet article), 2 processes', 'benchmarks.classic_opencv', 2),
    Approach('pipeline pass-through, 2 workers', 'pipeline.run', 2, PASSTHROUGH, 'passthrough'),
    Approach('classic TF original (bytes kept, decode to validate), 2 threads', 'benchmarks.classic_tf', 2,
             PASSTHROUGH, 'passthrough'),
)


def machine_info() -> dict:
    """nproc, CPU model, memory, Python and library versions."""
    import psutil
    model = 'unknown'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    commit = os.environ.get('BENCH_COMMIT')
    if not commit:
        try:
            commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True,
                                    text=True, timeout=10).stdout.strip() or 'unknown'
        except OSError:
            commit = 'unknown'
    return {'commit': commit, 'nproc': os.cpu_count(), 'cpu_model': model, 'memory_gib': round(psutil.virtual_memory().total / 2**30, 1),
            'python': platform.python_version(), 'platform': platform.platform()}


def _env() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), env.get('PYTHONPATH')]))
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    return env


def _check(m: Measurement, what: str) -> Measurement:
    if m.returncode != 0:
        raise RuntimeError(f'{what} failed with exit code {m.returncode}:\n{m.stderr[-3000:]}')
    return m


def measure_approach(approach: Approach, dataset: SynthDataset, scratch: Path, nice: int) -> dict:
    """Run ``approach`` on ``dataset``; returns wall, CPU, peak RSS, output bytes (one run)."""
    out = scratch / f'out-{approach.module}-{approach.workers}-{len(approach.extra)}-{dataset.num_images}'
    shutil.rmtree(out, ignore_errors=True)
    m = _check(run_measured(approach.argv(dataset.root, out), env=_env(), cwd=str(REPO), nice=nice),
               f'{approach.name} on {dataset.num_images} images')
    result = {'images': dataset.num_images, 'wall_s': m.wall_s, 'cpu_s': m.cpu_s, 'peak_rss_mib': m.peak_rss_bytes / MIB,
              'output_bytes': output_bytes(str(out)), 'load_before': m.load_before, 'load_after': m.load_after,
              'peak_rss_mib_by_process': {k: round(v / MIB) for k, v in sorted(
                  m.peak_rss_by_process.items(), key=lambda kv: -kv[1])[:6]},
              'cpu_s_by_process': {k: round(v, 1) for k, v in sorted(
                  m.cpu_s_by_process.items(), key=lambda kv: -kv[1])[:6]}}
    shutil.rmtree(out, ignore_errors=True)
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (keeps one run's figures together)."""
    return sorted(runs, key=lambda r: r['wall_s'])[len(runs) // 2]


def measure_ceiling(dataset: SynthDataset, extra: tuple[str, ...], repeats: int, nice: int) -> dict:
    runs = []
    for _ in range(repeats):
        m = _check(run_measured([sys.executable, '-m', 'benchmarks.ceiling', '--input', str(dataset.root), *extra],
                                env=_env(), cwd=str(REPO), nice=nice), 'ceiling')
        r = json.loads(m.stdout.strip().splitlines()[-1])
        r.update(peak_rss_mib=m.peak_rss_bytes / MIB, total_wall_s=m.wall_s, load_before=m.load_before,
                 load_after=m.load_after, steady_images_per_s=1e6 / r['us_per_image'])
        runs.append(r)
    return sorted(runs, key=lambda r: r['us_per_image'])[len(runs) // 2]


def steady(full: dict, tiny: dict) -> dict:
    """Start-up-free rate and CPU per image from a full run and a tiny run of the same command."""
    images = full['images'] - tiny['images']
    wall = max(full['wall_s'] - tiny['wall_s'], 1e-9)
    return {'steady_images_per_s': images / wall,
            'steady_cpu_ms_per_image': max(full['cpu_s'] - tiny['cpu_s'], 0.0) / images * 1e3,
            'startup_s': tiny['wall_s'] - tiny['images'] * wall / images}


def format_table(rows: list[dict], ceilings: dict, cores: int) -> str:
    lines = ['| approach | images | wall s | img/s (wall) | img/s (steady) | CPU ms/img | peak RSS MiB | output MB '
             '| x ceiling | % of ideal | CPU eff. | load |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|']
    for key, c in ceilings.items():
        lines.append(f"| ceiling{' pass-through' if key == 'passthrough' else ''}: process_image + Example loop, "
                     f"1 process | {c['images']} | {c['total_wall_s']:.1f} | {c['images'] / c['total_wall_s']:.0f} "
                     f"| {c['steady_images_per_s']:.0f} | {c['us_per_image'] / 1e3:.2f} | {c['peak_rss_mib']:.0f} "
                     f"| {c['record_bytes'] / 1e6:.1f} | 1.00 | 100% | 100% | {c['load_before']:.1f} |")
    for r in rows:
        c = ceilings[r['ceiling_key']]['steady_images_per_s']
        cpu_eff = ceilings[r['ceiling_key']]['us_per_image'] / 1e3 / max(r['steady_cpu_ms_per_image'], 1e-9)
        ideal = min(r['workers'], cores) * c
        lines.append(f"| {r['name']} | {r['images']} | {r['wall_s']:.1f} | {r['images'] / r['wall_s']:.0f} "
                     f"| {r['steady_images_per_s']:.0f} | {r['steady_cpu_ms_per_image']:.2f} | {r['peak_rss_mib']:.0f} "
                     f"| {r['output_bytes'] / 1e6:.1f} | {r['steady_images_per_s'] / c:.2f} "
                     f"| {r['steady_images_per_s'] / ideal:.0%} | {cpu_eff:.0%} | {r['load_before']:.1f} |")
    return '\n'.join(lines)


SHORT_NAMES = {a.name: short for a, short in zip(APPROACHES, (
    'pipeline, 1 worker', 'pipeline, 2 workers', 'classic TF threads (+ resize)', 'classic OpenCV Pool',
    'pipeline pass-through, 2 workers', 'classic TF original (bytes kept)'))}
IMAGENET_IMAGES = 1_281_167 + 50_000  # ILSVRC-2012 train + validation


def projection(rows: list[dict], ceilings: dict, cores: int, workers_list=(8, 32, 128)) -> str:
    """ImageNet-1k conversion time from the measured 2-worker pipeline run: as measured (wall clock,
    on however busy the machine was), and CPU-bound (steady CPU per image, cores fully ours), and on
    a cluster of W one-core workers at the same CPU per image."""
    pipe = next((r for r in rows if r['name'].startswith('pipeline, DirectRunner') and r['workers'] == cores), None)
    if pipe is None:
        return ''
    cpu_s = pipe['steady_cpu_ms_per_image'] / 1e3
    if cpu_s <= 0:  # A run too small (or too noisy) for start-up to be subtracted: nothing to project.
        return 'ImageNet-1k projection: not computed (no steady CPU per image measurable on this run size)'
    bytes_per_image = pipe['output_bytes'] / pipe['images']
    lines = [f"ImageNet-1k ({IMAGENET_IMAGES:,} images) projected from the {cores}-worker pipeline run "
             f"({pipe['steady_cpu_ms_per_image']:.2f} ms CPU per image steady; ceiling "
             f"{ceilings['resize']['us_per_image'] / 1e3:.2f} ms): output ~{IMAGENET_IMAGES * bytes_per_image / 1e9:.0f} GB "
             f"of shards at {bytes_per_image / 1e3:.1f} KB/image",
             f"- this machine as measured ({pipe['steady_images_per_s']:.0f} img/s steady at load "
             f"{pipe['load_before']:.1f}): {IMAGENET_IMAGES / pipe['steady_images_per_s'] / 3600:.1f} h",
             f"- this machine, CPU-bound ({cores} cores all ours, {cores / cpu_s:.0f} img/s): "
             f"{IMAGENET_IMAGES * cpu_s / cores / 3600:.1f} h"]
    for w in workers_list:
        lines.append(f"- {w} workers x 1 core at the same CPU per image ({w / cpu_s:.0f} img/s): "
                     f"{IMAGENET_IMAGES * cpu_s / w / 60:.0f} min + runner start-up and listing")
    return '\n'.join(lines)


def plot(path: Path, rows: list[dict], ceilings: dict, memory: list[dict], cores: int, base_mib: float) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={'width_ratios': [1.7, 1]})
    names, values, colors = [], [], []
    for key in ('resize', 'passthrough'):
        names.append(f"ceiling x{cores}{' (pass-through)' if key == 'passthrough' else ''}")
        values.append(ceilings[key]['steady_images_per_s'] * cores)
        colors.append('0.6')
        for r in rows:
            if r['ceiling_key'] == key:
                names.append(SHORT_NAMES.get(r['name'], r['name'][:40]))
                values.append(r['steady_images_per_s'])
                colors.append('tab:blue' if r['module'] == 'pipeline.run' else 'tab:orange')
    ax1.barh(range(len(values)), values, color=colors)
    ax1.axvline(0.85 * values[0], color='k', ls='--', lw=1, label=f'85% of {cores} x ceiling (resize)')
    ax1.set_yticks(range(len(values)), names, fontsize=7)
    ax1.invert_yaxis()
    ax1.set_xlabel('images/s, steady state (start-up excluded)')
    loads = [r['load_before'] for r in rows]
    ax1.set_title(f"{rows[0]['images']} images, 2 cores; 1-min load average {min(loads):.1f}-{max(loads):.1f} "
                  'during the runs', fontsize=9)
    ax1.legend(fontsize=7, loc='lower right')
    ax2.plot([m['images'] for m in memory], [m['peak_rss_mib'] for m in memory], 'o-', color='tab:blue')
    ax2.axhspan(base_mib * 0.9, base_mib * 1.1, color='tab:blue', alpha=0.1, label='±10% of the reference size')
    ax2.set_ylim(0, max(m['peak_rss_mib'] for m in memory) * 1.3)
    ax2.set_xlabel('dataset size (images)')
    ax2.set_ylabel('peak RSS, all processes (MiB)')
    ax2.set_title('pipeline, 2 workers', fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def render(data: dict) -> str:
    """The printed/markdown summary of a results dict (as saved in results.json)."""
    info, ds, rows, ceilings, memory = data['machine'], data['dataset'], data['rows'], data['ceilings'], data['memory']
    cores, (small_n, big_n) = info['nproc'], data['memory_pair']
    big, small = (next(m for m in memory if m['images'] == n) for n in (big_n, small_n))
    ratio = big['peak_rss_mib'] / small['peak_rss_mib']
    lines = [f"machine: {cores} cores ({info['cpu_model']}), {info['memory_gib']} GiB RAM, Python {info['python']}; "
             f"project at commit {info.get('commit', 'unknown')}",
             f"dataset: {ds['num_images']} synthetic ImageNet-like JPEGs, {ds['num_classes']} classes, "
             f"{ds['total_bytes'] / ds['num_images'] / 1024:.0f} KiB/file (seed {data['seed']}); "
             f"start-up runs on {data['tiny_images']} images; repeats {data['repeats']} (median)", '',
             format_table(rows, ceilings, cores), '',
             'peak RSS of the 2-worker pipeline (all processes): ' + ', '.join(
                 f"{m['images']} images {m['peak_rss_mib']:.0f} MiB" for m in memory)
             + f'; {big_n} vs {small_n}: {ratio - 1:+.1%} '
             + ('(flat: within 10%)' if abs(ratio - 1) <= 0.10 else '(NOT within 10%)'),
             *(f"  {m['images']} images, largest processes (MiB): " + ', '.join(
                 f'{k}: {v}' for k, v in m['by_process'].items()) for m in memory if m.get('by_process')),
             '', projection(rows, ceilings, cores)]
    if data.get('quality'):
        from benchmarks.resample_quality import format_quality
        lines += ['', f"resample methods x paths ({data['quality_images']} images; PSNR on the first 40):", '',
                  format_quality(data['quality'])]
    if data.get('micro'):
        from benchmarks.micro import format_micro
        lines += ['', format_micro(data['micro'])]
    lines += ['', f"total benchmark time {data['total_s']:.0f} s; load average at the end {data['load_end']}"]
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num_images', type=int, default=4000)
    parser.add_argument('--num_classes', type=int, default=100)
    parser.add_argument('--tiny_images', type=int, default=100, help='size of the start-up (tiny) runs')
    parser.add_argument('--memory_sizes', default='2000,8000', help='dataset sizes for the peak RSS check')
    parser.add_argument('--repeats', type=int, default=1, help='runs per measurement; the median is kept')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--only', default='', help='|-separated substrings of approach names to run')
    parser.add_argument('--quality_images', type=int, default=200, help='images for the resample table (0 = skip)')
    parser.add_argument('--micro', action='store_true', help='also run the micro-benchmark (benchmarks.micro)')
    parser.add_argument('--nice', type=int, default=0, help='niceness of the measured subprocesses')
    parser.add_argument('--results', default=str(REPO / 'benchmarks' / 'results'))
    parser.add_argument('--plot', default=None, help='PNG path (default: <results>/performance.png)')
    parser.add_argument('--render', metavar='RESULTS_JSON', help='only re-render a saved results.json')
    args = parser.parse_args(argv)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    data = json.loads(Path(args.render).read_text()) if args.render else measure_all(args, results_dir)
    summary = render(data)
    print('\n' + summary)
    (results_dir / 'summary.md').write_text(summary + '\n')
    (results_dir / 'results.json').write_text(json.dumps(data, indent=1, default=str))
    if data['rows']:
        small = next(m for m in data['memory'] if m['images'] == data['memory_pair'][0])
        plot(Path(args.plot or results_dir / 'performance.png'), data['rows'], data['ceilings'], data['memory'],
             data['machine']['nproc'], small['peak_rss_mib'])
    return 0


def measure_all(args, results_dir: Path) -> dict:
    """Every measurement of ``main``; returns the results dict that ``render`` formats."""
    t0 = time.perf_counter()
    scratch = results_dir / 'scratch'
    info = machine_info()
    print(f"machine: {info['nproc']} cores, {info['cpu_model']}, {info['memory_gib']} GiB; "
          f"load {os.getloadavg()}", flush=True)

    memory_sizes = sorted({int(s) for s in args.memory_sizes.split(',') if s})
    datasets = {n: synthesize(n, min(args.num_classes, n), args.seed)  # largest first: the others link to it
                for n in sorted({args.num_images, args.tiny_images, *memory_sizes}, reverse=True)}
    main_ds = datasets[args.num_images]
    print(f'dataset: {main_ds.num_images} images in {main_ds.num_classes} classes, '
          f'{main_ds.total_bytes / main_ds.num_images / 1024:.0f} KiB/file, {main_ds.root}', flush=True)

    ceilings = {'resize': measure_ceiling(main_ds, (), args.repeats, args.nice),
                'passthrough': measure_ceiling(main_ds, PASSTHROUGH, args.repeats, args.nice)}
    print(f"ceiling: {ceilings['resize']['us_per_image']:.0f} µs/image CPU, "
          f"{ceilings['resize']['steady_images_per_s']:.0f} img/s", flush=True)

    rows = []
    selected = [a for a in APPROACHES if not args.only or any(s in a.name for s in args.only.split('|'))]
    for approach in selected:
        full = median_run([measure_approach(approach, main_ds, scratch, args.nice) for _ in range(args.repeats)])
        tiny = median_run([measure_approach(approach, datasets[args.tiny_images], scratch, args.nice)
                           for _ in range(args.repeats)])
        row = {**asdict(approach), **full, **steady(full, tiny), 'tiny': tiny}
        rows.append(row)
        print(f"{approach.name}: {row['wall_s']:.1f} s wall, {row['steady_images_per_s']:.0f} img/s steady, "
              f"{row['peak_rss_mib']:.0f} MiB, load {row['load_before']:.1f}", flush=True)

    two = APPROACHES[1]
    memory = {}
    for r in rows:
        if r['name'] == two.name:
            memory[r['tiny']['images']] = r['tiny']
            memory[r['images']] = r
    for n in memory_sizes:
        if n not in memory:
            memory[n] = median_run([measure_approach(two, datasets[n], scratch, args.nice)
                                    for _ in range(args.repeats)])
        print(f"memory: {n} images -> peak RSS {memory[n]['peak_rss_mib']:.0f} MiB", flush=True)
    memory = [{'images': n, 'peak_rss_mib': memory[n]['peak_rss_mib'], 'wall_s': memory[n]['wall_s'],
               'load_before': memory[n]['load_before'], 'by_process': memory[n].get('peak_rss_mib_by_process')}
              for n in sorted(memory)]

    quality = []
    if args.quality_images:
        from benchmarks.resample_quality import run_quality
        blobs = [p.read_bytes() for p, _ in list_images(main_ds.root)][:args.quality_images]
        quality = run_quality(blobs, repeats=3)
    micro = None
    if args.micro:
        from benchmarks.micro import run_micro
        micro = run_micro(args.num_images, args.num_classes, repeats=3, seed=args.seed)
    shutil.rmtree(scratch, ignore_errors=True)
    return {'machine': info, 'dataset': asdict(main_ds) | {'root': str(main_ds.root)}, 'seed': args.seed,
            'tiny_images': args.tiny_images, 'repeats': args.repeats, 'quality_images': args.quality_images,
            'ceilings': ceilings, 'rows': rows, 'memory': memory, 'memory_pair': [memory_sizes[0], memory_sizes[-1]],
            'quality': quality, 'micro': micro, 'total_s': time.perf_counter() - t0, 'load_end': os.getloadavg()}


if __name__ == '__main__':
    sys.exit(main())
