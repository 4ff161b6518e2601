"""Files that must share a split: copies of one file, and with --group_regex, files of one group.

With --validation_fraction / --test_fraction, a file's split is decided per class by its position in
hash order (transforms/split/sharding.py). Files that belong together (frames of one video, photos
of one patient or object, identical copies) would then land in different splits and leak between
train and validation. So every such set of files gets a leader, its first member in
`duplicates.member_order` (by path for an input without split folders), which is split as usual; the
others follow it (sharding.AssignSplitShard's `followers`), in their own class.

--group_regex REGEX: a file's group is the first capture group of `re.search(REGEX, path)` where
path is the file's path relative to its class folder (`clip7_frame0031.jpg` with
`^(.+)_frame\\d+` gives `clip7`); files where it does not match (or the group does not take part)
are in no group. Groups are by that value across classes (one patient's photos in two classes
are kept together). A file in a regex group and in a group of identical files joins both: the
groups are merged (union-find) on one worker, from the lists of grouped files only.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam

from transforms.duplicates.exact import (
  DUPLICATE_OF,
  EXCLUDED,
  DuplicateGroup,
  dropped_copies,
  exact_duplicate_groups,
  is_excluded,
  left_out,
  member_order,
)
from transforms.inputs.input_file import DEFAULT_MAX_FILE_BYTES
from transforms.split.sharding import UNSPLIT, ImageRef, assign_splits, ref_id


def group_value(pattern: 're.Pattern', key: str) -> Optional[str]:
  """The --group_regex group of a file whose key is `class/path`: the first capture group of the
  pattern searched in `path`, or None."""
  match = pattern.search(key.split('/', 1)[-1])
  return match.group(1) if match else None


def merged_followers(groups: Iterable[Sequence[ImageRef]]) -> List[Tuple[ImageRef, ImageRef]]:
  """(follower, leader) for every file of the union of overlapping `groups` but its leader (the
  first of its merged group in `member_order`) whose split is not given (UNSPLIT: a split folder's
  or a manifest row's split never moves); sorted by follower."""
  parent: Dict[Tuple[str, str], Tuple[str, str]] = {}
  refs: Dict[Tuple[str, str], ImageRef] = {}

  def root(node):
    while parent[node] != node:
      parent[node] = parent[parent[node]]
      node = parent[node]
    return node

  for group in groups:
    ids = [ref_id(ref) for ref in group]
    for ref, node in zip(group, ids):
      refs[node] = ref
      parent.setdefault(node, node)
    for node in ids[1:]:
      a, b = root(ids[0]), root(node)
      if a != b:
        parent[max(a, b)] = min(a, b)
  members: Dict[Tuple[str, str], List[ImageRef]] = {}
  for node, ref in refs.items():
    members.setdefault(root(node), []).append(ref)
  pairs = []
  for group in members.values():
    leader, *others = sorted(group, key=member_order)
    pairs.extend((ref, leader) for ref in others if ref.split == UNSPLIT)
  return sorted(pairs, key=lambda pair: ref_id(pair[0]))


def regex_groups(refs: Iterable[ImageRef], pattern: 're.Pattern') -> List[List[ImageRef]]:
  """The --group_regex groups of two or more files (`group_value`), by value."""
  by_value: Dict[str, List[ImageRef]] = {}
  for ref in refs:
    value = group_value(pattern, ref.key)
    if value is not None:
      by_value.setdefault(value, []).append(ref)
  return [members for _, members in sorted(by_value.items()) if len(members) > 1]


def followers_of(
  refs: Sequence[ImageRef],
  copy_groups: Iterable[DuplicateGroup],
  group_regex: Optional[str],
  with_copies: bool,
) -> List[Tuple[ImageRef, ImageRef]]:
  """`Followers` on one machine: (follower, leader) pairs of the groups of identical files (unless
  not `with_copies`) and of the --group_regex groups of `refs`, merged."""
  groups = [list(group.members) for group in copy_groups] if with_copies else []
  if group_regex is not None:
    groups += regex_groups(refs, re.compile(group_regex))
  return merged_followers(groups)


@dataclasses.dataclass(frozen=True)
class SplitFiles:
  """Where a run puts every listed file (`split_files`).

  Attributes:
    per_class: {(split, label): files in `sharding.class_order`}, AssignSplitShard's lists.
    left_out: {ref_id: reject dict} of the files left out before the split (--exclude_file,
      --drop_duplicates), as the run writes them to rejects.jsonl.
    copy_groups: the groups of identical files (empty when no copy can move or leave a file).
  """

  per_class: Dict[Tuple[str, int], List[ImageRef]]
  left_out: Dict[Tuple[str, str], dict]
  copy_groups: Tuple[DuplicateGroup, ...]


def split_files(
  refs: Sequence[ImageRef],
  split_roots: Dict[str, str],
  seed: int,
  validation_fraction: float,
  test_fraction: float = 0.0,
  excluded: FrozenSet[str] = frozenset(),
  drop_duplicates: bool = False,
  group_regex: Optional[str] = None,
  split_folders: bool = False,
  max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> SplitFiles:
  """The run's split of every listed file, on one machine (the plan): the graph's ExcludeFiles,
  FindExactDuplicates, DropDuplicates, Followers and AssignSplitShard (pipeline/graph.py), step for
  step, with the same functions. Near-duplicate groups are found after the shards are written and
  move no file. Copies are hashed (duplicates.exact_duplicate_groups) only when they can move or
  leave a file: with --drop_duplicates, or when fractions split an input without split folders.

  Args:
    refs: every listed file; split_roots: Layout.split_roots; split_folders: the input has split
      folders (nothing follows another file); the rest: the flags of the same names
      (`excluded`: ConverterOptions.excluded_files).
  """
  kept, left = [], {}
  for ref in refs:
    if is_excluded(ref, excluded, split_roots):
      left[ref_id(ref)] = left_out(ref, split_roots, EXCLUDED)
    else:
      kept.append(ref)
  splitting = not split_folders and bool(validation_fraction or test_fraction)
  copy_groups = (
    exact_duplicate_groups(kept, split_roots, max_file_bytes)
    if drop_duplicates or splitting
    else []
  )
  if drop_duplicates:
    dropped = dict(pair for group in copy_groups for pair in dropped_copies(group, split_roots))
    left.update(
      (ref_id(ref), left_out(ref, split_roots, DUPLICATE_OF + dropped[ref_id(ref)]))
      for ref in kept
      if ref_id(ref) in dropped
    )
    kept = [ref for ref in kept if ref_id(ref) not in dropped]
  followers = (
    followers_of(kept, copy_groups, group_regex, with_copies=not drop_duplicates)
    if splitting
    else []
  )
  return SplitFiles(
    assign_splits(kept, followers, seed, validation_fraction, test_fraction),
    left,
    tuple(copy_groups),
  )


class Followers(beam.PTransform):
  """(ImageRefs, DuplicateGroups) -> (follower, leader) pairs: the files that take their leader's
  split (module docstring). Without --group_regex, each group of identical files on its own."""

  def __init__(self, group_regex: Optional[str], with_copies: bool):
    """`with_copies`: False when the copies are dropped (--drop_duplicates): only regex groups."""
    super().__init__()
    self._regex = group_regex
    self._with_copies = with_copies

  def expand(self, inputs):
    refs, duplicate_groups = inputs
    with_copies = self._with_copies
    if self._regex is None:
      return duplicate_groups | 'CopiesFollowFirst' >> beam.FlatMap(
        lambda group: group.followers() if with_copies else []
      )
    copies = duplicate_groups | 'CopyGroups' >> beam.FlatMap(
      lambda group: [list(group.members)] if with_copies else []
    )
    regex = self._regex
    by_value = (
      refs
      | 'GroupValue'
      >> beam.FlatMap(
        lambda ref: (
          [(value, ref)] if (value := group_value(re.compile(regex), ref.key)) is not None else []
        )
      ).with_output_types(Tuple[str, ImageRef])
      | 'GroupByValue' >> beam.GroupByKey()
      | 'GroupsOfTwoOrMore' >> beam.FlatMap(lambda kv: [list(kv[1])] if len(kv[1]) > 1 else [])
    )
    return (
      (copies, by_value)
      | 'AllGroups' >> beam.Flatten()
      | 'OnOneWorker' >> beam.combiners.ToList()
      | 'MergeGroups' >> beam.FlatMap(merged_followers)
    )
