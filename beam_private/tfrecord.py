"""TFRecord framing through Beam's `apache_beam.io.tfrecordio._TFRecordUtil` (private).

Beam's helper frames a record as TensorFlow's `core/lib/io/record_writer.cc` does (uint64 length,
masked crc32c of the length, payload, masked crc32c of the payload) and uses google-crc32c when it
is importable. Using it keeps the shard writer's bytes those of `WriteToTFRecord` without
TensorFlow. The one reader of the framing is transforms/output/file_format.py `read_tfrecords`.
"""

from __future__ import annotations

from typing import BinaryIO

import google_crc32c
from apache_beam.io import tfrecordio

_UTIL = tfrecordio._TFRecordUtil  # pylint: disable=protected-access


def write_record(file: BinaryIO, record: bytes) -> None:
  """Appends one framed record (12-byte header, payload, 4-byte footer) to `file`."""
  _UTIL.write_record(file, record)


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked crc32c of `data` (crc32c rotated right by 15 bits plus 0xa282ead8)."""
  return _UTIL._masked_crc32c(data, crc32c_fn=google_crc32c.value)  # pylint: disable=protected-access
