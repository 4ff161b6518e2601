"""The graph's part of --base (transforms/output/versions.py): assigning and writing the shards.

`AssignVersionShards` joins the listed files with the base shards holding them and numbers the
version's shards (the base's remaining ones first, per split, then the new ones);
`WriteVersionShards` places a base shard whose files are unchanged (`place_shard`) and writes every
other shard with the shard writer (transforms/output/shard_writer.py), keeping a finished version
shard under --resume.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Dict, Iterable, List, Mapping, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.inputs.fingerprint import shard_inputs
from transforms.inputs.listing import input_path
from transforms.output import layout, resume
from transforms.output.shard_writer import OUTCOMES_TAG, WriteShardFn
from transforms.paths import is_remote
from transforms.output.versions import (
  ADDED,
  CHANGE_COUNTS,
  CHANGED,
  NEW,
  REMOVED,
  REUSED,
  BaseOutput,
  base_members,
  base_outcome,
  classify,
  split_added,
)
from transforms.split.shard_count import ShardSizing
from transforms.split.sharding import ImageRef, assign_shards, num_shards_of, order_key, ref_id

_FOLLOW = 'follow'  # an added copy of a base file, with that file's split


def _classify(element, started_us: int):
  """One joined path -> (base shard, ref) (a base file), and on the outputs named so ('changed',
  (base split, ref)), ('added', ref) or ('removed', path)."""
  path, joined = element
  refs, members = list(joined['ref']), list(joined['base'])
  if not refs:
    yield beam.pvalue.TaggedOutput(REMOVED, path)
    return
  member = members[0] if members else None
  kind = classify(refs[0], member, started_us)
  if kind == ADDED:
    yield beam.pvalue.TaggedOutput(ADDED, refs[0])
  elif kind == CHANGED:
    yield beam.pvalue.TaggedOutput(CHANGED, (member[1], refs[0]))
  else:
    yield member[0], refs[0]


def _final_key(
  split: str,
  index: int,
  base_counts: Mapping[str, int],
  new_counts: Mapping[str, int],
  base_shard: str = '',
) -> Tuple[str, int, int, str]:
  """(split, index, num_shards, base shard or '') of a version shard: the base's shards first."""
  return split, index, base_counts.get(split, 0) + new_counts.get(split, 0), base_shard


def _base_ranks(
  shards: Iterable[Tuple[str, str]], base: layout.OutputLayout
) -> Dict[str, Tuple[str, int]]:
  """{base shard: (split, index among the split's remaining base shards)}."""
  by_split: Dict[str, List[Tuple[int, str]]] = {}
  for shard, split in set(shards):
    by_split.setdefault(split, []).append((base.shard_names.parse(shard)[1], shard))
  return {
    shard: (split, rank)
    for split, items in by_split.items()
    for rank, (_, shard) in enumerate(sorted(items))
  }


