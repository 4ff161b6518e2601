"""Ctrl-C, SIGTERM and SIGHUP at any moment of a run, in every running mode, on a real terminal.

Each case checks what pipeline/runtime/interrupts.py promises: the exit code (130, 143, 129), one
line on the screen saying how to go on, no traceback and no ERROR line, no process of the run left
after it, and no shard renamed into place after the run ended (the output is watched for
runtime_aids.WATCH_AFTER_EXIT_SECONDS after exit). Ctrl-C is typed on the terminal (the terminal
sends SIGINT to the whole foreground process group, workers included); SIGTERM and SIGHUP are sent
to the driver alone, as Airflow does, so the driver itself must stop its workers.
"""

import os
import re
import signal
import subprocess
import sys

import psutil
import pytest

from conftest import SAMPLE_DIR, copies_of_samples
from runtime_aids import FAULTS_SITECUSTOMIZE, final_shards, run_on_pty

pytestmark = pytest.mark.slow  # Each case is a run of its own, some a --resume too.

# 216 images in 28 shards: the graph runs for a few seconds after the first shard is final.
MANY_SHARDS = ('--train_shards', '24', '--validation_shards', '4', '--validation_fraction', '0.1')
RESUME_LINE = (
  'Finished shards are kept; rerun with the same flags and --resume to write only the missing ones.'
)
CTRL_C = b'\x03'


@pytest.fixture(name='photos', scope='module')
def fixture_photos(tmp_path_factory):
  return copies_of_samples(tmp_path_factory.mktemp('interrupts') / 'input', 4)


@pytest.fixture(name='pause_env')
def fixture_pause_env(tmp_path):
  """Environment whose processes load FAULTS_SITECUSTOMIZE; pass F2T_PAUSE_WHEN to use it."""
  folder = tmp_path / 'sitecustomize'
  folder.mkdir()
  (folder / 'sitecustomize.py').write_text(FAULTS_SITECUSTOMIZE)
  python_path = os.pathsep.join(p for p in (str(folder), os.environ.get('PYTHONPATH')) if p)
  return dict(os.environ, PYTHONPATH=python_path, F2T_PAUSED=str(tmp_path / 'paused'))


def _command(source, output, *flags):
  return [
    sys.executable,
    '-m',
    'pipeline.run',
    '--input',
    str(source),
    '--output',
    str(output),
    *flags,
  ]


def _when(condition, action):
  """An act() for run_on_pty: `action(pid, terminal_fd)` once `condition()` holds."""

  def act(pid, fd):
    if not condition():
      return False
    action(pid, fd)
    return True

  return act


def _type_ctrl_c(_, fd):
  os.write(fd, CTRL_C)


def _send(signum):
  return lambda pid, _: os.kill(pid, signum)


def _assert_ended_cleanly(ended, code, line):
  print(f'exit {ended.code} after {ended.seconds:.1f} s (acted at {ended.acted_at}):\n{ended.text}')
  assert ended.acted_at is not None, 'the run ended before the test could act'
  assert ended.code == code, ended.text
  said = [text for text in ended.lines if text.startswith('interrupted')]
  assert said == [line], ended.text
  assert ended.lines[-1] == line, ended.text  # Nothing after it.
  assert 'Traceback' not in ended.text and 'ERROR' not in ended.text, ended.text
  assert sum('--resume' in text for text in ended.lines) <= 1, ended.text
  assert not ended.survivors, ended.survivors
  assert not ended.late_shards, ended.late_shards
  assert ended.seconds - ended.acted_at < 15, ended.text


def test_ctrl_c_while_beam_is_imported(tmp_path):
  output = tmp_path / 'out'

  def once_beam_loads(pid, fd):
    """Ctrl-C once the converter maps Beam's first compiled module: its import has begun (after
    interrupts.install(), pipeline/run.py) and goes on for seconds (Beam, then TensorFlow)."""
    try:
      with open(f'/proc/{pid}/maps') as maps:
        if 'apache_beam' not in maps.read():
          return False
    except OSError:
      return False
    _type_ctrl_c(pid, fd)
    return True

  ended = run_on_pty(
    _command(SAMPLE_DIR, output, '--train_shards', '2'),
    dict(os.environ),
    output,
    act=once_beam_loads,
  )
  _assert_ended_cleanly(
    ended, 130, 'interrupted (Ctrl-C) before anything was written; run the same command again.'
  )
  assert not output.exists()


def test_ctrl_c_while_the_driver_lists_and_samples_the_input(tmp_path, pause_env):
  """The automatic shard count converts a sample on the driver before the graph is built."""
  output = tmp_path / 'out'
  env = dict(pause_env, F2T_PAUSE_WHEN='.JPEG')  # the first photo the driver opens
  ended = run_on_pty(
    _command(SAMPLE_DIR, output),
    env,
    output,
    act=_when(lambda: os.path.exists(env['F2T_PAUSED']), _type_ctrl_c),
  )
  _assert_ended_cleanly(
    ended, 130, 'interrupted (Ctrl-C) before anything was written; run the same command again.'
  )


