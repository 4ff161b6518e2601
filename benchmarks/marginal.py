"""Marginal cost per image, ratios within a repeat, medians, targets: the arithmetic of
``benchmarks.run``.

Why marginal: a converter's start-up (imports, Beam planning, worker processes, TensorFlow) costs
the same whatever the folder size, so running the same command on a small and a large folder and
taking the difference cancels it:

    CPU ms per image = (CPU(large) - CPU(small)) / (N_large - N_small)      (whole process tree)
    images/s         = (N_large - N_small) / (wall(large) - wall(small))

Why ratios within a repeat: the machine is shared, and other people's work moves absolute figures by
±20% from one minute to the next. The runs of one repeat follow each other within a minute or two,
so the load weighs on both converters alike; the ratio of the two is taken per repeat and the median
of those ratios is the result. Pure functions of plain dicts (as saved in results.json), no I/O.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Target:
  """A goal (issue 28): ``key`` of the per-repeat ratios compared with ``bound`` by ``op``."""

  label: str
  key: str
  op: str  # '>=' or '<='
  bound: float

  def met(self, value: Optional[float]) -> Optional[bool]:
    if value is None:
      return None
    return value >= self.bound if self.op == '>=' else value <= self.bound


# Issue 28: parity with the script on ImageNet-like files, a 1.25x lead on phone photos (where DCT
# scaling spares most of the decode); issue 11's bound on pipeline ÷ floor was dropped.
TARGETS = {
  'imagenet': (
    Target('CPU per image, script ÷ pipeline', 'cpu_ratio', '>=', 1.0),
    Target('marginal wall rate, pipeline ÷ script', 'wall_ratio', '>=', 1.0),
  ),
  'phone': (
    Target('CPU per image, script ÷ pipeline', 'cpu_ratio', '>=', 1.25),
    Target('marginal wall rate, pipeline ÷ script', 'wall_ratio', '>=', 1.25),
  ),
}


def marginal(small: dict, large: dict, cores: int = 0) -> dict:
  """Start-up-free cost from two runs of one command: {'cpu_ms_per_image', 'images_per_s',
  'startup_wall_s', 'startup_cpu_s', 'wall_plausible'}; a figure is None when the difference is
  not positive (a run too small or too noisy to separate start-up from work). ``wall_plausible``
  is False when the rate would need more than ``cores`` busy cores at the marginal CPU per image
  (+5%): the start-up's wall time differed between the two runs (load), so that repeat's rate is not
  reliable."""
  images = large['images'] - small['images']
  if images <= 0:
    raise ValueError(
      f'the large run must have more images than the small one: {large["images"]} '
      f'vs {small["images"]}'
    )
  d_cpu, d_wall = large['cpu_s'] - small['cpu_s'], large['wall_s'] - small['wall_s']
  cpu_per_image = d_cpu / images if d_cpu > 0 else None
  rate = images / d_wall if d_wall > 0 else None
  plausible = (
    None if not (rate and cpu_per_image and cores) else rate * cpu_per_image <= cores * 1.05
  )
  return {
    'cpu_ms_per_image': cpu_per_image * 1e3 if cpu_per_image else None,
    'images_per_s': rate,
    'startup_wall_s': small['wall_s'] - small['images'] / rate if rate else None,
    'startup_cpu_s': small['cpu_s'] - small['images'] * cpu_per_image if cpu_per_image else None,
    'wall_plausible': plausible,
  }


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
  return a / b if a and b else None


def repeat_summary(
  pipeline: dict, script: dict, floor: Optional[dict], tf: Optional[dict] = None
) -> dict:
  """One repeat's figures: marginal costs of each contender, the floor, and the three ratios."""
  floor_ms = floor['floor_us_per_image'] / 1e3 if floor else None
  return {
    'pipeline': pipeline,
    'script': script,
    'tf': tf,
    'floor_ms_per_image': floor_ms,
    'ceiling_ms_per_image': floor['ceiling_us_per_image'] / 1e3
    if floor and 'ceiling_us_per_image' in floor
    else None,
    'cpu_ratio': _ratio(script['cpu_ms_per_image'], pipeline['cpu_ms_per_image']),
    'wall_ratio': _ratio(pipeline['images_per_s'], script['images_per_s']),
    'floor_ratio': _ratio(pipeline['cpu_ms_per_image'], floor_ms),
    'tf_cpu_ratio': _ratio(tf['cpu_ms_per_image'], pipeline['cpu_ms_per_image']) if tf else None,
    'tf_wall_ratio': _ratio(pipeline['images_per_s'], tf['images_per_s']) if tf else None,
  }


def spread(values: list) -> Optional[dict]:
  """{'median', 'min', 'max', 'n'} of the values that are not None; None when there are none."""
  values = [v for v in values if v is not None]
  if not values:
    return None
  return {
    'median': statistics.median(values),
    'min': min(values),
    'max': max(values),
    'n': len(values),
  }


