"""--file_format array_record (issue 15): the same records as the TFRecord run, read back by TFDS's
data
source, by Grain and by pipeline.read.ExampleSource (without TensorFlow), locally and from S3;
verify,
report, --resume and --overwrite on ArrayRecord output."""

from __future__ import annotations

import json
import pathlib
import pickle
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest

from clusters.outputs import read_dataset
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS, convert
from pipeline import verify as verify_lib
from pipeline.read import ExampleSource
from transforms.output import file_format

pytestmark = pytest.mark.timeout(600)
ARRAY_RECORD = ('--file_format', 'array_record')
# moto's server keeps every bucket for the life of the test process: not test_object_store.py's
# name.
BUCKET = 'array-record-photos'


@pytest.fixture(scope='module')
def array_record_output(tmp_path_factory) -> pathlib.Path:
  """The sample photos converted with SAMPLE_FLAGS to ArrayRecord (read-only for tests)."""
  output = tmp_path_factory.mktemp('array_record_output')
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, *ARRAY_RECORD) == 0
  return output


def _manifest(output: pathlib.Path) -> dict:
  return json.loads((output / 'manifest.json').read_text())


def _shard_paths(output: pathlib.Path, split: str) -> list:
  return [str(output / shard['file']) for shard in _manifest(output)['splits'][split]['shards']]


def _records(output: pathlib.Path, split: str) -> list:
  """Every record of a split in manifest order, read by the output's own format."""
  shard_format = file_format.of_manifest(_manifest(output))
  return [r for path in _shard_paths(output, split) for r in shard_format.read(path, 'none')]


def _same_examples(actual: dict, expected: dict) -> None:
  assert {k: actual[k] for k in ('label', 'filename', 'synset')} == {
    k: expected[k] for k in ('label', 'filename', 'synset')
  }
  np.testing.assert_array_equal(actual['image'], expected['image'])


def test_same_shards_order_records_and_stats_as_tfrecord(sample_output, array_record_output):
  tfrecord, array_record = _manifest(sample_output), _manifest(array_record_output)
  assert (tfrecord['file_format'], array_record['file_format']) == ('tfrecord', 'array_record')
  for split, entry in tfrecord['splits'].items():
    shards = array_record['splits'][split]['shards']
    assert [s['num_examples'] for s in shards] == [s['num_examples'] for s in entry['shards']]
    assert [s['file'] for s in shards] == [
      f'{split}.array_record-{i:05d}-of-{len(shards):05d}' for i in range(len(shards))
    ]
    for tf_path, ar_path in zip(
      _shard_paths(sample_output, split), _shard_paths(array_record_output, split)
    ):  # byte-identical records
      assert list(file_format.get('array_record').read(ar_path, 'none')) == list(
        file_format.get('tfrecord').read(tf_path, 'none')
      ), ar_path
  assert (array_record_output / 'stats.json').read_bytes() == (
    sample_output / 'stats.json'
  ).read_bytes()
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel

  reader = array_record_module.ArrayRecordReader(_shard_paths(array_record_output, 'train')[0])
  assert reader.writer_options_string().startswith('group_size:1,')
  assert ',uncompressed,' in reader.writer_options_string()
  info = json.loads((array_record_output / 'dataset_info.json').read_text())
  assert info['fileFormat'] == 'array_record'
  assert {s['filepathTemplate'] for s in info['splits']} == {'{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}'}


def test_tfds_data_source_reads_every_example_with_its_label(sample_output, array_record_output):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  builder = tfds.builder_from_directory(str(array_record_output))
  names = builder.info.features['image']['class']['label'].names
  for split in _manifest(array_record_output)['splits']:
    source = builder.as_data_source(split)
    expected = list(ExampleSource(str(sample_output), split))  # the TFRecord run, in order
    assert len(source) == len(expected)
    order = list(range(len(source)))
    random.Random(0).shuffle(order)
    for i in order:  # random access
      example = source[i]['image']
      assert example['filename'].decode() == expected[i]['filename']
      assert example['class']['label'] == expected[i]['label']
      assert names[example['class']['label']] == expected[i]['synset']
      assert example['encoded'].shape == expected[i]['image'].shape  # decoded by TFDS


def test_grain_array_record_data_source_reads_the_same_records(sample_output, array_record_output):
  import grain  # pylint: disable=import-outside-toplevel

  for split in ('train', 'validation'):
    source = grain.sources.ArrayRecordDataSource(_shard_paths(array_record_output, split))
    expected = _records(sample_output, split)
    assert len(source) == len(expected)
    order = list(range(len(source)))
    random.Random(1).shuffle(order)
    assert [source[i] for i in order] == [expected[i] for i in order]


