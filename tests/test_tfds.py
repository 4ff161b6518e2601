"""TFDS reads the converter's output through the metadata of transforms/metadata/tfds_metadata.py."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

import pytest

from transforms.output.layout import OutputLayout
from transforms.metadata.tfds_metadata import tfds_label_names, write_tfds_metadata

CLASSES = ['animal', 'flower', 'landscape', 'object', 'space']


def _with_tfds_metadata(source: pathlib.Path, target: pathlib.Path) -> dict:
  """A copy of a (read-only, shared) output directory with the TFDS metadata written into it."""
  shutil.copytree(source, target)
  manifest = json.loads((target / 'manifest.json').read_text())
  write_tfds_metadata(OutputLayout(str(target)), manifest, CLASSES)
  return manifest


def _class_counts(output: pathlib.Path, split: str) -> dict:
  return json.loads((output / 'stats.json').read_text())[split]['class_counts']


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
  'fixture, names',
  [
    ('sample_output', CLASSES),
    ('readers_offset1_output', ['background'] + CLASSES),
  ],
  ids=['label_offset0', 'label_offset1'],
)
def test_builder_from_directory_reads_every_record(request, tmp_path, fixture, names):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  output = tmp_path / 'output'
  manifest = _with_tfds_metadata(request.getfixturevalue(fixture), output)
  assert {p.name for p in output.iterdir()} >= {'dataset_info.json', 'features.json'}

  builder = tfds.builder_from_directory(str(output))
  label = builder.info.features['image']['class']['label']
  assert label.names == names
  for split, entry in manifest['splits'].items():
    info = builder.info.splits[split]
    assert info.shard_lengths == [s['num_examples'] for s in entry['shards']]
    assert info.num_examples == entry['num_examples']

  for split in manifest['splits']:
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert len(examples) == manifest['splits'][split]['num_examples']
    counts = {}
    for example in examples:
      image, klass = example['image'], example['image']['class']
      assert image['encoded'].shape == (image['height'], image['width'], 3)
      assert image['encoded'].dtype.name == 'uint8'
      assert image['phash'].dtype.name == 'int64'  # image/phash, declared in features.json
      name = label.int2str(klass['label'])
      assert name == klass['synset'].decode()  # the label's name is the class folder of the record
      assert image['filename'].decode().startswith(name + '/')
      counts[name] = counts.get(name, 0) + 1
    assert counts == _class_counts(output, split)


def test_train_split_as_supervised_style_pipeline(sample_output, tmp_path):
  """What docs/readers.md shows: as_dataset(split='train') mapped to (image, label) pairs."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  output = tmp_path / 'output'
  manifest = _with_tfds_metadata(sample_output, output)
  ds = tfds.builder_from_directory(str(output)).as_dataset(split='train', shuffle_files=True)
  pairs = ds.map(lambda e: (e['image']['encoded'], e['image']['class']['label'])).batch(64)
  images, labels = next(iter(tfds.as_numpy(pairs)))
  assert images.shape == (manifest['splits']['train']['num_examples'], 256, 256, 3)
  assert set(labels.tolist()) == set(range(len(CLASSES)))


def test_gzip_output_gets_no_metadata_and_a_warning(sample_output, tmp_path, caplog):
  output = tmp_path / 'output'
  shutil.copytree(sample_output, output)
  manifest = dict(json.loads((output / 'manifest.json').read_text()), compression='gzip')
  for name in ('dataset_info.json', 'features.json'):  # Written by the (uncompressed) conversion.
    (output / name).unlink()
  with caplog.at_level(logging.WARNING):
    write_tfds_metadata(OutputLayout(str(output)), manifest, CLASSES)
  assert not (output / 'dataset_info.json').exists()
  assert 'uncompressed' in caplog.text


@pytest.mark.parametrize(
  'offset, given, expected',
  [
    (0, CLASSES, CLASSES),
    (1, CLASSES, ['background'] + CLASSES),
    (1, ['background'] + CLASSES, ['background'] + CLASSES),  # labels.txt style
  ],
)
def test_label_names(offset, given, expected):
  assert tfds_label_names({'label_offset': offset, 'num_classes': 5}, given) == expected


@pytest.mark.parametrize(
  'offset, given', [(0, CLASSES[:4]), (1, ['x'] + CLASSES), (0, CLASSES * 2)]
)
def test_label_names_mismatch_is_an_error(offset, given):
  with pytest.raises(ValueError, match='num_classes=5'):
    tfds_label_names({'label_offset': offset, 'num_classes': 5}, given)


def test_shard_names_off_the_template_are_an_error(sample_output, tmp_path):
  output = tmp_path / 'output'
  shutil.copytree(sample_output, output)
  manifest = json.loads((output / 'manifest.json').read_text())
  first = manifest['splits']['train']['shards'][0]
  (output / first['file']).rename(output / ('x-' + first['file']))
  first['file'] = 'x-' + first['file']
  with pytest.raises(ValueError, match='do not follow'):
    write_tfds_metadata(OutputLayout(str(output)), manifest, CLASSES)


def test_command_line_for_an_existing_output(readers_offset1_output, tmp_path):
  """`python -m transforms.metadata.tfds_metadata OUTPUT` takes the names from labels.txt."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from transforms.metadata import tfds_metadata  # pylint: disable=import-outside-toplevel

  output = tmp_path / 'output'
  shutil.copytree(readers_offset1_output, output)
  assert tfds_metadata.main([str(output)]) == 0
  builder = tfds.builder_from_directory(str(output))
  assert builder.info.features['image']['class']['label'].names == ['background'] + CLASSES
  labels = [
    int(e['image']['class']['label']) for e in tfds.as_numpy(builder.as_dataset(split='validation'))
  ]
  assert (
    len(labels)
    == json.loads((output / 'manifest.json').read_text())['splits']['validation']['num_examples']
    and 0 not in labels
  )
