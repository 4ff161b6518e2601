"""--base OLD_OUTPUT: a new, complete version of a finished output, converting only what changed.

Each listed file is joined with the base shard holding it (named by the base sidecars' `phashes`
paths and rejects). A base shard whose files pass the --resume rule (resume.decide; the --input root
aside) is placed into --output unchanged (`REUSED`: a hard link, else Beam's FileSystems.copy, which
object stores run server-side; the base is never written); else it is written again from its
remaining files (`rewritten: <why>`). Files the base lacks, and base files modified after the base
run started, go into new shards (`NEW`) of --target_shard_mb; a modified file, and an added copy
of a base file, keep that file's split; other added files are split by sharding.py's rule over the
class's base and added files (each class keeps its fractions within one file). Per split the
base's remaining shards keep their order, the new ones follow, numbered as one set. Base label ids
never change; a new class gets the next id. Every version shard has its sidecar and summary, so
stats.json, the duplicate check and verify cover the whole version; manifest.json and
provenance.json record the base and what changed (`record`). Here: the rules and the driver's
part (`read_base`, the label map, `plan_version`); the graph's steps: version_shards.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.inputs.fingerprint import shard_inputs
from transforms.inputs.label_map import PLACEHOLDER
from transforms.inputs.listing import InputError, input_path, relative
from transforms.output import layout, resume
from transforms.split.sharding import (
  TEST,
  TRAIN,
  UNSPLIT,
  VALIDATION,
  ImageRef,
  order_key,
  ref_id,
)

REUSED = 'reused'  # a base shard placed into the version unchanged
NEW = 'new'  # a shard of files the base does not hold (or holds in another state)
REWRITTEN_PREFIX = 'rewritten'  # resume's `rewritten: <why>` outcomes: a base shard written again
ADDED, REMOVED, CHANGED = 'files_added', 'files_removed', 'files_changed'
KEPT_FILE = 'kept'  # a base file that stays in its base shard (reused, or rewritten with it)
CHANGE_COUNTS = (ADDED, REMOVED, CHANGED)  # the file counts of `record`


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
    raise InputError(
      f'--base {root} is not a finished output: cannot read its metadata ({e}).'
    ) from None
  if not finished:
    raise InputError(
      f'--base {root} has no {layout.SUCCESS_FILE}: it is not a finished output; '
      'finish it first (--resume) or choose another --base.'
    )
  shards = tuple(
    shard['file'] for split in manifest['splits'].values() for shard in split['shards']
  )
  return BaseOutput(
    root,
    output,
    hashlib.sha256(manifest_text.encode('utf-8')).hexdigest(),
    names,
    shards,
    _iso_to_us(provenance.get('started')),
    manifest.get('options', {}),
  )


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
      paths.append(relative(rejected.path, root))
    except ValueError:
      continue  # not under the recorded root: a file the version lists as new
  return [(path, (shard, finished.split)) for path in paths]


def split_added(
  refs: Sequence[ImageRef],
  base_counts: Mapping[str, int],
  seed: int,
  validation_fraction: float,
  test_fraction: float,
) -> Dict[str, List[ImageRef]]:
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
  result = {
    TRAIN: ordered[end_test:],
    VALIDATION: ordered[:num_validation],
    TEST: ordered[num_validation:end_test],
  }
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


def base_outcome(
  summary,
  shard_bytes: Optional[int],
  inputs,
  codecs: Optional[Mapping[str, str]],
  recipe: Optional[Mapping[str, Any]],
) -> str:
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


def record(
  base_info: Mapping[str, str], changes: Mapping[str, int], outcomes: Mapping[str, int]
) -> Dict[str, Any]:
  """manifest.json's and provenance.json's `version`: the base ({'path', 'manifest_sha256'}) and
  what changed: files added, removed and changed; shards reused, rewritten and new."""
  rewritten = sum(n for outcome, n in outcomes.items() if outcome.startswith(REWRITTEN_PREFIX))
  return {
    'base': dict(base_info),
    'changes': {
      **{name: changes.get(name, 0) for name in CHANGE_COUNTS},
      'shards_reused': outcomes.get(REUSED, 0),
      'shards_rewritten': rewritten,
      'shards_new': outcomes.get(NEW, 0),
    },
  }


def version_message(changes: Mapping[str, int]) -> str:
  """`version: 12 shards reused, 2 rewritten, 1 new; files: 6 added, 3 removed, 1 changed` from
  `record`'s `changes`."""
  return (
    f'version: {changes["shards_reused"]} shards reused, {changes["shards_rewritten"]} '
    f'rewritten, {changes["shards_new"]} new; files: {changes[ADDED]} added, '
    f'{changes[REMOVED]} removed, {changes[CHANGED]} changed'
  )


@dataclasses.dataclass(frozen=True)
class VersionSplit:
  """Where a --base run puts every file it keeps (`version_split`), by the graph's rules.

  Attributes:
    per_class: {(split, label): files}, as the version's shards will hold them.
    base_shards: {split: the base shards that keep at least one file in it}.
    new_files: {split: files going into new shards (added and changed files)}.
    kept: {base shard: its kept files}; changes: {ADDED, REMOVED, CHANGED: files}.
  """

  per_class: Dict[Tuple[str, int], List[ImageRef]]
  base_shards: Dict[str, List[str]]
  new_files: Dict[str, int]
  kept: Dict[str, List[ImageRef]]
  changes: Dict[str, int]


def base_file_members(base: BaseOutput) -> Dict[str, Tuple[str, str]]:
  """{path relative to --input: (base shard, its split)} of every base file (`base_members`)."""
  return {
    path: member for shard in base.shards for path, member in base_members(shard, base.output)
  }


