"""duplicates.jsonl and stats.json's `duplicates`: exact groups and near pairs, after the shards exist.

Near duplicates are pairs of stored images whose `image/phash` (transforms/perceptual_hash.py) differ
in at most --near_duplicate_distance bits. The hashes reach this step as one small element per shard:
each shard's summary (its sidecar, so --resume has them too) lists (input path, hash) of its
records; the step concatenates them on one worker and searches them there
(transforms/hamming_search.py), so 1.33 M hashes never pass through a GroupByKey one element each.

The default distance, 8 bits, is chosen by measurement (docs/duplicates.md, benchmarks/duplicates.py):
on the 54 sample photos stored at 256 x 256, re-encoded (quality 60), resized (0.7x) and brightened
(+10 levels) copies are at most 4 bits from their original, distinct photos at least 14 bits apart;
crops move pHash fastest (2% per side: median 4 bits; 5% per side: median 12). Searching 1.33 M
hashes takes 25-29 s at 8 bits and 128 s at 10, and uniformly random hashes give ~250 pairs
within 8 bits among 1.33 M, ~8,800 within 10 and ~200,000 within 12.

duplicates.jsonl, one JSON object per line, sorted (exact groups first, then near pairs by distance):
  {"kind": "exact", "distance": 0, "sha256": <hex of the bytes>, "files": [<file>, ...]}
  {"kind": "near", "distance": <bits>, "files": [<file>, <file>]}
  <file> = {"path": <relative to --input>, "split": <split it is stored in, or listed in>,
            "stored": <false when it was dropped, excluded or rejected>}
Files of a line are in the order copies are kept (validation and test before train, then by path),
which --exclude_file relies on: it skips every file of a line but the first. A near pair of two
files of one exact group is not listed again.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms.hamming_search import pairs_within
from transforms.sharding import SPLITS, TRAIN

DEFAULT_NEAR_DISTANCE = 8  # bits of 64 (module docstring)
MAX_NEAR_DISTANCE = 16  # the search time grows ~5x per 2 bits (1.33 M hashes: 25 s at 8, 128 s at 10)
EXACT, NEAR = 'exact', 'near'
COUNT_KEYS = ('exact_within_split', 'exact_across_splits', 'near_within_split', 'near_across_splits')


@dataclasses.dataclass(frozen=True)
class Duplicates:
  """What the duplicates step found.

  Attributes:
    lines: the objects of duplicates.jsonl, in file order.
    counts: stats.json's `duplicates`: lines of each kind whose files are in one split or in several.
  """
  lines: Tuple[Dict, ...] = ()
  counts: Dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))


def keep_order(path: str, split: Optional[str]) -> Tuple[bool, int, str]:
  """The order in which a line lists its files: validation and test first (they stay as given), then
  split order, then path."""
  rank = SPLITS.index(split) if split in SPLITS else len(SPLITS)
  return split in (TRAIN, None), rank, path


def _file(path: str, split: Optional[str], stored: bool) -> Dict:
  return {'path': path, 'split': split, 'stored': stored}


def _line(kind: str, distance: int, files: List[Dict], digest: Optional[str] = None) -> Dict:
  files = sorted(files, key=lambda f: keep_order(f['path'], f['split']))
  line = {'kind': kind, 'distance': distance}
  if digest is not None:
    line['sha256'] = digest
  line['files'] = files
  return line


def find_duplicates(stored: Sequence[Tuple[str, str, int]], exact_groups: Iterable[Tuple[str, Sequence[Tuple[str, Optional[str]]]]],
                    max_distance: int) -> Duplicates:
  """Exact groups and near pairs as duplicates.jsonl lines, and their counts.

  Args:
    stored: (input path, split, image/phash) of every stored record.
    exact_groups: (digest, [(input path, listing split or None)]) of each group of identical files.
    max_distance: --near_duplicate_distance, bits.
  """
  stored = sorted(stored)
  split_of = {path: split for path, split, _ in stored}
  exact_lines, group_of = [], {}
  for digest, members in sorted(exact_groups):
    files = [_file(path, split_of.get(path, listed), path in split_of) for path, listed in members]
    exact_lines.append(_line(EXACT, 0, files, digest))
    group_of.update((path, digest) for path, _ in members)
  hashes = np.array([value for _, _, value in stored], dtype=np.int64)
  first, second, distance = pairs_within(hashes, max_distance)
  near_lines = []
  for i, j, d in zip(first.tolist(), second.tolist(), distance.tolist()):
    (path_i, split_i, _), (path_j, split_j, _) = stored[i], stored[j]
    if path_i in group_of and group_of[path_i] == group_of.get(path_j):
      continue
    near_lines.append(_line(NEAR, d, [_file(path_i, split_i, True), _file(path_j, split_j, True)]))
  near_lines.sort(key=lambda line: (line['distance'], [f['path'] for f in line['files']]))
  lines = exact_lines + near_lines
  return Duplicates(tuple(lines), count_lines(lines))


def count_lines(lines: Iterable[Dict]) -> Dict[str, int]:
  """stats.json's `duplicates` of duplicates.jsonl's lines: a line is across splits when its files
  name more than one split (a copy dropped before an input without split folders was split has
  none)."""
  counts = dict.fromkeys(COUNT_KEYS, 0)
  for line in lines:
    splits = {f['split'] for f in line['files'] if f['split'] is not None}
    counts[f'{line["kind"]}_{"across_splits" if len(splits) > 1 else "within_split"}'] += 1
  return counts


def _stored_hashes(summaries: Iterable) -> List[Tuple[str, str, int]]:
  return [(path, summary.split, value) for summary in summaries
          for path, value in (summary.phashes or ())]


class FindDuplicates(beam.PTransform):
  """(ShardSummary per shard, exact groups) -> one `Duplicates`.

  The exact groups are (digest, [(input path, listing split or None)]) tuples (one per
  transforms/duplicates.py DuplicateGroup).
  """

  def __init__(self, max_distance: int):
    super().__init__()
    self._max_distance = max_distance

  def expand(self, inputs):
    summaries, groups = inputs
    max_distance = self._max_distance
    return (summaries
            | 'AllShards' >> beam.combiners.ToList()
            | 'Search' >> beam.Map(
                lambda shards, exact: find_duplicates(_stored_hashes(shards), exact, max_distance),
                beam.pvalue.AsList(groups)))
