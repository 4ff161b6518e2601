"""Every pair of 64-bit hashes within a Hamming distance: exact, in numpy, for millions of hashes.

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012): the 64 bits are cut into m blocks; by the pigeonhole principle two hashes at
distance d <= t differ in block i by at most r_i bits for at least one i whenever
sum(r_i + 1) > t. So every pair is found by looking, for each block i, for the hashes whose block
value is one of the values within r_i bits of this hash's (an enumeration of XOR masks), and the
candidates are then checked on all 64 bits. Blocks of about log2(n) bits keep ~1 hash per block value
(m = 3 blocks of 21-22 bits for ImageNet's 1.33 M hashes), where the enumeration costs least; small
sets (<= BRUTE_FORCE_MAX hashes) compare every pair instead. The result does not depend on the plan:
it is exactly the set of pairs within the distance, in a fixed order.

Cost (benchmarks/duplicates.py, 1.33 M synthetic hashes): see docs/duplicates.md; it grows
with the masks enumerated, V(b, r) = sum_{k <= r} C(b, k) per block: t = 8 enumerates 232 + 232 + 254
masks, t = 10 about 4.7 times as many. Memory is the hashes, a counting index of 2^b int32 per block
and candidate chunks of at most CHUNK_CANDIDATES pairs.
"""

from __future__ import annotations

import itertools
from typing import List, Sequence, Tuple

import numpy as np

# Every pair up to here (~0.5 M comparisons); above it the index is faster (4,000 random hashes at
# t = 8: 0.025 s vs 0.114 s comparing all pairs; they break even near 1,400).
BRUTE_FORCE_MAX = 1024
CHUNK_CANDIDATES = 1 << 22  # candidate pairs checked at once (~100 MB of temporaries)
_BITS = 64


def block_plan(num_hashes: int, max_distance: int) -> List[Tuple[int, int, int]]:
  """The blocks searched: (first bit, bits, radius) each, radii with sum(r + 1) > max_distance.

  Blocks have ~log2(num_hashes) bits (at least 16, at most 32): 3 blocks (21, 21, 22 bits) for
  1.33 M hashes. Radii are spread evenly, the larger ones on the smaller blocks.
  """
  bits = min(32, max(16, int(np.ceil(np.log2(max(2, num_hashes))))))
  count = max(2, _BITS // bits)
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


def pairs_within(hashes: Sequence[int] | np.ndarray, max_distance: int
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every pair of hashes at Hamming distance <= max_distance.

  Args:
    hashes: 64-bit hashes (a uint64 array, or int64 values as `image/phash` stores them).
    max_distance: bits, >= 0.
  Returns:
    (first, second, distance): int64 arrays of indices into `hashes`, first < second, and the
    pair's distance in bits; sorted by (first, second).
  Raises:
    ValueError: max_distance < 0 or > 64.
  """
  if not 0 <= max_distance <= _BITS:
    raise ValueError(f'max_distance must be in 0..64 bits, got {max_distance}')
  values = np.ascontiguousarray(hashes).view(np.uint64) if isinstance(hashes, np.ndarray) \
      else np.asarray(hashes, dtype=np.int64).view(np.uint64)
  if len(values) <= BRUTE_FORCE_MAX:
    first, second = _all_pairs(values, max_distance)
  else:
    found_first, found_second = [], []
    for start, bits, radius in block_plan(len(values), max_distance):
      first, second = _block_pairs(values, start, bits, radius, max_distance)
      found_first.append(first)
      found_second.append(second)
    keys = np.unique(np.concatenate(found_first) * len(values) + np.concatenate(found_second))
    first, second = keys // len(values), keys % len(values)
  first, second = first.astype(np.int64), second.astype(np.int64)
  order = np.lexsort((second, first))
  first, second = first[order], second[order]
  distance = np.bitwise_count(values[first] ^ values[second]).astype(np.int64)
  return first, second, distance


def _all_pairs(values: np.ndarray, max_distance: int) -> Tuple[np.ndarray, np.ndarray]:
  firsts, seconds = [], []
  rows = max(1, CHUNK_CANDIDATES // max(1, len(values)))
  for top in range(0, len(values), rows):
    block = values[top:top + rows, None] ^ values[None, :]
    close = np.bitwise_count(block) <= max_distance
    i, j = np.nonzero(close)
    i = i + top
    keep = i < j
    firsts.append(i[keep])
    seconds.append(j[keep])
  if not firsts:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  return np.concatenate(firsts), np.concatenate(seconds)


def _block_pairs(values: np.ndarray, start: int, bits: int, radius: int, max_distance: int
                 ) -> Tuple[np.ndarray, np.ndarray]:
  """Pairs within max_distance whose block [start, start + bits) differs in <= radius bits, as
  (smaller index, larger index).

  Works on the hashes sorted by block value, so a block value's hashes are one contiguous run
  (`starts`, `counts`). For mask 0 the pairs are those inside a run; for every other mask a hash
  looks up the run of its block value XOR the mask only when that value is the larger one, so each
  pair is generated once per mask instead of from both sides.
  """
  keys = ((values >> np.uint64(start)) & np.uint64((1 << bits) - 1)).astype(np.int32)
  order = np.argsort(keys, kind='stable')
  keys, ordered = keys[order], values[order]
  counts = np.bincount(keys, minlength=1 << bits).astype(np.int32)
  starts = (np.cumsum(counts, dtype=np.int64) - counts).astype(np.int32)
  positions = np.arange(len(values), dtype=np.int32)
  firsts, seconds = [], []
  for mask in xor_masks(bits, radius).astype(np.int32):
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
    found = hits > 0
    query, offsets, hits = query[found], offsets[found], hits[found]
    total = int(hits.sum(dtype=np.int64))
    step = max(1, int(len(hits) * CHUNK_CANDIDATES // max(total, 1)))
    for lo in range(0, len(hits), step):
      first, second = _expand(query[lo:lo + step], offsets[lo:lo + step], hits[lo:lo + step])
      close = np.bitwise_count(ordered[first] ^ ordered[second]) <= max_distance
      firsts.append(first[close])
      seconds.append(second[close])
  if not firsts:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  first, second = order[np.concatenate(firsts)], order[np.concatenate(seconds)]
  return np.minimum(first, second).astype(np.int64), np.maximum(first, second).astype(np.int64)


def _expand(query: np.ndarray, offsets: np.ndarray, hits: np.ndarray
            ) -> Tuple[np.ndarray, np.ndarray]:
  """(query[k], offsets[k] + c) for c in 0..hits[k]-1 and every k: a ragged expansion."""
  if len(hits) and int(hits.max()) == 1:
    return query, offsets
  total = int(hits.sum(dtype=np.int64))
  first = np.repeat(query, hits)
  second = np.repeat(offsets - (np.cumsum(hits, dtype=np.int64) - hits), hits) + np.arange(total)
  return first, second
