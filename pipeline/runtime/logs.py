"""What a command-line run shows on the terminal, and the run log that gets everything else.

On a terminal, `python -m pipeline.run` shows one "Converting ..." line, the progress bar, the
summary and real warnings and errors; everything else (the driver's, Beam's and the local SDK
workers' logs, INFO and up, DEBUG with --log_level DEBUG) goes to `<output>/_work/run.log`, or for a
gs:// or s3:// output to a local temporary folder named on the terminal. Known-harmless warnings
(HARMLESS) are kept off the terminal only. Library use (run() called from Python, the tests)
configures nothing.

Nothing a worker prints may block or fail a run: multi-processing workers inherit the driver's
stderr (apache_beam/runners/portability/local_job_service.py SubprocessSdkWorker), and a worker
whose traceback print fails on a full disk never reports its failure (sdk_worker.py
`SdkHarness._execute`). So file descriptor 2 points at a pipe that a thread copies into the run log
(dropping what the disk refuses), the terminal gets a duplicate of the original descriptor, and the
run log's handlers never raise. No Beam internals are touched.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import tempfile
import threading
from typing import Deque, Iterator, Optional, Sequence, Tuple

from transforms.paths import is_remote

TERMINAL_FORMAT = '%(asctime)s %(levelname)s %(message)s'
FILE_FORMAT = '%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s'
HELD_RECORDS = 10000  # records kept in memory until the run log opens; older ones are dropped
# The logger through which the FnApiRunner passes on what its workers log ("Worker: <LogEntry>").
WORKER_LOGGER = 'apache_beam.runners.portability.local_job_service'

# (logger name, text in the message) of Beam warnings that say nothing about this run: terminal
# only.
HARMLESS: Sequence[Tuple[str, str]] = (
  # Beam's BigQuery client stub when the gcp extra is missing (through the root logger, on
  # import).
  ('root', 'apitools not found, and bigquery client libraries are not available'),
  # Every local SDK harness worker, forwarded to the driver: workers here have no staging folder
  # and need none (no pickled main session, save_main_session=False).
  (WORKER_LOGGER, 'No semi_persistent_directory found'),
)
# (logger name, text in the message) of INFO records that the terminal shows at WARNING as well:
# where a submitted Dataflow job is and how it goes (the run can last hours with nothing else on the
# screen).
NOTABLE: Sequence[Tuple[str, str]] = (
  ('apache_beam.runners.dataflow.internal.apiclient', 'Created job with id'),
  ('apache_beam.runners.dataflow.internal.apiclient', 'To access the Dataflow monitoring console'),
  ('apache_beam.runners.dataflow.dataflow_runner', ' is in state JOB_STATE_'),
)


# (logger name, text in the message) of the ERROR records Beam writes about a failed bundle, in this
# process (in_memory, multi_threading) or passed on from a worker (WORKER_LOGGER): run log only,
# because the pipeline then fails and the driver says why (pipeline/run.py).
BUNDLE_FAILURES: Sequence[Tuple[str, str]] = (
  ('apache_beam.runners.common', '[while running '),
  ('apache_beam.runners.worker.sdk_worker', 'Error processing instruction'),
  (WORKER_LOGGER, '[while running '),
  (WORKER_LOGGER, 'Error processing instruction'),
  # A worker's connection that broke (the worker died or was stopped): the run fails, and says
  # why.
  ('apache_beam.runners.worker.data_plane', 'Failed to read inputs in the data plane'),
)
PIPE_CHUNK_BYTES = 1 << 16


def _matches(record: logging.LogRecord, table: Sequence[Tuple[str, str]]) -> bool:
  return any(record.name == name and text in record.getMessage() for name, text in table)


class TerminalFilter(logging.Filter):
  """Records at `level` and up that are not HARMLESS, plus the NOTABLE INFO records."""

  def __init__(self, level: int = logging.WARNING):
    super().__init__()
    self.level = level

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= self.level:
      return not _matches(record, HARMLESS) and not (
        record.levelno >= logging.ERROR and _matches(record, BUNDLE_FAILURES)
      )
    return record.levelno >= logging.INFO and _matches(record, NOTABLE)


def worker_message(record: logging.LogRecord) -> Optional[str]:
  """The first line of a worker's message passed on by the FnApiRunner, or None for other records.

  The runner logs each worker record as 'Worker: ' + the LogEntry proto in text format (newlines
  replaced by spaces), trace and all; the text format parses back.
  """
  if record.name != WORKER_LOGGER or not record.args:
    return None
  from google.protobuf import text_format  # pylint: disable=import-outside-toplevel
  from apache_beam.portability.api import beam_fn_api_pb2  # pylint: disable=import-outside-toplevel

  try:
    entry = text_format.Parse(str(record.args[0]), beam_fn_api_pb2.LogEntry())
  except text_format.ParseError:
    return None
  return entry.message.strip().splitlines()[0] if entry.message.strip() else None


class TerminalFormatter(logging.Formatter):
  """TERMINAL_FORMAT; once the run log is open, shorter: no tracebacks, and a worker's record as its
  message's first line (the run log has everything; main() names it)."""

  def __init__(self):
    super().__init__(TERMINAL_FORMAT)
    self.short = False

  def format(self, record: logging.LogRecord) -> str:
    if not self.short:
      return super().format(record)
    message = worker_message(record)
    short = logging.makeLogRecord(
      dict(record.__dict__, exc_info=None, exc_text=None, stack_info=None)
    )
    if message is not None:
      short.msg, short.args = 'worker: %s', (message,)
    return super().format(short)


