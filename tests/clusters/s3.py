"""moto's S3 server on 127.0.0.1, and the Beam options that point Beam's S3 filesystem at it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib
from typing import Any, Iterator, List, Tuple

from .processes import free_port

REGION = 'us-east-1'


@dataclasses.dataclass
class S3Server:
  endpoint_url: str

  def beam_args(self) -> List[str]:
    """Beam pipeline options for apache_beam.io.aws (--s3_disable_ssl is a bare flag)."""
    return [
      f'--s3_endpoint_url={self.endpoint_url}',
      '--s3_access_key_id=x',
      '--s3_secret_access_key=x',
      f'--s3_region_name={REGION}',
      '--s3_disable_ssl',
    ]

  def client(self):
    import boto3  # pylint: disable=import-outside-toplevel

    return boto3.client(
      's3',
      endpoint_url=self.endpoint_url,
      aws_access_key_id='x',
      aws_secret_access_key='x',
      region_name=REGION,
    )

  def upload_tree(self, bucket: str, prefix: str, root: pathlib.Path) -> int:
    """Uploads every file under root to s3://bucket/prefix<relative path>; returns the count."""
    client = self.client()
    files = sorted(p for p in root.rglob('*') if p.is_file())
    for path in files:
      client.upload_file(str(path), bucket, prefix + path.relative_to(root).as_posix())
    return len(files)


@contextlib.contextmanager
def moto_s3() -> Iterator[S3Server]:
  """moto's server mode in a thread of this process, on a free loopback port, empty; stopped on exit.

  moto keeps its buckets in module-level backends that every server of one process shares, so a
  bucket an earlier test filled would still be there (and `create_bucket` in us-east-1 succeeds on
  it): the server is reset through moto's own /moto-api/reset endpoint before it is handed out.
  """
  import urllib.request  # pylint: disable=import-outside-toplevel
  from moto.server import ThreadedMotoServer  # pylint: disable=import-outside-toplevel

  logging.getLogger('werkzeug').setLevel(logging.WARNING)  # One line per request otherwise.
  port = free_port()
  server = ThreadedMotoServer(ip_address='127.0.0.1', port=port)
  server.start()
  urllib.request.urlopen(
    urllib.request.Request(  # pylint: disable=consider-using-with
      f'http://127.0.0.1:{port}/moto-api/reset', method='POST'
    ),
    timeout=30,
  ).close()
  try:
    yield S3Server(f'http://127.0.0.1:{port}')
  finally:
    server.stop()


@contextlib.contextmanager
def moto_bucket(bucket: str) -> Iterator[Tuple[S3Server, Any]]:
  """moto_s3() holding an empty `bucket`: (the server, a boto3 client)."""
  with moto_s3() as s3:
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    yield s3, client
