"""The converter reads from and writes to S3 (moto's server on 127.0.0.1) through Beam's FileSystems,
and the store ends up holding the local run's bytes.

Listing (s3://photos/in/<class>/*), reading, the shard temp files and their rename, and the metadata
all go through apache_beam.io.aws with --s3_endpoint_url; the check reads the store back with boto3,
independently of Beam.
"""

import logging
import time

import pytest

from clusters.beam_services import run_converter
from clusters.outputs import METADATA_FILES, assert_same_dataset, read_dataset
from clusters.processes import tail
from clusters.s3 import moto_s3
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS
from transforms.output.layout import PROVENANCE_FILE

pytestmark = pytest.mark.slow  # Starts moto's S3 server.
_LOGGER = logging.getLogger(__name__)
BUCKET = 'photos'


def _objects(client, bucket, prefix):
  """{key relative to prefix: bytes} of every object under prefix."""
  found = {}
  for page in client.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get('Contents', []):
      found[item['Key'][len(prefix) :]] = client.get_object(Bucket=bucket, Key=item['Key'])[
        'Body'
      ].read()
  return found


@pytest.mark.timeout(300)
def test_beam_s3_filesystem_round_trip(tmp_path):
  """The test bed itself: Beam's S3 filesystem lists, writes (temp files + rename) and reads on moto."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from apache_beam.io import fileio  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel

  with moto_s3() as s3:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    assert s3.upload_tree(BUCKET, 'in/', SAMPLE_DIR / 'object') >= 10
    options = PipelineOptions([*s3.beam_args(), '--runner=DirectRunner'])
    with beam.Pipeline(options=options) as p:
      _ = (
        p
        | fileio.MatchFiles(f's3://{BUCKET}/in/*')
        | fileio.ReadMatches()
        | beam.Map(lambda f: f'{f.metadata.path.rsplit("/", 1)[1]} {len(f.read())}')
        | beam.io.WriteToText(f's3://{BUCKET}/list/sizes', num_shards=1)
      )
    stored = _objects(client, BUCKET, 'list/')
  assert list(stored) == ['sizes-00000-of-00001']
  expected = sorted(f'{p.name} {p.stat().st_size}' for p in (SAMPLE_DIR / 'object').iterdir())
  assert sorted(stored['sizes-00000-of-00001'].decode().splitlines()) == expected


# Needs the converter's three S3 fixes (docs/running_at_scale.md, "S3 and other object stores"):
# FileSystems options set before listing, `**` for object-store folders, empty objects on S3.
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_s3_round_trip_matches_local_run(tmp_path, sample_output):
  with moto_s3() as s3:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    uploaded = s3.upload_tree(BUCKET, 'in/', SAMPLE_DIR)
    assert uploaded == len([p for p in SAMPLE_DIR.rglob('*') if p.is_file()])
    start = time.monotonic()
    code = run_converter(
      REPO,
      [
        '--input',
        f's3://{BUCKET}/in/',
        '--output',
        f's3://{BUCKET}/out/',
        *SAMPLE_FLAGS,
        *s3.beam_args(),
      ],
      tmp_path / 's3.log',
    )
    seconds = time.monotonic() - start
    assert code == 0, tail(tmp_path / 's3.log', 60)
    stored = _objects(client, BUCKET, 'out/')

  expected = read_dataset(str(sample_output))
  top_level = {name: data for name, data in stored.items() if '/' not in name}
  assert PROVENANCE_FILE in top_level  # Times and the runner: the one file not compared.
  assert_same_dataset({n: d for n, d in top_level.items() if n != PROVENANCE_FILE}, expected)
  assert all(name.startswith('_work/') for name in set(stored) - set(top_level))
  assert not [name for name in stored if name.startswith('_work/claims/')], 'the claim is released'
  assert not [name for name in stored if '.tmp-' in name], 'temp files left in the store'
  assert set(METADATA_FILES) <= set(top_level)
  _LOGGER.warning('wall time of the sample conversion from and to S3 (moto): %.1f s', seconds)
