"""Opening an input file safely: only regular files, never more than --max_file_bytes.

Every reader of an input file (the shard writer, the driver's sample in transforms/split/sample.py,
the exact-duplicate hashes of transforms/duplicates/exact.py) opens it through `open_input` or
`read_input`, so that one check decides, BEFORE the file is opened, what may be read:
  * local paths: `os.stat` (it follows symbolic links, so a link is judged by its target). A FIFO, a
    socket, a character or block device (e.g. a link to /dev/zero) is refused: opening a FIFO blocks
    until a writer comes, and a device can stream without end. A broken link and a link loop are
    refused with their own reasons (the listing gives the same reasons: `stat_problem`).
  * object stores (gs://, s3://): objects are always regular; the listing's size (or one metadata
    request) is compared with the limit.
A file larger than the limit is refused from its size without being read; the read itself is bounded
to limit + 1 bytes, so a file that grew after its stat is refused too and a worker's memory never
holds more than the limit for one file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import BinaryIO, Iterator, Optional

from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem

MIB = 1 << 20
DEFAULT_MAX_FILE_BYTES = 256 * MIB  # --max_file_bytes: 268435456 bytes
NOT_UTF8_NAME = 'file name is not valid UTF-8 (shown with \\x escapes)'
_KINDS = (
  (stat.S_ISFIFO, 'FIFO'),
  (stat.S_ISSOCK, 'socket'),
  (stat.S_ISCHR, 'character device'),
  (stat.S_ISBLK, 'block device'),
)


class InputFileError(OSError):
  """An input file is not read; `reason` is its reject reason (rejects.jsonl)."""

  def __init__(self, reason: str):
    super().__init__(reason)
    self.reason = reason


def stat_problem(mode: int, is_link: bool = False) -> Optional[str]:
  """The reject reason for a file of `mode` (st_mode of os.stat, links followed), None for a regular
  file or a folder.

  Args:
    is_link: the path itself is a symbolic link (os.path.islink), named in the reason.
  """
  if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
    return None
  kind = next((name for test, name in _KINDS if test(mode)), 'special file')
  return f'not a regular file ({kind}{", through a symbolic link" if is_link else ""})'


def stat_error_reason(error: OSError, path: str) -> str:
  """The reject reason for an os.stat of `path` that raised `error`."""
  if error.errno == errno.ELOOP:
    return 'symbolic link loop (too many levels of symbolic links)'
  if error.errno == errno.ENOENT and os.path.islink(path):
    return 'broken symbolic link (its target does not exist)'
  return f'cannot read the file ({type(error).__name__}: {error.strerror or error})'


def too_large(size: int, max_bytes: int) -> str:
  return f'file larger than --max_file_bytes ({size} bytes > {max_bytes})'


def is_utf8(name: str) -> bool:
  """False for a name that holds bytes that are not UTF-8 (surrogate escapes of os.fsdecode)."""
  try:
    name.encode('utf-8')
    return True
  except UnicodeEncodeError:
    return False


def escaped(path: str) -> str:
  """`path` with each byte that is not UTF-8 written as `\\xNN` (valid UTF-8 paths are unchanged)."""
  return path.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


def _is_local(filesystem: FileSystem) -> bool:
  return isinstance(filesystem, LocalFileSystem)


def check_input(
  path: str, max_bytes: int, size: Optional[int] = None, filesystem: Optional[FileSystem] = None
) -> int:
  """Raises InputFileError when `path` must not be read (module docstring); nothing is opened.

  Args:
    size: the file's size in bytes from the listing; used for object stores (local paths are stat'ed
      again). None: one metadata request.
    filesystem: the path's Beam FileSystem, when the caller has it.
  Returns:
    The size checked, in bytes (<= max_bytes).
  """
  filesystem = filesystem or FileSystems.get_filesystem(path)
  if _is_local(filesystem):
    try:
      info = os.stat(path)
    except OSError as e:
      raise InputFileError(stat_error_reason(e, path)) from None
    if stat.S_ISDIR(info.st_mode):
      raise InputFileError('a folder, not a file')
    problem = stat_problem(info.st_mode, os.path.islink(path))
    if problem:
      raise InputFileError(problem)
    size = info.st_size
  elif size is None:
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
  if size > max_bytes:
    raise InputFileError(too_large(size, max_bytes))
  return size


@contextlib.contextmanager
def open_input(
  path: str, max_bytes: int, size: Optional[int] = None, filesystem: Optional[FileSystem] = None
) -> Iterator[BinaryIO]:
  """The file opened for reading (uncompressed) after `check_input`; read at most `max_bytes` + 1.

  Raises:
    InputFileError: the file must not be read (its reject reason).
    OSError / BeamIOError: it cannot be opened.
  """
  filesystem = filesystem or FileSystems.get_filesystem(path)
  check_input(path, max_bytes, size, filesystem)
  with filesystem.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
    yield src


def read_input(
  path: str, max_bytes: int, size: Optional[int] = None, filesystem: Optional[FileSystem] = None
) -> bytes:
  """The whole file's bytes after `check_input` (at most `max_bytes` of them).

  Raises:
    InputFileError: the file must not be read, or it grew past `max_bytes` since it was listed.
    OSError / BeamIOError: it cannot be read.
  """
  filesystem = filesystem or FileSystems.get_filesystem(path)
  size = check_input(path, max_bytes, size, filesystem)
  with filesystem.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
    # read(n) allocates n bytes before it reads (~80 us for 256 MiB): ask for the checked size and
    # one byte more, and read on (up to max_bytes + 1) only if the file grew.
    data = src.read(size + 1)
    if len(data) > size:
      data += src.read(max_bytes + 1 - len(data))
  if len(data) > max_bytes:  # It grew since its stat (or the listing's size was stale).
    raise InputFileError(f'file larger than --max_file_bytes (more than {max_bytes} bytes read)')
  return data
