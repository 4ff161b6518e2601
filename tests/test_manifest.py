"""Manifests (transforms/inputs/manifest.py): parsing rules, and real conversions of the sample photos
from
the four layouts of issue 26 (Kaggle CSV with ids, HF metadata.jsonl, AutoML CSV, multi-label JSONL)
read back with TensorFlow, TFDS and ExampleSource."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from transforms.inputs import manifest
from transforms.inputs.manifest import ManifestError, ManifestSpec
from transforms.inputs.manifest_listing import NOT_FOUND
from transforms.split.sharding import TEST, TRAIN, UNSPLIT, VALIDATION

SAMPLE_IMAGES = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'sample_images'
)


def _write(path, text):
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  return str(path)


def test_kaggle_ids_with_path_format_and_repeated_row(tmp_path):
  path = _write(tmp_path / 'train.csv', 'image_id,label\na,0\nb,10\nc,2\na,0\n')
  spec = ManifestSpec(path, '/data', path_format='{}.jpg')
  rows = list(manifest.read_rows(spec))
  assert [(r.line, r.key, r.labels, r.split) for r in rows] == [
    (2, 'a.jpg', ('0',), UNSPLIT),
    (3, 'b.jpg', ('10',), UNSPLIT),
    (4, 'c.jpg', ('2',), UNSPLIT),
    (5, 'a.jpg', ('0',), UNSPLIT),
  ]
  facts = manifest.scan(spec)
  assert facts.labels == ('0', '2', '10')  # integer ids in numeric order
  assert facts.repeated_lines == {5} and facts.num_rows == 3 and not facts.multi_label


def test_hf_jsonl_columns_and_splits(tmp_path):
  path = _write(
    tmp_path / 'metadata.jsonl',
    '{"file_name": "train/a.jpg", "split": "train", "label": "cat"}\n\n'
    '{"file_name": "./b.jpg", "split": "VAL", "label": "dog"}\n'
    '{"file_name": "c.jpg", "split": "test", "label": "dog"}\n'
    '{"file_name": "d.jpg", "split": "", "label": "dog"}\n',
  )
  rows = list(manifest.read_rows(ManifestSpec(path, '/data')))
  assert [(r.line, r.key, r.split) for r in rows] == [
    (1, 'train/a.jpg', TRAIN),
    (3, 'b.jpg', VALIDATION),
    (4, 'c.jpg', TEST),
    (5, 'd.jpg', UNSPLIT),
  ]


def test_automl_headerless_multi_label_and_absolute_paths(tmp_path):
  path = _write(
    tmp_path / 'automl.csv',
    'TRAIN,gs://bucket/img/a.jpg,cat,dog\n'
    'UNASSIGNED,gs://bucket/img/b.jpg,cat,,\nTEST,gs://other/c.jpg,dog\n',
  )
  spec = ManifestSpec(path, 'gs://bucket/img', columns=('split', 'path', 'label'))
  rows = list(manifest.read_rows(spec))
  assert [(r.key, r.labels, r.split) for r in rows] == [
    ('a.jpg', ('cat', 'dog'), TRAIN),
    ('b.jpg', ('cat',), UNSPLIT),
    ('gs://other/c.jpg', ('dog',), TEST),
  ]
  assert manifest.scan(spec).multi_label


@pytest.mark.parametrize(
  'cell, separator, expected',
  [
    ('[1.0, 9.0]', None, (('1', '9'), True)),  # FathomNet
    ('cat|dog|cat', '|', (('cat', 'dog'), True)),
    ('clear  primary water', ' ', (('clear', 'primary', 'water'), True)),  # Kaggle's Planet
    ('cat', None, (('cat',), False)),
    (['b', 'a'], None, (('b', 'a'), True)),
    (7, None, (('7',), False)),
  ],
)
def test_parse_labels(cell, separator, expected):
  assert manifest.parse_labels(cell, separator, 'here') == expected


@pytest.mark.parametrize(
  'text, message',
  [
    ('image,label\na.jpg,\n', 'line 2: empty label'),
    ('image,label,split\na.jpg,cat,train\nb.jpg,cat,holdout\n', "line 3: unknown split 'holdout'"),
    ('image,label\na.jpg,cat\nb.jpg,cat,extra\n', 'line 3: 3 cells, the header has 2'),
    ('image,label\na.jpg,cat\n"b.jpg,cat\n', 'malformed CSV'),
    ('image,label\na.jpg,cat\nb.jpg,dog\na.jpg,dog\n', 'lines 2 and 4 list the same file'),
    ('name,label\na.jpg,cat\n', 'no path column'),
    ('image,label\n../a.jpg,cat\n', 'line 2: path'),
    ('image,label\na.jpg,[]\n', 'line 2: empty label'),
  ],
)
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
  with pytest.raises(ManifestError, match='neither classes nor ids'):
    manifest.manifest_label_map(facts, {'cat': 0, 'cow': 1}, path)


# Real conversions of the sample photos (DirectRunner), one per layout of issue 26.

CLASSES = sorted(
  d for d in os.listdir(SAMPLE_IMAGES) if os.path.isdir(os.path.join(SAMPLE_IMAGES, d))
)
PHOTOS = [(c, f) for c in CLASSES for f in sorted(os.listdir(os.path.join(SAMPLE_IMAGES, c)))]


def _copy(folder, name_of=lambda c, f: f):
  os.makedirs(folder, exist_ok=True)
  for c, f in PHOTOS:
    shutil.copy(os.path.join(SAMPLE_IMAGES, c, f), os.path.join(folder, name_of(c, f)))


def _convert(capsys, *flags):
  from pipeline.run import run  # pylint: disable=import-outside-toplevel

  code = run([*flags, '--direct_num_workers', '1'])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _records(output, split):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  paths = sorted(str(p) for p in output.glob(f'{split}-*-of-*'))
  result = {}
  for record in tf.data.TFRecordDataset(paths):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    result[feature['image/filename'].bytes_list.value[0].decode()] = (
      list(feature['image/class/label'].int64_list.value),
      [v.decode() for v in feature['image/class/synset'].bytes_list.value],
    )
  return result


def _stem(name):
  return os.path.splitext(name)[0]


@pytest.mark.slow
def test_kaggle_csv_of_ids(tmp_path, capsys):
  images = tmp_path / 'train_images'
  _copy(images, lambda c, f: _stem(f) + '.jpg')
  shutil.copy(os.path.join(SAMPLE_IMAGES, 'animal', 'gc_owl.JPEG'), images / 'not_listed.jpg')
  rows = [f'{_stem(f)},{CLASSES.index(c)}' for c, f in PHOTOS] + ['no_such_image,1']
  csv_path = _write(tmp_path / 'train.csv', 'image_id,label\n' + '\n'.join(rows) + '\n')
  output = tmp_path / 'out'
  code, out, _ = _convert(
    capsys,
    '--input',
    str(images),
    '--manifest',
    csv_path,
    '--manifest_path_format',
    '{}.jpg',
    '--output',
    str(output),
    '--validation_fraction',
    '0.2',
  )
  assert code == 0, out
  assert f'rejected      1  {NOT_FOUND}' in out
  assert 'not converted: 1 file under --input in no row of --manifest' in out
  assert (output / 'labels.txt').read_text() == ''.join(f'{i}\n' for i in range(len(CLASSES)))
  records = {**_records(output, 'train'), **_records(output, 'validation')}
  assert records == {
    _stem(f) + '.jpg': ([CLASSES.index(c)], [str(CLASSES.index(c))]) for c, f in PHOTOS
  }
  stats = json.loads((output / 'stats.json').read_text())
  assert stats['validation']['num_examples'] == sum(
    round(n * 0.2 + 1e-9) for n in (sum(1 for c, _ in PHOTOS if c == k) for k in CLASSES)
  )
  rejects = [json.loads(line) for line in (output / 'rejects.jsonl').read_text().splitlines()]
  assert rejects == [
    {'path': str(images / 'no_such_image.jpg'), 'reason': NOT_FOUND, 'split': None}
  ]


@pytest.mark.slow
def test_hf_metadata_jsonl_with_splits_read_by_tfds(tmp_path, capsys):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  root = tmp_path / 'hf'
  _copy(root / 'images')
  splits = {
    f: 'test' if i % 7 == 0 else 'val' if i % 5 == 0 else 'train' for i, (_, f) in enumerate(PHOTOS)
  }
  _write(
    root / 'metadata.jsonl',
    ''.join(
      json.dumps({'file_name': f'images/{f}', 'label': c, 'split': splits[f]}) + '\n'
      for c, f in PHOTOS
    ),
  )
  output = tmp_path / 'out'
  code, out, _ = _convert(
    capsys,
    '--input',
    str(root),
    '--manifest',
    str(root / 'metadata.jsonl'),
    '--output',
    str(output),
  )
  assert code == 0, out
  assert 'not converted' not in out  # metadata.jsonl itself is not an unlisted file
  for split, name in (('train', 'train'), ('validation', 'val'), ('test', 'test')):
    records = _records(output, split)
    assert sorted(records) == sorted(f'images/{f}' for f, s in splits.items() if s == name)
    assert all(
      synset == [c]
      for (c, f) in PHOTOS
      if f'images/{f}' in records
      for _, synset in [records[f'images/{f}']]
    )
  builder = tfds.builder_from_directory(str(output))
  assert builder.info.features['image']['class']['label'].names == CLASSES
  labels = [int(e['image']['class']['label']) for e in tfds.as_numpy(builder.as_dataset('test'))]
  assert sorted(labels) == sorted(CLASSES.index(c) for c, f in PHOTOS if splits[f] == 'test')


@pytest.mark.slow
def test_automl_headerless_csv_with_absolute_paths(tmp_path, capsys):
  bucket = tmp_path / 'bucket'
  _copy(bucket)
  uses = ['TRAIN', 'TRAIN', 'VALIDATION', 'TEST', 'UNASSIGNED']
  lines = [f'{uses[i % 5]},{bucket / f},{c}' for i, (c, f) in enumerate(PHOTOS)]
  shutil.copy(bucket / PHOTOS[0][1], bucket / 'copy.jpg')  # a copy of a TRAIN file, listed as TEST
  lines.append(f'TEST,{bucket / "copy.jpg"},{PHOTOS[0][0]}')
  csv_path = _write(tmp_path / 'automl.csv', '\n'.join(lines) + '\n')
  output = tmp_path / 'out'
  code, out, _ = _convert(
    capsys,
    '--input',
    str(bucket),
    '--manifest',
    csv_path,
    '--manifest_columns',
    'split,path,label',
    '--output',
    str(output),
  )
  assert code == 0, out
  stats = json.loads((output / 'stats.json').read_text())
  given = {use: sum(1 for i in range(len(PHOTOS)) if uses[i % 5] == use) for use in uses}
  assert stats['validation']['num_examples'] == given['VALIDATION']
  assert stats['test']['num_examples'] == given['TEST'] + 1
  assert stats['train']['num_examples'] == given['TRAIN'] + given['UNASSIGNED']  # no fractions
  assert set(_records(output, 'test')) == {f for i, (_, f) in enumerate(PHOTOS) if i % 5 == 3} | {
    'copy.jpg'
  }  # the manifest's split wins over copies following their first file
  assert stats['duplicates']['files_across_splits'] == 1


MULTI = {'landscape': ['outdoor'], 'flower': ['outdoor'], 'space': ['outdoor']}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_multi_label_jsonl_read_by_tf_tfds_example_source_and_model_garden(tmp_path, capsys):
  from tests.test_model_garden import _model_garden_env  # pylint: disable=import-outside-toplevel
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  import yaml  # pylint: disable=import-outside-toplevel
  from pipeline import read  # pylint: disable=import-outside-toplevel
  from pipeline import verify as verify_lib  # pylint: disable=import-outside-toplevel

  photos = tmp_path / 'photos'
  _copy(photos)
  truth = {
    f: sorted({c, *MULTI.get(c, [])} | ({'png'} if f.endswith('.png') else set()))
    for c, f in PHOTOS
  }
  _write(
    tmp_path / 'labels.jsonl',
    ''.join(json.dumps({'id': f, 'categories': truth[f]}) + '\n' for _, f in PHOTOS),
  )
  output = tmp_path / 'out'
  code, out, _ = _convert(
    capsys,
    '--input',
    str(photos),
    '--manifest',
    str(tmp_path / 'labels.jsonl'),
    '--output',
    str(output),
    '--validation_fraction',
    '0.25',
    '--label_offset',
    '1',
  )
  assert code == 0, out
  names = sorted({name for labels in truth.values() for name in labels})
  assert (output / 'labels.txt').read_text().splitlines() == names  # label i + 1 (docs/output.md)
  records = {**_records(output, 'train'), **_records(output, 'validation')}
  assert records == {f: ([names.index(n) + 1 for n in truth[f]], truth[f]) for f in truth}
  stats = json.loads((output / 'stats.json').read_text())
  counted = {
    n: sum(stats[split]['class_counts'].get(n, 0) for split in ('train', 'validation'))
    for n in names
  }
  assert counted == {n: sum(n in labels for labels in truth.values()) for n in names}

  report = verify_lib.verify(str(output))  # each record's label list and per-label counts
  assert report.ok, report.problems
  garden = yaml.safe_load((output / 'model_garden.yaml').read_text())
  assert garden['task']['train_data']['is_multilabel'] is True
  assert garden['task']['losses']['use_binary_cross_entropy'] is True

  source = read.ExampleSource(str(output), 'validation')
  examples = list(source)
  assert {e['filename']: e['label'] for e in examples} == {
    f: [names.index(n) + 1 for n in truth[f]] for f in _records(output, 'validation')
  }
  images, labels = next(iter(read.dataset(str(output), 'validation', 64, training=False)))
  assert labels.shape == (len(examples), len(names) + 1)
  assert sorted(labels.numpy().sum(axis=1).tolist()) == sorted(len(e['label']) for e in examples)

  builder = tfds.builder_from_directory(str(output))
  tfds_labels = [
    sorted(e['image']['class']['label'].tolist())
    for e in tfds.as_numpy(builder.as_dataset('validation'))
  ]
  assert sorted(tfds_labels) == sorted(e['label'] for e in examples)

  # Model Garden's classification input with is_multilabel, as model_garden.yaml sets it.
  result = subprocess.run(
    [sys.executable, '-c', _MODEL_GARDEN_MULTI_LABEL, str(output), str(len(names) + 1)],
    env=_model_garden_env(),
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  multi_hot = json.loads(result.stdout.strip().splitlines()[-1])
  assert sorted(multi_hot) == sorted(
    [int(k in e['label']) for k in range(len(names) + 1)] for e in examples
  )


_MODEL_GARDEN_MULTI_LABEL = """
import json, sys, yaml
import tensorflow as tf
from official.vision.dataloaders import classification_input
output, num_classes = sys.argv[1], int(sys.argv[2])
data = yaml.safe_load(open(output + '/model_garden.yaml'))['task']['validation_data']
decoder = classification_input.Decoder(is_multilabel=data['is_multilabel'])
parser = classification_input.Parser(output_size=[64, 64], num_classes=num_classes,
                                     is_multilabel=data['is_multilabel'])
