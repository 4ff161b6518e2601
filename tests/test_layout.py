"""The output layout (transforms/output/layout.py) and the shard summary record (transforms/records.py)."""

import fnmatch
import re

import pytest

from transforms.output import layout
from transforms.output.layout import OutputLayout, ShardNameTemplate
from transforms.records import Reject, ShardSummary


@pytest.mark.parametrize(
  'template,name,tfds',
  [
    (ShardNameTemplate.template, 'train-00003-of-00128', '{SPLIT}-{SHARD_X_OF_Y}'),
    (
      'flowers_{split}_{index:05d}-of-{num_shards:05d}.tfrecord',
      'flowers_validation_00000-of-00002.tfrecord',
      'flowers_{SPLIT}_{SHARD_X_OF_Y}.tfrecord',
    ),
    (
      'name-{split}.tfrecord-{index:05d}-of-{num_shards:05d}',
      'name-train.tfrecord-00127-of-00128',
      'name-{SPLIT}.tfrecord-{SHARD_X_OF_Y}',
    ),
  ],
)
def test_shard_names_format_and_parse_with_one_template(template, name, tfds):
  names = ShardNameTemplate(template)
  split, index, num_shards = names.parse(name)
  assert names.name(split, index, num_shards) == name
  assert names.names(split, num_shards)[index] == name
  assert names.tfds_filepath_template() == tfds


def test_array_record_shards_are_named_as_tfds_names_them():
  """TFDS's `{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}` less the dataset name."""
  names = layout.ARRAY_RECORD_SHARD_NAMES
  assert names.name('train', 3, 128) == 'train.array_record-00003-of-00128'
  assert names.parse('validation.array_record-00000-of-00002') == ('validation', 0, 2)
  assert names.parse('train-00000-of-00002') is None
  assert layout.DEFAULT_SHARD_NAMES.parse('train.array_record-00000-of-00002') is None
  assert names.tfds_filepath_template('array_record') == '{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}'
  assert layout.DEFAULT_SHARD_NAMES.tfds_filepath_template('tfrecord') == '{SPLIT}-{SHARD_X_OF_Y}'


def test_parse_refuses_what_the_template_does_not_write():
  names = layout.DEFAULT_SHARD_NAMES
  for other in (
    'train-00003-of-00128.tmp-ab12',
    'train-3-of-128',
    'train-00128-of-00128',
    'stats.json',
    'train-00003-of-00128.json',
    'tr/ain-00003-of-00128',
    '',
  ):
    assert names.parse(other) is None, other
  assert names.parse('test-00000-of-00001') == ('test', 0, 1)  # Any split name the converter makes.


def test_templates_must_number_the_shards():
  with pytest.raises(ValueError, match='index'):
    ShardNameTemplate('{split}.tfrecord')
  with pytest.raises(ValueError, match=r'has \{date\}, which is no field'):
    ShardNameTemplate('{split}-{index}-of-{num_shards}-{date}')
  with pytest.raises(ValueError, match='5 digits'):
    ShardNameTemplate('{split}-{index}-of-{num_shards}').tfds_filepath_template()


