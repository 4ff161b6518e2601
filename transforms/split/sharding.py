"""Stable split and shard assignment.

Every decision is a function of the seed and the file's key (its path relative to the split root),
never of run order, worker count or runner, so every run writes the same records into the same shard
files in the same order (as TFDS's writer). DO NOT change `stable_hash` or the ordering rules: that
would reorder every dataset users have already converted. Per class, files are ordered by
``stable_hash(seed, 'order', key)``. Of an input without split folders, the first ``round(n *
validation_fraction)`` go to validation and the next ``round(n * test_fraction)`` to test (round
half up, of the class's own n: stratified and exact; adding a test split never moves a validation
file). Files that must share a split (copies of one file, --group_regex groups:
transforms/split/groups.py) follow their leader's split, in their own class. Within a split, classes
are concatenated in label order and file i goes to shard ``i % num_shards``: shard sizes differ by
at most one and every shard holds every class in proportion; inside a shard, records are in hash
order. ``num_shards`` is the requested count or the count for the split's planned bytes
(transforms/split/shard_count.py), capped at the split's file count.
"""

from __future__ import annotations

import hashlib
import math
from typing import Container, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam

from beam_private.coders import NamedTupleCoder
from transforms.split.shard_count import ShardSizing

TRAIN, VALIDATION, TEST = 'train', 'validation', 'test'
# The splits the converter writes, in the order people list them.
SPLITS = (TRAIN, VALIDATION, TEST)
UNSPLIT = ''  # Files of an input without split folders, before --validation_fraction splits them.


class ImageRef(NamedTuple):
  """One listed input file, as small as it can be: the runner holds one per input file between the
  listing and the shard writer (the DirectRunner in its own memory, ~40x the encoded size).

  Attributes:
    split: the split folder it was listed from (UNSPLIT until --validation_fraction decides).
    label: the label written to `image/class/label` (offset included).
    synset: the class name (folder name, or the ground-truth class of a flat validation file).
    key: POSIX path relative to the root of `split` (`class/file`, or `file` in a flat folder); the
      file is `listing.image_path(split_roots, ref)`.
    size: the file's size in bytes, from the listing.
    mtime_us: its modification time in microseconds since the epoch, from the listing (0: unknown).
      With `size`, what --resume compares (transforms/inputs/fingerprint.py); neither decides any
      order.
  """

  split: str
  label: int
  synset: str
  key: str
  size: int = 0
  mtime_us: int = 0


class ImageRefCoder(NamedTupleCoder):
  """ImageRef as its six fields in Beam's standard coders: 59 bytes for an ImageNet file (48 for the
  names and label, 3 for the size, 8 for the mtime), where the default pickle takes ~120.
  Deterministic. Not RowCoder: portable runners decode rows on the Java side, which the Beam 2.62
  job servers used in tests/test_flink.py and test_spark.py fail on (Java heap exhausted). Encoded
  by Beam's compiled tuple coder (beam_private/coders.py): an ImageRef crosses ~5 stage boundaries
  between the listing and the shard writer."""

  TUPLE_TYPE = ImageRef
  FIELDS = (
    beam.coders.StrUtf8Coder(),
    beam.coders.VarIntCoder(),
    beam.coders.StrUtf8Coder(),
    beam.coders.StrUtf8Coder(),
    beam.coders.VarIntCoder(),
    beam.coders.VarIntCoder(),
  )


beam.coders.registry.register_coder(ImageRef, ImageRefCoder)


class ShardId(NamedTuple):
  """One shard of a split: index in 0..num_shards-1. Its file name is the output layout's business
  (transforms/output/layout.py ShardNameTemplate)."""

  split: str
  index: int
  num_shards: int


def stable_hash(seed: int, *parts: str) -> int:
  """64-bit hash of (seed, parts) that is the same on every machine and Python version."""
  text = '\x00'.join((str(seed),) + parts)
  return int.from_bytes(hashlib.sha256(text.encode('utf-8')).digest()[:8], 'big')


def ref_id(ref: ImageRef) -> Tuple[str, str]:
  """What names a listed file across the graph: (listing split, key)."""
  return ref.split, ref.key


def order_key(seed: int, ref: ImageRef) -> Tuple[int, str]:
  return stable_hash(seed, 'order', ref.key), ref.key


def ordered_splits(names: Iterable[str]) -> List[str]:
  """Split names in SPLITS order (train, validation, test), any other name after them, sorted."""
  return sorted(
    names, key=lambda name: (SPLITS.index(name) if name in SPLITS else len(SPLITS), name)
  )


def _round_half_up(value: float) -> int:
  return math.floor(value + 0.5)


