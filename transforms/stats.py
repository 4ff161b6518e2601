"""Exact per-split statistics: a CombineFn over per-shard summaries.

Each shard summary carries its pixel count and the per-channel (R, G, B) sums and sums of squares of
the stored pixels as a reader decodes them; these add exactly (Python integers), and mean and standard
deviation (population, 0-255 units) follow exactly from them, whatever the merge order a runner chooses.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import apache_beam as beam


def mean_std(num_pixels: int, sums: Sequence[int], squares: Sequence[int]
             ) -> (List[float], List[float]):
  """Per-channel mean and population std in 0-255 units from exact integer sums.

  Args:
    num_pixels: pixels per channel.
    sums, squares: per-channel (R, G, B) sums of the values and of their squares.
  Returns:
    ([mean R, G, B], [std R, G, B]); NaN when there are no pixels.
  """
  if num_pixels == 0:
    return [float('nan')] * 3, [float('nan')] * 3
  n = num_pixels
  means = [s1 / n for s1 in sums]
  stds = [math.sqrt((n * s2 - s1 * s1) / (n * n)) for s1, s2 in zip(sums, squares)]
  return means, stds


def pixel_sums(summary: dict) -> (int, List[int], List[int]):
  """(num_pixels, sums, squares) of a shard summary; sidecars written before 2026-11-30 hold a 768-bin
  histogram instead, which gives the same numbers."""
  if 'histogram' in summary:
    h = summary['histogram']
    counts = [h[c * 256:(c + 1) * 256] for c in range(3)]
    return (sum(counts[0]), [sum(v * k for v, k in enumerate(c)) for c in counts],
            [sum(v * v * k for v, k in enumerate(c)) for c in counts])
  return summary['num_pixels'], summary['channel_sums'], summary['channel_squares']


class SplitStatsCombineFn(beam.CombineFn):
  """Shard summaries of one split -> {num_examples, class_counts, mean_rgb, std_rgb, ...}."""

  def create_accumulator(self):
    return {'num_examples': 0, 'num_bytes': 0, 'num_passthrough': 0, 'num_rejected': 0,
            'class_counts': {}, 'num_pixels': 0, 'channel_sums': [0] * 3, 'channel_squares': [0] * 3,
            'shards': {}}

  def add_input(self, acc, summary):
    acc['num_examples'] += summary['num_examples']
    acc['num_bytes'] += summary['num_bytes']
    acc['num_passthrough'] += summary['num_passthrough']
    acc['num_rejected'] += len(summary['rejects'])
    for name, count in summary['class_counts'].items():
      acc['class_counts'][name] = acc['class_counts'].get(name, 0) + count
    num_pixels, sums, squares = pixel_sums(summary)
    _add_sums(acc, num_pixels, sums, squares)
    acc['shards'][summary['shard']] = summary['num_examples']
    return acc

  def merge_accumulators(self, accumulators):
    merged = self.create_accumulator()
    for acc in accumulators:
      for key in ('num_examples', 'num_bytes', 'num_passthrough', 'num_rejected'):
        merged[key] += acc[key]
      for name, count in acc['class_counts'].items():
        merged['class_counts'][name] = merged['class_counts'].get(name, 0) + count
      _add_sums(merged, acc['num_pixels'], acc['channel_sums'], acc['channel_squares'])
      merged['shards'].update(acc['shards'])
    return merged

  def extract_output(self, acc) -> Dict:
    mean, std = mean_std(acc['num_pixels'], acc['channel_sums'], acc['channel_squares'])
    return {'num_examples': acc['num_examples'], 'num_shards': len(acc['shards']),
            'num_rejected': acc['num_rejected'], 'num_bytes': acc['num_bytes'],
            'num_passthrough': acc['num_passthrough'],
            'class_counts': dict(sorted(acc['class_counts'].items())),
            'mean_rgb': mean, 'std_rgb': std,
            'shards': dict(sorted(acc['shards'].items()))}


class ChannelStats(beam.PTransform):
  """Shard summaries -> (split, statistics dict) per split."""

  def expand(self, summaries):
    return (summaries
            | 'KeyBySplit' >> beam.Map(lambda summary: (summary['split'], summary))
            | 'CombinePerSplit' >> beam.CombinePerKey(SplitStatsCombineFn()))


def _add_sums(acc: dict, num_pixels: int, sums: Sequence[int], squares: Sequence[int]) -> None:
  acc['num_pixels'] += num_pixels
  acc['channel_sums'] = [a + b for a, b in zip(acc['channel_sums'], sums)]
  acc['channel_squares'] = [a + b for a, b in zip(acc['channel_squares'], squares)]
