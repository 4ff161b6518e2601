"""What a person sees on a terminal: commands run under a pseudo-terminal and the whole screen is read.

A run shows one "Converting ..." line, the progress bar, the summary and real errors; Beam's and the
workers' logs go to the run log (pipeline/runtime/logs.py). The screens are checked in the
environment of issue 16, a virtualenv without Beam's gcp/aws extras and matplotlib (the first run of
./run_local.sh):
`_WITHOUT_EXTRAS` hides them from every process of the command, its Beam workers included, through a
sitecustomize module. Without the extras Beam warns while it is imported, and each worker then
prints its INFO logs to stderr: the loudest case.
"""

import errno
import logging
import os
import pathlib
import re
import select
import shutil
import sys
import time

import psutil
import pytest

from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS, convert
from runtime_aids import fork_on_pty
from pipeline import extras, options
from pipeline.runtime import logs, worker_watch
from transforms.output import layout

# The flags ./run_local.sh uses without arguments, into a temporary folder instead of
# output/sample/.
RUN_LOCAL_FLAGS = (
  '--validation_fraction',
  '0.2',
  '--train_shards',
  '4',
  '--validation_shards',
  '2',
)
MAX_LINES_AFTER_INSTALL = 15
_ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')
# Log records and banners that must not reach the screen (Beam's, the workers', pip's, setuptools').
_NOISE = re.compile(
  r'^INFO|(INFO|WARNING):[\w.]+:|\d\d:\d\d:\d\d,\d+ INFO |Worker: |apitools|'
  r'semi_persistent_directory|sdk_worker|Traceback|BuildBackendWarning|'
  r'Requirement already satisfied'
)

# How the commands name this interpreter in an install command (run from REPO).
_PYTHON = (
  sys.executable
  if os.path.relpath(sys.executable, REPO).startswith(os.pardir)
  else os.path.relpath(sys.executable, REPO)
)

_WITHOUT_EXTRAS = '''
"""Test aid (tests/test_terminal.py): imports behave as if Beam's gcp and aws extras and matplotlib
were not installed, as in a virtualenv made by ./run_local.sh."""
import importlib.abc
import sys

BLOCKED = ('apitools', 'google.cloud', 'boto3', 'matplotlib')


def _blocked(name):
  return any(name == b or name.startswith(b + '.') for b in BLOCKED)


class _Blocker(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if _blocked(name):
      raise ModuleNotFoundError(f'No module named {name!r}', name=name)
    return None


sys.meta_path.insert(0, _Blocker())
for _name in [n for n in sys.modules if _blocked(n)]:
  del sys.modules[_name]  # Namespace packages made by site-packages' .pth files.
if 'google' in sys.modules and hasattr(sys.modules['google'], 'cloud'):
  delattr(sys.modules['google'], 'cloud')
'''


@pytest.fixture(name='without_extras')
def fixture_without_extras(tmp_path_factory):
  """Environment variables of a command that runs as if the optional dependencies were missing."""
  folder = tmp_path_factory.mktemp('without_extras')
  (folder / 'sitecustomize.py').write_text(_WITHOUT_EXTRAS)
  env = dict(
    os.environ, PYTHONPATH=str(folder), VENV=str(pathlib.Path(sys.executable).parent.parent)
  )
  env.pop('COLUMNS', None)
  env.pop('LINES', None)
  return env


def run_on_terminal(command, env, timeout=300.0, while_running=None):
  """Runs `command` in REPO on a new pseudo-terminal of SCREEN_COLUMNS x SCREEN_ROWS.

  `while_running(pid)` is called every 0.2 s until it returns True. Returns (exit code, screen lines):
  the output as the terminal shows it (a carriage return starts the line again, escapes dropped).
  """
  pid, fd = fork_on_pty(command, env)
  output, deadline, done_watching = b'', time.monotonic() + timeout, while_running is None
  try:
    while time.monotonic() < deadline:
      if not done_watching:
        done_watching = while_running(pid)
      ready, _, _ = select.select([fd], [], [], 0.2)
      if not ready:
        continue
      try:
        chunk = os.read(fd, 65536)
      except OSError as e:
        if e.errno != errno.EIO:
          raise
        chunk = b''
      if not chunk:
        break
      output += chunk
    else:
      _kill_tree(pid)
      shown = '\n'.join(screen_lines(output.decode('utf-8', 'replace'))[-30:])
      pytest.fail(f'{command} did not finish in {timeout} s; the screen ends with:\n{shown}')
  finally:
    os.close(fd)
  _, status = os.waitpid(pid, 0)
  return os.waitstatus_to_exitcode(status), screen_lines(output.decode('utf-8', 'replace'))


