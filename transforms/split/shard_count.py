"""Shards of a split when no count is given: from its planned bytes and a target shard size.

Guidance: TensorFlow's TFRecord guide (tensorflow.org/tutorials/load_data/tfrecord: "at least 10
times as many files as there will be hosts reading data", each "at least 10 MB+ and ideally 100
MB+"); TFDS (tensorflow_datasets/core/utils/shard_utils.py: 64 MiB to 1 GiB a shard, powers of
two up to 1024, then multiples of 1024). `shards_for_bytes`, in TFDS's counts:
  1. by size: the count nearest in ratio to planned bytes / --target_shard_mb (a shard then holds
     between target/sqrt(2) and target*sqrt(2));
  2. by readers: the smallest count >= 10 x --num_readers, or the largest below it whose shards
     still hold 10 MB;
  3. the larger of the two, at most the split's file count (transforms/split/sharding.py).
Never a multiple of the worker count: the count must not depend on scheduling (outputs are
byte-identical on every runner), and a power of two divides evenly among power-of-two reading hosts.
Integer arithmetic only, so no floating-point rounding differs between the workers that compute it.
"""

from __future__ import annotations

import dataclasses
from typing import List

# --target_shard_mb and the plan's sizes are decimal megabytes, as TF's guide counts them
MB = 10**6
DEFAULT_TARGET_SHARD_MB = 128
MIN_SHARD_BYTES = 10 * MB  # TF's guide: "at least 10 MB+"
MAX_SHARD_BYTES = 1 << 30  # TFDS's largest shard, 1 GiB
READER_FILES_FACTOR = 10  # TF's guide: at least 10 files per reading host
DEFAULT_NUM_READERS = 8  # --num_readers: hosts that will read the output
LARGE_COUNT = 1024  # from here on, counts are multiples of this (TFDS)


@dataclasses.dataclass(frozen=True)
class ShardSizing:
  """What an automatic shard count is computed from.

  Attributes:
    target_shard_bytes: --target_shard_mb in bytes (> 0).
    file_bytes: planned output bytes per listed file: the serialized Example plus the container's
      framing, a file that will be rejected counting 0 (transforms/split/sample.py estimates it, >=
      0).
    num_readers: --num_readers, hosts that will read the output (>= 1).
  Raises:
    ValueError: a target <= 0, negative file bytes or no reader.
  """

  target_shard_bytes: int
  file_bytes: int
  num_readers: int = DEFAULT_NUM_READERS

  def __post_init__(self):
    if self.target_shard_bytes <= 0 or self.file_bytes < 0 or self.num_readers < 1:
      raise ValueError(
        f'target_shard_bytes and num_readers must be > 0 and file_bytes >= 0, got '
        f'{self.target_shard_bytes}, {self.num_readers} and {self.file_bytes}.'
      )

  def num_shards(self, num_files: int) -> int:
    """The automatic count for a split of `num_files` listed files (before the cap at num_files)."""
    return shards_for_bytes(num_files * self.file_bytes, self.target_shard_bytes, self.num_readers)


def shards_for_bytes(
  total_bytes: int, target_bytes: int, num_readers: int = DEFAULT_NUM_READERS
) -> int:
  """The shard count for `total_bytes` of records (module docstring's rule).

  Args:
    total_bytes: planned bytes of the split's records (integer, >= 0).
    target_bytes: target shard size in bytes (integer, > 0).
    num_readers: hosts that will read the shards (>= 1).
  Returns:
    1, 2, 4, ..., 1024, then 2048, 3072, ... (a multiple of 1024).
  """
  return max(_count_by_size(total_bytes, target_bytes), _count_by_readers(total_bytes, num_readers))


def _count_by_size(total_bytes: int, target_bytes: int) -> int:
  if 2 * total_bytes >= 3 * LARGE_COUNT * target_bytes:  # ideal >= 1536: nearest multiple of 1024
    return LARGE_COUNT * (
      (2 * total_bytes + LARGE_COUNT * target_bytes) // (2 * LARGE_COUNT * target_bytes)
    )
  count = 1
  # Double while the ideal count is at least 2 * count / sqrt(2), i.e. 2 * total^2 >= (2 * count *
  # target)^2.
  while count < LARGE_COUNT and 2 * total_bytes * total_bytes >= (2 * count * target_bytes) ** 2:
    count *= 2
  return count


def _count_by_readers(total_bytes: int, num_readers: int) -> int:
  wanted = READER_FILES_FACTOR * num_readers
  if wanted > LARGE_COUNT:
    count = -(-wanted // LARGE_COUNT) * LARGE_COUNT
  else:
    count = 1 << (wanted - 1).bit_length()  # the smallest power of two >= wanted
  while count > 1 and total_bytes < count * MIN_SHARD_BYTES:
    count = count - LARGE_COUNT if count > LARGE_COUNT else count // 2
  return count


def shard_warnings(num_shards: int, shard_bytes: float, num_readers: int) -> List[str]:
  """What the guidance says about `num_shards` shards of `shard_bytes` bytes each, read by
  `num_readers` hosts: [] when nothing, else one sentence per problem."""
  problems = []
  if shard_bytes < MIN_SHARD_BYTES:
    problems.append(
      f"{shard_bytes / MB:.2f} MB a shard, below 10 MB (TF's TFRecord guide: 10 MB+, "
      'ideally 100 MB+)' + ('; the whole split is smaller' if num_shards == 1 else '')
    )
  if shard_bytes > MAX_SHARD_BYTES:
    problems.append(f"{shard_bytes / MB:.0f} MB a shard, above 1 GiB (TFDS's largest shard)")
  wanted = READER_FILES_FACTOR * num_readers
  if num_shards < wanted:
    problems.append(
      f'{num_shards} shard{"s" * (num_shards != 1)}, fewer than {READER_FILES_FACTOR} x '
      f"--num_readers {num_readers} = {wanted} (TF's guide: at least 10 files per reading "
      'host)'
      + (
        '; the split is too small for that many shards of 10 MB'
        if num_shards * shard_bytes < wanted * MIN_SHARD_BYTES
        else ''
      )
    )
  return problems