class AssignVersionShards(beam.PTransform):
  """ImageRef -> ((split, index, num_shards, base shard or ''), ImageRef) of the version, and the
  counts of files added, removed and changed (output `changes`: one {name: count} dict).

  Returns a dict {'assigned': ..., 'changes': ...}.
  """

  def __init__(
    self,
    base: BaseOutput,
    split_roots: Dict[str, str],
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    sizing: ShardSizing,
    copies=None,
  ):
    """`copies`: the DuplicateGroups of the listed files (transforms/duplicates/exact.py): an added
    copy of a base file takes that file's split (the first base copy's, in the group's order), as
    copies follow their first file in a fresh run (transforms/split/groups.py); None: no copies."""
    super().__init__()
    self._copies = copies
    self._base, self._split_roots, self._seed = base, split_roots, seed
    self._fractions = (validation_fraction, test_fraction)
    self._sizing = sizing

  def expand(self, refs):
    base, roots, seed, sizing = self._base, self._split_roots, self._seed, self._sizing
    fractions = self._fractions
    members = (
      refs.pipeline
      | 'BaseShards' >> beam.Create(list(base.shards))
      | 'SpreadBaseShards' >> beam.Reshuffle()
      | 'BaseMembers' >> beam.FlatMap(base_members, base.output)
    )
    keyed = refs | 'KeyByPath' >> beam.Map(lambda ref: (input_path(roots, ref), ref))
    joined = (
      {'ref': keyed, 'base': members}
      | 'JoinBase' >> beam.CoGroupByKey()
      | 'Classify'
      >> beam.FlatMap(_classify, base.started_us).with_outputs(*CHANGE_COUNTS, main='kept')
    )
    kept = joined.kept
    kept_shards = (
      kept
      | 'KeptShards' >> beam.Map(lambda kv: (kv[0], None))
      | 'DistinctKept' >> beam.CombinePerKey(lambda _: None)
    )
    ranks = beam.pvalue.AsSingleton(
      kept_shards
      | 'KeptShardSplits' >> beam.Map(lambda kv, b: (kv[0], _split_of(b, kv[0])), base.output)
      | 'RankBaseShards' >> beam.combiners.ToList()
      | 'Ranks' >> beam.Map(_base_ranks, base.output)
    )
    base_split = kept | 'KeptSplit' >> beam.Map(
      lambda kv, b: (_split_of(b, kv[0]), kv[1]), base.output
    )
    stay = (base_split, joined[CHANGED]) | 'BaseFiles' >> beam.Flatten()
    base_class_counts = beam.pvalue.AsDict(
      stay
      | 'BaseClassSplit' >> beam.Map(lambda kv: ((kv[1].label, kv[0]), 1))
      | 'CountBaseClassSplit' >> beam.CombinePerKey(sum)
    )
    added, follow = joined[ADDED], []
    if self._copies is not None:
      copies = _CopiesOfBase(self._copies, stay)
      added, follow = added | 'CopiesFollowBase' >> beam.FlatMap(
        copies.follow, copies.members, copies.splits
      ).with_outputs(_FOLLOW, main='alone')
      follow = [follow]
    added = (
      added
      | 'KeyAddedByClass' >> beam.Map(lambda ref: ((ref.split, ref.label), ref))
      | 'GroupAddedByClass' >> beam.GroupByKey()
      | 'SplitAdded'
      >> beam.FlatMap(
        lambda kv, counts: [
          ((split, kv[0][1]), refs)
          for split, refs in split_added(
            list(kv[1]),
            {s: n for (label, s), n in counts.items() if label == kv[0][1]},
            seed,
            *fractions,
          ).items()
        ],
        base_class_counts,
      )
    )
    # One GroupByKey of single files (a Flatten of grouped and ungrouped collections before a second
    # GroupByKey is what Flink's job server cannot translate).
    added_files = added | 'AddedFiles' >> beam.FlatMap(lambda kv: [(kv[0], ref) for ref in kv[1]])
    changed_files = (
      (joined[CHANGED], *follow)
      | 'KnownSplits' >> beam.Flatten()
      | 'KeyChangedByClass' >> beam.Map(lambda kv: ((kv[0], kv[1].label), kv[1]))
    )
    new_per_class = (
      (added_files, changed_files)
      | 'NewFiles' >> beam.Flatten()
      | 'GroupNewByClass' >> beam.GroupByKey()
      | 'OrderNew' >> beam.Map(lambda kv: (kv[0], sorted(kv[1], key=lambda r: order_key(seed, r))))
    )
    class_counts = new_per_class | 'CountNewPerClass' >> beam.Map(lambda kv: (kv[0], len(kv[1])))
    new_shards = beam.pvalue.AsSingleton(
      class_counts
      | 'NewFilesPerSplit' >> beam.Map(lambda kv: (kv[0][0], kv[1]))
      | 'SumNewPerSplit' >> beam.CombinePerKey(sum)
      | 'NewShardCounts' >> beam.combiners.ToDict()
      | 'NumNewShards'
      >> beam.Map(
        lambda files: {split: num_shards_of(split, n, {}, sizing) for split, n in files.items()}
      )
    )
    base_counts = beam.pvalue.AsSingleton(
      kept_shards
      | 'Unit' >> beam.Map(lambda kv, b: _split_of(b, kv[0]), base.output)
      | 'CountBaseShards' >> beam.combiners.Count.PerElement()
      | 'BaseShardCounts' >> beam.combiners.ToDict()
    )
    assigned_new = new_per_class | 'AssignNewShards' >> beam.FlatMap(
      lambda kv, counts, old, new: [
        (_final_key(split, old.get(split, 0) + index, old, new), ref)
        for (split, index, _), ref in assign_shards(kv[0][0], kv[0][1], kv[1], counts, {}, sizing)
      ],
      beam.pvalue.AsDict(class_counts),
      base_counts,
      new_shards,
    )
    assigned_base = kept | 'AssignBaseShards' >> beam.Map(
      lambda kv, rank, old, new: (_final_key(*rank[kv[0]], old, new, kv[0]), kv[1]),
      ranks,
      base_counts,
      new_shards,
    )
    changes = (
      (
        joined[ADDED] | 'Added' >> beam.Map(lambda _: (ADDED, 1)),
        joined[REMOVED] | 'Removed' >> beam.Map(lambda _: (REMOVED, 1)),
        joined[CHANGED] | 'Changed' >> beam.Map(lambda _: (CHANGED, 1)),
      )
      | 'AllChanges' >> beam.Flatten()
      | 'CountChanges' >> beam.CombinePerKey(sum)
      | 'ChangeCounts' >> beam.combiners.ToDict()
    )
    assigned = (assigned_base, assigned_new) | 'AllAssigned' >> beam.Flatten().with_output_types(
      Tuple[Tuple[str, int, int, str], ImageRef]
    )
    return {'assigned': assigned, 'changes': changes}