def version_split(
  base: BaseOutput,
  members: Mapping[str, Tuple[str, str]],
  refs: Iterable[ImageRef],
  split_roots: Dict[str, str],
  seed: int,
  validation_fraction: float,
  test_fraction: float,
  copy_groups: Sequence[Any] = (),
) -> VersionSplit:
  """The split of a --base run on one machine (the plan): version_shards.AssignVersionShards' rules,
  step for step, with the same functions (`classify`, `split_added`).

  Args:
    members: `base_file_members(base)`.
    refs: the files the run keeps (after --exclude_file and --drop_duplicates).
    copy_groups: the DuplicateGroups of the listed files (transforms/duplicates/exact.py); an added
      copy of a base file takes the split of the group's first base file.
  """
  per_class: Dict[Tuple[str, int], List[ImageRef]] = {}
  kept: Dict[str, List[ImageRef]] = {}
  base_shards: Dict[str, List[str]] = {}
  stay: List[Tuple[str, ImageRef]] = []  # (base split, ref) of the kept and changed files
  added: List[ImageRef] = []
  new_files: Dict[str, int] = {}
  changes = {ADDED: 0, REMOVED: 0, CHANGED: 0}
  seen = 0
  for ref in refs:
    member = members.get(input_path(split_roots, ref))
    seen += member is not None
    kind = classify(ref, member, base.started_us)
    if kind == ADDED:
      added.append(ref)
      continue
    stay.append((member[1], ref))
    if kind == KEPT_FILE:
      if member[0] not in kept:
        base_shards.setdefault(member[1], []).append(member[0])
      kept.setdefault(member[0], []).append(ref)
    else:
      new_files[member[1]] = new_files.get(member[1], 0) + 1
      changes[CHANGED] += 1
  changes[ADDED], changes[REMOVED] = len(added), len(members) - seen
  base_counts: Dict[int, Dict[str, int]] = {}
  for split, ref in stay:
    per_class.setdefault((split, ref.label), []).append(ref)
    counts = base_counts.setdefault(ref.label, {})
    counts[split] = counts.get(split, 0) + 1
  first_base_copy: Dict[str, Tuple[int, str]] = {}
  position = {
    ref_id(ref): (group.digest, i) for group in copy_groups for i, ref in enumerate(group.members)
  }
  for split, ref in stay:
    if ref_id(ref) in position:
      digest, i = position[ref_id(ref)]
      first_base_copy[digest] = min(first_base_copy.get(digest, (i, split)), (i, split))
  alone: Dict[Tuple[str, int], List[ImageRef]] = {}
  for ref in added:
    group = position.get(ref_id(ref))
    if group is not None and group[0] in first_base_copy:
      split = first_base_copy[group[0]][1]
      per_class.setdefault((split, ref.label), []).append(ref)
      new_files[split] = new_files.get(split, 0) + 1
    else:
      alone.setdefault((ref.split, ref.label), []).append(ref)
  for (_, label), class_refs in alone.items():
    splits = split_added(
      class_refs, base_counts.get(label, {}), seed, validation_fraction, test_fraction
    )
    for split, split_refs in splits.items():
      per_class.setdefault((split, label), []).extend(split_refs)
      new_files[split] = new_files.get(split, 0) + len(split_refs)
  return VersionSplit(per_class, base_shards, new_files, kept, changes)


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
    rewritten_files: the files of each rewritten shard.
  """

  base: str
  files: int
  added: int
  removed: int
  changed: int
  reused: Tuple[int, int]
  rewritten: Tuple[int, int]
  rewritten_files: Tuple[int, ...] = ()

  @property
  def converted(self) -> int:
    """Files the version converts: added, changed and those of the rewritten shards."""
    return self.added + self.changed + self.rewritten[1]

  def lines(self) -> List[str]:
    share = self.converted / self.files if self.files else 0.0
    return [
      f'Version of --base {self.base}: converts {self.converted} of {self.files} files '
      f'({share:.0%}), reuses {self.reused[0]} base shards ({self.reused[1]} files)',
      f'  files: {self.added} added, {self.removed} removed, {self.changed} changed; base '
      f'shards rewritten without them: {self.rewritten[0]} ({self.rewritten[1]} files)',
    ]


def plan_version(
  base: BaseOutput,
  split: VersionSplit,
  seed: int,
  class_texts: str,
  codecs: Optional[Mapping[str, str]],
  recipe: Optional[Mapping[str, Any]],
) -> VersionPlan:
  """The driver's account of a --base run whose files `version_split` placed: which base shards the
  graph's rule (`base_outcome`) reuses and which it rewrites.

  Args:
    class_texts: fingerprint.class_texts_digest of the run's class texts.
    codecs, recipe: the run's codec versions and shard recipe, as the shard writer gets them.
  """
  reused, rewritten, rewritten_files = [0, 0], [0, 0], []
  for shard, shard_refs in sorted(split.kept.items()):
    inputs = shard_inputs(sorted(shard_refs, key=lambda ref: order_key(seed, ref)), class_texts)
    outcome = base_outcome(*resume.read_finished(base.output, shard), inputs, codecs, recipe)
    target = reused if outcome == REUSED else rewritten
    target[0] += 1
    target[1] += len(shard_refs)
    if outcome != REUSED:
      rewritten_files.append(len(shard_refs))
  return VersionPlan(
    base.root,
    sum(len(refs) for refs in split.per_class.values()),
    split.changes[ADDED],
    split.changes[REMOVED],
    split.changes[CHANGED],
    tuple(reused),
    tuple(rewritten),
    tuple(rewritten_files),
  )
