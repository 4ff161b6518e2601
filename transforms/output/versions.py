"""--base OLD_OUTPUT: a new, complete version of a finished output, converting only what changed.

A base shard's files are named by its sidecar (`_work/<shard>.json`: its records' `phashes` paths and
its rejects). Each listed file is joined with the base shard that holds it; per base shard, the
--resume rule (transforms/output/resume.py `decide`: names, sizes, modification times, labels,
codecs, recipe but --input's root) keeps it (`REUSED`: placed into --output by a hard link, else
Beam's server-side FileSystems.copy; the base is never written) or writes it again from its
remaining files (`rewritten: ...`). Files the base does not hold, and base files modified after the
base run started (their mtime), go into new shards (`NEW`) of --target_shard_mb; a modified file keeps
its base split, as does an added copy of a base file. Other new files are split by the rule of
transforms/split/sharding.py over the class's base and new files together (each class keeps its
fractions within one file). Per split, the base's
remaining shards keep their order, the new ones follow, and all are numbered as one set. Base label
ids never change; a new class gets the next id. The version's sidecars, shard summaries and
statistics are those of every shard of the version, so stats.json, the duplicate check and verify
cover it whole; manifest.json and provenance.json record the base and what changed (`record`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
import os
import uuid
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.inputs.fingerprint import shard_inputs
from transforms.inputs.label_map import PLACEHOLDER
from transforms.inputs.listing import InputError, input_path, relative
from transforms.output import layout, resume
from transforms.output.shard_writer import OUTCOMES_TAG, WriteShardFn
from transforms.split.shard_count import ShardSizing
from transforms.split.sharding import (TEST, TRAIN, UNSPLIT, VALIDATION, ImageRef, assign_shards,
                                       num_shards_of, order_key, ref_id)

REUSED = 'reused'  # a base shard placed into the version unchanged
NEW = 'new'  # a shard of files the base does not hold (or holds in another state)
REWRITTEN_PREFIX = 'rewritten'  # resume's `rewritten: <why>` outcomes: a base shard written again
ADDED, REMOVED, CHANGED = 'files_added', 'files_removed', 'files_changed'
KEPT_FILE = 'kept'  # a base file the version keeps in its base shard (unless that shard is rewritten)
_CHANGES_TAGS = (ADDED, REMOVED, CHANGED)
_FOLLOW = 'follow'  # an added copy of a base file, with that file's split


@dataclasses.dataclass(frozen=True)
class BaseOutput:
  """A finished output that a version starts from.

  Attributes:
    root: its folder (local, gs:// or s3://), as given to --base.
    output: its layout (shard names as its manifest records them).
    manifest_sha256: hex SHA-256 of its manifest.json.
    class_names: labels.txt's lines: the name of ids 0..N-1.
    shards: its shard names, in manifest order (split, then index).
    started_us: the end of the second the base run started in (provenance.json), microseconds since
      the epoch; files modified later are changed files; 0: unknown (a changed file then stays in
      its base shard, which is rewritten).
    options: its manifest's recorded flags.
  """
  root: str
  output: layout.OutputLayout
  manifest_sha256: str
  class_names: Tuple[str, ...]
  shards: Tuple[str, ...]
  started_us: int
  options: Mapping[str, Any]

  def info(self) -> Dict[str, str]:
    """manifest.json's `version.base`: {'path', 'manifest_sha256'}."""
    return {'path': self.root, 'manifest_sha256': self.manifest_sha256}


def read_base(root: str) -> BaseOutput:
  """The finished output at `root` (--base).

  Raises:
    InputError: no manifest.json or _SUCCESS there (not a finished output), or unreadable metadata.
  """
  try:
    manifest_text = layout.read_text(layout.join(root, layout.MANIFEST_FILE))
    output, manifest = layout.read_output(root)
    finished = FileSystems.exists(output.path(layout.SUCCESS_FILE))
    names = tuple(layout.read_text(output.path(layout.LABELS_FILE)).splitlines())
    provenance = layout.read_optional_json(output.path(layout.PROVENANCE_FILE)) or {}
  except (OSError, ValueError) as e:
    raise InputError(f'--base {root} is not a finished output: cannot read its metadata ({e}).'
                     ) from None
  if not finished:
    raise InputError(f'--base {root} has no {layout.SUCCESS_FILE}: it is not a finished output; '
                     'finish it first (--resume) or choose another --base.')
  shards = tuple(shard['file'] for split in manifest['splits'].values() for shard in split['shards'])
  return BaseOutput(root, output, hashlib.sha256(manifest_text.encode('utf-8')).hexdigest(), names,
                    shards, _iso_to_us(provenance.get('started')), manifest.get('options', {}))


def _iso_to_us(value: Optional[str]) -> int:
  if not value:
    return 0
  started = datetime.datetime.fromisoformat(value)
  return (int(started.timestamp()) + 1) * 1_000_000  # to the second: the end of that second


def version_label_map(base_names: Sequence[str], found: Iterable[str]) -> Dict[str, int]:
  """{class: id}: the base's ids unchanged (a class without files keeps its id), then the classes
  the base does not have, sorted, with the next ids."""
  label_map = {name: i for i, name in enumerate(base_names) if name != PLACEHOLDER.format(id=i)}
  added = sorted(set(found) - set(label_map))
  label_map.update((name, len(base_names) + i) for i, name in enumerate(added))
  return label_map


def base_members(shard: str, base: layout.OutputLayout) -> List[Tuple[str, Tuple[str, str]]]:
  """(path relative to --input, (base shard, its split)) of every file a base shard holds: its
  records and its rejects, from its sidecar; [] when the sidecar is missing or unreadable (its files
  then count as added)."""
  finished, _ = resume.read_finished(base, shard)
  if finished is None or finished.phashes is None:
    return []
  root = (finished.recipe or {}).get('input') or ''
  paths = [path for path, _ in finished.phashes]
  for rejected in finished.rejects:
    try:
      paths.append(relative(rejected['path'], root))
    except ValueError:
      continue  # not under the recorded root: a file the version lists as new
  return [(path, (shard, finished.split)) for path in paths]


def split_added(refs: Sequence[ImageRef], base_counts: Mapping[str, int], seed: int,
                validation_fraction: float, test_fraction: float) -> Dict[str, List[ImageRef]]:
  """Splits one class's added files by sharding.split_class's rule over the class's base and added
  files together: of n files, round(n * fraction) (half up) in validation and in test, the base's
  counted first; the added files in hash order fill what the base leaves, validation then test.

  Args:
    refs: the class's added files (all of one listing split).
    base_counts: {split: the class's files the version keeps from the base in that split}.
  Returns:
    {split: refs in hash order}; files of an input with split folders keep their folder's split.
  """
  ordered = sorted(refs, key=lambda ref: order_key(seed, ref))
  if not ordered or ordered[0].split != UNSPLIT:
    return {ordered[0].split: ordered} if ordered else {}
  total = len(ordered) + sum(base_counts.values())
  wanted_validation = math.floor(total * validation_fraction + 0.5)
  wanted_test = math.floor(total * test_fraction + 0.5)
  num_validation = min(len(ordered), max(0, wanted_validation - base_counts.get(VALIDATION, 0)))
  end_test = min(len(ordered), num_validation + max(0, wanted_test - base_counts.get(TEST, 0)))
  result = {TRAIN: ordered[end_test:], VALIDATION: ordered[:num_validation],
            TEST: ordered[num_validation:end_test]}
  return {split: refs for split, refs in result.items() if refs}


def classify(ref: ImageRef, member: Optional[Tuple[str, str]], started_us: int) -> str:
  """KEPT_FILE, CHANGED or ADDED: what the version does with a listed file.

  Args:
    member: (base shard, its split) of the base file of the same path, or None.
    started_us: BaseOutput.started_us.
  """
  if member is None:
    return ADDED
  return CHANGED if started_us and ref.mtime_us >= started_us else KEPT_FILE


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


def base_outcome(summary, shard_bytes: Optional[int], inputs, codecs: Optional[Mapping[str, str]],
                 recipe: Optional[Mapping[str, Any]]) -> str:
  """REUSED, or resume's `rewritten: <why>`, for a base shard (its sidecar `summary` and size, as
  resume.read_finished gives them) whose remaining files now have the fingerprint `inputs`: the
  --resume rule (resume.decide) with the base's own --input root (the files are compared by their
  path relative to it)."""
  if recipe is not None and summary is not None and summary.recipe is not None:
    recipe = {**recipe, 'input': summary.recipe.get('input')}
  outcome = resume.decide(summary, shard_bytes, inputs, codecs, recipe)
  if outcome == resume.KEPT:
    return REUSED
  return outcome if outcome.startswith(REWRITTEN_PREFIX) else f'{REWRITTEN_PREFIX}: {outcome}'


def _final_key(split: str, index: int, base_counts: Mapping[str, int], new_counts: Mapping[str, int],
               base_shard: str = '') -> Tuple[str, int, int, str]:
  """(split, index, num_shards, base shard or '') of a version shard: the base's shards first."""
  return split, index, base_counts.get(split, 0) + new_counts.get(split, 0), base_shard


def _base_ranks(shards: Iterable[Tuple[str, str]], base: layout.OutputLayout
                ) -> Dict[str, Tuple[str, int]]:
  """{base shard: (split, index among the split's remaining base shards)}."""
  by_split: Dict[str, List[Tuple[int, str]]] = {}
  for shard, split in set(shards):
    by_split.setdefault(split, []).append((base.shard_names.parse(shard)[1], shard))
  return {shard: (split, rank) for split, items in by_split.items()
          for rank, (_, shard) in enumerate(sorted(items))}


class AssignVersionShards(beam.PTransform):
  """ImageRef -> ((split, index, num_shards, base shard or ''), ImageRef) of the version, and the
  counts of files added, removed and changed (output `changes`: one {name: count} dict).

  Returns a dict {'assigned': ..., 'changes': ...}.
  """

  def __init__(self, base: BaseOutput, split_roots: Dict[str, str], seed: int,
               validation_fraction: float, test_fraction: float, sizing: ShardSizing,
               copies=None):
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
    members = (refs.pipeline
               | 'BaseShards' >> beam.Create(list(base.shards))
               | 'SpreadBaseShards' >> beam.Reshuffle()
               | 'BaseMembers' >> beam.FlatMap(base_members, base.output))
    keyed = refs | 'KeyByPath' >> beam.Map(lambda ref: (input_path(roots, ref), ref))
    joined = ({'ref': keyed, 'base': members}
              | 'JoinBase' >> beam.CoGroupByKey()
              | 'Classify' >> beam.FlatMap(_classify, base.started_us).with_outputs(
                  *_CHANGES_TAGS, main='kept'))
    kept = joined.kept
    kept_shards = (kept | 'KeptShards' >> beam.Map(lambda kv: (kv[0], None))
                   | 'DistinctKept' >> beam.CombinePerKey(lambda _: None))
    ranks = beam.pvalue.AsSingleton(
        kept_shards | 'KeptShardSplits' >> beam.Map(lambda kv, b: (kv[0], _split_of(b, kv[0])),
                                                    base.output)
        | 'RankBaseShards' >> beam.combiners.ToList()
        | 'Ranks' >> beam.Map(_base_ranks, base.output))
    base_split = (kept | 'KeptSplit' >> beam.Map(
        lambda kv, b: (_split_of(b, kv[0]), kv[1]), base.output))
    stay = (base_split, joined[CHANGED]) | 'BaseFiles' >> beam.Flatten()
    base_class_counts = beam.pvalue.AsDict(
        stay | 'BaseClassSplit' >> beam.Map(lambda kv: ((kv[1].label, kv[0]), 1))
        | 'CountBaseClassSplit' >> beam.CombinePerKey(sum))
    added, follow = joined[ADDED], []
    if self._copies is not None:
      copies = _CopiesOfBase(self._copies, stay)
      added, follow = (added | 'CopiesFollowBase' >> beam.FlatMap(
          copies.follow, copies.members, copies.splits).with_outputs(_FOLLOW, main='alone'))
      follow = [follow]
    added = (added
             | 'KeyAddedByClass' >> beam.Map(lambda ref: ((ref.split, ref.label), ref))
             | 'GroupAddedByClass' >> beam.GroupByKey()
             | 'SplitAdded' >> beam.FlatMap(
                 lambda kv, counts: [((split, kv[0][1]), refs) for split, refs in split_added(
                     list(kv[1]), {s: n for (label, s), n in counts.items() if label == kv[0][1]},
                     seed, *fractions).items()], base_class_counts))
    changed = ((joined[CHANGED], *follow) | 'KnownSplits' >> beam.Flatten()
               | 'KeyChangedByClass' >> beam.Map(lambda kv: ((kv[0], kv[1].label), kv[1]))
               | 'GroupChangedByClass' >> beam.GroupByKey())
    new_per_class = ((added, changed) | 'NewFiles' >> beam.Flatten()
                     | 'GroupNewByClass' >> beam.GroupByKey()
                     | 'OrderNew' >> beam.Map(lambda kv: (kv[0], sorted(
                         [ref for refs in kv[1] for ref in refs], key=lambda r: order_key(seed, r)))))
    class_counts = new_per_class | 'CountNewPerClass' >> beam.Map(lambda kv: (kv[0], len(kv[1])))
    new_shards = beam.pvalue.AsSingleton(
        class_counts | 'NewFilesPerSplit' >> beam.Map(lambda kv: (kv[0][0], kv[1]))
        | 'SumNewPerSplit' >> beam.CombinePerKey(sum)
        | 'NewShardCounts' >> beam.combiners.ToDict()
        | 'NumNewShards' >> beam.Map(lambda files: {
            split: num_shards_of(split, n, {}, sizing) for split, n in files.items()}))
    base_counts = beam.pvalue.AsSingleton(
        kept_shards | 'Unit' >> beam.Map(lambda kv, b: _split_of(b, kv[0]), base.output)
        | 'CountBaseShards' >> beam.combiners.Count.PerElement()
        | 'BaseShardCounts' >> beam.combiners.ToDict())
    assigned_new = new_per_class | 'AssignNewShards' >> beam.FlatMap(
        lambda kv, counts, old, new: [
            (_final_key(split, old.get(split, 0) + index, old, new), ref)
            for (split, index, _), ref in assign_shards(kv[0][0], kv[0][1], kv[1], counts, {}, sizing)],
        beam.pvalue.AsDict(class_counts), base_counts, new_shards)
    assigned_base = kept | 'AssignBaseShards' >> beam.Map(
        lambda kv, rank, old, new: (_final_key(*rank[kv[0]], old, new, kv[0]), kv[1]),
        ranks, base_counts, new_shards)
    changes = ((joined[ADDED] | 'Added' >> beam.Map(lambda _: (ADDED, 1)),
                joined[REMOVED] | 'Removed' >> beam.Map(lambda _: (REMOVED, 1)),
                joined[CHANGED] | 'Changed' >> beam.Map(lambda _: (CHANGED, 1)))
               | 'AllChanges' >> beam.Flatten()
               | 'CountChanges' >> beam.CombinePerKey(sum)
               | 'ChangeCounts' >> beam.combiners.ToDict())
    assigned = (assigned_base, assigned_new) | 'AllAssigned' >> beam.Flatten().with_output_types(
        Tuple[Tuple[str, int, int, str], ImageRef])
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
        lambda group: [(ref_id(ref), (group.digest, i)) for i, ref in enumerate(group.members)])
    self.members = beam.pvalue.AsDict(members)
    self.splits = beam.pvalue.AsDict(
        base_files
        | 'BaseCopies' >> beam.FlatMap(
            lambda kv, m: [(m[ref_id(kv[1])][0], (m[ref_id(kv[1])][1], kv[0]))]
            if ref_id(kv[1]) in m else [], self.members)
        | 'FirstBaseCopy' >> beam.CombinePerKey(min)
        | 'ItsSplit' >> beam.Map(lambda kv: (kv[0], kv[1][1])))

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


