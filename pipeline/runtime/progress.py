"""What the user sees while a run goes: a live bar on a terminal, periodic log lines otherwise.

The total is the number of files under the class folders, counted on the driver before the run for
local inputs (a cheap directory listing); for object-store inputs the total is unknown and the bar
shows counts and rate only. Counts come from the workers' progress files
(transforms/output/progress_counters.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Optional

from transforms.inputs.listing import is_left_behind
from transforms.paths import is_remote
from transforms.output.progress_counters import read_totals

_LOGGER = logging.getLogger(__name__)
LOG_INTERVAL_SECONDS = 10.0
POLL_SECONDS = 0.5


def count_files(split_roots, class_dirs) -> Optional[int]:
  """Number of entries in the class folders but the left-behind ones (listing.is_left_behind), or
  None for object-store inputs."""
  total = 0
  for split, root in split_roots.items():
    if is_remote(root):
      return None
    for synset in class_dirs[split]:
      try:
        total += sum(
          1 for name in os.listdir(os.path.join(root, synset)) if not is_left_behind(name)
        )
      except OSError:
        pass
  return total


class Progress:
  """Context manager: a thread polls the progress files until the run ends."""

  def __init__(self, progress_dir: str, total: Optional[int], stream=None):
    """`progress_dir`: the folder of the workers' progress files (OutputLayout.work_path(PROGRESS_DIR))."""
    self._progress_dir = progress_dir
    self._total = total
    # The terminal itself, also while sys.stderr sends other threads' writes to the run log
    # (logs.py).
    self._stream = stream or getattr(sys.stderr, 'terminal', sys.stderr)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, name='progress', daemon=True)
    self._bar = None

  def __enter__(self):
    if is_remote(self._progress_dir):
      return self
    if self._stream.isatty():
      from tqdm import tqdm  # pylint: disable=import-outside-toplevel

      self._bar = tqdm(
        total=self._total,
        unit='img',
        file=self._stream,
        dynamic_ncols=True,
        desc='converting',
        smoothing=0.1,
      )
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join()
    if self._bar is not None:
      self._bar.close()

  def _loop(self):
    start = last_log = time.monotonic()
    while not self._stop.wait(POLL_SECONDS):
      totals = read_totals(self._progress_dir)
      done = totals['written'] + totals['rejected']
      if self._bar is not None:
        self._bar.update(done - self._bar.n)
        self._bar.set_postfix(rejected=totals['rejected'], refresh=False)
      elif time.monotonic() - last_log >= LOG_INTERVAL_SECONDS:
        last_log = time.monotonic()
        _LOGGER.warning(
          '%s', progress_line(done, totals['rejected'], self._total, last_log - start)
        )


def progress_line(done: int, rejected: int, total: Optional[int], seconds: float) -> str:
  """'1200/5000 images (24.0%), 180.3 img/s, ETA 21 s, 3 rejected'."""
  rate = done / seconds if seconds > 0 else 0.0
  if total:
    eta = f'{(total - done) / rate:.0f} s' if rate > 0 else '?'
    return (
      f'{done}/{total} images ({100.0 * done / total:.1f}%), {rate:.1f} img/s, '
      f'ETA {eta}, {rejected} rejected'
    )
  return f'{done} images, {rate:.1f} img/s, {rejected} rejected'
