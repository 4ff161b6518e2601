"""Live progress of local runs, shared through small files.

Beam metrics reach the driver only when a bundle ends, and a shard is one bundle; so for a live
count on one machine each shard-writing worker also rewrites a tiny JSON file
(`_work/progress/<id>.json`, transforms/output/layout.py:
images written and rejected so far) at most every `INTERVAL_SECONDS`. The driver sums these files
(pipeline/runtime/progress.py). Only local outputs get progress files; distributed runs report
through the Beam counters of the shard writer, which the runner's UI shows.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Dict

from transforms.paths import is_remote

INTERVAL_SECONDS = 0.5


class ProgressFile:
  """A worker's running totals, rewritten atomically (write + rename) at most every INTERVAL_SECONDS."""

  def __init__(self, folder: str):
    """`folder`: the output's progress folder (OutputLayout.work_path(PROGRESS_DIR))."""
    self._enabled = not is_remote(folder)
    self._path = os.path.join(folder, uuid.uuid4().hex + '.json')
    self._counts = {'written': 0, 'rejected': 0}
    self._last = 0.0

  def add(self, written: int = 0, rejected: int = 0, force: bool = False) -> None:
    self._counts['written'] += written
    self._counts['rejected'] += rejected
    now = time.monotonic()
    if self._enabled and (force or now - self._last >= INTERVAL_SECONDS):
      self._last = now
      temp = self._path + '.tmp'
      try:
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        with open(temp, 'w', encoding='utf-8') as f:
          json.dump(self._counts, f)
        os.replace(temp, self._path)
      except OSError:
        pass  # A full disk: the shard's own write fails and names the shard; the bar only lags.


def read_totals(folder: str) -> Dict[str, int]:
  """Sum of every worker's progress file in `folder`: {'written': n, 'rejected': n}."""
  totals = {'written': 0, 'rejected': 0}
  try:
    names = [n for n in os.listdir(folder) if n.endswith('.json')]
  except OSError:
    return totals
  for name in names:
    try:
      with open(os.path.join(folder, name), encoding='utf-8') as f:
        counts = json.load(f)
    except (OSError, ValueError):
      continue  # Being replaced right now; the next poll reads it.
    for key in totals:
      totals[key] += counts.get(key, 0)
  return totals