class _HeldRecords(logging.Handler):
  """Keeps the last HELD_RECORDS records in memory."""

  def __init__(self):
    super().__init__()
    self.records: Deque[logging.LogRecord] = collections.deque(maxlen=HELD_RECORDS)

  def emit(self, record: logging.LogRecord) -> None:
    self.records.append(record)


_held_at_import: list = []  # HARMLESS records held by held_import_logs(), for the run log


@contextlib.contextmanager
def held_import_logs() -> Iterator[None]:
  """Wrap the first `import apache_beam`: keeps Beam's import-time HARMLESS warning off stderr.

  Without the gcp extra Beam logs a warning through `logging.warning()` while it is imported; with
  no handler configured yet, that call installs logging's default stderr handler for the whole
  process (`logging.basicConfig()`), which then also prints every INFO record that follows. Here a
  holding handler takes the records instead; when the block ends, the ones that are not HARMLESS are
  passed on as they would have been, and the HARMLESS ones wait for the run log
  (CommandLineLogs.open).
  """
  root = logging.getLogger()
  if root.handlers:  # Logging is configured already; nothing is installed behind its back.
    yield
    return
  holder = _HeldRecords()
  root.addHandler(holder)
  try:
    yield
  finally:
    root.removeHandler(holder)
    for record in holder.records:
      if _matches(record, HARMLESS):
        _held_at_import.append(record)
      else:
        logging.getLogger(record.name).handle(record)


def local_log_path(path: str) -> str:
  """`path` (the output's `_work/run.log`, transforms/output/layout.py) when it is local; for a gs://
  or s3:// output the same file name in a new local temporary folder."""
  if is_remote(path):
    return os.path.join(tempfile.mkdtemp(prefix='folder2tfrecord-'), path.rsplit('/', 1)[-1])
  return path


class CommandLineLogs:
  """The logging of one command-line run (pipeline.run main()); see the module docstring.

  Entered before run(): the terminal shows WARNING and up (not HARMLESS) and every INFO record is
  held in memory. run() then calls `open_run_log()`, which opens the log file, writes the held
  records into it, applies --log_level and, below INFO on the terminal, redirects file descriptor 2
  to the file. Leaving the block restores descriptor 2 and sys.stderr.
  """

  def __init__(self):
    self.path: Optional[str] = None
    self._root = logging.getLogger()
    self._stderr = sys.stderr
    self._terminal = logging.StreamHandler(sys.stderr)
    self._terminal_format = TerminalFormatter()
    self._terminal.setFormatter(self._terminal_format)
    self._terminal_filter = TerminalFilter(logging.WARNING)
    self._terminal.addFilter(self._terminal_filter)
    self._held = _HeldRecords()
    self._file: Optional[logging.FileHandler] = None
    self._terminal_fd: Optional[int] = None
    self._pipe: Optional[_StderrPipe] = None
    self._excepthook = threading.excepthook
    self._raise_exceptions = logging.raiseExceptions

  def __enter__(self) -> 'CommandLineLogs':
    global _current  # pylint: disable=global-statement
    for handler in list(self._root.handlers):  # e.g. logging.basicConfig() by an imported library
      self._root.removeHandler(handler)
    self._root.addHandler(self._terminal)
    self._root.addHandler(self._held)
    self._root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # Python warnings go to both as well (logger 'py.warnings').
    logging.raiseExceptions = False  # A full disk: no "--- Logging error ---" per record.
    threading.excepthook = self._thread_failed
    _current = self
    return self

  def open(self, path: str, level: str) -> Optional[str]:
    """Starts the run log `local_log_path(path)` and returns its path (None when it cannot be
    opened); `level`: --log_level, for the terminal."""
    terminal_level = logging.getLevelName(level)
    log_path = local_log_path(path)
    try:
      os.makedirs(os.path.dirname(log_path), exist_ok=True)
      self._file = logging.FileHandler(log_path, mode='a', encoding='utf-8')
    except OSError as e:  # A full disk: the run goes on (and fails, saying why) without its log.
      logging.getLogger(__name__).warning('Cannot open the run log %s: %s', log_path, e)
      return None
    self.path = log_path
    self._file.setFormatter(logging.Formatter(FILE_FORMAT))
    self._file.setLevel(min(terminal_level, logging.INFO))
    for record in _held_at_import + list(self._held.records):
      self._file.handle(record)
    self._root.removeHandler(self._held)
    self._root.addHandler(self._file)
    self._root.setLevel(min(terminal_level, logging.INFO))
    logging.getLogger(__name__).info(
      '---- a run starts (pid %d; --resume appends to this log) ----', os.getpid()
    )
    self._terminal_filter.level = terminal_level
    if terminal_level > logging.INFO:
      self._terminal_format.short = True
      self._redirect_stderr_fd(self.path)
    return self.path

  def _redirect_stderr_fd(self, path: str) -> None:
    """Descriptor 2 (inherited by the workers) -> a pipe into the log file; sys.stderr -> the
    terminal for the main thread (MainThreadTerminal)."""
    sys.stderr.flush()
    self._terminal_fd = os.dup(2)
    terminal = os.fdopen(
      os.dup(self._terminal_fd),
      'w',
      buffering=1,
      encoding=getattr(self._stderr, 'encoding', None) or 'utf-8',
      errors='backslashreplace',
    )
    self._pipe = _StderrPipe(path)
    os.dup2(self._pipe.write_fd, 2)
    sys.stderr = MainThreadTerminal(terminal, self._stderr)
    self._terminal.setStream(terminal)

  def silence(self) -> None:
    """See silence_terminal()."""
    self._terminal.setLevel(logging.CRITICAL + 1)

  @staticmethod
  def _thread_failed(args) -> None:
    """threading.excepthook: one line on the terminal, the traceback in the run log. A gRPC error in
    one of Beam's threads (a worker's connection broke: the run fails and says why) goes to the run
    log only."""
    if args.exc_type is SystemExit:
      return
    grpc_error = any(c.__module__.split('.')[0] == 'grpc' for c in args.exc_type.__mro__)
    logging.getLogger(__name__).log(
      logging.INFO if grpc_error else logging.ERROR,
      'Exception in thread %s: %s: %s',
      args.thread.name if args.thread else '?',
      args.exc_type.__name__,
      args.exc_value,
      exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )

  def __exit__(self, *exc) -> None:
    global _current  # pylint: disable=global-statement
    _current = None
    threading.excepthook = self._excepthook
    if self._terminal_fd is not None:
      terminal, sys.stderr = getattr(sys.stderr, 'terminal', sys.stderr), self._stderr
      terminal.flush()
      self._terminal.setStream(self._stderr)
      os.dup2(self._terminal_fd, 2)
      os.close(self._terminal_fd)
      terminal.close()
      self._terminal_fd = None
    if self._pipe is not None:
      self._pipe.close()
      self._pipe = None
    if self._file is not None:
      self._root.removeHandler(self._file)
      self._file.close()
    self._root.removeHandler(self._held)
    logging.raiseExceptions = self._raise_exceptions


