"""TFDS metadata next to the shards: `dataset_info.json`, `features.json` and the label names file.

With these three files `tfds.builder_from_directory(OUTPUT).as_dataset(split='train')` reads our shards
as they are (TFDS's "external TFRecord" support, https://www.tensorflow.org/datasets/external_tfrecord).

Why not `tfds.folder_dataset.write_metadata`: it lists the directory to find the shards and expects
file names `{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}` with a `.tfrecord` suffix. Ours are
`train-00000-of-00004` (the `build_imagenet_data.py` names Model Garden globs for), the output folder
also holds `_work/` and other files, and the shard counts are already known exactly from the manifest.
So this module builds the same `tfds.core.DatasetInfo` that `write_metadata` would, with the exact
per-shard counts from `manifest.json` and the template `{SPLIT}-{SHARD_X_OF_Y}`, lets TFDS serialize it
(so the JSON always matches the installed TFDS's schema), and copies the files through Beam's
FileSystems (so gs:// and s3:// outputs work like local ones).

Feature keys: TFDS flattens nested `FeaturesDict`s with '/', so the nested dict
{'image': {'encoded': Image, ..., 'class': {'label': ClassLabel, ...}}} parses exactly the
`build_imagenet_data.py` keys `image/encoded`, `image/class/label`, ... that the records carry.
`as_dataset` then yields the same nesting: `example['image']['encoded']` is a decoded uint8
[H, W, 3] tensor and `example['image']['class']['label']` an int64 scalar.

Limits: TFDS reads TFRecords without compression only, so for `--compression gzip` nothing is written
(a warning says why). `image/class/text` is optional in our records and so is not declared (TFDS parses
every declared key as required).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import numpy as np
from apache_beam.io.filesystems import CompressionTypes, FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

_LOGGER = logging.getLogger(__name__)

DATASET_NAME = 'folder2tfrecord'
DATASET_VERSION = '1.0.0'
# Our shard names: "train-00000-of-00004" (no dataset name, no file-format suffix).
FILEPATH_TEMPLATE = '{SPLIT}-{SHARD_X_OF_Y}'
BACKGROUND = 'background'


def tfds_label_names(manifest: Dict, class_names: Sequence[str]) -> List[str]:
  """Names of labels 0..N-1 as TFDS's ClassLabel needs them (label i -> names[i]).

  Args:
    manifest: the manifest.json content ("num_classes" counts the real classes, "label_offset" 0|1).
    class_names: the class (synset) names in label order, either without the background class
      (len == num_classes) or already with it (len == num_classes + label_offset, as in labels.txt).

  Returns:
    With label_offset 1: ["background", *classes]; with 0: the classes.

  Raises:
    ValueError: when class_names does not match the manifest's class count.
  """
  offset, num_classes = int(manifest['label_offset']), int(manifest['num_classes'])
  names = list(class_names)
  if len(names) == num_classes:
    return [BACKGROUND] * offset + names
  if offset and len(names) == num_classes + offset and names[0] == BACKGROUND:
    return names
  raise ValueError(f'{len(names)} class names given but manifest.json says num_classes={num_classes} '
                   f'with label_offset={offset}; pass the class names in label order.')


def tfds_features(label_names: Sequence[str]):
  """The `tfds.features.FeaturesDict` whose flattened keys are our record's keys (see module doc)."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  features = tfds.features
  return features.FeaturesDict({
      'image': {
          'encoded': features.Image(shape=(None, None, 3), encoding_format='jpeg'),
          'format': features.Text(),
          'height': features.Scalar(np.int64),
          'width': features.Scalar(np.int64),
          'channels': features.Scalar(np.int64),
          'colorspace': features.Text(),
          'filename': features.Text(),
          'class': {
              'label': features.ClassLabel(names=list(label_names)),
              'synset': features.Text(),
          },
      },
  })


def shard_sizes(output_dir: str, files: Sequence[str]) -> int:
  """Total bytes of the named shard files (matched by exact name: no listing of the folder)."""
  paths = [FileSystems.join(output_dir, name) for name in files]
  return sum(m.size_in_bytes for result in FileSystems.match(paths) for m in result.metadata_list)