def screen_lines(text):
  """The lines a terminal shows for `text`: per line, what follows its last carriage return."""
  text = _ANSI.sub('', text).replace('\r\n', '\n')
  return [line.rsplit('\r', 1)[-1].rstrip() for line in text.rstrip('\n').split('\n')]


def _kill_tree(pid):
  try:
    for process in [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True):
      process.kill()
  except psutil.NoSuchProcess:
    pass


def _after_install(lines):
  """The lines after ensure_venv.sh's "Installing ..." line (all of them when nothing was installed)."""
  starts = [
    i for i, line in enumerate(lines) if line.startswith(('Installing ', 'Creating the virtualenv'))
  ]
  return lines[starts[-1] + 1 :] if starts else lines


def _assert_quiet(lines):
  noisy = [line for line in lines if _NOISE.search(line)]
  assert not noisy, '\n'.join(lines)


@pytest.mark.slow
def test_run_local_sh_shows_converting_bar_and_summary_only(tmp_path, without_extras):
  output = tmp_path / 'sample'
  code, lines = run_on_terminal(
    ['./run_local.sh', '--input', str(SAMPLE_DIR), '--output', str(output), *RUN_LOCAL_FLAGS],
    without_extras,
  )
  shown = _after_install(lines)
  print('\n'.join(lines))
  assert code == 0, '\n'.join(lines)
  _assert_quiet(shown)
  assert len(shown) <= MAX_LINES_AFTER_INSTALL, '\n'.join(lines)
  log = output / layout.WORK_DIR / layout.LOG_FILE
  assert shown[0] == f'Converting 5 classes from data/sample_images into {output} (log: {log})'
  assert any(line.startswith('converting: 100%') and '54/54' in line for line in shown), lines
  # data/sample_images/ATTRIBUTION.md lies beside the class folders: a reject without a split.
  total = next(i for i, line in enumerate(shown) if line.startswith('total: '))
  assert shown[total].startswith('total: 54 examples, 1 rejected')
  assert shown[total + 1].startswith(
    'duplicates: 0 groups (0 exact, 0 near within 8 bits), 0 files'
  )
  assert '  rejected      1  not in a class folder' in shown[total + 2 :]
  assert all(line.startswith('  ') for line in shown[total + 2 :])  # the 80-column summary's wraps
  assert [line.split()[0] for line in shown[total - 4 : total]] == [
    'split',
    'train',
    'validation',
    '(no',
  ]
  # What the terminal did not show is in the run log: the workers' own stderr and Beam's INFO logs.
  text = log.read_text()
  assert 'INFO:apache_beam.runners.worker.sdk_worker:Creating insecure control channel' in text
  assert 'semi_persistent_directory' in text and ' INFO apache_beam.' in text


@pytest.mark.parametrize(
  'args, message',
  [
    (('--input', '/nonexistent/images'), 'error: --input /nonexistent/images cannot be read'),
    (('--input', 'gs://bucket/images'), 'error: gs:// paths need apache-beam[gcp]=='),
    (
      ('--input', str(SAMPLE_DIR), '--output', 's3://bucket/out'),
      'error: s3:// paths need apache-beam[aws]==',
    ),
  ],
)
def test_failing_commands_print_one_line(tmp_path, without_extras, args, message):
  if '--output' not in args:
    args += ('--output', str(tmp_path / 'out'))
  code, lines = run_on_terminal([sys.executable, '-m', 'pipeline.run', *args], without_extras)
  assert code == 2
  assert len(lines) == 1 and lines[0].startswith(message), '\n'.join(lines)
  if 'pip install' in lines[0]:
    assert f"install it with: {_PYTHON} -m pip install 'apache-beam[" in lines[0]


def test_help_lists_the_log_flags_and_nothing_else(without_extras):
  code, lines = run_on_terminal([sys.executable, '-m', 'pipeline.run', '--help'], without_extras)
  assert code == 0
  _assert_quiet(lines)
  text = '\n'.join(lines)
  assert '--log_level {DEBUG,INFO,WARNING,ERROR}' in text and '--verbose' in text


