"""The converter's Beam graph, assembled from the named composite transforms of `transforms/`.

  ListImages -> AssignSplitShard -> WriteShards (GroupPathsByShard, WriteShard) -> ChannelStats
             \\-> rejects ----------------------------------------------------------> WriteMetadata

`plan_dataset` runs on the driver before the graph is built: it fixes the layout and the label map, and
fails early (tensorflow/tpu#980) when there is nothing to convert.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import apache_beam as beam

from pipeline.options import ConverterOptions
from transforms.listing import (InputError, Layout, ListImages, check_has_images, discover_classes,
                                discover_layout, list_children, read_labels_file)
from transforms.metadata import WriteMetadata
from transforms.shard_writer import WriteShards
from transforms.sharding import AssignSplitShard
from transforms.stats import ChannelStats


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
  """What the driver decided before the graph runs.

  Attributes:
    layout: split roots.
    class_names: label order (label = index + label_offset).
    class_dirs: {split: class folder names found under that split's root} (may include classes that
      are not in class_names; their files become rejects).
  """
  layout: Layout
  class_names: List[str]
  class_dirs: Dict[str, List[str]]

  @property
  def label_map(self) -> Dict[str, int]:
    return {name: i for i, name in enumerate(self.class_names)}


def plan_dataset(opts: ConverterOptions) -> DatasetPlan:
  """Lists the split roots and class folders and fixes the label map.

  Raises:
    InputError: unreadable input, no class folders, no files, or a labels file that matches nothing.
  """
  layout = discover_layout(opts.input)
  class_dirs = {split: list_children(root)[0] for split, root in layout.split_roots.items()}
  if opts.labels_file:
    class_names = read_labels_file(opts.labels_file)
    found = set().union(*class_dirs.values())
    if not found.intersection(class_names):
      raise InputError(f'none of the {len(class_names)} classes of --labels_file {opts.labels_file} '
                       f'has a folder under --input {opts.input} (found: {sorted(found)[:5]}...).')
  else:
    class_names = discover_classes(layout)
  check_has_images(layout)
  if layout.has_split_folders and opts.validation_fraction:
    raise InputError('--validation_fraction cannot be used when --input already has train/ and '
                     'validation/ folders; drop the flag or point --input at one folder of classes.')
  return DatasetPlan(layout, class_names, class_dirs)


class ConvertImageFolder(beam.PTransform):
  """PBegin -> stats.json content: the whole conversion, as one composite transform."""

  def __init__(self, opts: ConverterOptions, plan: DatasetPlan):
    super().__init__()
    self._opts = opts
    self._plan = plan

  def expand(self, pbegin):
    opts, plan = self._opts, self._plan
    listed = pbegin | 'ListImages' >> ListImages(plan.layout, plan.class_dirs, plan.label_map,
                                                 opts.label_offset)
    summaries = (
        listed.images
        | 'AssignSplitShard' >> AssignSplitShard(opts.seed, opts.validation_fraction,
                                                 opts.requested_shards)
        | 'WriteShards' >> WriteShards(opts.output, opts.image_spec, opts.seed, opts.compression,
                                       opts.resume))
    split_stats = summaries | 'ChannelStats' >> ChannelStats()
    shard_rejects = summaries | 'ShardRejects' >> beam.FlatMap(lambda summary: summary['rejects'])
    rejects = (listed.rejects, shard_rejects) | 'AllRejects' >> beam.Flatten()
    return (split_stats, rejects) | 'WriteMetadata' >> WriteMetadata(
        opts.output, plan.class_names, opts.label_offset, opts.compression, opts.to_dict(),
        opts.max_reject_fraction)
