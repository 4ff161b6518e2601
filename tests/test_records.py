"""One home per rule: the typed records between steps (transforms/records.py), remote paths
(transforms/paths.py), FileFormat and the TFRecord framing reader (transforms/output/file_format.py),
the Example parser (transforms/imaging/example.py), OutputFacts' typed methods
(transforms/metadata/provenance.py)."""

import pytest
from apache_beam.io.filesystems import FileSystems

import io
import json
import pathlib
import pickle
import re

import apache_beam as beam

from beam_private import tfrecord
from conftest import SAMPLE_DIR
from transforms.imaging import image
from transforms.output import file_format, layout
from transforms.imaging.example import build_example, parse_example
from transforms.output.file_format import FileFormat
from transforms.paths import is_remote
from transforms.metadata.provenance import OutputFacts
from transforms.records import ImageRef, Reject, ShardSummary


@pytest.mark.parametrize(
  'path,remote',
  [
    ('gs://bucket/in', True),
    ('s3://b/out/', True),
    ('S3://b/x', True),
    ('hdfs://nn/x', True),
    ('/data/in', False),
    ('data/in', False),
    ('~/in', False),
    ('', False),
    ('C:\\data', False),
    ('/tmp/a://b', False),  # '://' inside a local path: not a scheme
    ('3d://x', False),  # a scheme starts with a letter (RFC 3986)
  ],
)
def test_is_remote_reads_a_scheme_as_beam_does(path, remote):
  assert is_remote(path) is remote
  assert is_remote(path) is (FileSystems.get_scheme(path) is not None)


def test_file_format_values_are_the_flag_values():
  assert [f.value for f in FileFormat] == ['tfrecord', 'array_record']
  assert FileFormat('array_record') is FileFormat.ARRAY_RECORD
  # A member is its string: manifest.json, the flag's choices and str keys are unchanged.
  assert FileFormat.TFRECORD == 'tfrecord' and {'tfrecord': 1}[FileFormat.TFRECORD] == 1
  assert f'{FileFormat.ARRAY_RECORD}' == 'array_record'
  assert json.dumps({'file_format': FileFormat.TFRECORD}) == '{"file_format": "tfrecord"}'
  assert file_format.get('tfrecord').name is FileFormat.TFRECORD
  assert file_format.of_manifest({}).name is FileFormat.TFRECORD  # outputs before --file_format
  assert set(layout.FORMAT_SHARD_NAMES) == set(FileFormat) == set(file_format.FORMATS)
  with pytest.raises(ValueError, match=r"choose one of \['array_record', 'tfrecord'\]"):
    file_format.get('parquet')


@pytest.fixture(scope='module')
def real_record():
  """(the serialized Example of a real sample photo as the shard writer builds it, its image)."""
  path = sorted(SAMPLE_DIR.glob('flower/*'))[0]
  stored = image.process_image(path.read_bytes(), image.ImageSpec())
  record = build_example(
    stored.encoded,
    stored.height,
    stored.width,
    f'flower/{path.name}',
    3,
    'flower',
    'a flower',
    phash=stored.phash,
  )
  return record, stored


@pytest.mark.slow  # imports TensorFlow
def test_the_parser_reads_a_real_record_as_tensorflow_does(real_record):
  record, stored = real_record
  example = parse_example(record)
  assert example == example.require()
  assert (
    example.encoded,
    example.height,
    example.width,
    example.label,
    example.synset,
    example.text,
    example.phash,
  ) == (stored.encoded, stored.height, stored.width, 3, 'flower', 'a flower', stored.phash)
  assert example.filename.startswith('flower/')
  tf = pytest.importorskip('tensorflow')
  feature = tf.train.Example.FromString(record).features.feature
  assert feature['image/filename'].bytes_list.value[0].decode() == example.filename
  assert feature['image/phash'].int64_list.value[0] == example.phash


def test_the_parser_names_what_is_missing():
  record = build_example(b'not a jpeg', 2, 3, 'c/x.jpg', 0, 'c')
  example = parse_example(record)
  assert example.phash is None and example.text is None  # records of earlier versions
  assert example.require('filename', 'synset') is example
  with pytest.raises(ValueError, match="'image/phash' missing"):
    example.require('phash')
  with pytest.raises(ValueError, match='Error parsing message'):
    parse_example(b'\xff\xff\xff')


def test_one_framing_reader_reads_what_the_writer_frames(real_record):
  record, _ = real_record
  buffer = io.BytesIO()
  for payload in (record, b'', b'second'):
    tfrecord.write_record(buffer, payload)
  framed = buffer.getvalue()
  records = list(file_format.read_tfrecords(io.BytesIO(framed)))
  assert [r.data for r in records] == [record, b'', b'second']
  assert [r.offset for r in records] == [0, len(record) + 16, len(record) + 32]
  assert all(r.data_crc_ok for r in records)
  flipped = bytearray(framed)
  flipped[12] ^= 1  # a payload byte of the first record: its crc fails, the next ones still read
  assert [r.data_crc_ok for r in file_format.read_tfrecords(io.BytesIO(bytes(flipped)))] == [
    False,
    True,
    True,
  ]
  with pytest.raises(file_format.FramingError, match='truncated record') as raised:
    list(file_format.read_tfrecords(io.BytesIO(framed[:-1])))
  assert (raised.value.index, raised.value.offset) == (2, len(record) + 32)