records = tf.data.TFRecordDataset(tf.io.gfile.glob(data['input_path']))
parse = parser.parse_fn(is_training=False)
labels = [parse(decoder.decode(r))[1].numpy().astype(int).tolist() for r in records]
print(json.dumps(labels))
"""


@pytest.mark.slow
def test_bad_manifest_stops_before_any_work(tmp_path, capsys):
  photos = tmp_path / 'photos'
  _copy(photos)
  path = _write(
    tmp_path / 'm.csv', 'image,label,split\ngc_cat.JPEG,animal,train\ngc_owl.JPEG,animal,holdout\n'
  )
  code, _, err = _convert(
    capsys, '--input', str(photos), '--manifest', path, '--output', str(tmp_path / 'out')
  )
  assert code == 2 and f'{path} line 3: unknown split' in err
  assert not (tmp_path / 'out').exists()
  code, _, err = _convert(
    capsys,
    '--input',
    str(photos),
    '--manifest_columns',
    'path,label',
    '--output',
    str(tmp_path / 'out'),
  )
  assert code == 2 and 'describe a --manifest' in err
  code, _, err = _convert(
    capsys,
    '--input',
    str(tmp_path / 'nothing'),
    '--manifest',
    path,
    '--output',
    str(tmp_path / 'out'),
  )
  assert code == 2 and 'is not a folder' in err


def _small_manifest(tmp_path, label_of=lambda c: c):
  """A flat folder of the sample photos and a metadata.csv naming each with its class, no split."""
  photos = tmp_path / 'photos'
  _copy(photos)
  return photos, _write(
    tmp_path / 'metadata.csv',
    'file_name,label\n' + ''.join(f'{f},{label_of(c)}\n' for c, f in PHOTOS),
  )


@pytest.mark.slow
def test_plan_config_file_and_resume_with_a_manifest(tmp_path, capsys):
  photos, csv_path = _small_manifest(tmp_path)
  output = tmp_path / 'out'
  config = _write(
    tmp_path / 'run.yaml', 'input: photos\nmanifest: metadata.csv\nvalidation_fraction: 0.2\n'
  )  # paths relative to the config file's folder
  code, out, _ = _convert(capsys, '--config', config, '--output', str(output), '--plan')
  assert code == 0 and 'Listing: 5 classes' in out and '54 files to convert' in out
  planned = [line.split() for line in out.splitlines() if line.startswith('  (all classes)')][0]
  code, out, _ = _convert(capsys, '--config', config, '--output', str(output))
  assert code == 0, out
  stats = json.loads((output / 'stats.json').read_text())
  assert planned[2:] == [
    str(stats['train']['num_examples']),
    str(stats['validation']['num_examples']),
  ]
  recorded = json.loads((output / 'manifest.json').read_text())['options']['manifest']
  assert recorded == manifest.manifest_digest(csv_path)

  code, out, _ = _convert(capsys, '--config', config, '--output', str(output), '--resume')
  assert code == 0 and 'resumed: 2 shards kept' in out, out
  _write(csv_path, open(csv_path, encoding='utf-8').read().replace(',space', ',object'))
  code, _, err = _convert(capsys, '--config', config, '--output', str(output), '--resume')
  assert code == 2 and 'manifest' in err and 'differ' in err


def test_repeated_rows_one_image_or_an_error_naming_both_lines(tmp_path):
  path = _write(tmp_path / 'm.csv', 'image,label\na.jpg,cat\nb.jpg,dog\na.jpg,cat\na.jpg,cat\n')
  facts = manifest.scan(ManifestSpec(path, '/data'))
  assert facts.repeated_lines == {4, 5} and facts.num_rows == 2
  _write(tmp_path / 'm.csv', 'image,label\na.jpg,cat\nb.jpg,dog\na.jpg,cat\nb.jpg,dog\na.jpg,dog\n')
  with pytest.raises(ManifestError, match='lines 2 and 6 list the same file'):
    manifest.scan(ManifestSpec(path, '/data'))


@pytest.mark.slow
def test_multi_label_array_record_random_access(tmp_path, capsys):
  pytest.importorskip('array_record')
  from pipeline.read import ExampleSource  # pylint: disable=import-outside-toplevel

  photos = tmp_path / 'photos'
  _copy(photos)
  _write(
    tmp_path / 'labels.csv',
    'image,categories\n'
    + ''.join(f'{f},{c}|{"png" if f.endswith(".png") else "photo"}\n' for c, f in PHOTOS),
  )
  output = tmp_path / 'out'
  code, out, _ = _convert(
    capsys,
    '--input',
    str(photos),
    '--manifest',
    str(tmp_path / 'labels.csv'),
    '--label_separator',
    '|',
    '--file_format',
    'array_record',
    '--output',
    str(output),
  )
  assert code == 0, out
  names = (output / 'labels.txt').read_text().splitlines()
  source = ExampleSource(str(output), 'train')
  by_file = {source[i]['filename']: source[i] for i in range(len(source))}
  assert len(by_file) == len(PHOTOS)
  for c, f in PHOTOS:
    expected = sorted([c, 'png' if f.endswith('.png') else 'photo'])
    assert by_file[f]['synset'] == expected
    assert by_file[f]['label'] == [names.index(name) for name in expected]
