"""TFDS metadata next to the shards: `dataset_info.json`, `features.json` and the label names file.

With them `tfds.builder_from_directory(OUTPUT).as_dataset(split='train')` reads the shards as they
are (TFDS's "external TFRecord" support, https://www.tensorflow.org/datasets/external_tfrecord), and
`.as_data_source('train')` reads `--file_format array_record` output. These are the files
`tfds.folder_dataset.write_metadata` would write, from the schema TFDS serializes, without importing
TFDS or TensorFlow (neither is a dependency) and with the exact per-shard counts of manifest.json
instead of a read of every shard; tests/test_tfds.py reads them with TFDS. Feature keys: TFDS
flattens nested `FeaturesDict`s with '/', so {'image': {'encoded': Image, ..., 'class': {'label':
ClassLabel, ...}}} parses exactly the `build_imagenet_data.py` keys the records carry
(`image/encoded`, `image/class/label`, ...). Limits: nothing is written for `--compression gzip`
(TFDS reads uncompressed TFRecords only) or a --shard_name_template that TFDS's `filepathTemplate`
cannot express (a warning says why); `image/class/text`, optional in the records, is not declared
(TFDS parses every declared key as required).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Dict, List, Optional, Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.output import file_format as file_formats
from transforms.output import layout

_LOGGER = logging.getLogger(__name__)

DATASET_NAME = 'folder2tfrecord'
DATASET_VERSION = '1.0.0'
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
  raise ValueError(
    f'{len(names)} class names given but manifest.json says num_classes={num_classes} '
    f'with label_offset={offset}; pass the class names in label order.'
  )


_TFDS = 'tensorflow_datasets.core.features.'


def _features_dict(features: Dict) -> Dict:
  return {
    'featuresDict': {'features': features},
    'pythonClassName': _TFDS + 'features_dict.FeaturesDict',
  }


def _int64() -> Dict:
  return {
    'pythonClassName': _TFDS + 'scalar.Scalar',
    'tensor': {'dtype': 'int64', 'encoding': 'none', 'shape': {}},
  }


def _text() -> Dict:
  return {'pythonClassName': _TFDS + 'text_feature.Text', 'text': {}}


def _sequence(feature: Dict) -> Dict:
  return {
    'pythonClassName': _TFDS + 'sequence_feature.Sequence',
    'sequence': {'feature': feature, 'length': '-1'},
  }


def features_json(num_labels: int, phash: bool = True, multi_label: bool = False) -> Dict:
  """features.json of the FeaturesDict whose flattened keys are our record's keys (module doc), as
  TFDS serializes {'image': {'encoded': Image(jpeg, [None, None, 3]), 'format': Text, 'height':
  Scalar(int64), ..., 'phash': Scalar(int64), 'class': {'label': ClassLabel(num_labels), 'synset':
  Text}}} (`image/phash`, transforms/imaging/perceptual_hash.py, is in every record this version
  writes; `phash` False leaves it out, for outputs of earlier versions). `multi_label`: 'label' is a
  Sequence(ClassLabel) and 'synset' a Sequence(Text) (a multi-label --manifest's records)."""
  label = {
    'pythonClassName': _TFDS + 'class_label_feature.ClassLabel',
    'classLabel': {'numClasses': str(num_labels)},
  }
  image = {
    'encoded': {
      'pythonClassName': _TFDS + 'image_feature.Image',
      'image': {
        'dtype': 'uint8',
        'encodingFormat': 'jpeg',
        'shape': {'dimensions': ['-1', '-1', '3']},
      },
    },
    'format': _text(),
    'height': _int64(),
    'width': _int64(),
    'channels': _int64(),
    'colorspace': _text(),
    'filename': _text(),
    'phash': _int64(),
    'class': _features_dict(
      {
        'label': _sequence(label) if multi_label else label,
        'synset': _sequence(_text()) if multi_label else _text(),
      }
    ),
  }
  if not phash:
    del image['phash']
  return _features_dict({'image': _features_dict(image)})


def shard_sizes(output: layout.OutputLayout, files: Sequence[str]) -> int:
  """Total bytes of the named shard files (matched by exact name: no listing of the folder)."""
  paths = [output.path(name) for name in files]
  return sum(m.size_in_bytes for result in FileSystems.match(paths) for m in result.metadata_list)


def dataset_info_json(
  output: layout.OutputLayout, manifest: Dict, num_bytes: Optional[Dict[str, int]] = None
) -> Dict:
  """dataset_info.json with the exact per-shard counts of the manifest and the shards' byte sizes
  (`num_bytes`, {split: bytes of its shards}, when given, e.g. planned; else the files' sizes)."""
  splits = []
  shard_format = file_formats.of_manifest(manifest)
  template = shard_format.tfds_filepath_template(output.shard_names)
  for split, entry in sorted(manifest['splits'].items()):
    files = [shard['file'] for shard in entry['shards']]
    # TFDS rebuilds each file name from the template; names that differ would be unreadable.
    if files != output.shard_names.names(split, len(files)):
      raise ValueError(f'split {split!r}: shard files {files} do not follow {template}.')
    splits.append(
      {
        'filepathTemplate': template,
        'name': split,
        'numBytes': str(num_bytes[split] if num_bytes else shard_sizes(output, files)),
        'shardLengths': [str(int(shard['num_examples'])) for shard in entry['shards']],
      }
    )
  tfrecord = shard_format.name == file_formats.FileFormat.TFRECORD
  files = 'TFRecords' if tfrecord else 'ArrayRecord files'
  return {
    'description': f'Image folder converted to {files} of tf.train.Example by folder2tfrecord '
    "(keys as in TensorFlow's build_imagenet_data.py).",
    'fileFormat': shard_format.name,
    'name': DATASET_NAME,
    'splits': splits,
    'version': DATASET_VERSION,
  }


def tfds_metadata_files(
  output: layout.OutputLayout,
  manifest: dict,
  class_names: list[str],
  num_bytes: Optional[Dict[str, int]] = None,
  phash: bool = True,
) -> Dict[str, str]:
  """{file name: content} of dataset_info.json, features.json and the ClassLabel names file; {} (and
  a warning that says why) when TFDS cannot read the shards.

  Written from the schema TFDS serializes (tests/test_tfds.py reads them back with TFDS), without
  importing TFDS or TensorFlow, so the converter's last step stays light.

  Args:
    output: the converter's output (holding the shards named in the manifest).
    manifest: the manifest.json content (splits with per-shard "file" and "num_examples").
    class_names: class names in label order, see `tfds_label_names`.
    num_bytes: {split: bytes of its shards}; None reads the shard files' sizes (they must exist).
    phash: the records have `image/phash` (False for outputs of versions before duplicates.jsonl).

  Raises:
    ValueError: class names inconsistent with the manifest.
  """
  if manifest.get('compression', 'none') != 'none':
    _LOGGER.warning(
      'Not writing TFDS metadata: TFDS reads uncompressed TFRecords only and these '
      'shards are %s-compressed (convert with --compression none to read with TFDS).',
      manifest['compression'],
    )
    return {}
  try:
    output.shard_names.tfds_filepath_template()
  except ValueError as e:
    _LOGGER.warning(
      'Not writing TFDS metadata: TFDS cannot name these shards (%s); use a '
      '--shard_name_template with {index:05d} and {num_shards:05d} to read with TFDS.',
      e,
    )
    return {}
  names = tfds_label_names(manifest, class_names)
  features = features_json(len(names), phash, bool(manifest.get('multi_label')))
  return {
    layout.FEATURES_FILE: layout.to_json(features, indent=4),
    layout.DATASET_INFO_FILE: layout.to_json(dataset_info_json(output, manifest, num_bytes)),
    layout.TFDS_LABEL_NAMES_FILE: ''.join(name + '\n' for name in names),
  }


def write_tfds_metadata(
  output: layout.OutputLayout, manifest: dict, class_names: list[str], phash: bool = True
) -> None:
  """Writes `tfds_metadata_files` into the output (after the shards and manifest.json exist), through
  Beam FileSystems (local, gs:// or s3://).

  Raises:
    ValueError: class names inconsistent with the manifest.
  """
  for name, text in tfds_metadata_files(output, manifest, class_names, phash=phash).items():
    layout.write_text(output.path(name), text)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI for outputs converted earlier: `python -m transforms.metadata.tfds_metadata OUTPUT [beam
  options]` reads manifest.json and labels.txt and writes the TFDS metadata next to the shards."""
  parser = argparse.ArgumentParser(
    prog='python -m transforms.metadata.tfds_metadata', description=main.__doc__.split('\n')[0]
  )
  parser.add_argument('output_dir')
  args, beam_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
  FileSystems.set_options(PipelineOptions(beam_args))
  output, manifest = layout.read_output(args.output_dir)
  class_names = layout.read_text(output.path(layout.LABELS_FILE)).splitlines()
  # Records have image/phash since outputs have duplicates.jsonl (transforms/duplicates/near.py).
  phash = FileSystems.exists(output.path(layout.DUPLICATES_FILE))
  write_tfds_metadata(output, manifest, class_names, phash)
  return 0


if __name__ == '__main__':
  logging.basicConfig(level=logging.INFO)
  sys.exit(main())