@pytest.mark.parametrize('mode', ['in_memory', 'multi_threading', 'multi_processing'])
def test_ctrl_c_while_shards_are_written(photos, tmp_path, mode):
  output = tmp_path / 'out'
  workers = () if mode == 'in_memory' else ('--direct_num_workers=2',)
  ended = run_on_pty(
    _command(photos, output, *MANY_SHARDS, f'--direct_running_mode={mode}', *workers),
    dict(os.environ),
    output,
    act=_when(lambda: final_shards(output), _type_ctrl_c),
  )
  _assert_ended_cleanly(ended, 130, f'interrupted (Ctrl-C). {RESUME_LINE}')
  assert not (output / '_SUCCESS').exists()
  assert not (output / '_work' / 'claim.json').exists()  # Released, after the workers stopped.


@pytest.mark.parametrize(
  'signum, code, mode',
  [
    (signal.SIGTERM, 143, 'multi_processing'),
    (signal.SIGHUP, 129, 'multi_threading'),
  ],
)
def test_a_signal_to_the_driver_stops_its_workers_first_and_resume_finishes(
  photos, tmp_path, signum, code, mode
):
  output = tmp_path / 'out'
  command = _command(
    photos, output, *MANY_SHARDS, f'--direct_running_mode={mode}', '--direct_num_workers=2'
  )
  ended = run_on_pty(
    command, dict(os.environ), output, act=_when(lambda: final_shards(output), _send(signum))
  )
  _assert_ended_cleanly(ended, code, f'interrupted ({signal.Signals(signum).name}). {RESUME_LINE}')
  assert not (output / '_work' / 'claim.json').exists()
  kept = final_shards(output)
  resumed = subprocess.run(
    command + ['--resume'], capture_output=True, text=True, timeout=600, check=False
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert re.search(rf'^resumed: {len(kept)} shards? kept', resumed.stdout, re.M), resumed.stdout
  assert 'note: taking --output over' not in resumed.stderr  # The claim was released, not left.
  verified = subprocess.run(
    [sys.executable, '-m', 'pipeline.verify', str(output)],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert verified.returncode == 0, verified.stdout


def test_ctrl_c_while_the_metadata_is_written(tmp_path, pause_env):
  output = tmp_path / 'out'
  env = dict(pause_env, F2T_PAUSE_WHEN='stats.json')
  ended = run_on_pty(
    _command(
      SAMPLE_DIR,
      output,
      '--train_shards',
      '2',
      '--validation_shards',
      '1',
      '--validation_fraction',
      '0.2',
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    ),
    env,
    output,
    act=_when(lambda: os.path.exists(env['F2T_PAUSED']), _type_ctrl_c),
  )
  _assert_ended_cleanly(ended, 130, f'interrupted (Ctrl-C). {RESUME_LINE}')
  assert len(final_shards(output)) == 3 and not (output / '_SUCCESS').exists()


def test_sigterm_to_the_folder2tfrecord_script_while_beam_is_imported(tmp_path):
  """The console script imports pipeline.run itself: its handlers are installed before that."""
  script = os.path.join(os.path.dirname(sys.executable), 'folder2tfrecord')
  if not os.path.exists(script):
    pytest.skip('the folder2tfrecord script is not installed next to this Python')
  output = tmp_path / 'out'
  ticks = []
  ended = run_on_pty(
    [script, 'run', '--input', str(SAMPLE_DIR), '--output', str(output)],
    dict(os.environ),
    output,
    act=_when(lambda: ticks.append(1) or len(ticks) > 20, _send(signal.SIGTERM)),
  )
  _assert_ended_cleanly(
    ended, 143, 'interrupted (SIGTERM) before anything was written; run the same command again.'
  )


def test_sigterm_to_the_whole_process_group(photos, tmp_path):
  """systemd and `kill -TERM -<pgid>` reach the workers too: still one line and exit 143."""
  output = tmp_path / 'out'
  ended = run_on_pty(
    _command(
      photos,
      output,
      *MANY_SHARDS,
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    ),
    dict(os.environ),
    output,
    act=_when(lambda: final_shards(output), lambda pid, _: os.killpg(pid, signal.SIGTERM)),
  )
  _assert_ended_cleanly(ended, 143, f'interrupted (SIGTERM). {RESUME_LINE}')


def test_sigterm_to_one_worker_alone_fails_the_run_instead_of_hanging(photos, tmp_path):
  output = tmp_path / 'out'

  def stop_a_worker(pid, _):
    workers = [
      p
      for p in psutil.Process(pid).children(recursive=True)
      if p.cmdline()[1:3] == ['-m', 'apache_beam.runners.worker.sdk_worker_main']
    ]
    workers[0].send_signal(signal.SIGTERM)

  ended = run_on_pty(
    _command(
      photos,
      output,
      *MANY_SHARDS,
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    ),
    dict(os.environ),
    output,
    act=_when(lambda: final_shards(output), stop_a_worker),
  )
  print(ended.text)
  assert ended.code == 1, ended.text
  assert re.fullmatch(
    r'error: the pipeline failed: a Beam worker process died \(exit code '
    r'(-15|143): stopped by SIGTERM\)\.',
    ended.lines[-3],
  ), ended.text
  assert ended.lines[-2:] == [
    RESUME_LINE,
    f"The run log (Beam's and the workers' logs): {output / '_work' / 'run.log'}",
  ]
  assert 'Traceback' not in ended.text and 'ERROR' not in ended.text
  assert ended.seconds - ended.acted_at < 15 and not ended.survivors and not ended.late_shards