def test_shard_format_read_stops_at_a_bad_record(tmp_path, real_record):
  record, _ = real_record
  path = tmp_path / 'train-00000-of-00001'
  buffer = io.BytesIO()
  for payload in (record, record):
    tfrecord.write_record(buffer, payload)
  framed = bytearray(buffer.getvalue())
  path.write_bytes(bytes(framed))
  assert list(file_format.get('tfrecord').read(str(path), 'none')) == [record, record]
  framed[-5] ^= 1  # the second record's payload
  path.write_bytes(bytes(framed))
  read = file_format.get('tfrecord').read(str(path), 'none')
  assert next(read) == record
  with pytest.raises(file_format.ShardReadError, match='data crc mismatch') as raised:
    next(read)
  assert raised.value.index == 1


def test_reject_writes_todays_rejects_jsonl_line(tmp_path):
  raw = '/in/animal/caf\xe9_\udcff.jpg'  # a listed name with a byte that is not UTF-8
  reject = Reject.of(raw, '', 'truncated or corrupt JPEG data')
  assert reject == Reject('/in/animal/caf\xe9_\\xff.jpg', 'truncated or corrupt JPEG data', None)
  path = tmp_path / 'rejects.jsonl'
  layout.write_jsonl(str(path), [reject.to_json(), Reject('/in/x', 'excluded', 'train').to_json()])
  assert path.read_bytes().decode('utf-8') == (
    '{"path": "/in/animal/caf\u00e9_\\\\xff.jpg", "reason": "truncated or corrupt JPEG data", '
    '"split": null}\n{"path": "/in/x", "reason": "excluded", "split": "train"}\n'
  )
  assert [Reject.from_json(line) for line in layout.read_jsonl(str(path))] == [
    reject,
    Reject('/in/x', 'excluded', 'train'),
  ]


def test_records_cross_beam_coders_and_pickle():
  reject = Reject('/in/a.jpg', 'empty file (0 bytes)', 'validation')
  summary = ShardSummary(
    'train-00000-of-00001',
    'train',
    1,
    10,
    0,
    {'a': 1},
    4,
    (1, 2, 3),
    (1, 4, 9),
    (reject,),
    phashes=(('a/x.jpg', -3),),
  )
  ref = ImageRef('', 2, 'animal', 'animal/x.jpg', 123, 456)
  for value in (reject, summary, ref):
    coder = beam.coders.registry.get_coder(type(value))
    assert coder.decode(coder.encode(value)) == value
    assert pickle.loads(pickle.dumps(value)) == value
  assert type(beam.coders.registry.get_coder(ImageRef)).__name__ == 'ImageRefCoder'
  assert ShardSummary.from_json(json.loads(json.dumps(summary.to_json()))) == summary
  assert summary.to_json()['rejects'] == [reject.to_json()]  # the sidecar's bytes as before


def test_output_facts_add_summaries_and_outcomes_by_type():
  one = ShardSummary('train-00000-of-00002', 'train', file_bytes=10, file_sha256='ab')
  two = ShardSummary('train-00001-of-00002', 'train', file_bytes=20, file_sha256='cd')
  facts = OutputFacts().add_summary(one).add_outcome('kept')
  other = OutputFacts().add_summary(two).add_outcome('kept').add_outcome('written')
  assert facts.merge(other) is facts
  assert facts.checksums == {one.shard: (10, 'ab'), two.shard: (20, 'cd')}
  assert facts.outcomes == {'kept': 2, 'written': 1}
  assert other.outcomes == {'kept': 1, 'written': 1}  # merged from, unchanged


def _sources():
  """{path relative to the repository: text} of every module of the converter."""
  root = pathlib.Path(__file__).resolve().parent.parent
  return {
    str(path.relative_to(root)): path.read_text(encoding='utf-8')
    for package in ('pipeline', 'transforms', 'beam_private')
    for path in sorted((root / package).rglob('*.py'))
  }


@pytest.mark.parametrize(
  'pattern,home',
  [
    (r"'://' (not )?in\b", 'nowhere: transforms/paths.py is_remote'),
    (r'\.FromString\(', 'transforms/imaging/example.py'),
    (r"struct\.unpack\('<QI'", 'transforms/output/file_format.py'),
    (r'^FORMAT_VERSION = ', 'transforms/output/layout.py'),
    (r'^class (Reject|ShardSummary|DuplicateGroup)\b', 'transforms/records.py'),
    # A format name compared, defaulted or used as a key: FileFormat's members only.
    (
      r"""(==|!=|str =|'file_format', |\{)\s*['"](tfrecord|array_record)['"]"""
      r"""|^\s+(TFRECORD|ARRAY_RECORD) = ['"]""",
      'transforms/output/file_format.py',
    ),
  ],
)
def test_each_rule_has_one_home(pattern, home):
  found = sorted(
    {path for path, text in _sources().items() if re.search(pattern, text, re.MULTILINE)}
  )
  assert found == ([] if home.startswith('nowhere') else [home])
