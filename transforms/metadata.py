"""The last step: label map, statistics, rejects list, manifest and TFDS metadata, then `_SUCCESS`.

It runs once, after every shard (its inputs are side inputs computed from the shard summaries), and
writes through Beam's FileSystems. `_SUCCESS` is written last and only when the run is acceptable
(at least one example, reject fraction within --max_reject_fraction), so an orchestrator's sensor never
sees a half-written or rejected dataset.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from transforms.listing import join
from transforms.tfds_metadata import write_tfds_metadata

LABELS_FILE = 'labels.txt'
STATS_FILE = 'stats.json'
REJECTS_FILE = 'rejects.jsonl'
MANIFEST_FILE = 'manifest.json'
SUCCESS_FILE = '_SUCCESS'
FORMAT_VERSION = 1
STATS_KEYS = ('num_examples', 'num_shards', 'num_rejected', 'num_bytes', 'num_passthrough',
              'class_counts', 'mean_rgb', 'std_rgb')


def write_text(path: str, text: str) -> None:
  with FileSystems.create(path, mime_type='text/plain') as f:
    f.write(text.encode('utf-8'))


def to_json(value) -> str:
  return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + '\n'


def reject_fraction(stats: Dict) -> float:
  total = stats['num_examples'] + stats['num_rejected']
  return stats['num_rejected'] / total if total else 0.0


def build_stats(split_stats: Dict[str, Dict], rejects: List[dict]) -> Dict:
  """stats.json: per split the counts, class counts and mean/std; at the top level the totals."""
  stats = {}
  for split, values in sorted(split_stats.items()):
    entry = {key: values[key] for key in STATS_KEYS}
    entry['num_rejected'] = sum(1 for r in rejects if r['split'] == split)
    stats[split] = entry
  stats['num_examples'] = sum(v['num_examples'] for v in split_stats.values())
  stats['num_rejected'] = len(rejects)
  return stats


def build_manifest(split_stats: Dict[str, Dict], num_classes: int, label_offset: int,
                   compression: str, options: Dict) -> Dict:
  splits = {}
  for split, values in sorted(split_stats.items()):
    shards = [{'file': name, 'num_examples': n} for name, n in sorted(values['shards'].items())]
    splits[split] = {'num_examples': values['num_examples'], 'num_shards': len(shards),
                     'shards': shards}
  return {'format_version': FORMAT_VERSION, 'num_classes': num_classes,
          'label_offset': label_offset, 'compression': compression, 'splits': splits,
          'options': options}


def write_metadata(_, output_dir: str, class_names: List[str], label_offset: int, compression: str,
                   options: Dict, max_reject_fraction: float, split_stats: Dict[str, Dict],
                   rejects: List[dict]) -> Dict:
  """Writes labels.txt, rejects.jsonl, stats.json, manifest.json, the TFDS metadata
  (dataset_info.json, features.json, image-class-label.labels.txt) and, when acceptable, _SUCCESS.

  Returns:
    The stats.json content (also the step's output, for tests and the command-line summary).
  """
  rejects = sorted(rejects, key=lambda r: (r['path'], r['reason']))
  stats = build_stats(split_stats, rejects)
  write_text(join(output_dir, LABELS_FILE), ''.join(name + '\n' for name in class_names))
  write_text(join(output_dir, REJECTS_FILE),
             ''.join(json.dumps(r, sort_keys=True, ensure_ascii=False) + '\n' for r in rejects))
  write_text(join(output_dir, STATS_FILE), to_json(stats))
  manifest = build_manifest(split_stats, len(class_names), label_offset, compression, options)
  write_text(join(output_dir, MANIFEST_FILE), to_json(manifest))
  write_tfds_metadata(output_dir, manifest, class_names)
  if stats['num_examples'] and reject_fraction(stats) <= max_reject_fraction:
    write_text(join(output_dir, SUCCESS_FILE), '')
  return stats


class WriteMetadata(beam.PTransform):
  """(split statistics, rejects) -> the metadata files, written once after every shard."""

  def __init__(self, output_dir: str, class_names: List[str], label_offset: int, compression: str,
               options: Dict, max_reject_fraction: float):
    super().__init__()
    self._args = dict(output_dir=output_dir, class_names=class_names, label_offset=label_offset,
                      compression=compression, options=options,
                      max_reject_fraction=max_reject_fraction)

  def expand(self, inputs):
    split_stats, rejects = inputs
    return (split_stats.pipeline
            | 'Once' >> beam.Create([None])
            | 'WriteMetadataFiles' >> beam.Map(
                write_metadata, split_stats=beam.pvalue.AsDict(split_stats),
                rejects=beam.pvalue.AsList(rejects), **self._args))


def read_optional_json(path: str) -> Optional[Dict]:
  if not FileSystems.exists(path):
    return None
  with FileSystems.open(path) as f:
    return json.loads(f.read().decode('utf-8'))
