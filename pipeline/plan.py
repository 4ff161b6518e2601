"""`folder2tfrecord plan` (= `python -m pipeline.run ... --plan`): what a run with the same flags
would write, predicted from the full listing and a converted sample; nothing is written.

The listing and the split are the run's own (transforms/split/groups.py `split_files`:
--exclude_file, copies, --drop_duplicates, followers, `split_class`; with --base,
transforms/output/versions.py `version_split`), so files and shards per split and class and the
listing's rejects are exact. --plan_sample files, stratified by class folder and chosen by a
stable hash (transforms/split/sample.py), are converted with the shard writer's steps; from them
come the predicted bytes per split with a 95% interval, the shard count, the sample's reject share
and the CPU time per image, projected onto W one-core workers (longest shard first, plus
LOCAL_STARTUP_SECONDS; a cluster's start-up and the runner's per-image overhead are left out).
Bytes: a stratified expansion estimator over class folders h, T = sum(sampled y) + sum_h m_h *
mean_h, with the 95% prediction interval T +- 1.96 s sqrt(sum_h (m_h^2 / n_h + m_h)), s^2 the sample
variance pooled over the strata (conservative); a fully sampled input gives a zero-width interval.
The same expansion of a 0/1 "gave a record" predicts the examples; the metadata files come from
their own builders. Accuracy: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import statistics
import time
from typing import Dict, List, Optional, Sequence, Tuple

from beam_private.runners import FN_API_RUNNER
from pipeline.runtime.claim import new_run_id
from pipeline.graph import DatasetPlan, record_recipe, shard_sizing
from pipeline.options import ConverterOptions
from pipeline.runtime.output_dir import owned_files, shard_recipe_of
from transforms.output import file_format as file_formats
from transforms.output import layout, versions
from transforms.duplicates.exact import exact_duplicate_groups, is_excluded
from transforms.imaging.codec_versions import codec_versions, package_versions
from transforms.inputs.fingerprint import InputFingerprint, class_texts_digest
from transforms.split.groups import SplitFiles, split_files
from transforms.inputs.survey import left_behind_counts, left_behind_line
from transforms.imaging.example import class_names_of
from transforms.inputs.listing import input_path
from transforms.inputs.manifest_listing import manifest_listings
from transforms.metadata.write import build_manifest, build_stats
from transforms.metadata.model_garden import model_garden_text
from transforms.duplicates.near import GroupFile, group_line
from transforms.metadata.provenance import (
  OutputFacts,
  RunInfo,
  build_provenance,
  converter_version,
  utc_now,
)
from transforms.records import Reject
from transforms.split.sample import (
  ConvertedSample,
  FolderListing,
  convert,
  draw,
  folders_of,
  list_folders,
)
from transforms.split.shard_count import MB, shard_warnings
from transforms.metadata.reject_reasons import reason_category
from transforms.split.sharding import TRAIN, num_shards_of, ordered_splits, ref_id
from transforms.metadata.stats import SplitTotals
from transforms.output.success import UNLISTED_FILES, success_lines
from transforms.metadata.tfds_metadata import tfds_metadata_files

Z_95 = 1.959964  # two-sided 95% quantile of the normal distribution
# Wall seconds of a 1-image run on this machine kind (python -m pipeline.run, DirectRunner
# multi_processing, 2 workers: 6.6-6.9 s, 1-minute load 1.1-1.6): Python and Beam start-up, the
# workers' imports, the metadata step.
LOCAL_STARTUP_SECONDS = 7.0
CLASS_TABLE_LIMIT = 40  # classes listed one per line; more are summarised (smallest first)


@dataclasses.dataclass(frozen=True)
class Interval:
  """A prediction and its 95% interval (same unit)."""

  value: float
  low: float
  high: float


@dataclasses.dataclass(frozen=True)
class SplitPlan:
  """One split as a run would write it.

  Attributes:
    split: its name.
    files: listed files that go to it (exact).
    class_files: {class name: files} (exact).
    examples: predicted records.
    num_bytes: predicted bytes of its shard files (records, framing, the container's per-shard
    bytes).
    num_shards: the shard count the flags give (requested, or automatic: the run's own computation).
    automatic: the count is automatic (--<split>_shards 0).
    warnings: what TF's and TFDS's guidance says about these shards
    (transforms/split/shard_count.py).
    version_shards: with --base, (base shards kept, new shards, files in the new shards).
  """

  split: str
  files: int
  class_files: Dict[str, int]
  examples: float
  num_bytes: Interval
  num_shards: int
  automatic: bool
  warnings: Tuple[str, ...]
  version_shards: Optional[Tuple[int, int, int]] = None

  @property
  def shard_bytes(self) -> float:
    return self.num_bytes.value / self.num_shards

  @property
  def example_bytes(self) -> float:
    return self.num_bytes.value / self.examples if self.examples else 0.0


@dataclasses.dataclass(frozen=True)
class Plan:
  """What `make_plan` predicts. Everything but the CPU times (`cpu_ms`, `projections`, the sampled
  files' `cpu_seconds`) and `seconds` is the same on every call with the same input and flags.

  Attributes:
    splits: the splits in SPLITS order.
    num_classes: classes of the label map.
    listing_rejects: {reason: files} the listing rejects (exact).
    left_behind: {kind: entries} the listing skipped as left behind by tools (exact).
    folders: class folders listed.
    sample: the plan's converted sample.
    metadata_bytes: predicted bytes of the metadata files.
    total_bytes: predicted bytes of the output (shards and metadata; `_work/` not included).
    run_sample: the run's own sample (sizes the automatic shard counts), or None.
    cpu_ms: measured CPU milliseconds per sampled image (one thread).
    projections: ((what, workers, projected seconds of conversion, start-up excluded), ...): this
      machine's cores, then --num_workers when given.
    seconds: wall seconds the plan took (listing, sample, prediction).
    load: this machine's 1-minute load average when the plan ended (other work slows a run down).
    existing: the shard and metadata files of a dataset already in --output
    (pipeline/runtime/output_dir.py
      owned_files), which the run refuses to touch without --overwrite or --resume.
    duplicate_line_bytes: bytes of a duplicates.jsonl line naming two files of the sample's typical
      path length (duplicates.jsonl is predicted empty: near copies need every image converted).
    version: with --base, what the version converts and reuses (transforms/output/versions.py).
  """

  splits: Tuple[SplitPlan, ...]
  num_classes: int
  listing_rejects: Dict[str, int]
  folders: int
  sample: ConvertedSample
  metadata_bytes: int
  total_bytes: Interval
  run_sample: Optional[ConvertedSample]
  cpu_ms: float
  projections: Tuple[Tuple[str, int, float], ...]
  seconds: float
  load: float = 0.0
  existing: Tuple[str, ...] = ()
  duplicate_line_bytes: int = 0
  left_behind: Optional[Dict[str, int]] = None
  version: Optional[versions.VersionPlan] = None

  def conversion_seconds(self, workers: int) -> float:
    """Projected wall seconds of converting on `workers` one-core workers, start-up excluded (with
    --base: the rewritten and the new shards only)."""
    if self.version is None:
      shard_files = [n for s in self.splits for n in _balanced(s.files, s.num_shards)]
    else:
      shard_files = list(self.version.rewritten_files) + [
        n for s in self.splits for n in _balanced(s.version_shards[2], s.version_shards[1])
      ]
    return conversion_seconds(shard_files, self.cpu_ms / 1e3, workers)

  @property
  def sample_rejects(self) -> Dict[str, int]:
    """{reason category: sampled files rejected}."""
    return dict(
      collections.Counter(reason_category(f.reason) for f in self.sample.files if f.reason)
    )


def predict(
  values: Dict[int, List[float]], known: float, unsampled: Dict[int, int], variance: float
) -> Interval:
  """The stratified expansion of the module docstring.

  Args:
    values: {stratum: y of its sampled files} (at least one for every stratum in `unsampled`).
    known: the sum of y over the sampled files of the predicted part.
    unsampled: {stratum: its files in the predicted part that were not sampled}.
    variance: s^2, the pooled sample variance of y.
  Returns:
    The predicted sum and its 95% interval (never below `known`).
  """
  point, spread = known, 0.0
  for stratum, missing in unsampled.items():
    if missing:
      sampled = values[stratum]
      point += missing * sum(sampled) / len(sampled)
      spread += missing * missing / len(sampled) + missing
  half = Z_95 * math.sqrt(variance * spread)
  return Interval(point, max(known, point - half), point + half)


@dataclasses.dataclass(frozen=True)
class Census:
  """The full listing counted by the split each file goes to.

  Attributes:
    files: {(stratum, split): listed files of that class folder that go to that split}.
    class_files: {(split, class name): files}.
    sampled_splits: the split of each of the sample's files, in `ConvertedSample.files` order.
  """

  files: Dict[Tuple[int, str], int]
  class_files: Dict[Tuple[str, str], int]
  sampled_splits: Tuple[str, ...]


def census(sample: ConvertedSample, split: SplitFiles) -> Census:
  """Counts the files of `split` (the run's split of every listed file, groups.split_files) by
  stratum (the sample's listing they are in) and class."""
  files, class_files, split_of = collections.Counter(), collections.Counter(), {}
  stratum_of = {ref_id(ref): h for h, listing in enumerate(sample.listings) for ref in listing.refs}
  sampled = {ref_id(f.ref) for f in sample.files}
  for (name, _), members in split.per_class.items():
    for ref in members:
      files[stratum_of[ref_id(ref)], name] += 1
      # each label of a multi-label image (transforms/inputs/manifest.py)
      class_files.update((name, class_name) for class_name in class_names_of(ref.synset))
      if ref_id(ref) in sampled:
        split_of[ref_id(ref)] = name
  return Census(
    dict(files), dict(class_files), tuple(split_of[ref_id(f.ref)] for f in sample.files)
  )


def kept_listings(listings: Sequence[FolderListing], split: SplitFiles) -> List[FolderListing]:
  """The listings without the files `split` leaves out, whose rejects join their folder's."""
  return [
    dataclasses.replace(
      listing,
      refs=tuple(ref for ref in listing.refs if ref_id(ref) not in split.left_out),
      rejects=listing.rejects
      + tuple(split.left_out[ref_id(ref)] for ref in listing.refs if ref_id(ref) in split.left_out),
    )
    for listing in listings
  ]


def make_plan(opts: ConverterOptions, dataset: DatasetPlan) -> Plan:
  """Lists the input, converts the plan's sample and predicts the run (module docstring).

  Raises:
    InputError: a class folder cannot be listed.
  """
  start = time.monotonic()
  loose_files = tuple(dataset.survey.loose_files) if dataset.survey else ()
  if dataset.manifest is not None:
    listings = manifest_listings(
      opts.manifest_spec,
      dataset.manifest,
      dataset.label_map,
      dataset.class_names,
      opts.label_offset,
    )
  else:
    listings = list_folders(
      folders_of(dataset.layout.split_roots, dataset.class_dirs),
      dataset.label_map,
      opts.label_offset,
      dataset.ground_truth,
    )
  split = split_files(
    [ref for listing in listings for ref in listing.refs],
    dataset.layout.split_roots,
    opts.seed,
    opts.validation_fraction,
    opts.test_fraction,
    opts.excluded_files,
    opts.drop_duplicates,
    opts.group_regex,
    dataset.layout.has_split_folders,
    opts.max_file_bytes,
  )
  version_split = version = None
  if dataset.base:
    version_split = versions.version_split(
      dataset.base,
      versions.base_file_members(dataset.base),
      [ref for refs in split.per_class.values() for ref in refs],
      dataset.layout.split_roots,
      opts.seed,
      opts.validation_fraction,
      opts.test_fraction,
      # As the graph: copies (among the files --exclude_file leaves) of base files follow them,
      # unless the input has split folders.
      ()
      if dataset.layout.has_split_folders
      else exact_duplicate_groups(
        [
          ref
          for listing in listings
          for ref in listing.refs
          if not is_excluded(ref, opts.excluded_files, dataset.layout.split_roots)
        ],
        dataset.layout.split_roots,
        opts.max_file_bytes,
      ),
    )
    split = dataclasses.replace(split, per_class=version_split.per_class)
    version = versions.plan_version(
      dataset.base,
      version_split,
      opts.seed,
      class_texts_digest(dataset.class_texts),
      codec_versions(opts.compression, opts.file_format),
      shard_recipe_of(opts),
    )
  listings = kept_listings(listings, split)
  sample = convert(
    listings,
    draw(listings, opts.plan_sample, opts.seed),
    record_recipe(opts, dataset.layout, dataset.class_texts),
  )
  counted = census(sample, split)
  overhead = file_formats.get(opts.file_format).shard_overhead_bytes
  y = [sample.planned_bytes(f) for f in sample.files]
  records = [float(f.reason is None) for f in sample.files]
  variance = statistics.variance(y) if len(y) > 1 else 0.0
  splits = []
  for split in ordered_splits({split for _, split in counted.files}):
    files = sum(n for (_, s), n in counted.files.items() if s == split)
    version_shards = None
    if version_split is None:
      num_shards = num_shards_of(split, files, opts.requested_shards, shard_sizing(opts, dataset))
    else:  # As version_shards.AssignVersionShards: the kept base shards, then the new ones.
      new_files = version_split.new_files.get(split, 0)
      new_shards = num_shards_of(split, new_files, {}, shard_sizing(opts, dataset))
      version_shards = (len(version_split.base_shards.get(split, ())), new_shards, new_files)
      num_shards = version_shards[0] + new_shards
    num_bytes = _shifted(_expand(sample, counted, split, y, variance), num_shards * overhead)
    splits.append(
      SplitPlan(
        split,
        files,
        {name: n for (s, name), n in sorted(counted.class_files.items()) if s == split},
        _expand(sample, counted, split, records, 0.0).value,
        num_bytes,
        num_shards,
        not opts.requested_shards.get(split),
        tuple(shard_warnings(num_shards, num_bytes.value / num_shards, opts.num_readers)),
        version_shards,
      )
    )
  metadata = metadata_bytes(opts, dataset, splits, sample)
  total = _shifted(
    _expand(sample, counted, None, y, variance),
    metadata + sum(s.num_shards for s in splits) * overhead,
  )
  cpu_ms = statistics.fmean(f.cpu_seconds for f in sample.files) * 1e3 if sample.files else 0.0
  plan = Plan(
    tuple(splits),
    len(dataset.class_names),
    dict(
      collections.Counter(
        reason_category(r.reason)
        for r in loose_files + tuple(r for listing in listings for r in listing.rejects)
      )
    ),
    len(listings),
    sample,
    metadata,
    total,
    dataset.run_sample,
    cpu_ms,
    (),
    0.0,
    version=version,
  )
  workers = [("this machine's cores, DirectRunner multi_processing", os.cpu_count() or 1)]
  workers += [('--num_workers', opts.num_workers)] if opts.num_workers else []
  left_behind = collections.Counter(left_behind_counts(dataset.survey))
  left_behind.update(kind for listing in listings for kind in listing.left_behind)
  return dataclasses.replace(
    plan,
    projections=tuple((what, w, plan.conversion_seconds(w)) for what, w in workers),
    seconds=time.monotonic() - start,
    load=os.getloadavg()[0],
    existing=tuple(owned_files(opts.output_layout)),
    duplicate_line_bytes=duplicate_line_bytes(sample, dataset),
    left_behind=dict(left_behind),
  )


def _expand(
  sample: ConvertedSample,
  counted: Census,
  split: Optional[str],
  y: Sequence[float],
  variance: float,
) -> Interval:
  """`predict` for the files of `split` (None: every file), `y` the sampled files' values."""
  values = collections.defaultdict(list)
  for f, value in zip(sample.files, y):
    values[f.stratum].append(value)
  part = [split is None or s == split for s in counted.sampled_splits]
  sampled = collections.Counter(f.stratum for f, inside in zip(sample.files, part) if inside)
  unsampled = collections.Counter()
  for (stratum, s), n in counted.files.items():
    if split is None or s == split:
      unsampled[stratum] += n
  unsampled.subtract(sampled)
  known = sum(value for value, inside in zip(y, part) if inside)
  return predict(values, known, dict(unsampled), variance)


def _shifted(interval: Interval, extra: float) -> Interval:
  return Interval(interval.value + extra, interval.low + extra, interval.high + extra)


def _balanced(files: int, shards: int) -> List[int]:
  """Files per shard of a split (round robin: sizes differ by at most one)."""
  quotient, remainder = divmod(files, shards)
  return [quotient + 1] * remainder + [quotient] * (shards - remainder)


def conversion_seconds(
  shard_files: Sequence[int], cpu_seconds_per_file: float, workers: int
) -> float:
  """Wall seconds to convert shards of `shard_files` files on `workers` one-core workers, each shard
  written by one worker, the longest shards first to the least-loaded worker (start-up excluded)."""
  loads = [0.0] * max(1, workers)
  for files in sorted(shard_files, reverse=True):
    loads[loads.index(min(loads))] += files * cpu_seconds_per_file
  return max(loads)


def metadata_bytes(
  opts: ConverterOptions, dataset: DatasetPlan, splits: Sequence[SplitPlan], sample: ConvertedSample
) -> int:
  """Predicted bytes of the metadata files, made by the builders that write them from the predicted
  counts (labels.txt, rejects.jsonl, duplicates.jsonl without lines, stats.json, manifest.json with
  each shard's bytes and SHA-256, the TFDS files, model_garden.yaml, provenance.json, _SUCCESS)."""
  output = opts.output_layout
  rejects = [r for listing in sample.listings for r in listing.rejects]
  rejects += dataset.survey.loose_files if dataset.survey else ()
  sampled_rejects = [f for f in sample.files if f.reason]
  totals, checksums = {}, {}
  for split in splits:
    predicted_rejects = round(split.files - split.examples)
    rejects += [
      Reject.of(
        layout.join(dataset.layout.split_roots[f.ref.split], f.ref.key), split.split, f.reason
      )
      for f in (sampled_rejects * predicted_rejects)[:predicted_rejects]
    ]
    counts = _balanced(round(split.examples), split.num_shards)
    totals[split.split] = SplitTotals(
      round(split.examples),
      round(split.num_bytes.value),
      0,
      split.class_files,
      *_PLACEHOLDER_PIXELS,
      shards={
        output.shard_names.name(split.split, i, split.num_shards): n for i, n in enumerate(counts)
      },
    )
    checksums.update(
      {name: (round(split.shard_bytes), '0' * 64) for name in totals[split.split].shards}
    )
  manifest = build_manifest(
    output,
    totals,
    len(dataset.class_names),
    opts.label_offset,
    opts.compression,
    opts.to_dict(),
    opts.file_format,
    checksums,
  )
  files = {
    layout.LABELS_FILE: ''.join(name + '\n' for name in dataset.class_names),
    layout.REJECTS_FILE: ''.join(layout.to_json(r.to_json(), indent=None) + '\n' for r in rejects),
    layout.DUPLICATES_FILE: '',  # no duplicates predicted (Plan.duplicate_line_bytes)
    layout.STATS_FILE: layout.to_json(build_stats(totals, rejects)),
    layout.MANIFEST_FILE: layout.to_json(manifest),
    layout.MODEL_GARDEN_FILE: model_garden_text(output, manifest, opts.model_garden_batch_size)
    or '',
    layout.PROVENANCE_FILE: layout.to_json(_provenance(opts, sample, checksums)),
    **tfds_metadata_files(
      output, manifest, dataset.class_names, {s.split: round(s.num_bytes.value) for s in splits}
    ),
  }
  listed = [*checksums, *(name for name in files if name not in UNLISTED_FILES)]
  files[layout.SUCCESS_FILE] = success_lines(dict.fromkeys(listed, '0' * 64))
  return sum(len(text.encode('utf-8')) for text in files.values())


def duplicate_line_bytes(sample: ConvertedSample, dataset: DatasetPlan) -> int:
  """Bytes of a duplicates.jsonl line (transforms/duplicates/near.py) naming two files whose paths
  have the sampled files' mean length (0 without a sampled file)."""
  if not sample.files:
    return 0
  length = round(
    statistics.fmean(len(input_path(dataset.layout.split_roots, f.ref)) for f in sample.files)
  )
  line = group_line([GroupFile('x' * length, TRAIN, True, 0, None)] * 2)
  return len(layout.to_json(line, indent=None).encode('utf-8')) + 1


def _provenance(
  opts: ConverterOptions, sample: ConvertedSample, checksums: Dict[str, Tuple[int, str]]
) -> Dict:
  """provenance.json as a run of these flags would write it (transforms/metadata/provenance.py), its
  times, run id and listing hash placeholders of their length, the runner the default one."""
  started = utc_now()
  run = RunInfo(
    new_run_id(),
    started,
    FN_API_RUNNER.rsplit('.', 1)[-1],
    opts.input,
    converter_version(),
    package_versions(opts.compression, opts.file_format),
  )
  refs = [ref for listing in sample.listings for ref in listing.refs]
  fingerprint = InputFingerprint(len(refs), sum(ref.size for ref in refs), '0' * 64)
  facts = OutputFacts(checksums, fingerprint, {'written': len(checksums)})
  return build_provenance(run, facts, [], started)


# Pixel count, sums and sums of squares whose mean and std print with as many digits as real ones.
_PLACEHOLDER_PIXELS = (7, [850, 810, 700], [137_500, 128_000, 104_000])


def format_plan(plan: Plan, opts: ConverterOptions) -> str:
  """The printout: the listing, the sample, the predicted output and shards, the time."""
  lines = [
    f'Plan of a run from {opts.input} into {opts.output} (nothing was written; '
    f'{plan.seconds:.1f} s)',
    *_existing_lines(plan, opts),
    '',
  ]
  lines += _listing_lines(plan)
  lines += [
    '',
    *_sample_lines(plan, opts),
    '',
    *_output_lines(plan, opts),
    '',
    *_time_lines(plan, opts),
  ]
  if plan.version is not None:
    lines += ['', *plan.version.lines()]
  return '\n'.join(lines)


def _existing_lines(plan: Plan, opts: ConverterOptions) -> List[str]:
  """What the run will do with a dataset already in --output (pipeline/runtime/output_dir.py)."""
  if not plan.existing:
    return []
  held = (
    f'--output {opts.output} already holds a dataset ({len(plan.existing)} files, e.g. '
    f'{_example_file(plan.existing)})'
  )
  if opts.overwrite:
    return [f'note: {held}; --overwrite will delete those files and write the new dataset.']
  if opts.resume:
    return [
      f'note: {held}; --resume will keep its finished shards whose input and recipe are '
      "unchanged and write the rest (an interrupted run's flags are required)."
    ]
  return [
    f'warning: {held}. The run will refuse to start (exit 2) unless you pass --overwrite '
    '(replace it) or --resume (finish an interrupted run with the same flags), or choose '
    'another --output.'
  ]


def _example_file(paths: Sequence[str]) -> str:
  """The name of manifest.json when it is among `paths`, else of the first."""
  names = [path.rsplit('/', 1)[-1] for path in paths]
  return layout.MANIFEST_FILE if layout.MANIFEST_FILE in names else names[0]


def _listing_lines(plan: Plan) -> List[str]:
  files = sum(s.files for s in plan.splits)
  lines = [
    f'Listing: {plan.num_classes} classes, {plan.folders} folders, {files} files to convert'
    + (
      f', {sum(plan.listing_rejects.values())} rejected by the listing'
      if plan.listing_rejects
      else ''
    )
  ]
  lines += [
    f'  rejected {count:>8}  {reason}' for reason, count in sorted(plan.listing_rejects.items())
  ]
  lines += [f'  {line}' for line in [left_behind_line(plan.left_behind or {})] if line]
  names = sorted({name for s in plan.splits for name in s.class_files})
  header = f'  {"files":<28}' + ''.join(f'{s.split:>12}' for s in plan.splits)
  lines += [header, f'  {"(all classes)":<28}' + ''.join(f'{s.files:>12}' for s in plan.splits)]
  if len(names) > CLASS_TABLE_LIMIT:
    smallest = sorted(names, key=lambda n: (sum(s.class_files.get(n, 0) for s in plan.splits), n))
    lines.append(f'  ({len(names)} classes; the {CLASS_TABLE_LIMIT} smallest:)')
    names = smallest[:CLASS_TABLE_LIMIT]
  lines += [
    f'  {name[:28]:<28}' + ''.join(f'{s.class_files.get(name, 0):>12}' for s in plan.splits)
    for name in names
  ]
  return lines


def _sample_lines(plan: Plan, opts: ConverterOptions) -> List[str]:
  sample = plan.sample
  covered = len({f.stratum for f in sample.files})
  rejected = sum(plan.sample_rejects.values())
  lines = [
    f'Sample: {len(sample.files)} files (--plan_sample {opts.plan_sample}) from {covered} of '
    f'{plan.folders} class folders, converted with these flags: {rejected} rejected '
    f'({rejected / max(1, len(sample.files)):.1%})'
  ]
  lines += [
    f'  rejected {count:>8}  {reason}' for reason, count in sorted(plan.sample_rejects.items())
  ]
  return lines


def _output_lines(plan: Plan, opts: ConverterOptions) -> List[str]:
  shard_format = file_formats.get(opts.file_format)
  lines = [
    f'Predicted output ({opts.file_format}, {shard_format.record_overhead_bytes} bytes of framing '
    f'a record'
    + (f', gzip x {plan.sample.compressed_fraction:.3f}' if opts.compression == 'gzip' else '')
    + '; MB = 10^6 bytes; 95% intervals):',
    f'  {"split":<12}{"examples":>10}{"rejected":>10}{"MB":>10}{"95% interval":>20}'
    f'{"bytes/example":>15}{"shards":>8}{"MB/shard":>10}',
  ]
  for s in plan.splits:
    interval = f'{s.num_bytes.low / MB:.2f}-{s.num_bytes.high / MB:.2f}'
    lines.append(
      f'  {s.split:<12}{s.examples:>10.0f}{s.files - s.examples:>10.0f}'
      f'{s.num_bytes.value / MB:>10.2f}{interval:>20}{s.example_bytes:>15,.0f}'
      f'{s.num_shards:>8}{s.shard_bytes / MB:>10.2f}'
    )
  total = plan.total_bytes
  lines += [
    f'  {"metadata":<12}{"":>20}{plan.metadata_bytes / MB:>10.3f}  (with '
    f'{layout.DUPLICATES_FILE} empty; {plan.duplicate_line_bytes} bytes more per duplicate '
    'found)',
    f'  {"total":<12}{"":>20}{total.value / MB:>10.2f}'
    f'{f"{total.low / MB:.2f}-{total.high / MB:.2f}":>20}',
    'Shard counts (what a run with these flags writes):',
  ]
  lines += [
    f'  {s.split:<12}{s.num_shards:>6}  {_count_reason(s, plan, opts)}' for s in plan.splits
  ]
  for s in plan.splits:
    lines += [f'  warning: {s.split}: {warning}' for warning in s.warnings]
  return lines


def _count_reason(split: SplitPlan, plan: Plan, opts: ConverterOptions) -> str:
  if split.version_shards is not None:
    kept, new, new_files = split.version_shards
    return (
      f'--base: {kept} base shards kept, {new} new for {new_files} new files at '
      f'--target_shard_mb {opts.target_shard_mb:g}'
    )
  if not split.automatic:
    return f'--{split.split}_shards {opts.requested_shards[split.split]}' + (
      f", capped at the split's {split.files} files"
      if split.num_shards < opts.requested_shards[split.split]
      else ''
    )
  run = plan.run_sample
  return (
    f"automatic: {split.files} files x {run.file_bytes():,} bytes (the run's own "
    f'{len(run.files)}-file sample) at --target_shard_mb {opts.target_shard_mb:g}, '
    f'--num_readers {opts.num_readers}'
  )


def _time_lines(plan: Plan, opts: ConverterOptions) -> List[str]:
  lines = [
    f'Time, an estimate: {plan.cpu_ms:.2f} ms of CPU an image measured here (process_image and '
    f'the Example, 1 thread, mean of {len(plan.sample.files)} images), shards spread over W '
    f"workers, plus {LOCAL_STARTUP_SECONDS:.0f} s of start-up (a local run's, measured here):"
  ]
  for what, workers, seconds in plan.projections:
    lines.append(
      f'  W = {workers:<5} {_duration(LOCAL_STARTUP_SECONDS + seconds):>8}  '
      f'({_duration(seconds)} converting; {what})'
    )
  lines.append(
    f"  The projection assumes the cores are the run's own: the 1-minute load is {plan.load:.1f} on "
    f'{os.cpu_count()} cores now (runs here took 1.3x it at load 1-2, 2.5-2.8x at load 3-5).'
  )
  if opts.num_workers:
    lines.append('  A cluster adds its own start-up (Dataflow starts its workers in minutes).')
  return lines


def _duration(seconds: float) -> str:
  if seconds < 10:
    return f'{seconds:.1f} s'
  if seconds < 120:
    return f'{seconds:.0f} s'
  return f'{seconds / 60:.0f} min' if seconds < 7200 else f'{seconds / 3600:.1f} h'
