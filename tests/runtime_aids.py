"""Test aids for runs that end early (tests/test_interrupts.py, tests/test_disk_full.py).

`run_on_pty` runs a command on a new pseudo-terminal, as a person would, lets the test act while it
runs (press Ctrl-C, send a signal), and records what the screen showed, the exit code, when the
command ended, which processes it started and whether any of them or any new shard outlived it.

`FAULTS_SITECUSTOMIZE` is a sitecustomize module that every process of a run (the driver and its
Beam workers inherit PYTHONPATH) loads: the first time a file whose name contains $F2T_FILL_WHEN is
opened for writing, it fills the disk of $F2T_FILLER by writing that file until the kernel says
ENOSPC (a real full disk, not a simulated error); the first time a file whose name contains
$F2T_PAUSE_WHEN is opened (any mode), it creates $F2T_PAUSED and sleeps $F2T_PAUSE_SECONDS, a window
in which the test acts; opening a file whose name contains $F2T_EIO_WHEN for writing raises OSError
EIO (a failing disk).
"""

import dataclasses
import errno
import fcntl
import os
import pathlib
import pty
import select
import signal
import struct
import termios
import time
from typing import Callable, List, Optional, Tuple

import psutil

from conftest import REPO

SCREEN_COLUMNS, SCREEN_ROWS = 100, 40
WATCH_AFTER_EXIT_SECONDS = 3.0

FAULTS_SITECUSTOMIZE = '''
"""Test aid (tests/runtime_aids.py): fills the output's disk, or pauses, at a chosen file."""
import builtins
import io
import os
import time

_real_open = io.open
_FILL_WHEN, _FILLER = os.environ.get('F2T_FILL_WHEN'), os.environ.get('F2T_FILLER')
_PAUSE_WHEN, _PAUSED = os.environ.get('F2T_PAUSE_WHEN'), os.environ.get('F2T_PAUSED')
_EIO_WHEN = os.environ.get('F2T_EIO_WHEN')


def _first(path):
  """True once across every process of the run: whoever creates `path` first."""
  try:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return True
  except FileExistsError:
    return False


def _fill():
  if not _first(_FILLER):
    return
  fd = os.open(_FILLER, os.O_WRONLY | os.O_APPEND)
  try:
    for size in (1 << 20, 1 << 12, 1):
      block = b'\\0' * size
      try:
        while True:
          os.write(fd, block)
      except OSError:
        pass
  finally:
    os.close(fd)


def _open(file, mode='r', *args, **kwargs):
  if isinstance(file, (str, bytes, os.PathLike)):
    name = os.path.basename(os.fsdecode(file))
    if _FILL_WHEN and _FILL_WHEN in name and any(c in mode for c in 'wax+'):
      _fill()
    if _PAUSE_WHEN and _PAUSE_WHEN in name and _first(_PAUSED):
      time.sleep(float(os.environ.get('F2T_PAUSE_SECONDS', '30')))
    if _EIO_WHEN and _EIO_WHEN in name and any(c in mode for c in 'wax+'):
      raise OSError(5, 'Input/output error (injected)', os.fsdecode(file))
  return _real_open(file, mode, *args, **kwargs)


if (_FILL_WHEN and _FILLER) or (_PAUSE_WHEN and _PAUSED) or _EIO_WHEN:
  io.open = builtins.open = _open
'''


@dataclasses.dataclass
class Ended:
  """What a command run by run_on_pty did.

  Attributes:
    code: its exit code (negative: killed by that signal).
    lines: the screen's lines (per line, what follows its last carriage return; escapes dropped).
    seconds: from its start to its exit; acted_at: from its start to the test's action (None: none).
    survivors: processes it started that were still running WATCH_AFTER_EXIT_SECONDS after it
    exited.
    late_shards: final shard files that appeared in the output after it exited.
  """

  code: int
  lines: List[str]
  seconds: float
  acted_at: Optional[float]
  survivors: List[psutil.Process]
  late_shards: List[str]

  @property
  def text(self) -> str:
    return '\n'.join(self.lines)


def final_shards(output: pathlib.Path) -> List[str]:
  if not output.is_dir():
    return []
  return sorted(p.name for p in output.iterdir() if '-of-' in p.name and '.tmp' not in p.name)