@pytest.mark.parametrize(
  'template, message',
  [
    ('../{split}-{index}-of-{num_shards}', "'/'"),  # leaves --output
    ('{split}/{index}-of-{num_shards}', "'/'"),
    ('{split}\\{index}-of-{num_shards}', 'makes names with'),
    ('_{split}-{index}-of-{num_shards}', 'starting with "_" or "."'),
    ('.{split}-{index}-of-{num_shards}', 'starting with "_" or "."'),
    ('{split}-{index}-of-{num_shards}*', "'*'"),  # a glob character (Model Garden's input_path)
    ('{split},{index}-of-{num_shards}', "','"),
    ('{split}{index}{num_shards}', 'ambiguous'),  # train712: shard 7 of 12, or 71 of 2?
    ('{split:.1}-{index}-of-{num_shards}', 'ambiguous'),  # train and test both 't'
    ('{split}-{index:c}-of-{num_shards}', 'ambiguous'),
    ('{split}-{index:s}-of-{num_shards}', 'does not format'),
  ],
)
def test_unsafe_or_ambiguous_templates_are_refused(template, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    ShardNameTemplate(template)


def test_splits_must_get_different_names():
  one_split = ShardNameTemplate('data-{index:05d}-of-{num_shards:05d}.tfrecord')
  one_split.check_splits(['train'])
  assert one_split.parse('data-00001-of-00002.tfrecord') == ('', 1, 2)
  with pytest.raises(ValueError, match="splits 'train' and 'validation' the same file names"):
    one_split.check_splits(['train', 'validation'])
  layout.DEFAULT_SHARD_NAMES.check_splits(['train', 'validation', 'test'])
  # Splits differing only by case would share a file on macOS and Windows disks.
  with pytest.raises(ValueError, match='the same file names'):
    layout.DEFAULT_SHARD_NAMES.check_splits(['test', 'Test'])


@pytest.mark.parametrize(
  'template, split, glob',
  [
    (ShardNameTemplate.template, 'validation', 'validation-*-of-*'),
    (
      'flowers_{split}_{index:05d}-of-{num_shards:05d}.tfrecord',
      'train',
      'flowers_train_*-of-*.tfrecord',
    ),
    ('{index:03d}-{split}-{num_shards}', 'test', '*-test-*'),
    ('data-{index:05d}-of-{num_shards:05d}', 'train', 'data-*-of-*'),
  ],
)
def test_glob_matches_the_split_and_only_it(template, split, glob):
  names = ShardNameTemplate(template)
  assert names.glob(split) == glob
  for other in ('train', 'validation', 'test'):
    matched = all(fnmatch.fnmatchcase(n, glob) for n in names.names(other, 12))
    assert matched == (other == split or '{split}' not in template)
    assert not any(fnmatch.fnmatchcase(n, glob) for n in layout.METADATA_FILES)


def test_readers_take_the_shard_names_from_the_manifest(tmp_path):
  template = 'flowers_{split}_{index:05d}-of-{num_shards:05d}.tfrecord'
  layout.write_json(
    str(tmp_path / layout.MANIFEST_FILE),
    {'options': {'shard_name_template': template}, 'splits': {}},
  )
  output, manifest = layout.read_output(str(tmp_path))
  assert output.shard_names == ShardNameTemplate(template) and manifest['splits'] == {}
  assert (
    OutputLayout.of_manifest('/x', {'options': {'seed': 0}}).shard_names
    == layout.DEFAULT_SHARD_NAMES
  )
  assert OutputLayout.of_manifest('/x', {}).shard_names == layout.DEFAULT_SHARD_NAMES


@pytest.mark.parametrize('root', ['/data/out', '/data/out/', 's3://bucket/out', 'gs://bucket/out/'])
def test_paths_of_the_output(root):
  output = OutputLayout(root)
  base = root.rstrip('/')
  assert output.path(layout.MANIFEST_FILE) == base + '/manifest.json'
  assert output.shard_path('train', 1, 4) == base + '/train-00001-of-00004'
  assert output.sidecar_path('train-00001-of-00004') == base + '/_work/train-00001-of-00004.json'
  assert output.work_path(layout.RUN_FILE) == base + '/_work/run.json'
  assert layout.is_temp(
    layout.temp_path(output.work_path('train-00001-of-00004'), 'ab').rsplit('/')[-1]
  )


def test_json_files_round_trip_with_stable_bytes(tmp_path):
  path = str(tmp_path / 'x.json')
  layout.write_json(path, {'b': 'ünï', 'a': [1, 2]})
  assert (tmp_path / 'x.json').read_text(
    encoding='utf-8'
  ) == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "ünï"\n}\n'
  assert layout.read_json(path) == {'a': [1, 2], 'b': 'ünï'}
  assert layout.read_optional_json(str(tmp_path / 'missing.json')) is None
  rows = [
    {'path': 'a/b.jpg', 'reason': 'x', 'split': None},
    {'path': 'c', 'reason': 'y', 'split': 'train'},
  ]
  layout.write_jsonl(str(tmp_path / 'r.jsonl'), rows)
  assert layout.read_jsonl(str(tmp_path / 'r.jsonl')) == rows
  layout.write_jsonl(str(tmp_path / 'empty.jsonl'), [])
  assert (tmp_path / 'empty.jsonl').read_bytes() == b''


def test_shard_summary_round_trips_its_sidecar_and_counts_rejects_once():
  summary = ShardSummary(
    'train-00000-of-00002',
    'train',
    2,
    1000,
    1,
    {'b': 1, 'a': 1},
    131072,
    (1, 2, 3),
    (4, 5, 6),
    (Reject('p', 'r', 'train'),),
  )
  value = summary.to_json()
  assert list(value['class_counts']) == ['a', 'b'] and value['channel_sums'] == [1, 2, 3]
  assert ShardSummary.from_json(value) == summary
  assert summary.num_rejected == 1
  value['added_by_a_later_version'] = 1
  assert ShardSummary.from_json(value) == summary
  with pytest.raises(KeyError):
    ShardSummary.from_json({'shard': 'x'})