def split_class(
  refs: Iterable[ImageRef], seed: int, validation_fraction: float, test_fraction: float = 0.0
) -> Dict[str, List[ImageRef]]:
  """Orders one class's files by hash and, for an unsplit input, splits them exactly.

  Of n files in hash order, the first round(n * validation_fraction) go to validation, the next
  round(n * test_fraction) to test and the rest to train (round half up; see the module docstring).

  Returns:
    {split: refs in hash order}; refs of an input with split folders keep their split. A ref's own
    `split` stays the folder it was listed from.
  """
  ordered = sorted(refs, key=lambda ref: order_key(seed, ref))
  if not ordered or ordered[0].split != UNSPLIT:
    return {ordered[0].split: ordered} if ordered else {}
  num_validation = _round_half_up(len(ordered) * validation_fraction)
  end_test = min(len(ordered), num_validation + _round_half_up(len(ordered) * test_fraction))
  result = {
    TRAIN: ordered[end_test:],
    VALIDATION: ordered[:num_validation],
    TEST: ordered[num_validation:end_test],
  }
  return {split: refs for split, refs in result.items() if refs}


def split_leaders(
  refs: Iterable[ImageRef],
  follows: Container[Tuple[str, str]],
  seed: int,
  validation_fraction: float,
  test_fraction: float = 0.0,
) -> Dict[str, List[ImageRef]]:
  """`split_class` of one class's files that follow no other file (`follows`: their `ref_id`s)."""
  return split_class(
    [ref for ref in refs if ref_id(ref) not in follows], seed, validation_fraction, test_fraction
  )


def class_order(refs: Iterable[ImageRef], seed: int) -> List[ImageRef]:
  """A split's files of one class, leaders and followers, in `order_key` order."""
  return sorted(refs, key=lambda ref: order_key(seed, ref))


def assign_splits(
  refs: Iterable[ImageRef],
  followers: Sequence[Tuple[ImageRef, ImageRef]],
  seed: int,
  validation_fraction: float,
  test_fraction: float = 0.0,
) -> Dict[Tuple[str, int], List[ImageRef]]:
  """The split rule on one machine: what AssignSplitShard's per-class lists are before the shards.

  Each class's files that follow no other file are split by `split_class` (`split_leaders`); each
  follower joins its leader's split, in its own class (a follower whose leader is not among `refs`
  is dropped, as AddFollowers' join drops it); every list is in `class_order`.

  Args:
    refs: the files to split, followers included.
    followers: (follower, leader) pairs (transforms/split/groups.py).
  Returns:
    {(split, label): files}.
  """
  follows = {ref_id(follower) for follower, _ in followers}
  by_class: Dict[Tuple[str, int], List[ImageRef]] = {}
  for ref in refs:
    by_class.setdefault((ref.split, ref.label), []).append(ref)
  per_class: Dict[Tuple[str, int], List[ImageRef]] = {}
  split_of: Dict[Tuple[str, str], str] = {}
  for (_, label), members in by_class.items():
    for split, leaders in split_leaders(
      members, follows, seed, validation_fraction, test_fraction
    ).items():
      per_class[split, label] = leaders
      split_of.update((ref_id(ref), split) for ref in leaders)
  for follower, leader in followers:
    if ref_id(leader) in split_of:
      per_class.setdefault((split_of[ref_id(leader)], follower.label), []).append(follower)
  return {key: class_order(members, seed) for key, members in per_class.items()}


def num_shards_of(
  split: str, num_files: int, requested_shards: Dict[str, int], sizing: Optional[ShardSizing]
) -> int:
  """The shard count of a split of `num_files` listed files.

  Args:
    requested_shards: {split: shard count}, 0 (or absent) for the automatic count.
    sizing: what the automatic count is computed from (transforms/split/shard_count.py).
  Returns:
    The requested count, else `sizing`'s, capped at `num_files` (a shard holds at least one file:
    nothing writes a shard that no file reaches, and TFDS, verify and Model Garden expect every
    shard of the count to exist).
  Raises:
    ValueError: the split has no requested count and `sizing` is None.
  """
  requested = requested_shards.get(split)
  if not requested:
    if sizing is None:
      raise ValueError(
        f'split {split!r} has no shard count and no size estimate to compute one '
        'from; pass its --<split>_shards or a ShardSizing.'
      )
    requested = sizing.num_shards(num_files)
  return min(requested, num_files)


def assign_shards(
  split: str,
  label: int,
  refs: List[ImageRef],
  class_counts: Dict[Tuple[str, int], int],
  requested_shards: Dict[str, int],
  sizing: Optional[ShardSizing] = None,
) -> Iterable[Tuple[ShardId, ImageRef]]:
  """Round-robin shard assignment over the split's class-major, hash-ordered sequence.

  Args:
    class_counts: {(split, label): number of files} for every class of every split (a side input).
    requested_shards, sizing: the shard count, see `num_shards_of`.
  """
  offset = sum(n for (s, other), n in class_counts.items() if s == split and other < label)
  total = sum(n for (s, _), n in class_counts.items() if s == split)
  num_shards = num_shards_of(split, total, requested_shards, sizing)
  for position, ref in enumerate(refs, start=offset):
    # A plain tuple key: Beam encodes it deterministically on every runner.
    yield (split, position % num_shards, num_shards), ref


