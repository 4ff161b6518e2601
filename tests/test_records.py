"""One home per rule: remote paths (transforms/paths.py), FileFormat (transforms/file_format.py)."""

import pytest
from apache_beam.io.filesystems import FileSystems

import json

from transforms import file_format, layout
from transforms.file_format import FileFormat
from transforms.paths import is_remote


@pytest.mark.parametrize('path,remote', [
    ('gs://bucket/in', True), ('s3://b/out/', True), ('S3://b/x', True), ('hdfs://nn/x', True),
    ('/data/in', False), ('data/in', False), ('~/in', False), ('', False), ('C:\\data', False),
    ('/tmp/a://b', False),  # '://' inside a local path: not a scheme
    ('3d://x', False),  # a scheme starts with a letter (RFC 3986)
])
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
