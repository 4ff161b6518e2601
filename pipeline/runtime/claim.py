"""One run per output: a run claims --output before it writes anything and releases it at the end.

Two runs writing one output (a double trigger, a retry while the first still runs) would mix their
shards silently; a second run fails at once naming the first. Local disks: `_work/claim.json` (run
id, start, host, pid), opened with O_CREAT and held with flock(LOCK_EX | LOCK_NB) for the whole run;
the kernel drops a flock when its process ends (SIGKILL and OOM kills included), so a claim file
that nobody holds is stale (on NFS, Linux maps flock to NFSv4 byte-range locks). Object stores
(gs://, s3://) offer no exclusive create through FileSystems, so a claim is elected: each run writes
`_work/claims/<run id>.json`, lists `_work/claims/` and proceeds only when no other live claim is
listed (S3 and GCS list strongly consistently after a write: two racing runs never both proceed,
both may fail). A claim is live while its driver rewrites it every HEARTBEAT_SECONDS; one older than
STALE_AFTER_SECONDS, or left by a dead process on this machine, is stale (clocks must agree; a
driver suspended longer loses it). --resume or --overwrite take a stale claim over, naming the run
that left it. The claim is the driver's: cancel a Dataflow, Flink or Spark job whose driver was
killed.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import List, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

from pipeline.options import UsageError
from transforms.output import layout
from transforms.paths import is_remote

try:
  import fcntl
except ImportError:  # Windows: no flock; claims on local disks are not supported there.
  fcntl = None

HEARTBEAT_SECONDS = 10.0
HOLDER_WRITE_SECONDS = 2.0  # how long a run that lost the lock waits for the holder's record
STALE_AFTER_SECONDS = 60.0
_LOGGER = logging.getLogger(__name__)
_READ_LIMIT_BYTES = 1 << 16


class OutputInUse(UsageError):
  """--output is claimed by another run (live), or by a run that stopped (stale, and neither
  --resume nor --overwrite was given); the message names that run."""


def new_run_id() -> str:
  """A run id that sorts by start time: `20261130-124900-3f2a9c`."""
  return f'{datetime.datetime.now(datetime.timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}'


def this_machine() -> str:
  """Host name, boot id and pid namespace: two processes with this same value see the same pids."""
  parts = [socket.gethostname()]
  for path, read in (
    ('/proc/sys/kernel/random/boot_id', lambda p: open(p).read().strip()),
    ('/proc/self/ns/pid', os.readlink),
  ):
    try:
      parts.append(read(path))
    except OSError:
      parts.append('')
  return '|'.join(parts)


def _pid_exists(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


@dataclasses.dataclass(frozen=True)
class ClaimRecord:
  """What a claim file holds.

  Attributes:
    run_id: the run's id (also in provenance.json).
    started: ISO 8601 UTC start time of the run.
    host: the driver's host name; pid: the driver's process id.
    machine: `this_machine()` of the driver.
    heartbeat: when the claim was last written, in seconds since the epoch (object stores).
  """

  run_id: str
  started: str
  host: str
  pid: int
  machine: str
  heartbeat: float

  @classmethod
  def for_this_process(cls, run_id: str, started: str) -> 'ClaimRecord':
    return cls(run_id, started, socket.gethostname(), os.getpid(), this_machine(), time.time())

  def describe(self) -> str:
    return f'run {self.run_id} (started {self.started} on {self.host}, pid {self.pid})'

  def to_bytes(self) -> bytes:
    return layout.to_json(dataclasses.asdict(self), indent=None).encode('utf-8')

  @classmethod
  def parse(cls, data: bytes) -> Optional['ClaimRecord']:
    """The record, or None for bytes that are not one."""
    try:
      return cls(**json.loads(data.decode('utf-8')))
    except (ValueError, TypeError):
      return None

  def stale_reason(self, now: float) -> Optional[str]:
    """Why a claim on an object store is stale, or None while its run may be alive."""
    if self.machine == this_machine() and not _pid_exists(self.pid):
      return 'its process no longer exists'
    if now - self.heartbeat >= STALE_AFTER_SECONDS:
      return f'it has not been refreshed for {now - self.heartbeat:.0f} s'
    return None


def _describe(record: Optional[ClaimRecord]) -> str:
  return record.describe() if record else 'another run (its claim record is unreadable)'


class OutputClaim:
  """The claim of one run on one output; a context manager that releases it on exit."""

  def __init__(self, output: layout.OutputLayout, record: ClaimRecord):
    self._output = output
    self._record = record
    self._local = not is_remote(output.root)
    self._fd: Optional[int] = None
    self._stop = threading.Event()
    self._heartbeat: Optional[threading.Thread] = None

  def acquire(self, may_take_over: bool) -> Optional[str]:
    """Claims the output; returns a note when a stale claim was taken over, else None.

    Args:
      may_take_over: --resume or --overwrite was given.
    Raises:
      OutputInUse: another run holds the output, or a stale claim and not `may_take_over`.
    """
    return (
      self._acquire_local(may_take_over) if self._local else self._acquire_remote(may_take_over)
    )

  def release(self) -> None:
    """Gives the output up (idempotent)."""
    if self._fd is not None:
      path = self._output.work_path(layout.CLAIM_FILE)
      try:
        if _same_file(self._fd, path):
          os.unlink(path)  # While still locked: the next run then creates a fresh claim.
      finally:
        os.close(self._fd)
        self._fd = None
    if self._heartbeat is not None:
      self._stop.set()
      self._heartbeat.join()
      self._heartbeat = None
      _delete_quietly(self._output.claim_path(self._record.run_id))

  def __enter__(self) -> 'OutputClaim':
    return self

  def __exit__(self, *exc) -> None:
    self.release()

  def _in_use(self, holder: Optional[ClaimRecord]) -> str:
    return (
      f'--output {self._output.root} is in use by {_describe(holder)}: two runs on one output '
      'would mix their shards. Wait for that run to end (or stop it), or choose another '
      '--output.'
    )

  def _stale(self, holder: Optional[ClaimRecord], reason: str, may_take_over: bool) -> str:
    if may_take_over:
      return (
        f'note: taking --output over from {_describe(holder)}, which ended without '
        f'releasing it ({reason}).'
      )
    raise OutputInUse(
      f'--output {self._output.root} is still claimed by {_describe(holder)}, which ended without '
      f'releasing it ({reason}). Pass --resume to finish its work, or --overwrite to start again.'
    )

  # -- local disks: flock --------------------------------------------------------------------------

  def _acquire_local(self, may_take_over: bool) -> Optional[str]:
    if fcntl is None:
      raise OutputInUse('claiming a local --output needs flock (POSIX); this platform has none.')
    path = self._output.work_path(layout.CLAIM_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    while True:  # Again only when a releasing run unlinked the file between our open and lock.
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
          os.close(fd)
          raise
        holder = _holder_record(fd)
        os.close(fd)
        raise OutputInUse(self._in_use(holder)) from None
      if _same_file(fd, path):
        break
      os.close(fd)
    try:
      previous = _read_fd(fd)
      note = None
      if previous:  # Content, and nobody holds the lock: the run that wrote it is gone.
        note = self._stale(ClaimRecord.parse(previous), 'its process ended', may_take_over)
      os.ftruncate(fd, 0)
      os.pwrite(fd, self._record.to_bytes(), 0)
      os.fsync(fd)
    except BaseException:
      os.close(fd)
      raise
    self._fd = fd
    return note

  # -- object stores: write, list, elect -----------------------------------------------------------

  def _acquire_remote(self, may_take_over: bool) -> Optional[str]:
    claims = self._claims()
    now = time.time()
    live = [record for _, record in claims if record and not record.stale_reason(now)]
    if live:
      raise OutputInUse(self._in_use(live[0]))
    note = None
    if claims:
      record = claims[0][1]
      note = self._stale(
        record, record.stale_reason(now) if record else 'unreadable', may_take_over
      )
    mine = self._output.claim_path(self._record.run_id)
    self._write_remote(mine)
    for path, _ in claims:
      _delete_quietly(path)
    now = time.time()
    rivals = [
      record
      for path, record in self._claims()
      if path != mine and record and not record.stale_reason(now)
    ]
    if rivals:
      _delete_quietly(mine)
      raise OutputInUse(
        self._in_use(rivals[0]) + ' (the two runs started at the same moment; '
        'run one of them again)'
      )
    self._heartbeat = threading.Thread(
      target=self._beat, args=(mine,), name='output-claim', daemon=True
    )
    self._heartbeat.start()
    return note

  def _claims(self) -> List[Tuple[str, Optional[ClaimRecord]]]:
    """(path, record or None when unreadable) of every claim, oldest run first."""
    pattern = layout.join(self._output.work_path(layout.CLAIMS_DIR), '*')
    try:
      paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    except Exception:  # pylint: disable=broad-except  (BeamIOError: no claims folder yet)
      return []
    claims = []
    for path in paths:
      try:
        with FileSystems.open(path) as f:
          claims.append((path, ClaimRecord.parse(f.read(_READ_LIMIT_BYTES))))
      except Exception:  # pylint: disable=broad-except  (deleted since the listing)
        continue
    return claims

  def _write_remote(self, path: str) -> None:
    self._record = dataclasses.replace(self._record, heartbeat=time.time())
    with FileSystems.create(path, mime_type='application/json') as f:
      f.write(self._record.to_bytes())

  def _beat(self, path: str) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      try:
        self._write_remote(path)
      except Exception as e:  # pylint: disable=broad-except  (a store hiccup: try again next time)
        _LOGGER.warning('Could not refresh the claim %s: %s', path, e)


def _holder_record(fd: int) -> Optional[ClaimRecord]:
  """The record of the run that holds the lock on `fd`'s file. A run that started at the same moment
  writes it right after it locks: wait up to HOLDER_WRITE_SECONDS for it. None if it never comes."""
  deadline = time.monotonic() + HOLDER_WRITE_SECONDS
  while True:
    record = ClaimRecord.parse(_read_fd(fd))
    if record is not None or time.monotonic() >= deadline:
      return record
    time.sleep(0.01)


def _read_fd(fd: int) -> bytes:
  return os.pread(fd, _READ_LIMIT_BYTES, 0)


def _same_file(fd: int, path: str) -> bool:
  try:
    opened, named = os.fstat(fd), os.stat(path)
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
  except FileNotFoundError:
    return False


def _delete_quietly(path: str) -> None:
  try:
    FileSystems.delete([path])
  except Exception:  # pylint: disable=broad-except  (already gone)
    pass
