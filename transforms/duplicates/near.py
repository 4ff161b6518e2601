"""duplicates.jsonl and stats.json's `duplicates`: groups of exact and near duplicates, after the
shards exist.

Two stored images are near duplicates when their `image/phash`
(transforms/imaging/perceptual_hash.py) differ in at most D = --near_duplicate_distance bits, or
one's image/phash is within D - CROP_MARGIN bits of one of the other's five crop hashes (it is then
a crop of the other); identical files (transforms/duplicates/exact.py) are duplicates too. A group
is a connected component of that relation (transforms/duplicates/union_find.py): it does not depend
on the order images are visited, and a member may be farther than D from the first member (the line
gives each member's distance to it). Memory is O(images), never O(pairs): equal hashes are one node,
and the pair search (transforms/duplicates/hamming_search.py) streams pairs into the union-find. The
relation and the default distance: docs/duplicates.md; the line schema:
docs/output.md#duplicatesjsonl. A line lists its files in the order copies are kept
(transforms/duplicates/exact.py `copy_order`), which
--exclude_file relies on; exact groups come first, then near groups, each by first path.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np

from transforms.output import layout
from transforms.duplicates.exact import copy_order
from transforms.duplicates.hamming_search import iter_matches, iter_pairs
from transforms.imaging.perceptual_hash import NUM_CROP_HASHES, hamming_distance
from transforms.duplicates.union_find import Components

DEFAULT_NEAR_DISTANCE = 8  # bits of 64 (module docstring)
# the search time grows ~5x per 2 bits (1.33 M hashes: 25 s at 8, 128 s at 10)
MAX_NEAR_DISTANCE = 16
CROP_MARGIN = 2  # crop-hash matches must be within D - CROP_MARGIN bits (module docstring)
EXACT, NEAR = 'exact', 'near'
COUNT_KEYS = (
  'exact_within_split',
  'exact_across_splits',
  'near_within_split',
  'near_across_splits',
  'files_across_splits',
)

# (input path, split, image/phash, crop hashes or None for a sidecar written before them)
StoredHashes = Tuple[str, str, int, Optional[Sequence[int]]]


@dataclasses.dataclass(frozen=True)
class Duplicates:
  """What the duplicates step found.

  Attributes:
    text: duplicates.jsonl's content (module docstring), one line per group.
    counts: stats.json's `duplicates`: groups of each kind whose files are in one split or in
      several, and `files_across_splits`, the files stored or listed in another split than their
      group's first file.
  """

  text: str = ''
  counts: Dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))

  @property
  def lines(self) -> Iterator[Dict]:
    """The groups as JSON objects, one at a time (for readers of this object; the file is `text`)."""
    return (json.loads(line) for line in self.text.splitlines())


def crop_match_distance(max_distance: int) -> int:
  """Bits within which an image/phash must be of another image's crop hash (module docstring)."""
  return max(0, max_distance - CROP_MARGIN)


def are_near(
  phash_a: int, crops_a: Sequence[int], phash_b: int, crops_b: Sequence[int], max_distance: int
) -> bool:
  """The relation of the module docstring for one pair of images (what `near_components` joins)."""
  if hamming_distance(phash_a, phash_b) <= max_distance:
    return True
  limit = crop_match_distance(max_distance)
  return any(hamming_distance(phash_a, crop) <= limit for crop in crops_b) or any(
    hamming_distance(phash_b, crop) <= limit for crop in crops_a
  )


