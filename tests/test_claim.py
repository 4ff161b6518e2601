"""One run per output (pipeline/runtime/claim.py): on a local disk (flock) and on S3 (moto's server),
the claim's rules alone, then two real conversions started on one output."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from clusters.s3 import moto_bucket
from conftest import REPO, SAMPLE_FLAGS, convert, copies_of_samples
from pipeline.runtime import claim as claim_lib
from pipeline.runtime.claim import ClaimRecord, OutputClaim, OutputInUse
from transforms.output import layout

BUCKET = 'claims'


def _claim(root, run_id):
  record = ClaimRecord.for_this_process(run_id, '2026-11-30T12:00:00+00:00')
  return OutputClaim(layout.OutputLayout(str(root)), record)


# ------------------------------------------------------------------------------------------------
# Local disks.


def test_a_second_local_claim_fails_naming_the_first_until_it_is_released(tmp_path):
  first, second = _claim(tmp_path, 'run-a'), _claim(tmp_path, 'run-b')
  assert first.acquire(may_take_over=False) is None
  claim_file = tmp_path / '_work' / 'claim.json'
  assert json.loads(claim_file.read_text())['run_id'] == 'run-a'
  for may_take_over in (False, True):  # A live claim is never taken over, whatever the flags.
    with pytest.raises(OutputInUse, match=r'is in use by run run-a \(started 2026-11-30T12:00:00'):
      second.acquire(may_take_over)
  first.release()
  assert not claim_file.exists()
  assert second.acquire(may_take_over=False) is None
  second.release()


def test_a_local_claim_left_by_a_dead_run_is_taken_over_only_with_resume_or_overwrite(tmp_path):
  claim_file = tmp_path / '_work' / 'claim.json'
  claim_file.parent.mkdir()
  claim_file.write_bytes(
    ClaimRecord('run-dead', '2026-11-29T08:00:00+00:00', 'elsewhere', 4242, 'x', 0.0).to_bytes()
  )  # Nobody holds its lock.
  with pytest.raises(
    OutputInUse,
    match='still claimed by run run-dead .* ended without releasing '
    'it .* Pass --resume to finish its work, or --overwrite',
  ):
    _claim(tmp_path, 'run-b').acquire(may_take_over=False)
  with _claim(tmp_path, 'run-c') as taker:
    note = taker.acquire(may_take_over=True)
    assert note.startswith(
      'note: taking --output over from run run-dead (started '
      '2026-11-29T08:00:00+00:00 on elsewhere, pid 4242)'
    ), note
    assert json.loads(claim_file.read_text())['run_id'] == 'run-c'
  assert not claim_file.exists()


def _start(args, log):
  with open(log, 'wb') as out:
    return subprocess.Popen(
      [sys.executable, '-m', 'pipeline.run', *args],
      cwd=REPO,
      stdout=out,
      stderr=subprocess.STDOUT,
      start_new_session=True,
    )


def _wait_for(condition, process, what, timeout=300.0):
  deadline = time.monotonic() + timeout
  while not condition():
    assert process.poll() is None, f'the first run ended before {what}'
    assert time.monotonic() < deadline, f'no {what} after {timeout} s'
    time.sleep(0.05)


@pytest.mark.slow
def test_two_runs_on_one_local_output(tmp_path, capsys):
  source, output = copies_of_samples(tmp_path / 'input', 3), tmp_path / 'out'
  claim_file = output / '_work' / 'claim.json'
  first = _start(
    ['--input', str(source), '--output', str(output), *SAMPLE_FLAGS], tmp_path / 'first.log'
  )
  try:
    _wait_for(lambda: claim_file.exists() and claim_file.stat().st_size, first, 'claim')
    holder = json.loads(claim_file.read_text())
    assert holder['pid'] == first.pid
    for flags in ((), ('--resume',), ('--overwrite',)):  # Whatever the second run's flags.
      assert convert(source, output, *SAMPLE_FLAGS, *flags) == 2
      error = capsys.readouterr().err
      assert f'is in use by run {holder["run_id"]} (started {holder["started"]}' in error, error
      assert f'pid {first.pid})' in error
    assert first.wait(timeout=600) == 0, (tmp_path / 'first.log').read_text()[-3000:]
  finally:
    if first.poll() is None:
      os.killpg(first.pid, signal.SIGKILL)
      first.wait()
  assert not claim_file.exists()
  from pipeline.verify import verify  # pylint: disable=import-outside-toplevel

  assert verify(str(output)).ok  # The second run touched nothing.


# ------------------------------------------------------------------------------------------------
# S3 (moto): write, list, elect.


@pytest.fixture(name='s3_output')
def fixture_s3_output():
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=import-outside-toplevel
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel

  with moto_bucket(BUCKET) as (s3, _):
    FileSystems.set_options(PipelineOptions(s3.beam_args()))
    yield s3, f's3://{BUCKET}/out'


def _stored_claims(s3):
  listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix='out/_work/claims/')
  return sorted(item['Key'].rsplit('/', 1)[-1] for item in listed.get('Contents', []))


@pytest.mark.slow
def test_s3_claims_are_elected_and_refreshed(s3_output, monkeypatch):
  s3, root = s3_output
  monkeypatch.setattr(claim_lib, 'HEARTBEAT_SECONDS', 0.2)
  first = _claim(root, 'run-a')
  assert first.acquire(may_take_over=False) is None
  assert _stored_claims(s3) == ['run-a.json']
  with pytest.raises(OutputInUse, match='is in use by run run-a'):
    _claim(root, 'run-b').acquire(may_take_over=True)
  assert _stored_claims(s3) == ['run-a.json']  # The loser left nothing behind.

  def body():
    return json.loads(
      s3.client().get_object(Bucket=BUCKET, Key='out/_work/claims/run-a.json')['Body'].read()
    )

  beat = body()['heartbeat']
  time.sleep(1.0)
  assert body()['heartbeat'] > beat  # Refreshed while the run lasts.
  first.release()
  assert _stored_claims(s3) == []
  with _claim(root, 'run-b') as second:
    assert second.acquire(may_take_over=False) is None


@pytest.mark.slow
def test_two_s3_claims_written_at_the_same_moment_never_both_win(s3_output):
  """Both find no claim, then both write theirs before either lists again: each sees the other,
  both back off (the worst case: neither runs; never both)."""
  _, root = s3_output
  claims = [_claim(root, 'run-a'), _claim(root, 'run-b')]
  both_looked, both_written = threading.Barrier(2), threading.Barrier(2)
  results = {}

  def racing_write(claim, path, write=OutputClaim._write_remote):  # pylint: disable=protected-access
    both_looked.wait(timeout=30)
    write(claim, path)
    both_written.wait(timeout=30)

  def attempt(claim):
    claim._write_remote = lambda path: racing_write(claim, path)  # pylint: disable=protected-access
    try:
      results[claim] = claim.acquire(may_take_over=False)
    except OutputInUse as e:
      results[claim] = e
    finally:
      claim.release()

  threads = [threading.Thread(target=attempt, args=(c,)) for c in claims]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(timeout=60)
  assert all(isinstance(results[c], OutputInUse) for c in claims), results
  assert all('the two runs started at the same moment' in str(results[c]) for c in claims)


@pytest.mark.slow
def test_a_stale_s3_claim_is_taken_over_after_saying_so(s3_output):
  s3, root = s3_output
  stale = ClaimRecord(
    'run-old',
    '2026-11-29T08:00:00+00:00',
    'gone-host',
    7,
    'gone-machine',
    time.time() - claim_lib.STALE_AFTER_SECONDS - 5,
  )
  s3.client().put_object(Bucket=BUCKET, Key='out/_work/claims/run-old.json', Body=stale.to_bytes())
  with pytest.raises(
    OutputInUse,
    match=r'still claimed by run run-old .*not been refreshed for '
    r'6\d s.*Pass --resume',
  ):
    _claim(root, 'run-b').acquire(may_take_over=False)
  with _claim(root, 'run-c') as taker:
    assert 'taking --output over from run run-old' in taker.acquire(may_take_over=True)
    assert _stored_claims(s3) == ['run-c.json']
  # A claim written on this machine by a process that is gone is stale at once.
  dead = ClaimRecord(
    'run-dead',
    '2026-11-30T08:00:00+00:00',
    'here',
    2**22 + 7,
    claim_lib.this_machine(),
    time.time(),
  )
  s3.client().put_object(Bucket=BUCKET, Key='out/_work/claims/run-dead.json', Body=dead.to_bytes())
  with _claim(root, 'run-d') as taker:
    assert 'its process no longer exists' in taker.acquire(may_take_over=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_runs_on_one_s3_output(tmp_path, capsys):
  with moto_bucket(BUCKET) as (s3, client):
    s3.upload_tree(BUCKET, 'in/', copies_of_samples(tmp_path / 'input', 2))
    args = [
      '--input',
      f's3://{BUCKET}/in/',
      '--output',
      f's3://{BUCKET}/out/',
      *SAMPLE_FLAGS,
      *s3.beam_args(),
    ]
    first = _start(args, tmp_path / 'first.log')
    try:
      _wait_for(lambda: _stored_claims(s3), first, 'claim in the store')
      [name] = _stored_claims(s3)
      stored = client.get_object(Bucket=BUCKET, Key=f'out/_work/claims/{name}')
      holder = json.loads(stored['Body'].read())
      from pipeline.run import run  # pylint: disable=import-outside-toplevel

      assert run(args + ['--resume']) == 2
      error = capsys.readouterr().err
      assert f'is in use by run {holder["run_id"]}' in error and f'pid {first.pid})' in error, error
      assert _stored_claims(s3) == [name]
      assert first.wait(timeout=500) == 0, (tmp_path / 'first.log').read_text()[-3000:]
    finally:
      if first.poll() is None:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert _stored_claims(s3) == []  # Released at the end.
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix='out/')
    assert 'out/_SUCCESS' in {item['Key'] for item in listed['Contents']}


def test_a_run_that_loses_a_simultaneous_start_names_the_winner(tmp_path, monkeypatch):
  """The winner locks the claim file first and writes its record just after: the loser, which finds
  the lock held and the file still empty, waits for the record and names that run."""
  import fcntl  # pylint: disable=import-outside-toplevel

  path = layout.OutputLayout(str(tmp_path)).work_path(layout.CLAIM_FILE)
  os.makedirs(os.path.dirname(path))
  winner = ClaimRecord(
    '20261207-181500-abcdef',
    '2026-12-07T18:15:00+00:00',
    'builder-7',
    4242,
    claim_lib.this_machine(),
    time.time(),
  )
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    writer = threading.Timer(0.3, lambda: os.pwrite(fd, winner.to_bytes(), 0))
    writer.start()
    with pytest.raises(OutputInUse) as raised:
      _claim(tmp_path, 'loser').acquire(may_take_over=True)
    writer.join()
    assert (
      'is in use by run 20261207-181500-abcdef (started 2026-12-07T18:15:00+00:00 on '
      'builder-7, pid 4242)'
    ) in str(raised.value)
    assert 'unreadable' not in str(raised.value)
    os.ftruncate(fd, 0)  # A holder that never writes its record: said so, after a bounded wait.
    monkeypatch.setattr(claim_lib, 'HOLDER_WRITE_SECONDS', 0.2)
    started = time.monotonic()
    with pytest.raises(
      OutputInUse, match=r'in use by another run \(its claim record is unreadable\)'
    ):
      _claim(tmp_path, 'loser').acquire(may_take_over=False)
    assert time.monotonic() - started < 2
  finally:
    os.close(fd)
