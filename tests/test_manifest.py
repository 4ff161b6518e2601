"""Manifests (transforms/manifest.py): parsing rules, and real conversions of the sample photos from
the four layouts of issue 26 (Kaggle CSV with ids, HF metadata.jsonl, AutoML CSV, multi-label JSONL)
read back with TensorFlow, TFDS and ExampleSource."""

import json
import os
import shutil

import pytest

from transforms import manifest
from transforms.manifest import ManifestError, ManifestSpec
from transforms.sharding import TEST, TRAIN, UNSPLIT, VALIDATION

SAMPLE_IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data',
                             'sample_images')


def _write(path, text):
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  return str(path)


def test_kaggle_ids_with_path_format_and_repeated_row(tmp_path):
  path = _write(tmp_path / 'train.csv', 'image_id,label\na,0\nb,10\nc,2\na,0\n')
  spec = ManifestSpec(path, '/data', path_format='{}.jpg')
  rows = list(manifest.read_rows(spec))
  assert [(r.line, r.key, r.labels, r.split) for r in rows] == [
      (2, 'a.jpg', ('0',), UNSPLIT), (3, 'b.jpg', ('10',), UNSPLIT), (4, 'c.jpg', ('2',), UNSPLIT),
      (5, 'a.jpg', ('0',), UNSPLIT)]
  facts = manifest.scan(spec)
  assert facts.labels == ('0', '2', '10')  # integer ids in numeric order
  assert facts.repeated_lines == {5} and facts.num_rows == 3 and not facts.multi_label


def test_hf_jsonl_columns_and_splits(tmp_path):
  path = _write(tmp_path / 'metadata.jsonl',
                '{"file_name": "train/a.jpg", "split": "train", "label": "cat"}\n\n'
                '{"file_name": "./b.jpg", "split": "VAL", "label": "dog"}\n'
                '{"file_name": "c.jpg", "split": "test", "label": "dog"}\n'
                '{"file_name": "d.jpg", "split": "", "label": "dog"}\n')
  rows = list(manifest.read_rows(ManifestSpec(path, '/data')))
  assert [(r.line, r.key, r.split) for r in rows] == [
      (1, 'train/a.jpg', TRAIN), (3, 'b.jpg', VALIDATION), (4, 'c.jpg', TEST), (5, 'd.jpg', UNSPLIT)]


def test_automl_headerless_multi_label_and_absolute_paths(tmp_path):
  path = _write(tmp_path / 'automl.csv', 'TRAIN,gs://bucket/img/a.jpg,cat,dog\n'
                'UNASSIGNED,gs://bucket/img/b.jpg,cat,,\nTEST,gs://other/c.jpg,dog\n')
  spec = ManifestSpec(path, 'gs://bucket/img', columns=('split', 'path', 'label'))
  rows = list(manifest.read_rows(spec))
  assert [(r.key, r.labels, r.split) for r in rows] == [
      ('a.jpg', ('cat', 'dog'), TRAIN), ('b.jpg', ('cat',), UNSPLIT),
      ('gs://other/c.jpg', ('dog',), TEST)]
  assert manifest.scan(spec).multi_label


@pytest.mark.parametrize('cell, separator, expected', [
    ('[1.0, 9.0]', None, (('1', '9'), True)),  # FathomNet
    ('cat|dog|cat', '|', (('cat', 'dog'), True)),
    ('cat', None, (('cat',), False)),
    (['b', 'a'], None, (('b', 'a'), True)),
    (7, None, (('7',), False)),
])
def test_parse_labels(cell, separator, expected):
  assert manifest.parse_labels(cell, separator, 'here') == expected


@pytest.mark.parametrize('text, message', [
    ('image,label\na.jpg,\n', 'line 2: empty label'),
    ('image,label,split\na.jpg,cat,train\nb.jpg,cat,holdout\n', "line 3: unknown split 'holdout'"),
    ('image,label\na.jpg,cat\nb.jpg,cat,extra\n', 'line 3: 3 cells, the header has 2'),
    ('image,label\na.jpg,cat\n"b.jpg,cat\n', 'malformed CSV'),
    ('image,label\na.jpg,cat\nb.jpg,dog\na.jpg,dog\n', 'lines 2 and 4 list the same file'),
    ('name,label\na.jpg,cat\n', 'no path column'),
    ('image,label\n../a.jpg,cat\n', 'line 2: path'),
    ('image,label\na.jpg,[]\n', 'line 2: empty label'),
])
def test_bad_rows_name_the_line(tmp_path, text, message):
  path = _write(tmp_path / 'm.csv', text)
  with pytest.raises(ManifestError, match=message.replace('[', r'\[')):
    manifest.scan(ManifestSpec(path, '/data'))


def test_bad_json_line_and_extension(tmp_path):
  path = _write(tmp_path / 'm.jsonl', '{"file_name": "a.jpg", "label": "cat"}\n{"file_name": \n')
  with pytest.raises(ManifestError, match='line 2: not a JSON object'):
    manifest.scan(ManifestSpec(path, '/data'))
  with pytest.raises(ManifestError, match='unknown extension'):
    ManifestSpec(str(tmp_path / 'm.txt'), '/data')


def test_column_flags_override_names(tmp_path):
  path = _write(tmp_path / 'm.tsv', 'id\tfile\tcategory\tfold\n1\ta.jpg\tcat\tvalid\n')
  spec = ManifestSpec(path, '/data', path_column='file', split_column='fold')
  assert list(manifest.read_rows(spec))[0][1:4] == ('a.jpg', ('cat',), VALIDATION)


def test_labels_file_names_integer_ids(tmp_path):
  path = _write(tmp_path / 'm.csv', 'id,label\na.jpg,2\nb.jpg,cat\n')
  facts = manifest.scan(ManifestSpec(path, '/data'))
  label_map = manifest.manifest_label_map(facts, {'cat': 0, 'dog': 2}, path)
  rows = list(manifest.read_rows(ManifestSpec(path, '/data')))
  names = ['cat', '__unused_1__', 'dog']
  assert manifest.resolve(rows[0].labels, label_map, names) == [(2, 'dog')]
  with pytest.raises(ManifestError, match="neither classes nor ids"):
    manifest.manifest_label_map(facts, {'cat': 0, 'cow': 1}, path)