class MainThreadTerminal:
  """sys.stderr while descriptor 2 is the run log's pipe: what the main thread writes goes to the
  terminal (`terminal`), what other threads write to `log` (descriptor 2). Beam's in-process workers
  (in_memory, multi_threading) print a failed bundle's traceback to sys.stderr from their threads;
  the driver says what failed in one line. Other attributes (fileno, isatty, encoding) are the
  terminal's.
  """

  def __init__(self, terminal, log):
    self.terminal = terminal
    self._log = log

  def write(self, text: str) -> int:
    if threading.current_thread() is threading.main_thread():
      return self.terminal.write(text)
    try:
      return self._log.write(text)
    except OSError:
      return len(text)

  def flush(self) -> None:
    self.terminal.flush()
    try:
      self._log.flush()
    except OSError:
      pass

  def __getattr__(self, name):
    return getattr(self.terminal, name)


class _StderrPipe:
  """A pipe whose reading end a daemon thread copies into the file `path` (appending); see the module
  docstring. What the file refuses (ENOSPC, EIO) is dropped, so writers of the pipe never fail."""

  def __init__(self, path: str):
    read_fd, self.write_fd = os.pipe()
    self._log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    self._thread = threading.Thread(
      target=self._copy, args=(read_fd,), name='stderr-to-run-log', daemon=True
    )
    self._thread.start()

  def _copy(self, read_fd: int) -> None:
    try:
      while True:
        chunk = os.read(read_fd, PIPE_CHUNK_BYTES)
        if not chunk:
          return  # Every writer (this process, its workers) has closed the pipe.
        try:
          os.write(self._log_fd, chunk)
        except OSError:
          pass
    finally:
      os.close(read_fd)
      os.close(self._log_fd)

  def close(self) -> None:
    """Closes this process's writing end; the thread ends once the workers have closed theirs."""
    os.close(self.write_fd)
    self._thread.join(timeout=1.0)


_current: Optional[CommandLineLogs] = None


def silence_terminal() -> None:
  """From now on no log record reaches the terminal (the run log still gets them): for a run that is
  ending, whose stopped workers' and broken connections' errors are not news
  (pipeline/runtime/interrupts.py)."""
  if _current is not None:
    _current.silence()


def open_run_log(path: str, level: str) -> Optional[str]:
  """In a command-line run, starts the run log (CommandLineLogs.open) and returns its local path.

  Elsewhere (run() called from Python, the tests) it does nothing and returns None.
  """
  return _current.open(path, level) if _current is not None else None