def fork_on_pty(command, env) -> Tuple[int, int]:
  """Starts `command` in REPO as a new session whose controlling terminal is a new pseudo-terminal of
  SCREEN_COLUMNS x SCREEN_ROWS; returns (its pid, the terminal's file descriptor) once the command
  runs: until its exec, the child is a copy of this process (pytest, with its signal handlers and
  its modules mapped), and a test must not act on that copy (as subprocess waits on a
  close-on-exec pipe)."""
  exec_read, exec_write = os.pipe()  # Both close-on-exec (PEP 446).
  pid, fd = pty.fork()
  if pid == 0:  # The child.
    try:
      os.close(exec_read)
      fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', SCREEN_ROWS, SCREEN_COLUMNS, 0, 0))
      os.chdir(REPO)
      os.execvpe(command[0], list(command), env)
    except BaseException as e:  # pylint: disable=broad-except
      os.write(exec_write, repr(e).encode())
    finally:
      os._exit(127)  # pylint: disable=protected-access
  os.close(exec_write)
  with os.fdopen(exec_read, 'rb') as exec_pipe:
    failure = exec_pipe.read()  # b'' once exec closed the child's end.
  if failure:
    os.close(fd)
    os.waitpid(pid, 0)
    raise AssertionError(f'{command} could not start: {failure.decode(errors="replace")}')
  return pid, fd


def run_on_pty(
  command,
  env,
  output: pathlib.Path,
  act: Optional[Callable[[int, int], bool]] = None,
  timeout: float = 120.0,
) -> Ended:
  """Runs `command` in REPO on a new pseudo-terminal; `act(pid, terminal_fd)` is called every 0.05 s
  until it returns True (it acted). Fails the test when the command runs longer than `timeout`."""
  started = time.monotonic()
  pid, fd = fork_on_pty(command, env)
  output_bytes, seen, acted_at, status = b'', {}, None, None
  try:
    while status is None:
      if time.monotonic() - started > timeout:
        _kill(pid, seen)
        raise AssertionError(
          f'{command} did not end in {timeout} s; the screen ends with:\n'
          + '\n'.join(screen_lines(output_bytes)[-30:])
        )
      try:
        for child in psutil.Process(pid).children(recursive=True):
          seen.setdefault(child.pid, child)
      except psutil.Error:
        pass
      if act is not None and acted_at is None and act(pid, fd):
        acted_at = time.monotonic() - started
      output_bytes += _read(fd, 0.05)
      waited, raw = os.waitpid(pid, os.WNOHANG)
      if waited:
        status = raw
    seconds = time.monotonic() - started
    shards_at_exit = set(final_shards(output))
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # What the terminal still holds.
      output_bytes += _read(fd, 0.05)
  finally:
    os.close(fd)
  time.sleep(WATCH_AFTER_EXIT_SECONDS)
  survivors = [p for p in seen.values() if _running(p)]
  _kill(None, {p.pid: p for p in survivors})
  late = sorted(set(final_shards(output)) - shards_at_exit)
  return Ended(
    os.waitstatus_to_exitcode(status),
    screen_lines(output_bytes),
    seconds,
    acted_at,
    survivors,
    late,
  )


def screen_lines(data: bytes) -> List[str]:
  import re  # pylint: disable=import-outside-toplevel

  text = re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', '', data.decode('utf-8', 'replace')).replace(
    '\r\n', '\n'
  )
  return [line.rsplit('\r', 1)[-1].rstrip() for line in text.rstrip('\n').split('\n')]


def _read(fd: int, wait: float) -> bytes:
  ready, _, _ = select.select([fd], [], [], wait)
  if not ready:
    return b''
  try:
    return os.read(fd, 65536)
  except OSError as e:
    if e.errno != errno.EIO:  # EIO: every process holding the terminal has closed it.
      raise
    return b''


def _running(process: psutil.Process) -> bool:
  try:
    return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
  except psutil.Error:
    return False


def _kill(pid: Optional[int], others) -> None:
  for process in list(others.values()):
    try:
      process.kill()
    except psutil.Error:
      pass
  if pid is not None:
    try:
      os.kill(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
    except OSError:
      pass
