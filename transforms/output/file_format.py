"""Shard file formats (--file_format): TFRecord, read front to back, and ArrayRecord, read by index.

Both hold the same serialized tf.train.Example records in the same shards and order; only the
container differs. Everything that depends on it (writing a shard, reading its records back, the
compression it allows, its TFDS `fileFormat`) is here, so no other module spells a format out: they
ask a `ShardFormat` by `FileFormat`. Each writer reports the size and SHA-256 of the file it stored
(`FileChecksum`) from the bytes on their way out: no second read of a shard. TFRecord: TensorFlow's
framing (beam_private/tfrecord.py writes it, `read_tfrecords` here reads it), optionally
gzip-compressed as a whole. ArrayRecord (the `array_record` package; Grain's global shuffle and
TFDS's `as_data_source()` read it): `ArrayRecordWriter` with TFDS's random-access options,
`group_size:1` (reading record i decodes one record) and `uncompressed` (zstd does not shrink JPEG
records; docs/readers.md); whole-file gzip does not apply. Its C++ writer and reader open local
files only: a shard is written to a local temporary file and copied through Beam's FileSystems to
the temporary name the shard writer renames (the same atomicity as TFRecord); gs:// and s3://
shards are read from a local copy (`local_copy`).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import enum
import io
import os
import shutil
import struct
import tempfile
import zlib
from typing import (
  TYPE_CHECKING,
  BinaryIO,
  Callable,
  ClassVar,
  Dict,
  Iterator,
  Mapping,
  Optional,
  Sequence,
)

from apache_beam.io.filesystem import CompressedFile, CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_private import tfrecord
from transforms.output.checksum import FileChecksum, HashingWriter, file_sha256
from transforms.paths import is_remote

if TYPE_CHECKING:  # transforms/output/layout.py imports this module for FileFormat.
  from transforms.output import layout

try:
  from enum import StrEnum
except ImportError:  # Python 3.10: what 3.11's StrEnum is.

  class StrEnum(str, enum.Enum):
    __str__, __format__, __hash__ = str.__str__, str.__format__, str.__hash__


class FileFormat(StrEnum):
  """The shard containers, by their --file_format value (also manifest.json's "file_format" and the
  suffix in TFDS's `fileFormat`). A member equals, hashes and formats as that string."""

  TFRECORD = 'tfrecord'
  ARRAY_RECORD = 'array_record'


COMPRESSIONS = ('none', 'gzip')  # --compression: whole-file compression of TFRecord shards
# ArrayRecordWriter options (module docstring): TFDS's random-access group size, no chunk
# compression.
ARRAY_RECORD_WRITER_OPTIONS = 'group_size:1,uncompressed'
# What ArrayRecord offers instead of --compression (ArrayRecordWriter's compressor options).
ARRAY_RECORD_COMPRESSORS = ('uncompressed', 'zstd', 'brotli', 'snappy')
ARRAY_RECORD_REQUIREMENT = 'array-record>=0.8.1'  # setup.py's [array_record] extra
COPY_CHUNK_BYTES = 8 << 20  # local <-> object store copies
DATA_CRC_MISMATCH = 'data crc mismatch (corrupt record payload)'
WRITE_BUFFER_BYTES = 1 << 20  # records gathered per write to the file system (~50 of ~20 KB)

RecordWriter = Callable[[bytes], None]


class ShardReadError(Exception):
  """Record `index` of a shard cannot be read (framing, crc or chunk hash); later records may be
  unreachable."""

  def __init__(self, index: int, reason: str):
    super().__init__(f'record {index}: {reason}')
    self.index, self.reason = index, reason


class ShardFormat(abc.ABC):
  """One container for the records of a shard.

  Attributes:
    name: its FileFormat.
    record_overhead_bytes: bytes the container adds to each record (the plan's size predictions).
    shard_overhead_bytes: bytes it adds to each shard file, on average.
  """

  name: ClassVar[FileFormat]
  record_overhead_bytes: ClassVar[int]
  shard_overhead_bytes: ClassVar[int]

  def check_compression(self, compression: str) -> None:
    """Raises ValueError when --compression `compression` does not apply to this format."""
    if compression not in COMPRESSIONS:
      raise ValueError(f'unknown compression {compression!r}; choose one of {COMPRESSIONS}')

  @abc.abstractmethod
  def create(
    self, path: str, compression: str, checksum: Optional[FileChecksum] = None
  ) -> contextlib.AbstractContextManager[RecordWriter]:
    """A context whose value appends one serialized record; on a normal exit the complete shard is at
    `path` (any Beam FileSystems path) and `checksum` (when given) holds its size and SHA-256. On an
    exception, `path` may hold a partial file (the caller writes to a temporary name and deletes
    it), and local temporary files are removed."""

  @abc.abstractmethod
  def read(self, path: str, compression: str) -> Iterator[bytes]:
    """Every record of the shard at `path` (any Beam FileSystems path), in order.

    Raises:
      ShardReadError: a record cannot be read; the records before it have been yielded.
    """

  def tfds_filepath_template(self, shard_names: layout.ShardNameTemplate) -> str:
    """TFDS's `filepathTemplate` for shards named by `shard_names` (dataset_info.json)."""
    return shard_names.tfds_filepath_template(self.name)


class TFRecordFormat(ShardFormat):
  """TensorFlow's TFRecord framing (12-byte header, payload, 4-byte crc), optionally gzip-compressed."""

  name = FileFormat.TFRECORD
  record_overhead_bytes = 16  # 8-byte length, its 4-byte crc, the 4-byte crc of the data
  shard_overhead_bytes = 0
  _COMPRESSION_TYPES = {'none': CompressionTypes.UNCOMPRESSED, 'gzip': CompressionTypes.GZIP}

  @contextlib.contextmanager
  def create(
    self, path: str, compression: str, checksum: Optional[FileChecksum] = None
  ) -> Iterator[RecordWriter]:
    self.check_compression(compression)
    # The raw stream hashed below Beam's gzip: the same bytes as FileSystems.create(path, GZIP).
    stream = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
    raw = HashingWriter(io.BufferedWriter(stream, WRITE_BUFFER_BYTES))
    compression_type = self._COMPRESSION_TYPES[compression]
    f = (
      raw
      if compression_type == CompressionTypes.UNCOMPRESSED
      else CompressedFile(raw, compression_type)
    )
    try:
      yield lambda record: tfrecord.write_record(f, record)
    finally:
      f.close()
    if checksum is not None:
      checksum.bytes, checksum.sha256 = raw.bytes, raw.hexdigest()

  def read(self, path: str, compression: str) -> Iterator[bytes]:
    self.check_compression(compression)
    with FileSystems.open(path, compression_type=self._COMPRESSION_TYPES[compression]) as f:
      try:
        for record in read_tfrecords(f):
          if not record.data_crc_ok:
            raise ShardReadError(record.index, DATA_CRC_MISMATCH)
          yield record.data
      except FramingError as e:
        raise ShardReadError(e.index, str(e)) from None


class ArrayRecordFormat(ShardFormat):
  """ArrayRecord files with one record per chunk (`ARRAY_RECORD_WRITER_OPTIONS`)."""

  name = FileFormat.ARRAY_RECORD
  # Measured here (array_record 0.8, ARRAY_RECORD_WRITER_OPTIONS, 40 files of 5-400 records of
  # 15-45 KB): 64 bytes a record (its chunk's header), and per file a ~64 KiB footer and index plus
  # the padding of the last 64 KiB block: 70-128 KB, 98.5 KB on average.
  record_overhead_bytes = 64
  shard_overhead_bytes = 98_500

  def check_compression(self, compression: str) -> None:
    if compression != 'none':
      raise ValueError(
        f'--compression {compression} compresses TFRecord files only. ArrayRecord compresses each '
        f'chunk itself ({", ".join(ARRAY_RECORD_COMPRESSORS)}); the converter writes its '
        'ArrayRecord shards uncompressed, since JPEG records do not shrink. Drop --compression or '
        'use --file_format tfrecord.'
      )

  @contextlib.contextmanager
  def create(
    self, path: str, compression: str, checksum: Optional[FileChecksum] = None
  ) -> Iterator[RecordWriter]:
    self.check_compression(compression)
    module = array_record_module()
    local = _local_temp_file(path) if is_remote(path) else path
    if local == path:
      os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    writer = module.ArrayRecordWriter(local, ARRAY_RECORD_WRITER_OPTIONS)
    try:
      yield writer.write
      writer.close()
      if checksum is not None:  # The C++ writer's file is local: hashed before it is copied.
        checksum.bytes, checksum.sha256 = file_sha256(local)
      if local != path:
        upload(local, path)
    finally:
      if writer.is_open():
        writer.close()
      if local != path:
        os.remove(local)

  def read(self, path: str, compression: str) -> Iterator[bytes]:
    self.check_compression(compression)
    with local_copy(path) as local:
      reader = array_record_module().ArrayRecordReader(local)
      try:
        for index in range(reader.num_records()):
          try:
            (record,) = reader.read([index])
          except (RuntimeError, IndexError) as e:  # riegeli: "chunk data hash mismatch", ...
            raise ShardReadError(index, str(e)) from None
          yield record
      finally:
        reader.close()


# ---------------------------------------------------------------------------------------------
# TFRecord framing (TensorFlow's core/lib/io/record_writer.cc), the one reader of it.

TFRECORD_HEADER_BYTES = 12  # uint64 little-endian length + uint32 masked crc32c of those 8 bytes
TFRECORD_FOOTER_BYTES = 4  # uint32 masked crc32c of the payload


class FramingError(Exception):
  """The framing of record `index` at byte `offset` is broken; later records are unreachable."""

  def __init__(self, index: int, offset: int, message: str):
    super().__init__(message)
    self.index, self.offset = index, offset


@dataclasses.dataclass(frozen=True)
class FramedRecord:
  """One record of a TFRecord stream.

  Attributes:
    index: its position in the stream, 0-based.
    offset: byte offset of its header in the (decompressed) stream.
    data: the payload.
    data_crc_ok: whether the payload's masked crc32c matches.
  """

  index: int
  offset: int
  data: bytes
  data_crc_ok: bool


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
  chunks, remaining = [], size
  while remaining > 0:
    chunk = handle.read(remaining)
    if not chunk:
      break
    chunks.append(chunk)
    remaining -= len(chunk)
  return b''.join(chunks)


def read_tfrecords(handle: BinaryIO) -> Iterator[FramedRecord]:
  """Every record of a TFRecord stream, with whether its payload crc matches.

  A payload crc mismatch is reported per record (`data_crc_ok`) and reading goes on, since the
  length (guarded by its own crc) still locates the next record.

  Raises:
    FramingError: a truncated header or payload, or a length crc mismatch (reading stops).
  """
  index = offset = 0
  while True:
    header = _read_exactly(handle, TFRECORD_HEADER_BYTES)
    if not header:
      return
    if len(header) < TFRECORD_HEADER_BYTES:
      raise FramingError(
        index,
        offset,
        f'truncated record header: {len(header)} of '
        f'{TFRECORD_HEADER_BYTES} bytes before end of file',
      )
    length, length_crc = struct.unpack('<QI', header)
    if tfrecord.masked_crc32c(header[:8]) != length_crc:
      raise FramingError(index, offset, 'length crc mismatch (corrupt record header)')
    body = _read_exactly(handle, length + TFRECORD_FOOTER_BYTES)
    if len(body) < length + TFRECORD_FOOTER_BYTES:
      raise FramingError(
        index,
        offset,
        f'truncated record: {len(body)} of {length + TFRECORD_FOOTER_BYTES} bytes after the header',
      )
    data = body[:length]
    (data_crc,) = struct.unpack('<I', body[length:])
    yield FramedRecord(index, offset, data, tfrecord.masked_crc32c(data) == data_crc)
    index += 1
    offset += TFRECORD_HEADER_BYTES + length + TFRECORD_FOOTER_BYTES


FORMATS: Dict[FileFormat, ShardFormat] = {
  f.name: f for f in (TFRecordFormat(), ArrayRecordFormat())
}


def gzip_fraction(records: Sequence[bytes]) -> float:
  """Bytes of `records` as one gzip-compressed TFRecord stream (--compression gzip: zlib's default
  level, as Beam's FileSystems compresses) over their uncompressed framed bytes; 1.0 for no records.
  JPEG records shrink a little (their headers and tables repeat): 4.5% on the sample photos."""
  framed = io.BytesIO()
  for record in records:
    tfrecord.write_record(framed, record)
  if not framed.tell():
    return 1.0
  compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
  compressed = len(compressor.compress(framed.getvalue())) + len(compressor.flush())
  return compressed / framed.tell()


def get(name: str) -> ShardFormat:
  """The format of a --file_format value.

  Raises:
    ValueError: an unknown name (the message lists the known ones).
  """
  if name not in FORMATS:
    raise ValueError(f'unknown file format {name!r}; choose one of {sorted(map(str, FORMATS))}')
  return FORMATS[name]


def of_manifest(manifest: Mapping) -> ShardFormat:
  """The format of an output from its manifest.json content (outputs made before --file_format
  existed have no "file_format": TFRecord)."""
  return get(manifest.get('file_format', FileFormat.TFRECORD))


def array_record_module():
  """`array_record.python.array_record_module` (ArrayRecordWriter, ArrayRecordReader).

  Raises:
    ModuleNotFoundError: the optional `array_record` package is not installed (the message names the
      install command).
  """
  try:
    from array_record.python import array_record_module as module  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
      f'ArrayRecord shards need the array_record package ({e}); install it '
      f"with: pip install '{ARRAY_RECORD_REQUIREMENT}'"
    ) from e
  return module


# ---------------------------------------------------------------------------------------------
# Local files for ArrayRecord's C++ I/O.


def _local_temp_file(path: str) -> str:
  from transforms.output import layout  # pylint: disable=import-outside-toplevel  (layout imports us)

  handle, local = tempfile.mkstemp(prefix=path.rstrip('/').rsplit('/', 1)[-1] + layout.TEMP_MARKER)
  os.close(handle)
  return local


def upload(local: str, path: str) -> None:
  """Copies the local file `local` to `path` (any Beam FileSystems path), bytes unchanged."""
  with (
    open(local, 'rb') as src,
    FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as dst,
  ):
    shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)


def download(path: str, local: str) -> None:
  """Copies `path` (any Beam FileSystems path) to the local file `local`, bytes unchanged."""
  with (
    FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src,
    open(local, 'wb') as dst,
  ):
    shutil.copyfileobj(src, dst, COPY_CHUNK_BYTES)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
  """`path` itself when local, else a local temporary copy of it, removed on exit."""
  if not is_remote(path):
    yield path
    return
  local = _local_temp_file(path)
  try:
    download(path, local)
    yield local
  finally:
    os.remove(local)