def record(base_info: Mapping[str, str], changes: Mapping[str, int], outcomes: Mapping[str, int]
           ) -> Dict[str, Any]:
  """manifest.json's and provenance.json's `version`: the base ({'path', 'manifest_sha256'}) and what
  changed: files added, removed and changed; shards reused, rewritten and new."""
  rewritten = sum(n for outcome, n in outcomes.items() if outcome.startswith(REWRITTEN_PREFIX))
  return {'base': dict(base_info),
          'changes': {**{name: changes.get(name, 0) for name in _CHANGES_TAGS},
                      'shards_reused': outcomes.get(REUSED, 0), 'shards_rewritten': rewritten,
                      'shards_new': outcomes.get(NEW, 0)}}


def version_message(changes: Mapping[str, int]) -> str:
  """`version: 12 shards reused, 2 rewritten, 1 new; files: 6 added, 3 removed, 1 changed` from
  `record`'s `changes`."""
  return (f'version: {changes["shards_reused"]} shards reused, {changes["shards_rewritten"]} '
          f'rewritten, {changes["shards_new"]} new; files: {changes[ADDED]} added, '
          f'{changes[REMOVED]} removed, {changes[CHANGED]} changed')


def place_shard(source: str, target: str) -> None:
  """Puts a copy of the finished file `source` at `target` atomically, never writing `source`: a hard
  link on a local disk (the same bytes, no copy), else (another disk, an object store) Beam's
  FileSystems.copy, which object stores run server-side; then a rename to `target`."""
  temp = layout.temp_path(target, uuid.uuid4().hex)
  linked = False
  if '://' not in source and '://' not in target:
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
      outcome = base_outcome(base_summary, base_bytes, inputs, self._codecs, self._recipe)
    if self._resume:
      finished, shard_bytes = resume.read_finished(self._output, name)
      if resume.decide(finished, shard_bytes, inputs, self._codecs, self._recipe) == resume.KEPT:
        self._skipped.inc()
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
    """Places the base shard under `name`, with a sidecar that names it so (and this run's recipe)."""
    summary = dataclasses.replace(summary, shard=name, recipe=self._recipe)
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
    return (assigned
            | 'GroupPathsByShard' >> beam.GroupByKey()
            | 'WriteShard' >> beam.ParDo(self._fn).with_outputs(OUTCOMES_TAG, main='summaries'))


