"""A local Beam worker process that dies ends the run with an error, not a run that waits forever.

With --direct_running_mode=multi_processing each SDK harness worker is a subprocess. When one dies
(the out-of-memory killer, a crash in a C library) Beam raises in the thread that started it and the
runner keeps waiting for its results; interrupting the main thread does not help (the runner's
`finally: close_all()` waits for the dead connection). So `DeadWorkerWatch`, a threading.excepthook,
recognises that thread's exception (beam_private/worker_threads.py) and calls `on_death`, which on
the command line (pipeline/run.py main()) stops the other local workers (`stop_local_workers`),
releases the output and ends the process with one error (pipeline/runtime/interrupts.py end_now);
the driver's own "Channel closed prematurely" error waits for that (`death_reported`) instead of
being printed too. A worker ended by a signal sent to the whole process group is not a death: the
driver got the same signal. Finished shards are complete files either way.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

import psutil

from beam_private.worker_threads import worker_exit_code
from pipeline.runtime import interrupts, logs

# Exit codes of a worker ended by SIGINT, SIGTERM or SIGHUP (itself, or through Beam's /bin/sh):
# sent to the whole process group (Ctrl-C, `kill -TERM -<pgid>`), the driver got it too and ends the
# run (pipeline/runtime/interrupts.py); the watch waits SIGNALLED_GRACE_SECONDS for that before it
# reports a death.
_SIGNALLED = {
  code: signal.Signals(signum).name
  for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
  for code in (-signum, 128 + signum)
}
SIGNALLED_GRACE_SECONDS = 2.0
_KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)  # itself, or through the /bin/sh that Beam starts


_death_seen = threading.Event()


def death_reported(timeout_s: float) -> bool:
  """Waits up to `timeout_s` for a DeadWorkerWatch to see a dead worker; whether one did (the watch
  then ends the process).

  For the driver's failure path: a killed worker also breaks the driver's connections, whose error
  ("Channel closed prematurely") reaches the main thread at about the same moment.
  """
  return _death_seen.wait(timeout_s)


def describe(code: int) -> str:
  """'a Beam worker process died (exit code 137: killed, e.g. by the out-of-memory killer)'."""
  cause = (
    ': killed, e.g. by the out-of-memory killer'
    if code in _KILLED
    else f': stopped by {_SIGNALLED[code]}'
    if code in _SIGNALLED
    else ''
  )
  return f'a Beam worker process died (exit code {code}{cause})'


def stop_local_workers(timeout_s: float = 5.0) -> int:
  """Kills every process this one started, directly or not (the local Beam SDK workers and the
  /bin/sh Beam starts them through), and waits up to `timeout_s` for them; returns how many there
  were.

  Only for a run that is ending anyway: a worker holds nothing that --resume needs (a shard is
  renamed into place only when complete).
  """
  try:
    children = psutil.Process().children(recursive=True)
  except psutil.Error:
    return 0
  for child in children:
    try:
      child.kill()
    except psutil.Error:
      pass  # Already gone.
  psutil.wait_procs(children, timeout=timeout_s)
  return len(children)


class DeadWorkerWatch:
  """Context manager: `on_death(description)` runs (once, in Beam's thread) when a local worker dies.

  A worker stopped by a signal that the driver got too (Ctrl-C) does not count: the driver reports
  that itself.
  """

  def __init__(self, on_death: Callable[[str], None]):
    self._on_death = on_death
    self._called = threading.Lock()
    self._previous_hook = None

  def __enter__(self) -> 'DeadWorkerWatch':
    self._previous_hook = threading.excepthook
    threading.excepthook = self._thread_failed
    return self

  def __exit__(self, *exc) -> None:
    threading.excepthook = self._previous_hook

  def _thread_failed(self, args) -> None:
    code = worker_exit_code(args)
    if code is None:
      self._previous_hook(args)
      return
    # INFO: into the run log with its traceback; on_death says it on the terminal.
    logging.getLogger(__name__).info(
      "Beam's thread %s ended: %s",
      args.thread.name,
      args.exc_value,
      exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
    _death_seen.set()
    logs.silence_terminal()  # The run ends either way; its broken connections' errors are not news.
    if code in _SIGNALLED and interrupts.ending_within(SIGNALLED_GRACE_SECONDS):
      return
    if self._called.acquire(blocking=False):
      self._on_death(describe(code))
