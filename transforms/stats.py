"""Exact per-split statistics: a CombineFn over per-shard summaries.

Each shard summary carries a 768-bin histogram (R, G, B) of the stored pixels as a reader decodes them;
histograms add exactly (Python integers), and mean and standard deviation (population, 0-255 units)
follow exactly from them, whatever the merge order a runner chooses.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import apache_beam as beam


def mean_std(histogram: Sequence[int]) -> (List[float], List[float]):
  """Per-channel mean and population std in 0-255 units from a 768-bin R, G, B histogram."""
  means, stds = [], []
  for channel in range(3):
    counts = histogram[channel * 256:(channel + 1) * 256]
    n = sum(counts)
    if n == 0:
      means.append(float('nan'))
      stds.append(float('nan'))
      continue
    s1 = sum(value * c for value, c in enumerate(counts))
    s2 = sum(value * value * c for value, c in enumerate(counts))
    means.append(s1 / n)
    stds.append(math.sqrt((n * s2 - s1 * s1) / (n * n)))
  return means, stds


class SplitStatsCombineFn(beam.CombineFn):
  """Shard summaries of one split -> {num_examples, class_counts, mean_rgb, std_rgb, ...}."""

  def create_accumulator(self):
    return {'num_examples': 0, 'num_bytes': 0, 'num_passthrough': 0, 'num_rejected': 0,
            'class_counts': {}, 'histogram': [0] * 768, 'shards': {}}

  def add_input(self, acc, summary):
    acc['num_examples'] += summary['num_examples']
    acc['num_bytes'] += summary['num_bytes']
    acc['num_passthrough'] += summary['num_passthrough']
    acc['num_rejected'] += len(summary['rejects'])
    for name, count in summary['class_counts'].items():
      acc['class_counts'][name] = acc['class_counts'].get(name, 0) + count
    acc['histogram'] = [a + b for a, b in zip(acc['histogram'], summary['histogram'])]
    acc['shards'][summary['shard']] = summary['num_examples']
    return acc

  def merge_accumulators(self, accumulators):
    merged = self.create_accumulator()
    for acc in accumulators:
      for key in ('num_examples', 'num_bytes', 'num_passthrough', 'num_rejected'):
        merged[key] += acc[key]
      for name, count in acc['class_counts'].items():
        merged['class_counts'][name] = merged['class_counts'].get(name, 0) + count
      merged['histogram'] = [a + b for a, b in zip(merged['histogram'], acc['histogram'])]
      merged['shards'].update(acc['shards'])
    return merged

  def extract_output(self, acc) -> Dict:
    mean, std = mean_std(acc['histogram'])
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
