"""Every pair of 64-bit hashes within a Hamming distance: exact, in numpy, for millions of hashes.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012): the 64 bits are cut into m blocks; by the pigeonhole principle two hashes at
distance d <= t differ in block i by at most r_i bits for some i whenever sum(r_i + 1) > t. So each
block's candidates are the hashes whose block value is within r_i bits (an enumeration of XOR
masks), checked on all 64 bits. Blocks of about log2(n) bits keep ~1 hash per block value; sets of
at most BRUTE_FORCE_MAX hashes compare every pair instead. The result does not depend on the plan:
exactly the pairs within the distance, in a fixed order. `iter_pairs` and `iter_matches` stream
their pairs in chunks of at most CHUNK_CANDIDATES candidates, so a caller that joins pairs into
groups (transforms/duplicates/near.py) holds one chunk at a time; given the components found so far
(`labels`), the search skips candidates already joined. Memory: the hashes, a counting index of 2^b
int32 per block and one chunk. Costs: docs/duplicates.md.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

# Every pair up to here (~0.5 M comparisons); above it the index is faster (4,000 random hashes at
# t = 8: 0.025 s vs 0.114 s comparing all pairs; they break even near 1,400).
BRUTE_FORCE_MAX = 1024
CHUNK_CANDIDATES = 1 << 22  # candidate pairs checked at once (~100 MB of temporaries)
REFRESH_MASKS = 32  # with `labels`: the known components are looked up again every this many masks
Labels = Callable[[], np.ndarray]  # the current component label of every hash (iter_pairs)
_BITS = 64


def block_plan(num_hashes: int, max_distance: int) -> List[Tuple[int, int, int]]:
  """The blocks searched: (first bit, bits, radius) each, radii with sum(r + 1) > max_distance.

  Blocks have ~log2(num_hashes) bits (at least 16, at most 32): 3 blocks (21, 21, 22 bits) for
  1.33 M hashes. Radii are spread evenly, the larger ones on the smaller blocks.
  """
  bits = min(32, max(16, int(np.ceil(np.log2(max(2, num_hashes))))))
  count = max(2, round(_BITS / bits))  # 23-bit blocks: 3 of ~21 bits, not 2 of 32
  sizes = [_BITS // count + (i >= count - _BITS % count) for i in range(count)]
  needed = max_distance + 1  # sum(r_i + 1) must exceed max_distance
  radii = [needed // count - 1 + (i < needed % count) for i in range(count)]
  plan, first = [], 0
  for size, radius in zip(sizes, radii):
    plan.append((first, size, radius))
    first += size
  return plan


def xor_masks(bits: int, radius: int) -> np.ndarray:
  """Every `bits`-bit mask with at most `radius` bits set, as uint64, 0 first."""
  masks = [0]
  for k in range(1, max(0, radius) + 1):
    masks.extend(sum(1 << b for b in combo) for combo in itertools.combinations(range(bits), k))
  return np.array(masks, dtype=np.uint64)


def _as_uint64(hashes: Sequence[int] | np.ndarray) -> np.ndarray:
  if isinstance(hashes, np.ndarray):
    return np.ascontiguousarray(hashes).view(np.uint64)
  return np.asarray(hashes, dtype=np.int64).view(np.uint64)


def _check_distance(max_distance: int) -> None:
  if not 0 <= max_distance <= _BITS:
    raise ValueError(f'max_distance must be in 0..64 bits, got {max_distance}')


def pairs_within(
  hashes: Sequence[int] | np.ndarray, max_distance: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every pair of hashes at Hamming distance <= max_distance, materialised (`iter_pairs` streams).

  Args:
    hashes: 64-bit hashes (a uint64 array, or int64 values as `image/phash` stores them).
    max_distance: bits, >= 0.
  Returns:
    (first, second, distance): int64 arrays of indices into `hashes`, first < second, and the
    pair's distance in bits; sorted by (first, second).
  Raises:
    ValueError: max_distance < 0 or > 64.
  """
  values = _as_uint64(hashes)
  found = list(iter_pairs(values, max_distance))
  if found:
    keys = np.unique(np.concatenate([f * len(values) + s for f, s in found]))
  else:
    keys = np.zeros(0, np.int64)
  first, second = keys // max(1, len(values)), keys % max(1, len(values))
  distance = np.bitwise_count(values[first] ^ values[second]).astype(np.int64)
  return first, second, distance


