"""How a command-line run ends early: Ctrl-C, SIGTERM, SIGHUP, or a failure that Beam cannot report.

Order: the local Beam workers are killed and waited for (worker_watch.stop_local_workers), THEN the
output's claim is released (pipeline/runtime/claim.py), then one line goes to the terminal and the
process exits at once (os._exit). Workers first, so that none renames a shard into place after the
output was given up; at once, because Beam's clean-up waits for workers that no longer answer.
Shards are renamed into place only when complete, so what is left is what --resume keeps. Signals
are handled like Ctrl-C (SIGTERM: Airflow, Kubernetes, systemd; SIGHUP: a closed terminal); the exit
code is 128
+ the signal's number, as shells report it: 130 SIGINT, 143 SIGTERM, 129 SIGHUP. The entry points
call `install()` before Beam and TensorFlow are imported, so an interrupt during start-up ends the
same way; a second signal while the run ends is ignored. Library use (run() called from Python, the
tests) installs nothing. This module imports nothing heavy.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from pipeline.runtime import logs

_LOGGER = logging.getLogger(__name__)

# Signals that end a command-line run, and the exit code of each (128 + the signal's number).
SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
RESUME_HINT = (
  'Finished shards are kept; rerun with the same flags and --resume to write only the missing ones.'
)

_ending = threading.Lock()  # Held by whichever ends the run first.
_ending_event = threading.Event()  # Set once it is held.
_claim = None  # The run's OutputClaim while it holds one (anything with release()).
_installed = False


def install() -> None:
  """Ends the process on SIGINT, SIGTERM and SIGHUP as the module docstring says (main thread only)."""
  global _installed  # pylint: disable=global-statement
  for signum in SIGNALS:
    signal.signal(signum, _on_signal)
  _installed = True


def installed() -> bool:
  """Whether this is a command-line run (install() was called)."""
  return _installed


def hold(claim) -> None:
  """Records the run's claim (OutputClaim), which an early end releases after the workers stopped;
  None when the run released it."""
  global _claim  # pylint: disable=global-statement
  _claim = claim


def interrupted_line(signum: int) -> str:
  """The one line an interrupted run prints: whether anything was written decides what it says."""
  name = 'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name
  if _claim is None:
    return f'interrupted ({name}) before anything was written; run the same command again.'
  return f'interrupted ({name}). {RESUME_HINT}'


def end_now(text: str, code: int) -> None:
  """Stops the workers, releases the claim, prints `text` to the terminal and exits with `code`.

  Returns only when another thread is ending the run already (it exits the process).
  """
  if not _ending.acquire(blocking=False):
    return
  _ending_event.set()
  logs.silence_terminal()  # Stopped workers and broken connections log errors: not news.
  from pipeline.runtime.worker_watch import stop_local_workers  # pylint: disable=import-outside-toplevel

  stop_local_workers()
  if _claim is not None:
    try:
      _claim.release()
    except OSError:
      pass  # The kernel drops the lock at exit; --resume then takes over the claim.
  _LOGGER.info('The run ends early (exit code %d): %s', code, text)
  try:
    sys.stdout.flush()  # e.g. a summary printed to a pipe
  except Exception:  # pylint: disable=broad-except  (a write this handler interrupted)
    pass
  _write_terminal(text if text.endswith('\n') else text + '\n')
  for handler in logging.getLogger().handlers:
    try:
      handler.flush()
    except Exception:  # pylint: disable=broad-except  (a full disk: the terminal line is out)
      pass
  os._exit(code)  # pylint: disable=protected-access


def ending_within(timeout_s: float) -> bool:
  """Waits up to `timeout_s` for end_now() to start ending the process (a signal that reached this
  process and its workers alike); whether it did."""
  return _ending_event.wait(timeout_s)


def _on_signal(signum: int, _) -> None:
  end_now(interrupted_line(signum), SIGNALS[signum])


def _write_terminal(text: str) -> None:
  """Straight to the descriptor: a signal handler may interrupt a write of the same stream. On a
  terminal the current line (the progress bar) is cleared first."""
  try:
    fd = sys.stderr.fileno()
  except (AttributeError, ValueError, OSError):
    fd = 2
  if os.isatty(fd):
    text = '\r\x1b[2K' + text  # Over the progress bar (or the terminal's "^C"), not after it.
  data = text.encode('utf-8', 'backslashreplace')
  try:
    while data:
      data = data[os.write(fd, data) :]
  except OSError:
    pass
