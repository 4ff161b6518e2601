"""SHA-256 and byte counts of files as stored: computed while a shard is written, checked by verify.

The shard formats (transforms/output/file_format.py) hash the bytes on their way to the file system
(after gzip, if any), so recording a shard's checksum costs no second read of the shard; `verify`
hashes each file while it reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import BinaryIO, Optional, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

READ_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass
class FileChecksum:
  """Size in bytes and hex SHA-256 of a file as stored; None until it is complete."""

  bytes: Optional[int] = None
  sha256: Optional[str] = None


class HashingWriter:
  """A write-only binary file that passes every byte on to `file` and hashes it.

  Wraps the raw (uncompressed) stream that FileSystems.create returns, below Beam's CompressedFile
  when there is compression, so the digest is the stored file's. Closing it closes `file`.
  """

  mode = 'wb'  # What Beam's CompressedFile asks of the file it writes to.

  def __init__(self, file: BinaryIO):
    self._file = file
    self._sha256 = hashlib.sha256()
    self.bytes = 0

  def write(self, data: bytes) -> int:
    self._sha256.update(data)
    self.bytes += len(data)
    self._file.write(data)
    return len(data)

  def tell(self) -> int:
    return self.bytes

  def flush(self) -> None:
    self._file.flush()

  @property
  def closed(self) -> bool:
    return self._file.closed

  def close(self) -> None:
    self._file.close()

  def hexdigest(self) -> str:
    return self._sha256.hexdigest()


class HashingReader:
  """A read-only binary stream over `file` that hashes what is read; `drain()` reads the rest."""

  def __init__(self, file: BinaryIO):
    self._file = file
    self._sha256 = hashlib.sha256()
    self.bytes = 0

  def read(self, size: int = -1) -> bytes:
    data = self._file.read(size)
    self._sha256.update(data)
    self.bytes += len(data)
    return data

  def drain(self) -> None:
    """Reads (and hashes) whatever the consumer left unread."""
    while self.read(READ_CHUNK_BYTES):
      pass

  def hexdigest(self) -> str:
    return self._sha256.hexdigest()


def file_sha256(path: str) -> Tuple[int, str]:
  """(size in bytes, hex SHA-256) of a file as stored, read through Beam's FileSystems.

  Raises:
    IOError (BeamIOError): the file cannot be read.
  """
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    reader = HashingReader(f)
    reader.drain()
  return reader.bytes, reader.hexdigest()
