"""The last step: label map, statistics, rejects list, manifest, TFDS metadata, the Model Garden
config and provenance, then `_SUCCESS`.

It runs once, after every shard (its inputs are side inputs computed from the shard summaries), and
writes through Beam's FileSystems. Before provenance.json it deletes shards of an earlier attempt
that the current input no longer has (transforms/output/resume.py). `_SUCCESS` is written last and
only when the run is acceptable (at least one example, reject fraction within
--max_reject_fraction), so an orchestrator's sensor never sees a half-written or rejected dataset;
it holds the SHA-256 of every other file but provenance.json (transforms/output/success.py), which
`pipeline.verify` checks.
"""

from __future__ import annotations

import collections
from typing import Dict, List, Optional, Sequence, Tuple

import apache_beam as beam

from transforms.output import file_format as file_formats
from transforms.output import layout
from transforms.imaging.example import class_names_of
from transforms.inputs.label_map import labels_text
from transforms.duplicates.near import Duplicates
from transforms.metadata.model_garden import DEFAULT_BATCH_SIZE, write_model_garden_config
from transforms.metadata.provenance import (
  OutputFacts,
  RunInfo,
  build_provenance,
  utc_now,
  write_provenance,
)
from transforms.records import Reject
from transforms.metadata.reject_reasons import count_reasons
from transforms.output.resume import delete_stale_shards
from transforms.metadata.stats import SplitTotals
from transforms.output.success import write_success
from transforms.output import versions
from transforms.metadata.tfds_metadata import write_tfds_metadata


def reject_fraction(stats: Dict) -> float:
  total = stats['num_examples'] + stats['num_rejected']
  return stats['num_rejected'] / total if total else 0.0


def label_counts(class_counts: Dict[str, int]) -> Dict[str, int]:
  """{class name: examples}, sorted by name, from a shard summary's counts, whose keys are
  ImageRef.synset: a multi-label image (example.multi_label_synset) counts for each of its
  labels."""
  counts = collections.Counter()
  for synset, count in class_counts.items():
    for name in class_names_of(synset):
      counts[name] += count
  return dict(sorted(counts.items()))


def build_stats(
  split_stats: Dict[str, SplitTotals],
  rejects: Sequence[Reject],
  duplicates: Optional[Duplicates] = None,
) -> Dict:
  """stats.json: per split the counts, class counts and mean/std; at the top level the totals,
  `num_rejected_without_split` (rejects whose `split` is null: listed before any split was chosen),
  `reject_reasons` ({reason category: files}, transforms/metadata/reject_reasons.py) and
  `duplicates`, the counts of duplicates.jsonl's lines (transforms/duplicates/near.py).

  Rejects are counted here and only here, every one once: in its split (a split with rejects only
  has an entry with 0 examples and NaN mean/std) or in `num_rejected_without_split`. The run's
  summary and `report` print these counts.
  """
  rejected = collections.Counter(r.split or None for r in rejects)
  stats = {}
  for split in sorted(set(split_stats) | {s for s in rejected if s is not None}):
    totals = split_stats.get(split, SplitTotals())
    mean, std = totals.mean_std
    stats[split] = {
      'num_examples': totals.num_examples,
      'num_shards': len(totals.shards),
      'num_rejected': rejected[split],
      'num_bytes': totals.num_bytes,
      'num_passthrough': totals.num_passthrough,
      'class_counts': label_counts(totals.class_counts),
      'mean_rgb': mean,
      'std_rgb': std,
    }
  stats['num_examples'] = sum(totals.num_examples for totals in split_stats.values())
  stats['num_rejected'] = len(rejects)
  stats['num_rejected_without_split'] = rejected[None]
  stats['reject_reasons'] = count_reasons(r.reason for r in rejects)
  stats['duplicates'] = dict((duplicates or Duplicates()).counts)
  return stats


def build_manifest(
  output: layout.OutputLayout,
  split_stats: Dict[str, SplitTotals],
  num_classes: int,
  label_offset: int,
  compression: str,
  options: Dict,
  file_format: str = file_formats.FileFormat.TFRECORD,
  checksums: Optional[Dict[str, Tuple[Optional[int], Optional[str]]]] = None,
  multi_label: bool = False,
) -> Dict:
  """manifest.json: per split its shards in index order with their record counts and their size in
  bytes and SHA-256 as stored (`bytes`, `sha256`: from `checksums`, {shard: (bytes, hex)}), the
  shards' file format and compression, and the flags; `"multi_label": true` for a multi-label
  --manifest (records hold a list of labels: transforms/inputs/manifest.py), absent otherwise."""
  checksums = checksums or {}
  splits = {}
  for split, totals in sorted(split_stats.items()):
    names = sorted(totals.shards, key=lambda name: output.shard_names.parse(name)[1])
    shards = [
      _shard_entry(name, totals.shards[name], *checksums.get(name, (None, None))) for name in names
    ]
    splits[split] = {
      'num_examples': totals.num_examples,
      'num_shards': len(shards),
      'shards': shards,
    }
  manifest = {
    'format_version': layout.FORMAT_VERSION,
    'num_classes': num_classes,
    'label_offset': label_offset,
    'compression': compression,
    'file_format': file_format,
    'splits': splits,
    'options': options,
  }
  return {**manifest, 'multi_label': True} if multi_label else manifest