def test_report_without_matplotlib_names_the_install_command(tmp_path, without_extras):
  """Through the console script's module (`folder2tfrecord report`), as pip installs it."""
  code, lines = run_on_terminal(
    [sys.executable, '-m', 'pipeline.cli', 'report', str(tmp_path)], without_extras
  )
  assert code == 2
  assert lines == [
    f'error: pipeline.report needs matplotlib, which is not installed here; install it '
    f'with: {_PYTHON} -m pip install matplotlib'
  ], lines
  code, lines = run_on_terminal(
    [sys.executable, '-m', 'pipeline.cli', 'verify', 'gs://bucket/out'], without_extras
  )
  assert code == 2 and len(lines) == 1 and lines[0].startswith('error: gs:// paths need'), lines


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_and_names_the_log(tmp_path, without_extras):
  source = tmp_path / 'input'
  for copy in range(4):  # 216 images: the workers are still busy when one is killed.
    for path in SAMPLE_DIR.glob('*/*'):
      target = source / path.parent.name / f'{copy}_{path.name}'
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copy(path, target)
  output = tmp_path / 'out'
  killed, workers = [], []

  def kill_a_worker(pid):
    """Only this command's own workers: other runs may share the machine."""
    try:
      workers[:] = [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if p.cmdline()[1:3] == ['-m', 'apache_beam.runners.worker.sdk_worker_main']
      ]
    except psutil.Error:
      return False
    if len(workers) == 2 and time.time() - workers[0].create_time() > 1.0:
      workers[0].kill()
      killed.append(workers[0])
      return True
    return False

  started = time.monotonic()
  code, lines = run_on_terminal(
    [
      sys.executable,
      '-m',
      'pipeline.run',
      '--input',
      str(source),
      '--output',
      str(output),
      '--train_shards',
      '8',
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    ],
    without_extras,
    timeout=120,
    while_running=kill_a_worker,
  )
  print('\n'.join(lines))
  assert killed, 'no worker was found to kill'
  assert code == 1, '\n'.join(lines)
  text = '\n'.join(lines)
  assert lines[-3:] == [
    'error: the pipeline failed: a Beam worker process died (exit code 137: killed, e.g. by the '
    'out-of-memory killer).',
    'Finished shards are kept; rerun with the same flags and --resume to write only the missing ones.',
    f"The run log (Beam's and the workers' logs): {output / '_work' / 'run.log'}",
  ], text
  assert 'Traceback' not in text
  assert [line for line in lines if 'error' in line.lower()] == [lines[-3]], text  # One error line.
  assert time.monotonic() - started < 100
  assert not (output / '_SUCCESS').exists()
  # The driver stopped the other worker before it ended.
  _, alive = psutil.wait_procs(workers, timeout=1)
  assert not alive


@pytest.mark.slow
def test_dry_run_of_run_dataflow_sh_works_offline(tmp_path, without_extras):
  """Offline as docs/running_at_scale.md says; the gcp extra is there (run_tests.sh installs it)."""
  env = dict(
    os.environ,
    VENV=without_extras['VENV'],
    DRY_RUN='1',
    INPUT=str(SAMPLE_DIR),
    NO_GCE_CHECK='True',
    GCE_METADATA_HOST='127.0.0.1:9',
    GCE_METADATA_IP='127.0.0.1:9',
  )
  code, lines = run_on_terminal(
    ['./run_dataflow.sh', 'fake-project', 'us-central1', 'gs://fake-bucket/path'], env
  )
  print('\n'.join(lines))
  assert code == 0, '\n'.join(lines)
  assert lines[-1].startswith('Dry run: the job graph was built in')
  assert 'Traceback' not in '\n'.join(lines)


@pytest.mark.slow
def test_a_run_log_is_kept_by_resume_and_replaced_by_overwrite(sample_output, tmp_path):
  """It lives among the shard sidecars of _work/ and is not mistaken for one."""
  output = tmp_path / 'out'
  shutil.copytree(sample_output, output)
  log = output / layout.WORK_DIR / layout.LOG_FILE
  log.write_text('an earlier run\n')
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--resume') == 0
  assert log.read_text() == 'an earlier run\n'  # run() alone (the tests) writes no log of its own
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--overwrite') == 0
  assert not log.exists()
  for shard in sample_output.glob('*-of-*'):
    assert (output / shard.name).read_bytes() == shard.read_bytes()


# ------------------------------------------------------------------------------------------------
# The parts, without a terminal.