SUMMARY_KEYS = {
  'cpu_ratio': lambda r: r['cpu_ratio'],
  'wall_ratio': lambda r: r['wall_ratio'],
  'floor_ratio': lambda r: r['floor_ratio'],
  'tf_cpu_ratio': lambda r: r['tf_cpu_ratio'],
  'tf_wall_ratio': lambda r: r['tf_wall_ratio'],
  'pipeline_cpu_ms': lambda r: r['pipeline']['cpu_ms_per_image'],
  'script_cpu_ms': lambda r: r['script']['cpu_ms_per_image'],
  'tf_cpu_ms': lambda r: r['tf'] and r['tf']['cpu_ms_per_image'],
  'pipeline_images_per_s': lambda r: r['pipeline']['images_per_s'],
  'script_images_per_s': lambda r: r['script']['images_per_s'],
  'tf_images_per_s': lambda r: r['tf'] and r['tf']['images_per_s'],
  'pipeline_startup_s': lambda r: r['pipeline']['startup_wall_s'],
  'script_startup_s': lambda r: r['script']['startup_wall_s'],
  'floor_ms': lambda r: r['floor_ms_per_image'],
  'ceiling_ms': lambda r: r['ceiling_ms_per_image'],
  # The product's per-image functions over the floor, timed image by image in one process: the
  # precise part of pipeline ÷ floor (= ceiling ÷ floor x pipeline ÷ ceiling).
  'ceiling_ratio': lambda r: _ratio(r['ceiling_ms_per_image'], r['floor_ms_per_image']),
}


def summarize(repeats: list[dict], profile: str = 'imagenet') -> dict:
  """Median and range over repeats of every ratio and figure (SUMMARY_KEYS), and the verdicts
  against the set's TARGETS."""
  summary = {key: spread([get(r) for r in repeats]) for key, get in SUMMARY_KEYS.items()}
  medians = {t.key: summary[t.key] and summary[t.key]['median'] for t in TARGETS[profile]}
  summary['targets'] = [
    {
      'label': t.label,
      'key': t.key,
      'op': t.op,
      'bound': t.bound,
      'median': medians[t.key],
      'met': t.met(medians[t.key]),
    }
    for t in TARGETS[profile]
  ]
  return summary


def _f(value: Optional[float], fmt: str) -> str:
  return 'n/a' if value is None else format(value, fmt)


def _rate(m: dict) -> str:
  """images/s, marked * when implausible (more busy cores than the machine has)."""
  return _f(m.get('images_per_s'), '.0f') + ('*' if m.get('wall_plausible') is False else '')


def format_repeats(repeats: list[dict], loads: list[tuple[float, float]]) -> str:
  """Markdown table: one row per repeat, then the medians (rates marked * need more cores than exist:
  the start-up's wall time moved between the small and the large run)."""
  lines = [
    '| repeat | load 1-min | pipeline CPU ms/img | script CPU ms/img | TF CPU ms/img | floor ms/img '
    '| ceiling ms/img | pipeline img/s | script img/s | TF img/s | CPU script÷pipeline '
    '| wall pipeline÷script | pipeline÷floor | ceiling÷floor |',
    '|--:|--:|' + '--:|' * 12,
  ]
  for i, (r, (before, after)) in enumerate(zip(repeats, loads)):
    tf = r['tf'] or {}
    lines.append(
      f'| {i + 1} | {before:.1f}-{after:.1f} | {_f(r["pipeline"]["cpu_ms_per_image"], ".2f")} '
      f'| {_f(r["script"]["cpu_ms_per_image"], ".2f")} | {_f(tf.get("cpu_ms_per_image"), ".2f")} '
      f'| {_f(r["floor_ms_per_image"], ".2f")} | {_f(r["ceiling_ms_per_image"], ".2f")} '
      f'| {_rate(r["pipeline"])} | {_rate(r["script"])} '
      f'| {_rate(tf)} | {_f(r["cpu_ratio"], ".3f")} | {_f(r["wall_ratio"], ".3f")} '
      f'| {_f(r["floor_ratio"], ".3f")} | {_f(SUMMARY_KEYS["ceiling_ratio"](r), ".3f")} |'
    )
  s = summarize(repeats)

  def med(key, fmt):
    return _f(s[key] and s[key]['median'], fmt)

  lines.append(
    f'| **median** | | {med("pipeline_cpu_ms", ".2f")} | {med("script_cpu_ms", ".2f")} '
    f'| {med("tf_cpu_ms", ".2f")} | {med("floor_ms", ".2f")} | {med("ceiling_ms", ".2f")} '
    f'| {med("pipeline_images_per_s", ".0f")} | {med("script_images_per_s", ".0f")} '
    f'| {med("tf_images_per_s", ".0f")} | **{med("cpu_ratio", ".3f")}** | **{med("wall_ratio", ".3f")}** '
    f'| **{med("floor_ratio", ".3f")}** | {med("ceiling_ratio", ".3f")} |'
  )
  return '\n'.join(lines)


def format_targets(summary: dict) -> str:
  """One line per target: bound, median (range over repeats), MET / NOT MET."""
  lines = [
    '| target | bound | measured: median (min-max over repeats) | verdict |',
    '|---|--:|--:|---|',
  ]
  for t in summary['targets']:
    s = summary[t['key']]
    measured = (
      'n/a' if s is None else f'{s["median"]:.3f} ({s["min"]:.3f}-{s["max"]:.3f}, {s["n"]} repeats)'
    )
    verdict = {True: 'MET', False: 'NOT MET', None: 'NOT MEASURABLE'}[t['met']]
    lines.append(f'| {t["label"]} | {t["op"]} {t["bound"]:.2f} | {measured} | {verdict} |')
  return '\n'.join(lines)
