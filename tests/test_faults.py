"""Faults: a killed run resumes to byte-identical output; a failing bundle leaves no partial shard."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from clusters.outputs import assert_same_dataset, read_dataset
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS, convert, copies_of_samples
from beam_private import tfrecord
from transforms.imaging import image as image_lib
from transforms.output import layout

pytestmark = pytest.mark.slow  # Killed, crashing and failing runs, each a conversion of its own.

CRASH_FLAGS = ('--train_shards', '24', '--validation_shards', '4', '--validation_fraction', '0.1')


def _final_shards(output):
  return sorted(p for p in output.glob('*-of-*') if '.tmp' not in p.name)


def _assert_complete(shard, output):
  """A file under a final shard name parses completely and holds what its sidecar says."""
  count = sum(
    1
    for raw in tf.data.TFRecordDataset(str(shard))
    if tf.train.Example.FromString(raw.numpy()).features.feature['image/encoded']
  )
  sidecar = layout.OutputLayout(str(output)).sidecar_path(shard.name)
  assert count == layout.read_json(sidecar)['num_examples']


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_byte_identical(tmp_path, capsys):
  source = copies_of_samples(tmp_path / 'input', 4)
  reference = tmp_path / 'reference'
  assert convert(source, reference, *CRASH_FLAGS) == 0
  output = tmp_path / 'crashed'
  command = [
    sys.executable,
    '-m',
    'pipeline.run',
    '--input',
    str(source),
    '--output',
    str(output),
    *CRASH_FLAGS,
    '--direct_running_mode=multi_processing',
    '--direct_num_workers=2',
  ]
  started = time.monotonic()
  process = subprocess.Popen(
    command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  try:
    while len(_final_shards(output)) < 3 and process.poll() is None:
      time.sleep(0.02)
    assert process.poll() is None, 'the run ended before it could be killed'
    os.killpg(process.pid, signal.SIGKILL)  # The whole process group: driver and workers.
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  killed_after = time.monotonic() - started
  finished = _final_shards(output)
  assert 3 <= len(finished) < 28 and not (output / '_SUCCESS').exists()
  for shard in finished:
    _assert_complete(shard, output)
  capsys.readouterr()
  assert convert(source, output, *CRASH_FLAGS) == 2  # Never mixed: refused without --resume.
  killed = json.loads((output / '_work' / 'claim.json').read_text())  # The kernel dropped its lock.
  assert f'still claimed by run {killed["run_id"]}' in capsys.readouterr().err
  started = time.monotonic()
  assert convert(source, output, *CRASH_FLAGS, '--resume') == 0
  assert f'note: taking --output over from run {killed["run_id"]}' in capsys.readouterr().err
  assert not (output / '_work' / 'claim.json').exists()
  print(
    f'killed after {killed_after:.1f} s with {len(finished)}/28 shards final; '
    f'resume took {time.monotonic() - started:.1f} s'
  )
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(reference)))
  assert not list((output / '_work').glob('*.tmp-*'))


def test_failing_shard_write_leaves_no_partial_shard_and_names_the_shard(
  sample_output, tmp_path, monkeypatch, capsys
):
  """A failure outside one image (here: writing a record of the shard) still fails the run."""
  real = tfrecord.write_record
  calls = []

  def failing_disk(f, record):
    calls.append(1)
    if len(calls) == 7:
      raise OSError(28, 'No space left on device (injected)')
    return real(f, record)

  monkeypatch.setattr(tfrecord, 'write_record', failing_disk)
  output = tmp_path / 'out'
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS) == 1
  message = capsys.readouterr().err
  assert 'error: no space left on device while writing shard train-' in message, message
  assert '--resume' in message
  assert not (output / '_SUCCESS').exists()
  assert not list((output / '_work').glob('*.tmp-*'))  # The failed shard's temp file is gone.
  for shard in _final_shards(output):
    _assert_complete(shard, output)
  monkeypatch.setattr(tfrecord, 'write_record', real)
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--resume') == 0
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(sample_output)))


def test_an_exception_inside_the_image_function_is_an_internal_error_reject(
  tmp_path, monkeypatch, capsys
):
  """A bug on one file (any exception but ImageRejected) rejects that file; the run finishes."""
  real = image_lib.process_image
  owl = (SAMPLE_DIR / 'animal' / 'gc_owl.JPEG').read_bytes()

  def buggy(data, spec):
    if data == owl:
      raise ZeroDivisionError('injected bug')
    return real(data, spec)

  monkeypatch.setattr(image_lib, 'process_image', buggy)
  output = tmp_path / 'out'
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS) == 0
  out = capsys.readouterr().out
  assert 'internal error: a bug in folder2tfrecord' in out and 'please report it' in out
  rejects = [json.loads(line) for line in (output / 'rejects.jsonl').read_text().splitlines()]
  assert sorted((r['path'].rsplit('/', 1)[-1], r['reason']) for r in rejects) == [
    ('ATTRIBUTION.md', 'not in a class folder'),  # beside the class folders
    ('gc_owl.JPEG', 'internal error: ZeroDivisionError: injected bug'),
  ]
  stats = json.loads((output / 'stats.json').read_text())
  assert stats['num_examples'] == 53 and stats['num_rejected'] == 2
  assert (output / '_SUCCESS').exists()
  # --max_reject_fraction still decides the exit code.
  assert convert(SAMPLE_DIR, tmp_path / 'strict', *SAMPLE_FLAGS, '--max_reject_fraction', '0') == 1


@pytest.mark.parametrize('mode', ['multi_processing', 'in_memory'])
def test_a_failing_write_in_a_worker_ends_the_run_with_one_error_line(tmp_path, mode):
  """Any failure in a worker reaches the driver: exit 1 in seconds, one error line, then --resume."""
  from runtime_aids import FAULTS_SITECUSTOMIZE, run_on_pty  # pylint: disable=import-outside-toplevel

  (tmp_path / 'aid').mkdir()
  (tmp_path / 'aid' / 'sitecustomize.py').write_text(FAULTS_SITECUSTOMIZE)
  env = dict(
    os.environ,
    F2T_EIO_WHEN='duplicates.jsonl',
    PYTHONPATH=os.pathsep.join(
      p for p in (str(tmp_path / 'aid'), os.environ.get('PYTHONPATH')) if p
    ),
  )
  output = tmp_path / 'out'
  workers = ('--direct_num_workers=2',) if mode == 'multi_processing' else ()
  command = [
    sys.executable,
    '-m',
    'pipeline.run',
    '--input',
    str(SAMPLE_DIR),
    '--output',
    str(output),
    *SAMPLE_FLAGS,
    f'--direct_running_mode={mode}',
    *workers,
  ]
  ended = run_on_pty(command, env, output, timeout=120)
  print(ended.text)
  errors = [line for line in ended.lines if 'error' in line.lower()]
  assert ended.code == 1 and len(errors) == 1, ended.text
  assert errors[0].startswith('error: the pipeline failed: ') and 'Input/output error' in errors[0]
  assert ended.lines[-2:] == [
    'Finished shards are kept; rerun with the same flags and --resume to write only the missing ones.',
    f"The run log (Beam's and the workers' logs): {output / '_work' / 'run.log'}",
  ], ended.text
  assert 'Traceback' not in ended.text and not ended.survivors
  assert subprocess.run(command + ['--resume'], capture_output=True, timeout=300).returncode == 0