def build_dataset_info(output_dir: str, manifest: Dict, label_names: Sequence[str]):
  """The `tfds.core.DatasetInfo` of the output: features, file format and exact per-shard counts."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_datasets.core import dataset_info, naming, splits, utils
  identity = dataset_info.DatasetIdentity(name=DATASET_NAME, version=utils.Version(DATASET_VERSION),
                                          data_dir=output_dir, module_name='')
  info = dataset_info.DatasetInfo(
      builder=identity, features=tfds_features(label_names),
      description='Image folder converted to TFRecords of tf.train.Example by folder2tfrecord '
                  '(keys as in TensorFlow\'s build_imagenet_data.py).')
  info.set_file_format('tfrecord')
  split_infos = []
  for split, entry in sorted(manifest['splits'].items()):
    files = [shard['file'] for shard in entry['shards']]
    template = naming.ShardedFileTemplate(data_dir=output_dir, template=FILEPATH_TEMPLATE,
                                          dataset_name=DATASET_NAME, split=split,
                                          filetype_suffix='tfrecord')
    # TFDS rebuilds each file name from the template; a manifest whose names differ would be unreadable.
    expected = [os.path.basename(str(p)) for p in template.sharded_filepaths(len(files))]
    if files != expected:
      raise ValueError(f'split {split!r}: shard files {files} do not follow {FILEPATH_TEMPLATE}.')
    split_infos.append(splits.SplitInfo(
        name=split, shard_lengths=[int(shard['num_examples']) for shard in entry['shards']],
        num_bytes=shard_sizes(output_dir, files), filename_template=template))
  info.set_splits(splits.SplitDict(split_infos))
  return info


def write_tfds_metadata(output_dir: str, manifest: dict, class_names: list[str]) -> None:
  """Writes dataset_info.json, features.json and the ClassLabel names file into output_dir.

  Call it after the shards and manifest.json exist. Every file goes through Beam FileSystems, so
  output_dir may be local, gs:// or s3://.

  Args:
    output_dir: the converter's output directory (holding the shards named in the manifest).
    manifest: the manifest.json content (splits with per-shard "file" and "num_examples").
    class_names: class names in label order, see `tfds_label_names`.

  Raises:
    ValueError: class names inconsistent with the manifest, or shard names off the template.
  """
  if manifest.get('compression', 'none') != 'none':
    _LOGGER.warning('Not writing TFDS metadata: TFDS reads uncompressed TFRecords only and these '
                    'shards are %s-compressed (convert with --compression none to read with TFDS).',
                    manifest['compression'])
    return
  info = build_dataset_info(output_dir, manifest, tfds_label_names(manifest, class_names))
  with tempfile.TemporaryDirectory() as local_dir:
    info.write_to_directory(local_dir)
    for name in sorted(os.listdir(local_dir)):
      with open(os.path.join(local_dir, name), 'rb') as src:
        content = src.read()
      with FileSystems.create(FileSystems.join(output_dir, name)) as dst:
        dst.write(content)


def _read_text(path: str) -> str:
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return f.read().decode('utf-8')


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI for outputs converted earlier: `python -m transforms.tfds_metadata OUTPUT [beam options]`
  reads manifest.json and labels.txt and writes the TFDS metadata next to the shards."""
  parser = argparse.ArgumentParser(prog='python -m transforms.tfds_metadata',
                                   description=main.__doc__.split('\n')[0])
  parser.add_argument('output_dir')
  args, beam_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
  FileSystems.set_options(PipelineOptions(beam_args))
  manifest = json.loads(_read_text(FileSystems.join(args.output_dir, 'manifest.json')))
  class_names = _read_text(FileSystems.join(args.output_dir, 'labels.txt')).splitlines()
  write_tfds_metadata(args.output_dir, manifest, class_names)
  return 0


if __name__ == '__main__':
  logging.basicConfig(level=logging.INFO)
  sys.exit(main())
