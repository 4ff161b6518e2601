"""The test split: root/train|val|test folders, or --test_fraction carved after the validation files,
through every output and reader (shards, stats, manifest, TFDS, verify, report, read)."""

import json
import logging
import math
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import (
  SAMPLE_DIR,
  SAMPLE_FLAGS,
  TFDS_TEMPLATE,
  arrange_split_folders,
  convert,
  files_by_class,
  sample_files,
)
from pipeline import read, report, verify
from transforms.split.sharding import ImageRef, split_class


def _counts(output, split):
  return json.loads((output / 'stats.json').read_text())[split]['class_counts']


def _filenames(output, split):
  """image/filename of every record of a split, through pipeline.read's shard list (manifest)."""
  names = []
  for path in read.shard_files(str(output), split):
    for raw in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(raw.numpy())
      names.append(example.features.feature['image/filename'].bytes_list.value[0].decode())
  return names


@pytest.mark.parametrize('n', [1, 2, 3, 7, 10, 13, 40])
@pytest.mark.parametrize('validation, test', [(0.2, 0.1), (0.25, 0.25), (0.0, 0.3), (0.5, 0.49)])
def test_test_files_come_after_the_validation_files(n, validation, test):
  refs = [ImageRef('', 0, 'c', f'c/{i}.jpg') for i in range(n)]
  without_test = split_class(refs, 0, validation)
  splits = split_class(refs, 0, validation, test)
  assert splits.get('validation') == without_test.get('validation')  # never moved by a test split
  assert len(splits.get('test', [])) == min(
    math.floor(n * test + 0.5), n - len(splits.get('validation', []))
  )
  assert sorted(r.key for part in splits.values() for r in part) == sorted(r.key for r in refs)
  assert split_class(refs, 0, validation, 0.0) == without_test


def test_split_folders_make_three_splits(split_folders_output):
  output = split_folders_output
  expected = {'train': {}, 'validation': {}, 'test': {}}
  for klass, files in files_by_class().items():
    expected['train'][klass] = len(files) - 3
    expected['validation'][klass] = 2
    expected['test'][klass] = 1
  manifest = json.loads((output / 'manifest.json').read_text())
  assert sorted(manifest['splits']) == ['test', 'train', 'validation']
  assert [s['file'] for s in manifest['splits']['test']['shards']] == ['test-00000-of-00001']
  for split, counts in expected.items():
    assert _counts(output, split) == counts
  assert sorted(p.name for p in output.glob('test-*')) == ['test-00000-of-00001']
  assert sorted(_filenames(output, 'test')) == sorted(
    f'{k}/{f[-3].name}' for k, f in files_by_class().items()
  )
  checked = verify.verify(str(output))
  assert checked.ok, checked.problems
  assert checked.records_read == {split: sum(c.values()) for split, c in expected.items()}


def test_test_fraction_keeps_the_validation_split_and_carves_test(fractions_output, sample_output):
  """FRACTIONS_FLAGS are SAMPLE_FLAGS plus --test_fraction 0.1 (and TFDS's shard names): validation
  is the same files in the same shards, byte for byte; test is round(n * 0.1) more files per class."""
  for index in range(2):
    ours = fractions_output / TFDS_TEMPLATE.format(split='validation', index=index, num_shards=2)
    assert ours.read_bytes() == (sample_output / f'validation-{index:05d}-of-00002').read_bytes()
  sizes = {klass: len(files) for klass, files in files_by_class().items()}
  assert _counts(fractions_output, 'test') == {
    k: math.floor(n * 0.1 + 0.5) for k, n in sizes.items()
  }
  names = {split: _filenames(fractions_output, split) for split in ('train', 'validation', 'test')}
  assert set(names['test']).isdisjoint(names['train'])
  assert sorted(sum(names.values(), [])) == sorted(f'{k}/{p.name}' for k, p in sample_files())
  assert set(names['train']) < set(_filenames(sample_output, 'train'))