class AssignSplitShard(beam.PTransform):
  """ImageRef -> ((split, shard index, num_shards), ImageRef): stable split, balanced shards.

  `sizing` computes the count of a split whose `requested_shards` is 0 from its file count (the
  split's planned bytes: transforms/split/shard_count.py); it may be None when every split's count
  is requested.
  """

  def __init__(
    self,
    seed: int,
    validation_fraction: float,
    requested_shards: Dict[str, int],
    test_fraction: float = 0.0,
    sizing: Optional[ShardSizing] = None,
    followers=None,
  ):
    """`followers`: a PCollection of (ImageRef, ImageRef): each first file is placed in the split of
    the second, its leader (transforms/split/groups.py), and takes no part in `split_class`; None:
    no followers (the graph of an input with split folders, whose files never move)."""
    super().__init__()
    self._followers = followers
    self._seed = seed
    self._fractions = (validation_fraction, test_fraction)
    self._requested_shards = requested_shards
    self._sizing = sizing

  def expand(self, refs):
    seed, fractions = self._seed, self._fractions
    followers = self._followers
    # Followers leave their class's list after the grouping, on one element per class: as a side
    # input of a per-file filter they made the runner hold every file's ref once more (issue 11).
    follower_ids = (
      {}
      if followers is None
      else beam.pvalue.AsDict(
        followers | 'FollowerIds' >> beam.Map(lambda fa: (ref_id(fa[0]), ref_id(fa[1])))
      )
    )
    per_class = (
      refs
      | 'KeyByClass'
      >> beam.Map(lambda ref: ((ref.split, ref.label), ref)).with_output_types(
        Tuple[Tuple[str, int], ImageRef]
      )
      | 'GroupByClass' >> beam.GroupByKey()
      | 'SplitClass'
      >> beam.FlatMap(
        lambda kv, follows: split_leaders(kv[1], follows, seed, *fractions).items(), follower_ids
      ).with_output_types(Tuple[str, List[ImageRef]])
      | 'KeyBySplitClass'
      >> beam.Map(lambda kv: ((kv[0], kv[1][0].label), kv[1])).with_output_types(
        Tuple[Tuple[str, int], List[ImageRef]]
      )
    )
    if followers is not None:
      per_class = (per_class, followers) | 'AddFollowers' >> AddFollowers(seed)
    counts = per_class | 'CountPerClass' >> beam.Map(lambda kv: (kv[0], len(kv[1])))
    return per_class | 'AssignShards' >> beam.FlatMap(
      lambda kv, class_counts, requested, sizing: assign_shards(
        kv[0][0], kv[0][1], kv[1], class_counts, requested, sizing
      ),
      class_counts=beam.pvalue.AsDict(counts),
      requested=self._requested_shards,
      sizing=self._sizing,
    ).with_output_types(Tuple[Tuple[str, int, int], ImageRef])


class AddFollowers(beam.PTransform):
  """(((split, label), [ImageRef in order]) per class, (follower, leader) pairs) -> the per-class lists
  with each follower added to its leader's split, in its own class, in `order_key` order.

  Followers are the copies of a file and the files of a --group_regex group
  (transforms/split/groups.py) whose leader, the first of them, was split by `split_class`; they
  follow it so that a group never straddles splits. Without followers every list passes unchanged.
  """

  def __init__(self, seed: int):
    super().__init__()
    self._seed = seed

  def expand(self, inputs):
    per_class, followers = inputs
    seed = self._seed
    leader_ids = followers | 'LeaderIds' >> beam.Map(lambda fa: (ref_id(fa[1]), True))
    leader_splits = per_class | 'LeaderSplits' >> beam.FlatMap(
      lambda kv, leaders: [(ref_id(ref), kv[0][0]) for ref in kv[1] if ref_id(ref) in leaders],
      beam.pvalue.AsDict(leader_ids),
    )
    by_leader = followers | 'ByLeader' >> beam.Map(lambda fa: (ref_id(fa[1]), fa[0]))
    placed = (
      {'split': leader_splits, 'followers': by_leader}
      | 'JoinLeaders' >> beam.CoGroupByKey()
      | 'PlaceFollowers'
      >> beam.FlatMap(
        lambda kv: [
          ((split, ref.label), ref) for split in kv[1]['split'] for ref in kv[1]['followers']
        ]
      ).with_output_types(Tuple[Tuple[str, int], ImageRef])
    )
    return (
      {'listed': per_class, 'placed': placed}
      | 'JoinClasses' >> beam.CoGroupByKey()
      | 'MergeClass'
      >> beam.Map(lambda kv: (kv[0], _merged(kv[1], seed))).with_output_types(
        Tuple[Tuple[str, int], List[ImageRef]]
      )
    )


def _merged(joined: Dict[str, Iterable], seed: int) -> List[ImageRef]:
  return class_order(
    [ref for refs in joined['listed'] for ref in refs] + list(joined['placed']), seed
  )
