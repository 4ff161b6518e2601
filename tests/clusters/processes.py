"""Servers for the runner tests: processes in a loopback-only network namespace, free ports, waits.

Flink, Beam's job servers and Beam's worker pool open some of their gRPC/netty ports on the wildcard
address whatever they are told (the job server's --job-host only names the address it advertises).
So when the machine allows it (root with `unshare`/`nsenter`, as here and in CI) every server and
every client of a cluster test runs inside a private network namespace whose only interface is
loopback:
nothing they open can be reached from outside the machine. Without `unshare` the same processes run
in the host's namespace, told to use 127.0.0.1 everywhere they can be.

Every process is started in its own session (process group) and stopped through that group, so the
JVMs and Python workers a launcher script forks are stopped with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

_LOGGER = logging.getLogger(__name__)
CACHE_ROOT = pathlib.Path(
  os.environ.get('FOLDER2TFRECORD_CACHE', pathlib.Path.home() / '.cache' / 'folder2tfrecord')
)
STOP_GRACE_SECONDS = 15.0


def cache_dir(*parts: str) -> pathlib.Path:
  """~/.cache/folder2tfrecord/<parts> (or $FOLDER2TFRECORD_CACHE/...), created when missing."""
  path = CACHE_ROOT.joinpath(*parts)
  path.mkdir(parents=True, exist_ok=True)
  return path


def free_port() -> int:
  """A TCP port that is free on 127.0.0.1 right now (the kernel's pick)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def tail(path: pathlib.Path, lines: int = 40) -> str:
  """The last `lines` lines of a log file, for failure messages ('' when missing)."""
  try:
    return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])
  except OSError:
    return ''


class LoopbackNamespace:
  """A network namespace with only `lo` (up), held open by a sleeping process.

  `prefix` is the argv prefix that runs a command inside it ([] when namespaces are unavailable, so
  callers never need to branch).
  """

  def __init__(self):
    self._holder: Optional[subprocess.Popen] = None
    self.prefix: List[str] = []

  @staticmethod
  def available() -> bool:
    if os.geteuid() != 0 or not (shutil.which('unshare') and shutil.which('nsenter')):
      return False
    probe = subprocess.run(['unshare', '--net', 'true'], capture_output=True, check=False)
    return probe.returncode == 0

  def __enter__(self) -> 'LoopbackNamespace':
    if not self.available():
      _LOGGER.warning('No network namespace (needs root and unshare); servers run on the host.')
      return self
    self._holder = subprocess.Popen(
      ['unshare', '--net', 'sh', '-c', 'ip link set lo up && echo up && exec sleep 86400'],
      stdout=subprocess.PIPE,
      start_new_session=True,
    )
    if self._holder.stdout.readline().strip() != b'up':
      raise RuntimeError('could not bring up lo in a new network namespace')
    self.prefix = ['nsenter', f'--net=/proc/{self._holder.pid}/ns/net', '--']
    return self

  def __exit__(self, *exc) -> None:
    if self._holder is not None:
      _stop_group(self._holder)

  def run(self, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run of argv inside the namespace."""
    return subprocess.run([*self.prefix, *argv], check=False, **kwargs)

  def can_connect(self, port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port inside the namespace."""
    code = f'import socket; socket.create_connection(("127.0.0.1", {port}), timeout=2).close()'
    return self.run([sys.executable, '-c', code], capture_output=True).returncode == 0

  def http_get(self, url: str) -> Optional[str]:
    """Body of a GET on url from inside the namespace, or None when it fails."""
    code = (
      'import sys, urllib.request; '
      f'sys.stdout.write(urllib.request.urlopen({url!r}, timeout=5).read().decode())'
    )
    done = self.run([sys.executable, '-c', code], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _stop_group(proc: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
  """SIGTERM to the process group, SIGKILL after `grace` seconds; reaps the leader."""
  for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
    try:
      os.killpg(proc.pid, sig)
    except ProcessLookupError:
      break
    try:
      proc.wait(timeout=wait)
      # The leader is gone; make sure no child of the group outlives it.
      with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
      break
    except subprocess.TimeoutExpired:
      continue
  if proc.poll() is None:
    proc.wait(timeout=5)


class Server:
  """One long-running process of a cluster (its own process group, log file, stop on exit)."""

  def __init__(
    self,
    name: str,
    argv: Sequence[str],
    log_dir: pathlib.Path,
    ns: LoopbackNamespace,
    env: Optional[Dict[str, str]] = None,
    cwd: Optional[pathlib.Path] = None,
  ):
    self.name = name
    self.log = log_dir / f'{name}.log'
    self._argv = [*ns.prefix, *argv]
    self._env = {**os.environ, **(env or {})}
    self._cwd = cwd
    self._proc: Optional[subprocess.Popen] = None

  def __enter__(self) -> 'Server':
    with open(self.log, 'ab') as log:
      self._proc = subprocess.Popen(
        self._argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=self._env,
        cwd=self._cwd,
        start_new_session=True,
      )
    _LOGGER.info('started %s (pid %d): %s', self.name, self._proc.pid, ' '.join(self._argv))
    return self

  def __exit__(self, *exc) -> None:
    if self._proc is not None:
      _stop_group(self._proc)

  def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls `ready` until true; raises with the log's tail on timeout or when the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if self._proc.poll() is not None:
        raise RuntimeError(
          f'{self.name} exited with {self._proc.returncode} before {what}:\n{tail(self.log)}'
        )
      if ready():
        return
      time.sleep(1.0)
    raise TimeoutError(f'{self.name}: no {what} after {timeout:.0f} s:\n{tail(self.log)}')
