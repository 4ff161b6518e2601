"""The converter's Beam graph, assembled from the named composite transforms of `transforms/`.

  ListImages -> ExcludeFiles* -> DropDuplicates -> AssignSplitShard -> WriteShards -> ChannelStats
             |              \\-> FindExactDuplicates -> Followers -^ (copies and --group_regex
             |                                      groups follow their first file's split)
             |                                            summaries, outcomes -> CollectOutputFacts
             |                                            summaries + exact groups -> FindDuplicates
             \\-> rejects (listing, excluded, dropped, shard writer) ----------------> WriteMetadata
  (* only with --exclude_file)

`plan_dataset` runs on the driver before the graph is built: it fixes the layout and the label map,
fails early (tensorflow/tpu#980) when there is nothing to convert, and, when a split's shard count
is automatic, converts a small deterministic sample (transforms/split/sample.py) whose bytes per
file size the shards (transforms/split/shard_count.py).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import apache_beam as beam

from pipeline.options import ConverterOptions, UsageError
from pipeline.runtime.output_dir import shard_recipe_of
from transforms.imaging.codec_versions import codec_versions
from transforms.inputs.imagenet import AnnotationError, read_class_texts, read_ground_truth
from transforms.inputs.label_map import label_map_of, label_names, read_labels_file
from transforms.duplicates.exact import DropDuplicates, ExcludeFiles, FindExactDuplicates
from transforms.split.groups import Followers
from transforms.inputs.survey import InputSurvey, check_has_images, survey_input
from transforms.inputs.listing import InputError, Layout, ListImages, discover_layout, input_path
from transforms.inputs.manifest import ManifestFacts, image_ref, manifest_label_map, scan
from transforms.inputs.manifest_listing import ListManifestImages, check_input_root
from transforms.duplicates.near import FindDuplicates
from transforms.metadata.write import WriteMetadata
from transforms.metadata.provenance import CollectOutputFacts, RunInfo
from transforms.imaging.convert import RecordRecipe
from transforms.split.sample import (
  RUN_SAMPLE_SIZE,
  ConvertedSample,
  FolderListing,
  convert,
  folders_of,
  run_sample,
)
from transforms.split.shard_count import ShardSizing
from transforms.output import version_shards, versions
from transforms.output.shard_writer import WriteShards
from transforms.split.sharding import (
  SPLITS,
  TEST,
  TRAIN,
  UNSPLIT,
  VALIDATION,
  AssignSplitShard,
  ordered_splits,
)
from transforms.metadata.stats import ChannelStats


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
  """What the driver decided before the graph runs.

  Attributes:
    layout: split roots.
    label_map: {class name: id} (label = id + label_offset; transforms/inputs/label_map.py).
    class_dirs: {split: class folder names found under that split's root} (may include classes that
      are not in the label map; their files become rejects).
    ground_truth: {file stem: class} of a flat validation folder (--validation_ground_truth).
    class_texts: {class: text} (--class_text_file).
    run_sample: the converted sample whose bytes per file size the automatic shard counts; None when
      every split's count is given.
    survey: the driver's listing of --input and the split roots (files beside the class folders,
      left-behind entries, empty class folders); None: none was made.
    manifest: what the driver's pass over --manifest found (transforms/inputs/manifest.py); None:
    class
      folders.
    base: the finished output of --base (transforms/output/versions.py); None without --base.
  """

  layout: Layout
  label_map: Dict[str, int]
  class_dirs: Dict[str, List[str]]
  ground_truth: Optional[Dict[str, str]] = None
  class_texts: Optional[Dict[str, str]] = None
  run_sample: Optional[ConvertedSample] = None
  survey: Optional[InputSurvey] = None
  manifest: Optional[ManifestFacts] = None
  base: Optional[versions.BaseOutput] = None

  @property
  def class_names(self) -> List[str]:
    """Names of ids 0..N-1 (labels.txt's lines), placeholders for ids a JSON label map leaves out."""
    return label_names(self.label_map)


def plan_dataset(opts: ConverterOptions) -> DatasetPlan:
  """Lists the split roots and class folders, fixes the label map and, when a split's shard count is
  automatic, converts the run's sample (transforms/split/sample.py; ~0.2 s for 32 images).

  Raises:
    InputError: unreadable input, no class folders, no files, a labels file that matches nothing, or
      split fractions given for an input that has split folders.
    UsageError: a --shard_name_template that names two of the run's splits alike.
  """
  if opts.manifest:
    return _plan_manifest_dataset(opts)
  layout = discover_layout(opts.input, labelled_validation=bool(opts.validation_ground_truth))
  survey = survey_input(opts.input, layout)
  class_dirs = dict(survey.class_dirs)
  ground_truth = None
  if layout.flat_validation:
    if not opts.validation_ground_truth:
      raise InputError(
        f'{layout.split_roots["validation"]} holds images but no class folders: pass '
        '--validation_ground_truth (LOC_val_solution.csv, or '
        'ILSVRC2012_validation_ground_truth.txt with --ground_truth_synsets).'
      )
    ground_truth = _annotation(
      read_ground_truth, opts.validation_ground_truth, opts.ground_truth_synsets
    )
  class_texts = (
    _annotation(read_class_texts, opts.class_text_file) if opts.class_text_file else None
  )
  found = set().union(*class_dirs.values()) - {''}
  if not found:
    raise InputError('no class folders found under ' + ', '.join(layout.split_roots.values()))
  base = versions.read_base(opts.base) if opts.base else None
  if opts.labels_file:
    label_map = read_labels_file(opts.labels_file)
    if not found.intersection(label_map):
      raise InputError(
        f'none of the {len(label_map)} classes of --labels_file {opts.labels_file} '
        f'has a folder under --input {opts.input} (found: {sorted(found)[:5]}...).'
      )
  elif base:
    label_map = versions.version_label_map(base.class_names, found)
  else:
    label_map = label_map_of(sorted(found))  # The sorted union of every split's class folders.
  check_has_images(layout, survey)
  if layout.has_split_folders and (opts.validation_fraction or opts.test_fraction):
    raise InputError(
      '--validation_fraction and --test_fraction cannot be used when --input already '
      f'has split folders ({", ".join(layout.split_roots)}); drop the flags or point '
      '--input at one folder of classes.'
    )
  splits = _planned_splits(opts, layout)
  _check_split_names(opts, splits)
  sample = None
  if not all(opts.requested_shards[split] for split in splits):
    sample = run_sample(
      folders_of(layout.split_roots, class_dirs),
      label_map,
      opts.label_offset,
      ground_truth,
      record_recipe(opts, layout, class_texts),
      opts.seed,
    )
  return DatasetPlan(
    layout, label_map, class_dirs, ground_truth, class_texts, sample, survey, base=base
  )


def _check_split_names(opts: ConverterOptions, splits: List[str]) -> None:
  try:
    opts.output_layout.shard_names.check_splits(splits)
  except ValueError as e:
    raise UsageError(f'--shard_name_template: {e}') from None


def _plan_manifest_dataset(opts: ConverterOptions) -> DatasetPlan:
  """plan_dataset of a --manifest run: one pass over the manifest (transforms/inputs/manifest.py
  `scan`) fixes the label map; the sample is drawn from its rows.

  Raises:
    InputError: a bad manifest (ManifestError naming the line) or --labels_file.
  """
  spec = opts.manifest_spec
  check_input_root(spec.input_root)
  facts = scan(spec, opts.seed, RUN_SAMPLE_SIZE)
  labels_file_map = read_labels_file(opts.labels_file) if opts.labels_file else None
  label_map = manifest_label_map(facts, labels_file_map, spec.path)
  class_texts = (
    _annotation(read_class_texts, opts.class_text_file) if opts.class_text_file else None
  )
  layout = Layout({split: spec.input_root for split in (UNSPLIT, *SPLITS)})
  splits = {split for split, rows in facts.split_rows.items() if rows and split != UNSPLIT}
  if facts.split_rows.get(UNSPLIT):
    splits.update(_planned_splits(opts, Layout({UNSPLIT: spec.input_root})))
  splits = ordered_splits(splits)
  _check_split_names(opts, splits)
  sample = None
  if not all(opts.requested_shards[split] for split in splits):
    names = label_names(label_map)
    refs = tuple(
      image_ref(row, label_map, names, opts.label_offset, facts.multi_label) for row in facts.sample
    )
    folder = (UNSPLIT, spec.input_root, '')
    sample = convert(
      [FolderListing(folder, refs, ())],
      [(0, ref) for ref in refs],
      record_recipe(opts, layout, class_texts),
    )
  return DatasetPlan(
    layout, label_map, {}, class_texts=class_texts, run_sample=sample, manifest=facts
  )


def record_recipe(
  opts: ConverterOptions, layout: Layout, class_texts: Optional[Dict[str, str]]
) -> RecordRecipe:
  """How a run with these flags makes a record (the shard writer's and the driver's samples')."""
  return RecordRecipe(
    layout.split_roots,
    opts.image_spec,
    opts.file_format,
    opts.compression,
    class_texts,
    opts.bbox_dir,
    opts.max_file_bytes,
  )


def shard_sizing(opts: ConverterOptions, plan: DatasetPlan) -> Optional[ShardSizing]:
  """What AssignSplitShard computes automatic shard counts from; None when every count is given."""
  if plan.run_sample is None:
    return None
  return ShardSizing(opts.target_shard_bytes, plan.run_sample.file_bytes(), opts.num_readers)


def _planned_splits(opts: ConverterOptions, layout: Layout) -> List[str]:
  """The splits a run can write: its split folders, or train plus the fractions' splits."""
  if layout.has_split_folders:
    return list(layout.split_roots)
  return [TRAIN] + [VALIDATION] * bool(opts.validation_fraction) + [TEST] * bool(opts.test_fraction)


def _annotation(reader, *args):
  try:
    return reader(*args)
  except AnnotationError as e:
    raise InputError(str(e)) from None


class ConvertImageFolder(beam.PTransform):
  """PBegin -> stats.json content: the whole conversion, as one composite transform."""

  def __init__(self, opts: ConverterOptions, plan: DatasetPlan, run: Optional[RunInfo] = None):
    """`run`: the driver's RunInfo for provenance.json (None: no provenance.json, as for graphs built
    only to be inspected)."""
    super().__init__()
    self._opts = opts
    self._plan = plan
    self._run = run

  def expand(self, pbegin):
    opts, plan, run = self._opts, self._plan, self._run
    if plan.manifest is not None:
      listed = pbegin | 'ListManifestImages' >> ListManifestImages(
        opts.manifest_spec, plan.manifest, plan.label_map, plan.class_names, opts.label_offset
      )
    else:
      listed = pbegin | 'ListImages' >> ListImages(
        plan.layout,
        plan.class_dirs,
        plan.label_map,
        opts.label_offset,
        plan.ground_truth,
        plan.survey.loose_files if plan.survey else (),
      )
    split_roots, drop = plan.layout.split_roots, opts.drop_duplicates
    images, excluded, excluded_files = listed.images, [], opts.excluded_files
    if excluded_files:  # Not a step of every run: each per-file step costs CPU per file.
      included = images | 'ExcludeFiles' >> ExcludeFiles(excluded_files, split_roots)
      images, excluded = included.kept, [included.dropped]
    groups = images | 'FindExactDuplicates' >> FindExactDuplicates(split_roots, opts.max_file_bytes)
    kept = images | 'DropDuplicates' >> DropDuplicates(groups, split_roots, drop)
    followers = (
      None
      if plan.layout.has_split_folders or plan.base
      else ((kept.kept, groups) | 'Followers' >> Followers(opts.group_regex, with_copies=not drop))
    )
    # The driver's codec versions: every shard writer must have the same.
    codecs = codec_versions(opts.compression, opts.file_format)
    writer_args = (
      opts.output_layout,
      record_recipe(opts, plan.layout, plan.class_texts),
      opts.seed,
      opts.resume,
      codecs,
      shard_recipe_of(opts),
    )
    changes = []
    if plan.base:  # --base: a new version of a finished output (transforms/output/versions.py)
      version = kept.kept | 'AssignVersionShards' >> version_shards.AssignVersionShards(
        plan.base,
        split_roots,
        opts.seed,
        opts.validation_fraction,
        opts.test_fraction,
        shard_sizing(opts, plan),
        None if plan.layout.has_split_folders else groups,
      )
      written = version['assigned'] | 'WriteShards' >> version_shards.WriteVersionShards(
        plan.base, *writer_args
      )
      changes = [
        version['changes']
        | 'VersionRecord' >> beam.Map(lambda counts, base: (base, counts), plan.base.info())
      ]
    else:
      written = (
        kept.kept
        | 'AssignSplitShard'
        >> AssignSplitShard(
          opts.seed,
          opts.validation_fraction,
          opts.requested_shards,
          opts.test_fraction,
          shard_sizing(opts, plan),
          followers,
        )
        | 'WriteShards' >> WriteShards(*writer_args)
      )
    summaries = written.summaries
    split_stats = summaries | 'ChannelStats' >> ChannelStats()
    shard_rejects = summaries | 'ShardRejects' >> beam.FlatMap(lambda summary: summary.rejects)
    rejects = (
      listed.rejects,
      *excluded,
      kept.dropped,
      shard_rejects,
    ) | 'AllRejects' >> beam.Flatten()
    exact = groups | 'ExactGroupPaths' >> beam.Map(
      lambda group: (
        group.digest,
        [(input_path(split_roots, ref), ref.split or None) for ref in group.members],
      )
    )
    duplicates = (summaries, exact) | 'FindDuplicates' >> FindDuplicates(
      opts.near_duplicate_distance
    )
    facts = (summaries, written.outcomes) | 'CollectOutputFacts' >> CollectOutputFacts()
    return (split_stats, rejects, facts, duplicates, *changes) | 'WriteMetadata' >> WriteMetadata(
      opts.output_layout,
      plan.class_names,
      opts.label_offset,
      opts.compression,
      opts.to_dict(),
      opts.max_reject_fraction,
      opts.file_format,
      opts.model_garden_batch_size,
      run,
      multi_label=bool(plan.manifest and plan.manifest.multi_label),
    )