def near_components(
  phashes: np.ndarray,
  crop_hashes: Optional[np.ndarray],
  max_distance: int,
  joined: Sequence[Tuple[int, int]] = (),
) -> np.ndarray:
  """The component of every image under the near-duplicate relation (module docstring).

  Args:
    phashes: int64 [n] image/phash values.
    crop_hashes: int64 [n, NUM_CROP_HASHES] crop hashes, or None; rows of an image without them
      (an older sidecar) hold its image/phash instead (which adds no relation).
    max_distance: D, bits.
    joined: (i, j) image index pairs to put in one component whatever their hashes (identical
      files).
  Returns:
    int64 [n]: a component label per image; equal labels, same group. Labels depend on the values
    only, not on the order pairs are found in.
  """
  values, node = np.unique(np.asarray(phashes, np.int64), return_inverse=True)
  node = node.reshape(-1)
  components = Components(len(values))
  for first, second in iter_pairs(values, max_distance, components.labels):
    components.add(first, second)
  if crop_hashes is not None and len(values):
    crops = np.asarray(crop_hashes, np.int64).reshape(-1)
    owners = np.repeat(node, len(crops) // max(1, len(node)))
    order = np.lexsort((owners, crops))  # distinct (crop hash, node) entries
    crops, owners = crops[order], owners[order]
    distinct = np.ones(len(crops), bool)
    distinct[1:] = (crops[1:] != crops[:-1]) | (owners[1:] != owners[:-1])
    crops, owners = crops[distinct], owners[distinct]
    for query, entry in iter_matches(
      values, crops, crop_match_distance(max_distance), components.labels, owners
    ):
      components.add(query, owners[entry])
  if joined:
    pairs = np.asarray(joined, np.int64)
    components.add(node[pairs[:, 0]], node[pairs[:, 1]])
  return components.labels()[node]


@dataclasses.dataclass(frozen=True)
class GroupFile:
  """One member of a group: its path relative to --input, split (None: listed before one), whether it
  is stored, its image/phash (None: not stored) and SHA-256 (None: not hashed)."""

  path: str
  split: Optional[str]
  stored: bool
  phash: Optional[int]
  digest: Optional[str]


def _distance(file: GroupFile, first: GroupFile) -> Optional[int]:
  if file.phash is not None and first.phash is not None:
    return ((file.phash ^ first.phash) & ((1 << 64) - 1)).bit_count()
  if file.digest is not None and file.digest == first.digest:
    return 0
  return None


def group_line(files: List[GroupFile]) -> Dict:
  """The duplicates.jsonl object of one group."""
  files = sorted(files, key=lambda f: copy_order(f.split, f.path))
  digests = {f.digest for f in files}
  line = {'kind': EXACT if len(digests) == 1 and None not in digests else NEAR}
  if line['kind'] == EXACT:
    line['sha256'] = files[0].digest
  line['files'] = [
    {'path': f.path, 'split': f.split, 'stored': f.stored, 'distance': _distance(f, files[0])}
    for f in files
  ]
  return line


def find_duplicates(
  stored: Sequence[StoredHashes],
  exact_groups: Iterable[Tuple[str, Sequence[Tuple[str, Optional[str]]]]],
  max_distance: int,
) -> Duplicates:
  """Groups of exact and near duplicates as duplicates.jsonl's text, and their counts.

  Args:
    stored: (input path, split, image/phash, crop hashes or None) of every stored record; 3-tuples
      (no crop hashes) are accepted.
    exact_groups: (digest, [(input path, listing split or None)]) of each group of identical files.
    max_distance: --near_duplicate_distance, bits.
  """
  stored = sorted(tuple(item) + (None,) * (4 - len(item)) for item in stored)
  index_of = {path: i for i, (path, _, _, _) in enumerate(stored)}
  phashes = np.array([value for _, _, value, _ in stored], dtype=np.int64)
  crop_hashes = np.array(
    [crops if crops is not None else (value,) * NUM_CROP_HASHES for _, _, value, crops in stored],
    dtype=np.int64,
  ).reshape(len(stored), NUM_CROP_HASHES)
  digest_of, unstored, joined = {}, [], []
  for digest, members in sorted(exact_groups):
    kept = [index_of[path] for path, _ in members if path in index_of]
    joined.extend((kept[0], i) for i in kept[1:])
    for path, listed in members:
      digest_of[path] = digest
      if path not in index_of:
        unstored.append((kept[0] if kept else None, digest, path, listed))
  labels = near_components(phashes, crop_hashes, max_distance, joined)
  # A group: the stored images of a component of two or more, or of one with files not stored.
  _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
  grouped = sizes[inverse.reshape(-1)] > 1
  grouped[[i for i, _, _, _ in unstored if i is not None]] = True
  by_label: Dict[int, List[GroupFile]] = {}
  for i in np.nonzero(grouped)[0].tolist():
    path, split, value, _ = stored[i]
    by_label.setdefault(int(labels[i]), []).append(
      GroupFile(path, split, True, value, digest_of.get(path))
    )
  alone: Dict[str, List[GroupFile]] = {}  # identical files none of which is stored
  for i, digest, path, listed in unstored:
    files = by_label[int(labels[i])] if i is not None else alone.setdefault(digest, [])
    files.append(GroupFile(path, listed, False, stored[i][2] if i is not None else None, digest))
  lines, counts = [], dict.fromkeys(COUNT_KEYS, 0)
  for files in list(by_label.values()) + list(alone.values()):
    line = group_line(files)
    _count(counts, line)
    lines.append(
      ((line['kind'] != EXACT, line['files'][0]['path']), layout.to_json(line, indent=None))
    )
  lines.sort()
  return Duplicates(''.join(text + '\n' for _, text in lines), counts)


def count_lines(lines: Iterable[Dict]) -> Dict[str, int]:
  """stats.json's `duplicates` of duplicates.jsonl's lines (`Duplicates.counts`)."""
  counts = dict.fromkeys(COUNT_KEYS, 0)
  for line in lines:
    _count(counts, line)
  return counts


def _count(counts: Dict[str, int], line: Dict) -> None:
  """Adds a line to `counts`: it is across splits when its files name more than one split (a copy
  dropped before an input without split folders was split has none); its files across splits are
  those with another split than the first file's."""
  splits = [f['split'] for f in line['files']]
  named = {split for split in splits if split is not None}
  counts[f'{line["kind"]}_{"across_splits" if len(named) > 1 else "within_split"}'] += 1
  if splits and splits[0] is not None:
    counts['files_across_splits'] += sum(
      split is not None and split != splits[0] for split in splits
    )


def _stored_hashes(summaries: Iterable) -> List[StoredHashes]:
  stored = []
  for summary in summaries:
    crops = getattr(summary, 'crop_phashes', None)
    for k, (path, value) in enumerate(summary.phashes or ()):
      stored.append((path, summary.split, value, crops[k] if crops is not None else None))
  return stored


class FindDuplicates(beam.PTransform):
  """(ShardSummary per shard, exact groups) -> one `Duplicates`.

  The exact groups are (digest, [(input path, listing split or None)]) tuples (one per
  transforms/duplicates/exact.py DuplicateGroup).
  """

  def __init__(self, max_distance: int):
    super().__init__()
    self._max_distance = max_distance

  def expand(self, inputs):
    summaries, groups = inputs
    max_distance = self._max_distance
    return (
      summaries
      | 'AllShards' >> beam.combiners.ToList()
      | 'Search'
      >> beam.Map(
        lambda shards, exact: find_duplicates(_stored_hashes(shards), exact, max_distance),
        beam.pvalue.AsList(groups),
      )
    )
