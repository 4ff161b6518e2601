"""A full output disk, at any moment of a run, ends it in seconds with exit 1 and one line naming the
cause; after space is freed, --resume finishes and the output verifies.

The output lives on a small tmpfs mounted for the test (skipped where mounting is refused); the disk
is filled for real, by a file next to the output, at the moment a chosen file is first opened for
writing (tests/runtime_aids.py FAULTS_SITECUSTOMIZE), in whichever process opens it: the driver or a
Beam worker. The multi_processing case at stats.json is the run that used to wait forever (issue
23).
"""

import os
import re
import subprocess
import sys
import uuid

import pytest

from conftest import SAMPLE_DIR
from pipeline.run import failure_line
from runtime_aids import FAULTS_SITECUSTOMIZE, run_on_pty


TMPFS_SIZE = '8m'  # The sample's output is ~1 MB: the run has room until the disk is filled.
FLAGS = ('--validation_fraction', '0.2', '--train_shards', '4', '--validation_shards', '2')
ENDS_WITHIN_SECONDS = 60.0
ANY_SHARD = r'shard (train|validation)-0000\d-of-0000[42]'


@pytest.fixture(name='small_disk')
def fixture_small_disk(tmp_path):
  """A tmpfs of TMPFS_SIZE mounted on a new folder; unmounted after the test."""
  mount_point = tmp_path / 'disk'
  mount_point.mkdir()
  mounted = subprocess.run(
    ['mount', '-t', 'tmpfs', '-o', f'size={TMPFS_SIZE}', 'tmpfs', str(mount_point)],
    capture_output=True,
    text=True,
    check=False,
  )
  if mounted.returncode:
    pytest.skip(f'cannot mount a tmpfs for a full disk here: {mounted.stderr.strip()}')
  try:
    yield mount_point
  finally:
    subprocess.run(['umount', '-l', str(mount_point)], check=False)


@pytest.fixture(name='faults_env')
def fixture_faults_env(tmp_path_factory):
  """Environment of a run whose processes load FAULTS_SITECUSTOMIZE (and this worktree's code)."""
  folder = tmp_path_factory.mktemp('faults_sitecustomize')
  (folder / 'sitecustomize.py').write_text(FAULTS_SITECUSTOMIZE)
  python_path = os.pathsep.join(p for p in (str(folder), os.environ.get('PYTHONPATH')) if p)
  return dict(os.environ, PYTHONPATH=python_path)


@pytest.mark.slow  # Each case is a failing run, a resumed run and a verify.
@pytest.mark.parametrize(
  'fill_when, mode, named',
  [
    ('stats.json', 'multi_processing', 'stats.json'),  # the metadata: the hang of issue 23
    ('train-00001', 'multi_processing', ANY_SHARD),  # whichever shard writes next
    ('stats.json', 'in_memory', 'stats.json'),
    ('train-00001', 'multi_threading', ANY_SHARD),
    ('.json.tmp-', 'multi_threading', ANY_SHARD),  # a sidecar, after its shard's bytes
    ('run.log', 'multi_processing', ANY_SHARD),  # everything after the run log opens
  ],
)
def test_a_full_disk_ends_the_run_with_one_line_and_resume_finishes(
  small_disk, faults_env, fill_when, mode, named
):
  output, filler = small_disk / 'out', small_disk / f'filler-{uuid.uuid4().hex}'
  workers = () if mode == 'in_memory' else ('--direct_num_workers=2',)
  command = [
    sys.executable,
    '-m',
    'pipeline.run',
    '--input',
    str(SAMPLE_DIR),
    '--output',
    str(output),
    *FLAGS,
    f'--direct_running_mode={mode}',
    *workers,
  ]
  env = dict(faults_env, F2T_FILL_WHEN=fill_when, F2T_FILLER=str(filler))
  ended = run_on_pty(command, env, output, timeout=ENDS_WITHIN_SECONDS + 60)
  print(f'{fill_when} {mode}: exit {ended.code} after {ended.seconds:.1f} s\n{ended.text}')
  assert filler.exists(), 'the disk was never filled'
  assert ended.code == 1, ended.text
  assert ended.seconds < ENDS_WITHIN_SECONDS, ended.text
  assert ended.lines[0].startswith('Converting '), ended.text
  shown = [line for line in ended.lines[1:] if line.strip() and not line.startswith('converting:')]
  assert len(shown) <= 2, ended.text  # The error and the run log's path.
  assert re.fullmatch(
    f'error: no space left on device while writing {named}: free space and rerun '
    'with the same flags and --resume.',
    shown[0],
  ), ended.text
  for noise in ('Logging error', 'Traceback', 'ERROR', 'Errno'):
    assert noise not in ended.text
  assert not ended.survivors
  assert not (output / '_SUCCESS').exists()

  filler.unlink()  # Space is freed.
  resumed = subprocess.run(
    command + ['--resume'], capture_output=True, text=True, timeout=300, check=False
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  verified = subprocess.run(
    [sys.executable, '-m', 'pipeline.verify', str(output)],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert verified.returncode == 0 and verified.stdout.startswith('OK '), verified.stdout


@pytest.mark.parametrize(
  'error, line',
  [
    (
      "OSError: [Errno 28] No space left on device: '/out/stats.json' [while running "
      "'ConvertImageFolder/WriteMetadata/WriteMetadataFiles']",
      'error: no space left on device while writing stats.json: free space and rerun with the same '
      'flags and --resume.',
    ),
    (
      'Traceback (most recent call last):\n  File "transforms/output/shard_writer.py", line 147\n'
      "    raise RuntimeError(f'while writing shard {name}: {describe_error(e)}') from e\n"
      'RuntimeError: while writing shard train-00001-of-00004: OSError: [Errno 28] No space left on '
      "device [while running 'ConvertImageFolder/WriteShards/WriteShard/ParDo(WriteShardFn)']\n",
      'error: no space left on device while writing shard train-00001-of-00004: free space and rerun '
      'with the same flags and --resume.',
    ),
    (
      "OSError: [Errno 28] No space left on device [while running 'ConvertImageFolder/WriteShards/"
      "WriteShard/ParDo(WriteShardFn)']",
      'error: no space left on device in step WriteShards: free space and rerun with the same flags '
      'and --resume.',
    ),
    (
      'Channel closed prematurely.\nTraceback (most recent call last):',
      'error: the pipeline failed: Channel closed prematurely.\nFinished shards are kept; rerun with '
      'the same flags and --resume to write only the missing ones.',
    ),
    (
      'Traceback (most recent call last):\n  File "x.py", line 1, in f\nRuntimeError: ValueError: '
      "bad [while running 'ConvertImageFolder/WriteMetadata/WriteMetadataFiles']\n",
      "error: the pipeline failed: RuntimeError: ValueError: bad [while running 'ConvertImageFolder/"
      "WriteMetadata/WriteMetadataFiles']\nFinished shards are kept; rerun with the same flags and "
      '--resume to write only the missing ones.',
    ),
  ],
)
def test_the_failure_line_names_what_could_not_be_written(error, line):
  assert failure_line(RuntimeError(error)) == line