def test_example_source_random_access_matches_the_tfrecord_run(sample_output, array_record_output):
  source = ExampleSource(str(array_record_output), 'train')
  expected = list(ExampleSource(str(sample_output), 'train'))
  assert source.file_format == 'array_record' and len(source) == len(expected) == 43
  order = list(range(len(source)))
  random.Random(2).shuffle(order)
  for i in order:
    _same_examples(source[i], expected[i])
  first = source[0]
  assert first['image'].dtype == np.uint8 and first['image'].shape == (256, 256, 3)
  assert isinstance(first['label'], int) and first['filename'].startswith(first['synset'] + '/')
  _same_examples(source[-1], expected[-1])
  for got, want in zip(source.__getitems__([5, 0, 42, 5]), [expected[i] for i in (5, 0, 42, 5)]):
    _same_examples(got, want)
  for bad in (43, -44):
    with pytest.raises(IndexError, match='out of range'):
      source[bad]  # pylint: disable=pointless-statement
  for got, want in zip(source, expected):  # iteration: front to back
    _same_examples(got, want)


def test_example_source_plugs_into_grain_and_pickles(array_record_output):
  import grain  # pylint: disable=import-outside-toplevel

  source = ExampleSource(str(array_record_output), 'validation')
  labels = sorted(e['label'] for e in source)
  shuffled = grain.MapDataset.source(source).shuffle(seed=0).map(lambda e: e['label'])
  assert len(shuffled) == len(source) and sorted(shuffled) == labels
  assert list(shuffled) != [e['label'] for e in source]  # shuffled, globally
  threads = grain.MapDataset.source(source).to_iter_dataset(grain.ReadOptions(num_threads=2))
  assert sorted(e['label'] for e in threads) == labels
  copy = pickle.loads(pickle.dumps(source))  # what Grain's and PyTorch's worker processes get
  _same_examples(copy[3], source[3])


def test_example_source_over_tfrecord_is_an_iterator(sample_output):
  source = ExampleSource(str(sample_output), 'validation')
  assert source.file_format == 'tfrecord' and len(source) == len(list(source)) == 11
  with pytest.raises(TypeError, match='--file_format array_record'):
    source[0]  # pylint: disable=pointless-statement
  with pytest.raises(ValueError, match=r"'test'.*\['train', 'validation'\]"):
    ExampleSource(str(sample_output), 'test')


_WITHOUT_TENSORFLOW = """
import sys

class Refuse:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets'):
      raise ImportError(name + ' must not be imported by ExampleSource')

sys.meta_path.insert(0, Refuse())
from pipeline.read import ExampleSource
counts = []
for output in sys.argv[1:]:
  source = ExampleSource(output, 'train')
  examples = list(source)
  if source.file_format == 'array_record':
    assert source[len(source) - 1]['filename'] == examples[-1]['filename']
  counts.append(len(examples))
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets'))
assert not loaded, loaded
print(counts)
"""


def test_example_source_imports_neither_tensorflow_nor_tfds(sample_output, array_record_output):
  done = subprocess.run(
    [sys.executable, '-c', _WITHOUT_TENSORFLOW, str(array_record_output), str(sample_output)],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(REPO)},
    check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.strip() == '[43, 43]'


def test_tf_data_refuses_array_record_output_with_a_hint(array_record_output):
  from pipeline import read  # pylint: disable=import-outside-toplevel

  with pytest.raises(ValueError, match='ExampleSource'):
    read.dataset(str(array_record_output), 'train', batch_size=8, training=False)


