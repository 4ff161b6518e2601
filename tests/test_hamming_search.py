"""transforms/duplicates/hamming_search.py: exactly the pairs a brute-force comparison finds, on
every plan."""

import numpy as np
import pytest

from transforms.duplicates import hamming_search as hs


def _brute_force(values: np.ndarray, max_distance: int):
  bits = values.view(np.uint64)
  found = set()
  for i in range(len(bits)):
    distances = np.bitwise_count(bits[i] ^ bits[i + 1 :])
    found.update((i, i + 1 + int(j)) for j in np.nonzero(distances <= max_distance)[0])
  return found


def _hashes_with_planted_neighbours(n: int, planted: int, max_flips: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  values = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64).view(np.uint64)
  for k in range(min(planted, n // 2)):
    flips = rng.choice(64, rng.integers(0, max_flips + 1), replace=False)
    values[n - 1 - k] = values[k] ^ np.uint64(sum(1 << int(b) for b in flips))
  return values.view(np.int64)


@pytest.mark.parametrize('n,max_distance', [(50, 0), (300, 6), (9000, 4), (12000, 8), (12000, 11)])
def test_pairs_are_exactly_the_brute_force_pairs(n, max_distance):
  values = _hashes_with_planted_neighbours(n, 200, max_distance + 2, seed=n + max_distance)
  first, second, distance = hs.pairs_within(values, max_distance)
  assert set(zip(first.tolist(), second.tolist())) == _brute_force(values, max_distance)
  assert (first < second).all()
  assert list(zip(first, second)) == sorted(zip(first, second))
  bits = values.view(np.uint64)
  assert (distance == np.bitwise_count(bits[first] ^ bits[second])).all()


def test_brute_force_and_multi_index_plans_agree_around_the_switch(monkeypatch):
  values = _hashes_with_planted_neighbours(3000, 300, 10, seed=5)
  expected = hs.pairs_within(values, 8)
  monkeypatch.setattr(hs, 'BRUTE_FORCE_MAX', 10)
  monkeypatch.setattr(hs, 'CHUNK_CANDIDATES', 1000)  # many chunks
  for got, want in zip(hs.pairs_within(values, 8), expected):
    np.testing.assert_array_equal(got, want)


def test_block_plan_covers_64_bits_and_the_pigeonhole_bound():
  for n in (10, 10_000, 1_331_167, 10**9):
    for t in range(0, 17):
      plan = hs.block_plan(n, t)
      assert sum(bits for _, bits, _ in plan) == 64
      assert [first for first, _, _ in plan] == list(np.cumsum([0] + [b for _, b, _ in plan[:-1]]))
      assert sum(radius + 1 for _, _, radius in plan) > t


def test_xor_masks_and_bad_distance():
  masks = hs.xor_masks(5, 2)
  assert len(masks) == 1 + 5 + 10 and masks[0] == 0 and len(set(masks.tolist())) == len(masks)
  with pytest.raises(ValueError):
    hs.pairs_within([1, 2], -1)
  with pytest.raises(ValueError):
    hs.pairs_within([1, 2], 65)
  first, _, _ = hs.pairs_within(np.zeros(0, np.int64), 3)
  assert len(first) == 0