@dataclasses.dataclass(frozen=True)
class VersionPlan:
  """What a --base run will convert and reuse (`plan_version`).

  Attributes:
    base: --base.
    files: files listed for the version.
    added, removed, changed: files the base does not hold, base files no longer listed, base files
      modified since the base run started.
    reused: (shards, files) of base shards placed unchanged.
    rewritten: (shards, files) of base shards written again without their removed or changed files.
  """
  base: str
  files: int
  added: int
  removed: int
  changed: int
  reused: Tuple[int, int]
  rewritten: Tuple[int, int]

  @property
  def converted(self) -> int:
    """Files the version converts: added, changed and those of the rewritten shards."""
    return self.added + self.changed + self.rewritten[1]

  def lines(self) -> List[str]:
    share = self.converted / self.files if self.files else 0.0
    return [f'Version of --base {self.base}: converts {self.converted} of {self.files} files '
            f'({share:.0%}), reuses {self.reused[0]} base shards ({self.reused[1]} files)',
            f'  files: {self.added} added, {self.removed} removed, {self.changed} changed; base '
            f'shards rewritten without them: {self.rewritten[0]} ({self.rewritten[1]} files)']


def plan_version(base: BaseOutput, refs: Iterable[ImageRef], split_roots: Dict[str, str],
                 seed: int, class_texts: str, codecs: Optional[Mapping[str, str]],
                 recipe: Optional[Mapping[str, Any]]) -> VersionPlan:
  """The driver's account of a --base run over the listed `refs`, by the graph's rules (`classify`,
  `base_outcome`); reads each base sidecar once and holds one entry per base file.

  Args:
    class_texts: fingerprint.class_texts_digest of the run's class texts.
    codecs, recipe: the run's codec versions and shard recipe, as the shard writer gets them.
  """
  members = {path: member for shard in base.shards for path, member in base_members(shard, base.output)}
  kept: Dict[str, List[ImageRef]] = {}
  counts = {ADDED: 0, CHANGED: 0, KEPT_FILE: 0}
  listed = seen = 0
  for ref in refs:
    listed += 1
    member = members.get(input_path(split_roots, ref))
    kind = classify(ref, member, base.started_us)
    counts[kind] += 1
    seen += member is not None
    if kind == KEPT_FILE:
      kept.setdefault(member[0], []).append(ref)
  reused, rewritten = [0, 0], [0, 0]
  for shard, shard_refs in kept.items():
    inputs = shard_inputs(sorted(shard_refs, key=lambda ref: order_key(seed, ref)), class_texts)
    outcome = base_outcome(*resume.read_finished(base.output, shard), inputs, codecs, recipe)
    target = reused if outcome == REUSED else rewritten
    target[0] += 1
    target[1] += len(shard_refs)
  return VersionPlan(base.root, listed, counts[ADDED], len(members) - seen, counts[CHANGED],
                     tuple(reused), tuple(rewritten))