def test_verify_passes_and_names_a_corrupt_record(array_record_output, tmp_path):
  assert verify_lib.main([str(array_record_output)]) == 0
  output = pathlib.Path(shutil.copytree(array_record_output, tmp_path / 'out'))
  shard = output / _manifest(output)['splits']['train']['shards'][1]['file']
  data = bytearray(shard.read_bytes())
  data[len(data) // 3] ^= 0xFF  # inside some record's chunk
  shard.write_bytes(bytes(data))
  report = verify_lib.verify(str(output))
  assert not report.ok
  assert any(p.path == str(shard) and p.record_index is not None for p in report.problems), [
    str(p) for p in report.problems
  ]
  shard.write_bytes(bytes(data[: len(data) // 2]))  # truncated: the footer is gone
  assert any(p.path == str(shard) for p in verify_lib.verify(str(output)).problems)


def test_report_reads_array_record_like_tfrecord(sample_output, array_record_output):
  from pipeline import report  # pylint: disable=import-outside-toplevel

  tfrecord = report.read_report_data(str(sample_output), per_class=2, max_records=0)
  array_record = report.read_report_data(str(array_record_output), per_class=2, max_records=0)
  assert array_record.num_bytes == tfrecord.num_bytes and array_record.sizes == tfrecord.sizes
  assert [(s.filename, s.index) for v in array_record.samples.values() for s in v] == [
    (s.filename, s.index) for v in tfrecord.samples.values() for s in v
  ]


def test_resume_rewrites_only_the_missing_shard_byte_identical(array_record_output, tmp_path):
  output = pathlib.Path(shutil.copytree(array_record_output, tmp_path / 'out'))
  missing = output / 'train.array_record-00001-of-00003'
  missing.unlink()
  (output / '_SUCCESS').unlink()
  (output / '_work' / (missing.name + '.tmp-deadbeef')).write_bytes(b'partial')
  kept = (output / 'train.array_record-00000-of-00003').stat().st_mtime_ns
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, *ARRAY_RECORD, '--resume') == 0
  assert read_dataset(str(output)) == read_dataset(str(array_record_output))  # but provenance.json
  assert (output / 'train.array_record-00000-of-00003').stat().st_mtime_ns == kept
  assert not list((output / '_work').glob('*.tmp-*'))


def test_overwrite_replaces_tfrecord_shards_with_array_record(sample_output, tmp_path):
  output = pathlib.Path(shutil.copytree(sample_output, tmp_path / 'out'))
  assert convert(SAMPLE_DIR, output, *ARRAY_RECORD, '--train_shards', '2') == 2  # refused
  assert convert(SAMPLE_DIR, output, *ARRAY_RECORD, '--train_shards', '2', '--overwrite') == 0
  assert sorted(p.name for p in output.glob('*-of-*')) == [
    'train.array_record-00000-of-00002',
    'train.array_record-00001-of-00002',
  ]


def test_gzip_with_array_record_is_an_error_naming_arrayrecords_compression(tmp_path, capsys):
  assert convert(SAMPLE_DIR, tmp_path / 'out', *ARRAY_RECORD, '--compression', 'gzip') == 2
  message = capsys.readouterr().err
  assert 'ArrayRecord compresses each chunk itself' in message
  assert all(name in message for name in ('zstd', 'brotli', 'snappy', 'uncompressed'))
  assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_s3_output_matches_the_local_run_and_reads_back(
  array_record_output, sample_output, tmp_path
):
  """s3:// to s3:// on moto: shards written locally, copied to a temp name and renamed; the store
  holds the local run's bytes; ExampleSource and verify read it there; TFDS and Grain read a copy."""
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
  from clusters.beam_services import run_converter  # pylint: disable=import-outside-toplevel
  from clusters.outputs import assert_same_dataset, read_dataset  # pylint: disable=import-outside-toplevel
  from clusters.processes import tail  # pylint: disable=import-outside-toplevel
  from clusters.s3 import moto_s3  # pylint: disable=import-outside-toplevel
  import grain  # pylint: disable=import-outside-toplevel
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  with moto_s3() as s3:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    s3.upload_tree(BUCKET, 'in/', SAMPLE_DIR)
    code = run_converter(
      REPO,
      [
        '--input',
        f's3://{BUCKET}/in/',
        '--output',
        f's3://{BUCKET}/out/',
        *SAMPLE_FLAGS,
        *ARRAY_RECORD,
        *s3.beam_args(),
      ],
      tmp_path / 's3.log',
    )
    assert code == 0, tail(tmp_path / 's3.log', 60)
    options = PipelineOptions(s3.beam_args())
    keys = [o['Key'] for o in client.list_objects_v2(Bucket=BUCKET, Prefix='out/')['Contents']]
    assert not [key for key in keys if '.tmp-' in key], 'temp files left in the store'
    assert verify_lib.verify(f's3://{BUCKET}/out', options).ok
    stored = read_dataset(f's3://{BUCKET}/out')
    assert_same_dataset(stored, read_dataset(str(array_record_output)))
    from_s3 = ExampleSource(
      f's3://{BUCKET}/out', 'train', cache_dir=str(tmp_path / 'cache'), pipeline_options=options
    )
    expected = list(ExampleSource(str(sample_output), 'train'))
    assert len(from_s3) == len(expected)
    for i in random.Random(3).sample(range(len(expected)), len(expected)):
      _same_examples(from_s3[i], expected[i])
  copy = tmp_path / 'copy'
  copy.mkdir()
  for name, data in stored.items():
    (copy / name).write_bytes(data)
  source = tfds.builder_from_directory(str(copy)).as_data_source('train')
  assert [source[i]['image']['filename'].decode() for i in range(len(source))] == [
    e['filename'] for e in expected
  ]
  records = grain.sources.ArrayRecordDataSource(_shard_paths(copy, 'train'))
  assert [records[i] for i in range(len(records))] == _records(sample_output, 'train')


@pytest.mark.slow  # A benchmark.
def test_read_throughput_benchmark_measures_every_reader(sample_output, array_record_output):
  from benchmarks import read_throughput  # pylint: disable=import-outside-toplevel

  rows = read_throughput.measure(sample_output, array_record_output, repeats=1)
  assert len(rows) == 6 and all(row['records'] == 43 for row in rows), rows
  assert all(row['records_per_s'] > 0 and row['cpu_us_per_record'] > 0 for row in rows)
  assert 'records/s' in read_throughput.format_rows(rows)


def test_resume_of_a_run_from_before_file_format(sample_output, tmp_path):
  """An interrupted run's _work/run.json written before --file_format existed resumes as TFRecord."""
  output = pathlib.Path(shutil.copytree(sample_output, tmp_path / 'out'))
  run_json = output / '_work' / 'run.json'
  flags = json.loads(run_json.read_text())
  del flags['file_format']
  run_json.write_text(json.dumps(flags))
  (output / 'validation-00001-of-00002').unlink()
  (output / '_SUCCESS').unlink()
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--resume') == 0
  assert (output / 'validation-00001-of-00002').read_bytes() == (
    sample_output / 'validation-00001-of-00002'
  ).read_bytes()
