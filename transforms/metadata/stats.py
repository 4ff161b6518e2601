"""Exact per-split statistics: a CombineFn over per-shard summaries.

Each `ShardSummary` carries its pixel count and the per-channel (R, G, B) sums and sums of squares
of the pixels handed to the JPEG encoder (transforms/imaging/image.py); these add exactly (Python
integers), and mean and standard deviation (population, 0-255 units) follow exactly from them,
whatever the merge order a runner chooses.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Sequence, Tuple

import apache_beam as beam

from transforms.records import ShardSummary


def mean_std(
  num_pixels: int, sums: Sequence[int], squares: Sequence[int]
) -> Tuple[List[float], List[float]]:
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


@dataclasses.dataclass
class SplitTotals:
  """The CombineFn's accumulator and output: one split's shard summaries added up (exact integers).

  Attributes:
    shards: {shard file name: records}, for manifest.json; the other fields as in ShardSummary.
  """

  num_examples: int = 0
  num_bytes: int = 0
  num_passthrough: int = 0
  class_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  num_pixels: int = 0
  channel_sums: List[int] = dataclasses.field(default_factory=lambda: [0, 0, 0])
  channel_squares: List[int] = dataclasses.field(default_factory=lambda: [0, 0, 0])
  shards: Dict[str, int] = dataclasses.field(default_factory=dict)

  @classmethod
  def of(cls, summary: ShardSummary) -> 'SplitTotals':
    """The totals of one shard."""
    return cls(
      summary.num_examples,
      summary.num_bytes,
      summary.num_passthrough,
      dict(summary.class_counts),
      summary.num_pixels,
      list(summary.channel_sums),
      list(summary.channel_squares),
      {summary.shard: summary.num_examples},
    )

  def merge(self, other: 'SplitTotals') -> 'SplitTotals':
    """Adds `other` into these totals (exact: Python integers) and returns them."""
    self.num_examples += other.num_examples
    self.num_bytes += other.num_bytes
    self.num_passthrough += other.num_passthrough
    for name, count in other.class_counts.items():
      self.class_counts[name] = self.class_counts.get(name, 0) + count
    self.num_pixels += other.num_pixels
    self.channel_sums = [a + b for a, b in zip(self.channel_sums, other.channel_sums)]
    self.channel_squares = [a + b for a, b in zip(self.channel_squares, other.channel_squares)]
    self.shards.update(other.shards)
    return self

  @property
  def mean_std(self) -> Tuple[List[float], List[float]]:
    return mean_std(self.num_pixels, self.channel_sums, self.channel_squares)


class SplitStatsCombineFn(beam.CombineFn):
  """ShardSummary values of one split -> SplitTotals."""

  def create_accumulator(self) -> SplitTotals:
    return SplitTotals()

  def add_input(self, accumulator: SplitTotals, summary: ShardSummary) -> SplitTotals:
    return accumulator.merge(SplitTotals.of(summary))

  def merge_accumulators(self, accumulators) -> SplitTotals:
    merged = SplitTotals()
    for accumulator in accumulators:
      merged.merge(accumulator)
    return merged

  def extract_output(self, accumulator: SplitTotals) -> SplitTotals:
    return accumulator


class ChannelStats(beam.PTransform):
  """ShardSummary per shard -> (split, SplitTotals) per split."""

  def expand(self, summaries):
    return (
      summaries
      | 'KeyBySplit' >> beam.Map(lambda summary: (summary.split, summary))
      | 'CombinePerSplit' >> beam.CombinePerKey(SplitStatsCombineFn())
    )