def _record(name, level, message, *args):
  return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_terminal_filter_drops_harmless_warnings_by_name_and_keeps_the_rest():
  keep = logs.TerminalFilter(logging.WARNING).filter
  assert not keep(
    _record(
      'root',
      logging.WARNING,
      'apitools not found, and bigquery client libraries '
      'are not available despite the import not raising an ImportError.',
    )
  )
  assert not keep(
    _record(
      logs.WORKER_LOGGER,
      logging.WARNING,
      'Worker: %s',
      'message: "No semi_persistent_directory found: ..."',
    )
  )
  assert keep(_record('root', logging.WARNING, 'apitools is fine, something else is not'))
  assert keep(_record('apache_beam.io.gcp.gcsio', logging.WARNING, 'No semi_persistent_directory'))
  assert keep(_record('pipeline.runtime.progress', logging.WARNING, '10/54 images'))
  assert not keep(
    _record('apache_beam.runners.worker.sdk_worker', logging.INFO, 'Creating channel')
  )
  assert keep(
    _record(
      'apache_beam.runners.dataflow.internal.apiclient',
      logging.INFO,
      'To access the Dataflow monitoring console, please navigate to %s',
      'https://',
    )
  )
  assert logs.TerminalFilter(logging.INFO).filter(_record('x', logging.INFO, 'y'))


def test_a_workers_record_shows_as_its_first_line():
  from apache_beam.portability.api import beam_fn_api_pb2  # pylint: disable=import-outside-toplevel

  entry = beam_fn_api_pb2.LogEntry(
    severity=beam_fn_api_pb2.LogEntry.Severity.ERROR,
    message='Internal error while converting a.jpg\nTraceback: ...',
    trace='Traceback (most recent call last): ...',
  )
  record = _record(logs.WORKER_LOGGER, logging.ERROR, 'Worker: %s', str(entry).replace('\n', ' '))
  assert logs.worker_message(record) == 'Internal error while converting a.jpg'
  formatter = logs.TerminalFormatter()
  formatter.short = True
  assert formatter.format(record).endswith(' ERROR worker: Internal error while converting a.jpg')
  assert logs.worker_message(_record('pipeline.run', logging.ERROR, 'x')) is None


def test_held_import_logs_passes_on_what_is_not_harmless(monkeypatch, capsys):
  root = logging.getLogger()
  monkeypatch.setattr(root, 'handlers', [])
  monkeypatch.setattr(logs, '_held_at_import', [])
  with logs.held_import_logs():
    logging.warning('apitools not found, and bigquery client libraries are not available')
    logging.getLogger('somewhere').warning('a real warning')
    assert [type(h).__name__ for h in root.handlers] == ['_HeldRecords']  # no basicConfig()
  assert root.handlers == []
  assert capsys.readouterr().err == 'a real warning\n'  # logging.lastResort, as without the block
  held = logs._held_at_import  # pylint: disable=protected-access
  assert [r.getMessage()[:8] for r in held] == ['apitools']


def test_log_flags_do_not_change_the_recorded_flags():
  quiet, _ = options.parse_args(['--input', 'in', '--output', 'out'])
  loud, _ = options.parse_args(
    ['--input', 'in', '--output', 'out', '--log_level', 'DEBUG', '--verbose']
  )
  assert quiet.to_dict() == loud.to_dict() and 'log_level' not in quiet.to_dict()
  assert (quiet.terminal_log_level, loud.terminal_log_level) == ('WARNING', 'DEBUG')
  verbose, _ = options.parse_args(['--input', 'in', '--output', 'out', '--verbose'])
  assert verbose.terminal_log_level == 'INFO'
  flags_doc = (REPO / 'docs' / 'flags.md').read_text()
  assert '| `--log_level` (' in flags_doc and '| `--verbose` |' in flags_doc


def test_the_log_of_an_object_store_output_stays_local():
  path = logs.local_log_path('s3://bucket/out/_work/run.log')
  assert '://' not in path and path.endswith('/run.log') and os.path.isdir(os.path.dirname(path))
  os.rmdir(os.path.dirname(path))
  assert logs.local_log_path('/data/out/_work/run.log') == '/data/out/_work/run.log'


def test_missing_extras_name_the_install_command(monkeypatch):
  monkeypatch.setattr(extras, 'installed', lambda module: module != 'boto3')
  extras.require_for_args(['--input', 'gs://b/x', '--runner=DataflowRunner'])
  with pytest.raises(
    extras.MissingDependency, match=r's3:// paths need apache-beam\[aws\]==2\.\d+'
  ):
    extras.require_for_args(['--input', '/local', '--output=s3://bucket/out'])


def test_a_killed_worker_is_described_with_its_usual_cause():
  assert worker_watch.describe(137).endswith('killed, e.g. by the out-of-memory killer)')
  assert worker_watch.describe(1) == 'a Beam worker process died (exit code 1)'


def test_a_worker_stopped_by_a_signal_is_described_by_it():
  assert worker_watch.describe(-15).endswith('(exit code -15: stopped by SIGTERM)')
  assert worker_watch.describe(129).endswith('(exit code 129: stopped by SIGHUP)')