def _shard_entry(
  name: str, num_examples: int, num_bytes: Optional[int], sha256: Optional[str]
) -> Dict:
  entry = {'file': name, 'num_examples': num_examples}
  # Unknown for a shard kept from an older version.
  if num_bytes is not None and sha256 is not None:
    entry.update(bytes=num_bytes, sha256=sha256)
  return entry


def write_metadata(
  _,
  output: layout.OutputLayout,
  class_names: List[str],
  label_offset: int,
  compression: str,
  options: Dict,
  max_reject_fraction: float,
  split_stats: Dict[str, SplitTotals],
  rejects: List[Reject],
  facts: OutputFacts,
  file_format: str = file_formats.FileFormat.TFRECORD,
  model_garden_batch_size: int = DEFAULT_BATCH_SIZE,
  run: Optional[RunInfo] = None,
  duplicates: Optional[Duplicates] = None,
  multi_label: bool = False,
  version: Optional[Tuple[Dict, Dict]] = None,
) -> Dict:
  """Writes labels.txt, rejects.jsonl, duplicates.jsonl, stats.json, manifest.json, the TFDS metadata
  (dataset_info.json, features.json, image-class-label.labels.txt), model_garden.yaml, deletes stale
  shards, writes provenance.json (when `run` is given) and, when acceptable, _SUCCESS with the
  SHA-256 of every other file (transforms/output/success.py). `version`: (base, change counts) of a
  --base run, recorded in manifest.json and provenance.json as `version`
  (transforms/output/versions.py).

  Returns:
    The stats.json content (also the step's output, for tests and the command-line summary).
  """
  rejects = sorted(rejects, key=lambda r: (r.path, r.reason))
  duplicates = duplicates or Duplicates()
  stats = build_stats(split_stats, rejects, duplicates)
  layout.write_text(output.path(layout.LABELS_FILE), labels_text(class_names))
  layout.write_jsonl(output.path(layout.REJECTS_FILE), [r.to_json() for r in rejects])
  layout.write_text(output.path(layout.DUPLICATES_FILE), duplicates.text)  # already JSON lines
  layout.write_json(output.path(layout.STATS_FILE), stats)
  manifest = build_manifest(
    output,
    split_stats,
    len(class_names),
    label_offset,
    compression,
    options,
    file_format,
    facts.checksums,
    multi_label,
  )
  if version is not None:
    manifest['version'] = versions.record(*version, facts.outcomes)
  layout.write_json(output.path(layout.MANIFEST_FILE), manifest)
  write_tfds_metadata(output, manifest, class_names)
  write_model_garden_config(output, manifest, model_garden_batch_size)
  deleted = delete_stale_shards(
    output, [s['file'] for e in manifest['splits'].values() for s in e['shards']]
  )
  if run is not None:
    provenance = build_provenance(run, facts, deleted, utc_now())
    if version is not None:
      provenance['version'] = manifest['version']
    write_provenance(output, provenance)
  if stats['num_examples'] and reject_fraction(stats) <= max_reject_fraction:
    write_success(output, facts.checksums)
  return stats


class WriteMetadata(beam.PTransform):
  """(split statistics, rejects, OutputFacts) -> the metadata files, written once after every shard.

  The third input holds exactly one OutputFacts (transforms/metadata/provenance.py
  CollectOutputFacts), the fourth exactly one Duplicates (transforms/duplicates/near.py
  FindDuplicates).
  """

  def __init__(
    self,
    output: layout.OutputLayout,
    class_names: List[str],
    label_offset: int,
    compression: str,
    options: Dict,
    max_reject_fraction: float,
    file_format: str = file_formats.FileFormat.TFRECORD,
    model_garden_batch_size: int = DEFAULT_BATCH_SIZE,
    run: Optional[RunInfo] = None,
    multi_label: bool = False,
  ):
    """`run`: what the driver knows for provenance.json; None writes no provenance.json.
    `multi_label`: the records hold lists of labels (a multi-label --manifest)."""
    super().__init__()
    self._args = dict(
      output=output,
      class_names=class_names,
      label_offset=label_offset,
      compression=compression,
      options=options,
      max_reject_fraction=max_reject_fraction,
      file_format=file_format,
      model_garden_batch_size=model_garden_batch_size,
      run=run,
      multi_label=multi_label,
    )

  def expand(self, inputs):
    split_stats, rejects, facts, *optional = inputs  # Duplicates, a --base run's version: optional
    duplicates = (
      optional[0]
      if optional
      else split_stats.pipeline | 'NoDuplicates' >> beam.Create([Duplicates()])
    )
    version = {'version': beam.pvalue.AsSingleton(optional[1])} if len(optional) > 1 else {}
    return (
      split_stats.pipeline
      | 'Once' >> beam.Create([None])
      | 'WriteMetadataFiles'
      >> beam.Map(
        write_metadata,
        split_stats=beam.pvalue.AsDict(split_stats),
        rejects=beam.pvalue.AsList(rejects),
        facts=beam.pvalue.AsSingleton(facts),
        duplicates=beam.pvalue.AsSingleton(duplicates),
        **version,
        **self._args,
      )
    )
