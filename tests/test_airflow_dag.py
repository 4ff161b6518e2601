"""The Airflow DAG, run for real: Airflow 3 in its own venv, `airflow dags test`, SQLite metadata.

Run 1 converts (a copy of) the sample photos through BeamRunPythonPipelineOperator and verifies the
output. Run 2 starts from the state a crashed attempt leaves behind (one shard never renamed into
place, no _SUCCESS) plus a shard damaged on disk: the convert task (the same command an Airflow
retry runs, with --resume) must rewrite only the missing shard, byte-identical, and leave the others
untouched; the verify task must then find the damaged shard and fail the run. Run 3 is a retry after
the input changed (files replaced, added and removed while the output stood interrupted, and the
damaged shard deleted): the convert task must say which shards it rewrote and why, and end with the
bytes of a fresh conversion of the changed input; verify then passes.

The Airflow venv is built on first use (tests/airflow_venv.py; about a minute with uv from PyPI) and
cached under ~/.cache/folder2tfrecord. The converter runs in this test's own interpreter
(the Variable folder2tfrecord_python), from the repository root so `-m pipeline.run` imports even
when the package is not pip-installed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import airflow_venv
from clusters.outputs import assert_same_dataset, read_dataset
from conftest import convert

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / 'data' / 'sample_images'
DAG_ID = 'imagefolder_to_tfrecord'
NUM_SAMPLES = 54

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture(scope='module')
def airflow_bin() -> Path:
  return airflow_venv.ensure_airflow_venv() / 'bin' / 'airflow'


@pytest.fixture
def airflow_env(tmp_path) -> dict:
  """Environment for an isolated Airflow: temp AIRFLOW_HOME, SQLite, our DAG folder, no cloud."""
  home = tmp_path / 'airflow_home'
  home.mkdir()
  env = dict(os.environ)
  env.update(
    {
      'AIRFLOW_HOME': str(home),
      'AIRFLOW__CORE__DAGS_FOLDER': str(REPO / 'dags'),
      'AIRFLOW__CORE__LOAD_EXAMPLES': 'False',
      'AIRFLOW__DATABASE__SQL_ALCHEMY_CONN': f'sqlite:///{home}/airflow.db',
      'AIRFLOW_VAR_FOLDER2TFRECORD_PYTHON': sys.executable,
      # Google auth must not probe the metadata server: point it at a closed loopback port.
      'NO_GCE_CHECK': 'True',
      'GCE_METADATA_HOST': '127.0.0.1:9',
      'PYTHONDONTWRITEBYTECODE': '1',  # keep dags/ free of __pycache__
    }
  )
  env.pop('PYTHONPATH', None)
  return env


def _airflow(
  airflow_bin: Path, env: dict, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
  start = time.monotonic()
  result = subprocess.run(
    [str(airflow_bin), *args],
    env=env,
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=1200,
    check=False,
  )
  print(
    f'airflow {args[0]} {args[1]}: exit {result.returncode} in {time.monotonic() - start:.0f} s'
  )
  if check and result.returncode != 0:
    pytest.fail(
      f'airflow {" ".join(args)} exited {result.returncode}:\n'
      f'{result.stdout[-6000:]}\n{result.stderr[-6000:]}'
    )
  return result


def _task_states(env: dict) -> list[tuple[str, str, str]]:
  """(run_id, task_id, state) of every task instance, oldest run first, from the SQLite DB."""
  db = Path(env['AIRFLOW_HOME']) / 'airflow.db'
  with sqlite3.connect(db) as connection:
    return connection.execute(
      'SELECT ti.run_id, ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr '
      'ON dr.run_id = ti.run_id AND dr.dag_id = ti.dag_id WHERE ti.dag_id = ? '
      'ORDER BY dr.id, ti.task_id',
      (DAG_ID,),
    ).fetchall()


def _stat(path: Path) -> tuple[int, int]:
  info = path.stat()
  return info.st_ino, info.st_mtime_ns


FLAGS = {
  'resize_shorter_side': 64,
  'center_crop': 64,
  'train_shards': 3,
  'validation_shards': 2,
  'validation_fraction': 0.2,
  'label_offset': 1,
}


def test_dag_converts_verifies_and_resumes(airflow_bin, airflow_env, tmp_path):
  source, output = tmp_path / 'images', tmp_path / 'tfrecords'
  shutil.copytree(SAMPLES, source)
  (source / 'ATTRIBUTION.md').unlink()
  conf = json.dumps({'input': str(source), 'output': str(output), **FLAGS})
  _airflow(airflow_bin, airflow_env, 'db', 'migrate')

  # Run 1: a clean conversion, then verification.
  run1 = _airflow(airflow_bin, airflow_env, 'dags', 'test', DAG_ID, '-c', conf)
  log = run1.stdout + run1.stderr
  assert '-m pipeline.run --runner=' in log and '--resume' in log and '--labels=' in log
  assert f'OK {output}: 5 shards, records train: ' in log  # printed by the verify task
  assert [(t, s) for _, t, s in _task_states(airflow_env)] == [
    ('convert', 'success'),
    ('verify_output', 'success'),
  ]
  manifest = json.loads((output / 'manifest.json').read_text())
  stats = json.loads((output / 'stats.json').read_text())
  shards = sorted(s['file'] for e in manifest['splits'].values() for s in e['shards'])
  assert shards == [
    'train-00000-of-00003',
    'train-00001-of-00003',
    'train-00002-of-00003',
    'validation-00000-of-00002',
    'validation-00001-of-00002',
  ]
  assert all((output / s).stat().st_size > 0 for s in shards)
  assert stats['num_examples'] + stats['num_rejected'] == NUM_SAMPLES
  assert manifest['label_offset'] == 1
  assert (output / '_SUCCESS').exists()

  # Run 2: what a crashed attempt leaves (a shard missing, no _SUCCESS), plus one damaged shard.
  missing, damaged = output / shards[1], output / shards[3]
  original = missing.read_bytes()
  missing.unlink()
  (output / '_SUCCESS').unlink()
  data = bytearray(damaged.read_bytes())
  data[len(data) // 2] ^= 0xFF
  damaged.write_bytes(bytes(data))
  untouched = {s: _stat(output / s) for s in shards if output / s != missing}
  run2 = _airflow(airflow_bin, airflow_env, 'dags', 'test', DAG_ID, '-c', conf, check=False)
  log = run2.stdout + run2.stderr
  assert run2.returncode != 0, log[-4000:]
  states = _task_states(airflow_env)
  assert [(t, s) for _, t, s in states[2:]] == [
    ('convert', 'success'),
    ('verify_output', 'failed'),
  ], log[-8000:]
  assert missing.read_bytes() == original  # the missing shard rewritten, byte for byte
  assert {s: _stat(output / s) for s in untouched} == untouched  # finished shards kept as they were
  assert (output / '_SUCCESS').exists()
  assert f'PROBLEM {damaged}: record ' in log and 'data crc mismatch' in log
  assert f'PROBLEM {damaged}: ' in log and 'the file changed after it was written' in log
  assert 'resumed: 4 shards kept, 0 rewritten because their input changed, 1 missing' in log

  # Run 3: a retry after the input changed. The damaged shard was deleted (after verify named it),
  # another shard never finished, and meanwhile files were replaced, added and removed.
  damaged.unlink()
  (output / shards[0]).unlink()
  (output / '_SUCCESS').unlink()
  cat = source / 'animal' / 'gc_cat.JPEG'
  shutil.copy(source / 'animal' / 'gc_owl.JPEG', cat)  # replaced: same name, other bytes
  shutil.copy(cat, source / 'space' / 'added.JPEG')
  (source / 'flower' / sorted(p.name for p in (source / 'flower').iterdir())[0]).unlink()
  run3 = _airflow(airflow_bin, airflow_env, 'dags', 'test', DAG_ID, '-c', conf, check=False)
  log = run3.stdout + run3.stderr
  assert run3.returncode == 0, log[-8000:]
  assert [(t, s) for _, t, s in _task_states(airflow_env)[4:]] == [
    ('convert', 'success'),
    ('verify_output', 'success'),
  ], log[-8000:]
  resumed = next(line for line in log.splitlines() if 'resumed: ' in line)
  print(resumed)
  assert (
    'rewritten because their input changed (' in resumed
    and 'other files: a file added or '
    'removed (or another class order) moves every later file of its split to another shard'
    in resumed
  ), resumed
  fresh = tmp_path / 'fresh'
  assert convert(source, fresh, *[f'--{k}={v}' for k, v in FLAGS.items()]) == 0
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(fresh)))


def test_airflow_venv_key_tracks_pins():
  assert airflow_venv.venv_key(airflow_venv.AIRFLOW_PINS) == airflow_venv.venv_key(
    tuple(reversed(airflow_venv.AIRFLOW_PINS))
  )
  changed = (*airflow_venv.AIRFLOW_PINS[:-1], 'apache-airflow-providers-google==22.7.0')
  assert airflow_venv.venv_key(changed) != airflow_venv.venv_key(airflow_venv.AIRFLOW_PINS)