def iter_pairs(
  hashes: Sequence[int] | np.ndarray, max_distance: int, labels: Optional[Labels] = None
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Every pair of hashes within max_distance bits, streamed in chunks of at most ~CHUNK_CANDIDATES.

  Args:
    labels: for a caller that joins the pairs into components: returns the current component label
      of every hash (int64 [n]); pairs whose hashes already share a label may then be left out,
      and whole runs of candidates with them (module docstring).
  Yields:
    (first, second): int64 index arrays, first < second. A pair may be yielded more than once (it
    can be found through several blocks); together the chunks hold every pair (with `labels`:
    every pair whose hashes had different labels when it was reached). Memory is the hashes, the
    index and one chunk, whatever the number of pairs.
  Raises:
    ValueError: max_distance < 0 or > 64.
  """
  _check_distance(max_distance)
  values = _as_uint64(hashes)
  if len(values) <= BRUTE_FORCE_MAX:
    yield from _all_pairs(values, max_distance)
    return
  for start, bits, radius in block_plan(len(values), max_distance):
    yield from _block_pairs(values, start, bits, radius, max_distance, labels)


def iter_matches(
  queries: Sequence[int] | np.ndarray,
  index: Sequence[int] | np.ndarray,
  max_distance: int,
  labels: Optional[Labels] = None,
  index_nodes: Optional[np.ndarray] = None,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Every (query, index entry) pair of hashes within max_distance bits, streamed in chunks.

  The same multi-index search as `iter_pairs` between two sets: the index is sorted by block value,
  each query looks up the runs of its block value XOR every mask.

  Args:
    labels: as for `iter_pairs`, the current label of every query; index entry e has the label of
      query `index_nodes[e]` (both needed together). Pairs whose labels are equal may be left out.
  Yields:
    (query, entry): int64 index arrays into `queries` and `index`; a pair may be yielded more than
    once, every pair is yielded (with `labels`: every pair of different labels when reached).
  Raises:
    ValueError: max_distance < 0 or > 64.
  """
  _check_distance(max_distance)
  queries, index = _as_uint64(queries), _as_uint64(index)
  if not len(queries) or not len(index):
    return
  for start, bits, radius in block_plan(max(len(queries), len(index)), max_distance):
    block = np.uint64((1 << bits) - 1)
    index_keys = ((index >> np.uint64(start)) & block).astype(np.int32)
    order = np.argsort(index_keys, kind='stable')
    index_keys = index_keys[order]
    counts = np.bincount(index_keys, minlength=1 << bits).astype(np.int32)
    starts = (np.cumsum(counts, dtype=np.int64) - counts).astype(np.int32)
    ordered = index[order]
    query_keys = ((queries >> np.uint64(start)) & block).astype(np.int32)
    positions = np.arange(len(queries), dtype=np.int32)
    known = _Known(
      labels, lambda current, order=order: current[index_nodes[order]], index_keys, bits
    )
    for number, mask in enumerate(xor_masks(bits, radius).astype(np.int32)):
      if number % REFRESH_MASKS == 0:
        known.refresh()
      targets = query_keys ^ mask
      hits = counts[targets]
      found = (hits > 0) & known.unknown(targets, positions)
      yield from _checked(
        queries, ordered, positions[found], starts[targets[found]], hits[found], max_distance, order
      )


class _Known:
  """Which runs of one block's sorted hashes hold a single component (`labels` of iter_pairs):
  `run_label[block value]` is that label, or -1 for a run of several labels (or no run)."""

  def __init__(
    self,
    labels: Optional[Labels],
    sorted_labels: Callable[[np.ndarray], np.ndarray],
    sorted_keys: np.ndarray,
    bits: int,
  ):
    self._labels, self._sorted_labels, self._keys, self._bits = (
      labels,
      sorted_labels,
      sorted_keys,
      bits,
    )
    self.run_label = self.query_label = None

  def refresh(self) -> None:
    if self._labels is None or not len(self._keys):
      return
    current = self._labels()
    self.query_label = current
    ordered = self._sorted_labels(current)
    first = np.flatnonzero(np.r_[True, self._keys[1:] != self._keys[:-1]])
    low, high = np.minimum.reduceat(ordered, first), np.maximum.reduceat(ordered, first)
    self.run_label = np.full(1 << self._bits, -1, np.int64)
    self.run_label[self._keys[first]] = np.where(low == high, low, -1)

  def unknown(self, targets: np.ndarray, query_labels_of) -> np.ndarray:
    """True where a query's target run is not all in the query's own component."""
    if self.run_label is None:
      return np.ones(len(targets), bool)
    return self.run_label[targets] != self.query_label[query_labels_of]


def _checked(
  left: np.ndarray,
  right: np.ndarray,
  query: np.ndarray,
  offsets: np.ndarray,
  hits: np.ndarray,
  max_distance: int,
  right_order: Optional[np.ndarray] = None,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """The candidates (query[k], offsets[k] + c for c < hits[k]) within max_distance, in chunks of at
  most CHUNK_CANDIDATES candidates plus one query's; right indices mapped through `right_order` when
  given."""
  cumulative = np.cumsum(hits, dtype=np.int64)
  total = int(cumulative[-1]) if len(cumulative) else 0
  cuts = np.searchsorted(cumulative, np.arange(CHUNK_CANDIDATES, total, CHUNK_CANDIDATES), 'right')
  bounds = np.unique(np.concatenate([[0], cuts, [len(hits)]])).tolist()
  for lo, hi in zip(bounds[:-1], bounds[1:]):
    first, second = _expand(query[lo:hi], offsets[lo:hi], hits[lo:hi])
    close = np.bitwise_count(left[first] ^ right[second]) <= max_distance
    first, second = first[close].astype(np.int64), second[close].astype(np.int64)
    if len(first):
      yield first, (right_order[second] if right_order is not None else second)


def _all_pairs(values: np.ndarray, max_distance: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  rows = max(1, CHUNK_CANDIDATES // max(1, len(values)))
  for top in range(0, len(values), rows):
    block = values[top : top + rows, None] ^ values[None, :]
    close = np.bitwise_count(block) <= max_distance
    i, j = np.nonzero(close)
    i = i + top
    keep = i < j
    if keep.any():
      yield i[keep].astype(np.int64), j[keep].astype(np.int64)


def _block_pairs(
  values: np.ndarray,
  start: int,
  bits: int,
  radius: int,
  max_distance: int,
  labels: Optional[Labels] = None,
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Pairs within max_distance whose block [start, start + bits) differs in <= radius bits, as
  (smaller index, larger index) chunks.

  Works on the hashes sorted by block value, so a block value's hashes are one contiguous run
  (`starts`, `counts`). For mask 0 the pairs are those inside a run; for every other mask a hash
  looks up the run of its block value XOR the mask only when that value is the larger one, so each
  pair is generated once per mask instead of from both sides. With `labels`, a query skips a run
  whose hashes are all in its own component.
  """
  keys = ((values >> np.uint64(start)) & np.uint64((1 << bits) - 1)).astype(np.int32)
  order = np.argsort(keys, kind='stable')
  keys, ordered = keys[order], values[order]
  counts = np.bincount(keys, minlength=1 << bits).astype(np.int32)
  starts = (np.cumsum(counts, dtype=np.int64) - counts).astype(np.int32)
  positions = np.arange(len(values), dtype=np.int32)
  known = _Known(labels, lambda current: current[order], keys, bits)
  for number, mask in enumerate(xor_masks(bits, radius).astype(np.int32)):
    if number % REFRESH_MASKS == 0 or number == 1:  # after mask 0, whose pairs join the most
      known.refresh()
    targets = keys ^ mask
    if mask:
      wanted = keys < targets
      query, targets = positions[wanted], targets[wanted]
    else:
      query = positions
    hits = counts[targets]
    if mask == 0:
      hits = starts[targets] + hits - query - 1  # only the run's later hashes: each pair once
      offsets = query + 1
    else:
      offsets = starts[targets]
    found = (hits > 0) & known.unknown(targets, order[query])
    for first, second in _checked(
      ordered, ordered, query[found], offsets[found], hits[found], max_distance
    ):
      first, second = order[first], order[second]
      yield np.minimum(first, second), np.maximum(first, second)


def _expand(
  query: np.ndarray, offsets: np.ndarray, hits: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
  """(query[k], offsets[k] + c) for c in 0..hits[k]-1 and every k: a ragged expansion."""
  if len(hits) and int(hits.max()) == 1:
    return query.astype(np.int64), offsets.astype(np.int64)
  total = int(hits.sum(dtype=np.int64))
  first = np.repeat(query.astype(np.int64), hits)
  second = np.repeat(offsets - (np.cumsum(hits, dtype=np.int64) - hits), hits) + np.arange(
    total, dtype=np.int64
  )
  return first, second
