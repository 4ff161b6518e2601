"""Progress: a live bar on a terminal, log lines otherwise, counts from the workers' progress files."""

import io
import logging
import time

from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from pipeline.runtime import progress
from transforms.output.progress_counters import ProgressFile, read_totals


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_bar_on_a_terminal_counts_what_workers_report(tmp_path):
  stream = _Terminal()
  with progress.Progress(str(tmp_path), total=10, stream=stream):
    workers = [ProgressFile(str(tmp_path)), ProgressFile(str(tmp_path))]
    for i in range(10):
      workers[i % 2].add(written=int(i != 3), rejected=int(i == 3), force=True)
    time.sleep(3 * progress.POLL_SECONDS)
  assert read_totals(str(tmp_path)) == {'written': 9, 'rejected': 1}
  shown = stream.getvalue()
  assert '10/10' in shown
  assert 'rejected=1' in shown


def test_log_lines_when_not_on_a_terminal(tmp_path, monkeypatch, caplog):
  monkeypatch.setattr(progress, 'LOG_INTERVAL_SECONDS', 0.0)
  monkeypatch.setattr(progress, 'POLL_SECONDS', 0.05)
  with caplog.at_level(logging.WARNING, logger='pipeline.runtime.progress'):
    assert convert(SAMPLE_DIR, tmp_path / 'out', *SAMPLE_FLAGS) == 0
  lines = [r.getMessage() for r in caplog.records if r.name == 'pipeline.runtime.progress']
  assert lines and all('/54 images' in line for line in lines)
  assert read_totals(str(tmp_path / 'out' / '_work' / 'progress')) == {'written': 54, 'rejected': 0}


def test_progress_line():
  assert progress.progress_line(50, 2, 200, 10.0) == (
    '50/200 images (25.0%), 5.0 img/s, ETA 30 s, 2 rejected'
  )
  assert progress.progress_line(50, 0, None, 10.0) == '50 images, 5.0 img/s, 0 rejected'
  assert (
    progress.progress_line(0, 0, 54, 10.0) == '0/54 images (0.0%), 0.0 img/s, ETA ?, 0 rejected'
  )