class _CopiesOfBase:
  """The side inputs that place an added copy of a base file into that file's split.

  Attributes:
    members: AsDict {ref_id: (group digest, position in the group)} of every file with a copy.
    splits: AsDict {group digest: the split of its first base file}.
  """

  def __init__(self, groups, base_files):
    """`groups`: DuplicateGroups; `base_files`: (base split, ImageRef) of the files kept from the
    base (changed ones included)."""
    members = groups | 'CopyMembers' >> beam.FlatMap(
      lambda group: [(ref_id(ref), (group.digest, i)) for i, ref in enumerate(group.members)]
    )
    self.members = beam.pvalue.AsDict(members)
    self.splits = beam.pvalue.AsDict(
      base_files
      | 'BaseCopies'
      >> beam.FlatMap(
        lambda kv, m: (
          [(m[ref_id(kv[1])][0], (m[ref_id(kv[1])][1], kv[0]))] if ref_id(kv[1]) in m else []
        ),
        self.members,
      )
      | 'FirstBaseCopy' >> beam.CombinePerKey(min)
      | 'ItsSplit' >> beam.Map(lambda kv: (kv[0], kv[1][1]))
    )

  @staticmethod
  def follow(ref: ImageRef, members, splits):
    """An added file: (split, ref) on _FOLLOW when it copies a base file, else itself."""
    group = members.get(ref_id(ref))
    if group is not None and group[0] in splits:
      yield beam.pvalue.TaggedOutput(_FOLLOW, (splits[group[0]], ref))
    else:
      yield ref


def _split_of(base: layout.OutputLayout, shard: str) -> str:
  return base.shard_names.parse(shard)[0]


def place_shard(source: str, target: str) -> None:
  """Puts a copy of the finished file `source` at `target` atomically, never writing `source`: a
  hard link on a local disk (the same bytes, no copy), else (another disk, an object store) Beam's
  FileSystems.copy, which object stores run server-side; then a rename to `target`."""
  temp = layout.temp_path(target, uuid.uuid4().hex)
  linked = False
  if not is_remote(source) and not is_remote(target):
    try:
      os.link(source, temp)
      linked = True
    except OSError:
      linked = False  # another device, or links not supported: copy
  if not linked:
    FileSystems.copy([source], [temp])
  FileSystems.rename([temp], [target])


class VersionWriteShardFn(WriteShardFn):
  """((split, index, num_shards, base shard or ''), [ImageRef]) -> ShardSummary, and its outcome
  (REUSED, NEW or resume's `rewritten: <why>`) on OUTCOMES_TAG: places a base shard whose files are
  unchanged, else writes the shard (WriteShardFn); with --resume keeps a finished version shard."""

  def __init__(self, base: layout.OutputLayout, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._base = base

  def process(self, element):
    (split, index, num_shards, base_shard), refs = element
    name = self._output.shard_names.name(split, index, num_shards)
    refs = sorted(refs, key=lambda ref: order_key(self._seed, ref))
    inputs = shard_inputs(refs, self._class_texts_digest)
    outcome, base_summary = NEW, None
    if base_shard:
      base_summary, base_bytes = resume.read_finished(self._base, base_shard)
      outcome = base_outcome(base_summary, base_bytes, inputs, self._codecs, self._shard_recipe)
    if self._resume:
      finished, shard_bytes = resume.read_finished(self._output, name)
      if (
        resume.decide(finished, shard_bytes, inputs, self._codecs, self._shard_recipe)
        == resume.KEPT
      ):
        self._skipped.inc()
        self._progress.add(finished.num_examples, finished.num_rejected)
        yield finished
        yield beam.pvalue.TaggedOutput(OUTCOMES_TAG, outcome)
        return
    if outcome == REUSED:
      yield self._place(name, base_shard, base_summary)
    else:
      yield self._write_shard(name, split, refs, inputs)
      self._shards.inc()
    yield beam.pvalue.TaggedOutput(OUTCOMES_TAG, outcome)

  def _place(self, name: str, base_shard: str, summary):
    """Places the base shard under `name`, with a sidecar naming it so (and this run's recipe)."""
    summary = dataclasses.replace(summary, shard=name, recipe=self._shard_recipe)
    sidecar = self._output.sidecar_path(name)
    temp_sidecar = layout.temp_path(sidecar, uuid.uuid4().hex)
    layout.write_json(temp_sidecar, summary.to_json(), indent=None)
    FileSystems.rename([temp_sidecar], [sidecar])
    place_shard(self._base.path(base_shard), self._output.path(name))
    self._progress.add(summary.num_examples, summary.num_rejected)
    return summary


class WriteVersionShards(beam.PTransform):
  """AssignVersionShards' pairs -> one ShardSummary per version shard (output `summaries`) and each
  shard's outcome (output `outcomes`), as WriteShards."""

  def __init__(self, base: BaseOutput, *args, **kwargs):
    """`args`, `kwargs`: WriteShardFn's."""
    super().__init__()
    self._fn = VersionWriteShardFn(base.output, *args, **kwargs)

  def expand(self, assigned):
    return (
      assigned
      | 'GroupPathsByShard' >> beam.GroupByKey()
      | 'WriteShard' >> beam.ParDo(self._fn).with_outputs(OUTCOMES_TAG, main='summaries')
    )
