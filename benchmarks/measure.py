"""Run a command and measure it: wall time, CPU time and peak RSS of its whole process tree.

Peak RSS is the largest *sum* of resident set sizes over the root process and all its descendants,
sampled every ``interval_s`` by a thread with psutil (shared pages are counted once per process, as
``ps`` would; a short spike between samples can be missed). CPU time is the larger of the children's
rusage delta (user + sys of every reaped descendant) and the last sampled per-process CPU times.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class Measurement:
  """One measured run: seconds, bytes, the 1-minute load average before/after, captured output."""

  cmd: list[str]
  returncode: int
  wall_s: float
  cpu_s: float
  peak_rss_bytes: int
  load_before: float
  load_after: float
  stdout: str = ''
  stderr: str = field(default='', repr=False)
  peak_rss_by_process: dict = field(default_factory=dict)  # "pid command" -> peak RSS bytes
  # "pid command" -> last sampled CPU seconds
  cpu_s_by_process: dict = field(default_factory=dict)


class TreeSampler(threading.Thread):
  """Daemon thread sampling RSS and CPU times of ``pid`` and all its descendants until ``stop()``."""

  def __init__(self, pid: int, interval_s: float = 0.02):
    super().__init__(daemon=True)
    self._root = psutil.Process(pid)
    self._interval_s = interval_s
    self._stop_event = threading.Event()
    self._cpu_by_pid: dict[int, float] = {}
    # pid -> "pid command" as first seen (a zombie's command is '?')
    self._names: dict[int, str] = {}
    self.peak_rss_bytes = 0
    self.peak_by_process: dict[str, int] = {}
    self.cpu_by_process: dict[str, float] = {}

  def _sample(self) -> None:
    try:
      procs = [self._root] + self._root.children(recursive=True)
    except psutil.NoSuchProcess:
      return
    rss = 0
    for proc in procs:
      try:
        with proc.oneshot():
          proc_rss = proc.memory_info().rss
          rss += proc_rss
          if proc.pid not in self._names:
            self._names[proc.pid] = f'{proc.pid} {_short_cmd(proc)}'
          key = self._names[proc.pid]
          self.peak_by_process[key] = max(self.peak_by_process.get(key, 0), proc_rss)
          times = proc.cpu_times()
          self._cpu_by_pid[proc.pid] = self.cpu_by_process[key] = times.user + times.system
      except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        continue
    self.peak_rss_bytes = max(self.peak_rss_bytes, rss)

  @property
  def cpu_s(self) -> float:
    """Sum of the last CPU times seen per process (a lower bound: misses the last interval)."""
    return sum(self._cpu_by_pid.values())

  def run(self) -> None:
    while not self._stop_event.is_set():
      self._sample()
      self._stop_event.wait(self._interval_s)

  def stop(self) -> None:
    self._stop_event.set()
    self.join()


def _short_cmd(proc: psutil.Process) -> str:
  """``python -m module`` → the module name; else the executable's base name."""
  try:
    cmd = proc.cmdline()
  except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
    return '?'
  if '-m' in cmd[:-1]:
    return cmd[cmd.index('-m') + 1]
  return os.path.basename(cmd[0]) if cmd else '?'


def _children_cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def run_measured(
  cmd: list[str],
  env: dict | None = None,
  cwd: str | None = None,
  timeout_s: float = 1800,
  interval_s: float = 0.02,
  nice: int = 0,
) -> Measurement:
  """Run ``cmd`` to completion (stdout/stderr captured) and measure it; never raises on exit code."""
  load_before = os.getloadavg()[0]
  cpu_before = _children_cpu_s()
  start = time.perf_counter()
  proc = subprocess.Popen(
    cmd,
    env=env,
    cwd=cwd,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    preexec_fn=(lambda: os.nice(nice)) if nice else None,
  )
  sampler = TreeSampler(proc.pid, interval_s)
  sampler.start()
  try:
    stdout, stderr = proc.communicate(timeout=timeout_s)
  except subprocess.TimeoutExpired:
    proc.kill()
    stdout, stderr = proc.communicate()
  wall_s = time.perf_counter() - start
  sampler.stop()
  cpu_s = max(_children_cpu_s() - cpu_before, sampler.cpu_s)
  return Measurement(
    cmd,
    proc.returncode,
    wall_s,
    cpu_s,
    sampler.peak_rss_bytes,
    load_before,
    os.getloadavg()[0],
    stdout,
    stderr,
    dict(sampler.peak_by_process),
    dict(sampler.cpu_by_process),
  )


def output_bytes(path: str) -> int:
  """Total size in bytes of the files under ``path`` (recursively), skipping ``_work`` folders."""
  total = 0
  for dirpath, dirnames, filenames in os.walk(path):
    dirnames[:] = [d for d in dirnames if d != '_work']
    total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in filenames)
  return total
