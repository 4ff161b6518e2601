"""Files that must share a split: copies of one file, and with --group_regex, files of one group.

With --validation_fraction / --test_fraction, a file's split is decided per class by its position
in hash order (transforms/split/sharding.py). Files that belong together (frames of one video, photos of
one patient or object, identical copies) would then land in different splits and leak between
train and validation. So every such set of files gets a leader, its first member in
`duplicates.member_order` (by path for an input without split folders), which is split as usual;
the others follow it (sharding.AssignSplitShard's `followers`), in their own class.

--group_regex REGEX: a file's group is the first capture group of `re.search(REGEX, path)` where
path is the file's path relative to its class folder (`clip7_frame0031.jpg` with
`^(.+)_frame\\d+` gives `clip7`); files where it does not match (or the group does not take part)
are in no group. Groups are by that value across classes (one patient's photos in two classes
are kept together). A file in a regex group and in a group of identical files joins both: the
groups are merged (union-find) on one worker, from the lists of grouped files only.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam

from transforms.duplicates.exact import member_order
from transforms.split.sharding import ImageRef, ref_id


def group_value(pattern: 're.Pattern', key: str) -> Optional[str]:
  """The --group_regex group of a file whose key is `class/path`: the first capture group of the
  pattern searched in `path`, or None."""
  match = pattern.search(key.split('/', 1)[-1])
  return match.group(1) if match else None


def merged_followers(groups: Iterable[Sequence[ImageRef]]) -> List[Tuple[ImageRef, ImageRef]]:
  """(follower, leader) for every file of the union of overlapping `groups` but its leader (the
  first of its merged group in `member_order`); sorted by follower."""
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
    pairs.extend((ref, leader) for ref in others)
  return sorted(pairs, key=lambda pair: ref_id(pair[0]))


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
          lambda group: group.followers() if with_copies else [])
    copies = duplicate_groups | 'CopyGroups' >> beam.FlatMap(
        lambda group: [list(group.members)] if with_copies else [])
    regex = self._regex
    by_value = (refs
                | 'GroupValue' >> beam.FlatMap(
                    lambda ref: [(value, ref)] if (value := group_value(re.compile(regex), ref.key))
                    is not None else []).with_output_types(Tuple[str, ImageRef])
                | 'GroupByValue' >> beam.GroupByKey()
                | 'GroupsOfTwoOrMore' >> beam.FlatMap(
                    lambda kv: [list(kv[1])] if len(kv[1]) > 1 else []))
    return ((copies, by_value)
            | 'AllGroups' >> beam.Flatten()
            | 'OnOneWorker' >> beam.combiners.ToList()
            | 'MergeGroups' >> beam.FlatMap(merged_followers))