def test_readers_on_the_test_split_and_tfds_names(fractions_output, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  manifest = read.load_manifest(str(fractions_output))
  assert manifest['options']['shard_name_template'] == TFDS_TEMPLATE
  assert [p.rsplit('/', 1)[-1] for p in read.shard_files(str(fractions_output), 'test')] == [
    'name-test.tfrecord-00000-of-00001'
  ]
  checked = verify.verify(str(fractions_output))
  assert checked.ok, checked.problems
  assert set(checked.records_read) == {'train', 'validation', 'test'}

  batches = list(
    read.dataset(str(fractions_output), 'test', batch_size=64, training=False, image_size=64)
  )
  assert sum(len(labels) for _, labels in batches) == manifest['splits']['test']['num_examples']

  builder = tfds.builder_from_directory(str(fractions_output))
  examples = list(tfds.as_numpy(builder.as_dataset(split='test')))
  label = builder.info.features['image']['class']['label']
  counts = {}
  for example in examples:
    name = label.int2str(example['image']['class']['label'])
    assert name == example['image']['class']['synset'].decode()
    counts[name] = counts.get(name, 0) + 1
  assert counts == _counts(fractions_output, 'test')

  data = report.read_report_data(str(fractions_output), max_records=0)
  assert [line.split(':')[0] for line in report.summary_lines(data)] == [
    'train',
    'validation',
    'test',
    # ATTRIBUTION.md
    'no split',
  ]
  assert len(data.sizes['test']) == manifest['splits']['test']['num_examples']
  result = report.report(str(fractions_output), str(tmp_path / 'report.png'))
  assert '<th>test</th>' in (tmp_path / 'report.html').read_text()
  # The test split's and the no-split rejects' lines make the header two lines taller; the sheet
  # moves down with it.
  png = np.asarray(Image.open(tmp_path / 'report.png').convert('RGB'))
  assert result.tiles[0].png_y == (
    report.HEADER_HEIGHT + 2 * report.SUMMARY_LINE_HEIGHT + report.TILE_GAP
  )
  for tile in result.tiles:
    shown = png[
      tile.png_y : tile.png_y + report.TILE_PIXELS, tile.png_x : tile.png_x + report.TILE_PIXELS
    ]
    assert np.array_equal(shown, report.tile_image(tile.sample.image))


def test_an_unlabelled_flat_test_folder_is_skipped_with_a_warning(tmp_path, caplog):
  photos = arrange_split_folders(tmp_path / 'photos')
  for path in list((photos / 'test').glob('*/*')):
    path.rename(photos / 'test' / path.name)
  for folder in [p for p in (photos / 'test').iterdir() if p.is_dir()]:
    folder.rmdir()
  with caplog.at_level(logging.WARNING):
    assert convert(photos, tmp_path / 'out') == 0
  assert 'no class folders' in caplog.text
  assert sorted(json.loads((tmp_path / 'out' / 'manifest.json').read_text())['splits']) == [
    'train',
    'validation',
  ]


def test_train_and_test_folders_alone_are_splits(tmp_path):
  photos = arrange_split_folders(tmp_path / 'photos')
  shutil.rmtree(photos / 'val')
  assert convert(photos, tmp_path / 'out', '--test_shards', '2') == 0
  manifest = json.loads((tmp_path / 'out' / 'manifest.json').read_text())
  assert sorted(manifest['splits']) == ['test', 'train']
  assert manifest['splits']['test']['num_shards'] == 2
  assert manifest['options']['test_shards'] == 2


@pytest.mark.parametrize(
  'flags, message',
  [
    (['--test_fraction', '0.1'], 'cannot be used when --input already has split folders'),
    (['--validation_fraction', '0.1'], 'cannot be used when --input already has split folders'),
  ],
)
def test_fractions_and_split_folders_exclude_each_other(tmp_path, capsys, flags, message):
  photos = arrange_split_folders(tmp_path / 'photos')
  assert convert(photos, tmp_path / 'out', *flags) == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
  'flags, message',
  [
    (
      ['--validation_fraction', '0.6', '--test_fraction', '0.4'],
      'must be < 1: train keeps the rest',
    ),
    (['--test_fraction', '1'], '--test_fraction must be in [0, 1)'),
    (['--test_shards', '-1'], '--test_shards must be >= 0'),
  ],
)
def test_bad_test_split_flags_fail_before_any_work(tmp_path, capsys, flags, message):
  assert convert(SAMPLE_DIR, tmp_path / 'out', *flags) == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


def test_with_test_fraction_zero_every_file_is_as_before(sample_output, tmp_path):
  """--test_fraction 0 (and the other new flags at their defaults) change no byte of the old files:
  manifest.json records a new flag only when it is set."""
  assert convert(SAMPLE_DIR, tmp_path / 'out', *SAMPLE_FLAGS, '--test_fraction', '0') == 0
  for reference in sample_output.iterdir():
    if reference.is_file() and reference.name not in ('model_garden.yaml', 'provenance.json'):
      assert (tmp_path / 'out' / reference.name).read_bytes() == reference.read_bytes(), (
        reference.name
      )
  options = json.loads((sample_output / 'manifest.json').read_text())['options']
  assert not {
    'test_fraction',
    'test_shards',
    'shard_name_template',
    'model_garden_batch_size',
  } & set(options)
