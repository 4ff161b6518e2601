"""Build (once) and locate the Airflow 3 virtualenv that the DAG test runs in.

Airflow and its providers pin hundreds of packages that clash with the converter's own
environment (apache-beam[gcp], TensorFlow), so Airflow lives in its own virtualenv under a
cache directory. The directory name carries a hash of the requirement pins and the Python
version: changing a pin builds a fresh venv next to the old one instead of mutating it.

Only PyPI is reachable where CI runs, so Airflow's official constraints files (hosted on
GitHub) cannot be used; the pins below are versions that resolve together from PyPI alone.
``uv`` (a PyPI wheel) resolves and installs the ~300 packages several times faster than pip.

Run ``python tests/airflow_venv.py`` to build it ahead of the test (prints the venv path).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

AIRFLOW_PINS: tuple[str, ...] = (
  'apache-airflow==3.3.2',
  'apache-airflow-providers-apache-beam==6.3.1',
  'apache-airflow-providers-google==22.8.0',
)
UV_PIN = 'uv==0.13.9'
COMPLETE_MARKER = '.complete'


def cache_root() -> Path:
  """Cache directory: $FOLDER2TFRECORD_CACHE, else ~/.cache/folder2tfrecord."""
  env = os.environ.get('FOLDER2TFRECORD_CACHE')
  return Path(env) if env else Path.home() / '.cache' / 'folder2tfrecord'


def venv_key(pins: tuple[str, ...] = AIRFLOW_PINS) -> str:
  """12 hex digits of sha256 over the pins and the interpreter's major.minor version."""
  text = '\n'.join(sorted(pins) + [f'python{sys.version_info.major}.{sys.version_info.minor}'])
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def venv_dir(pins: tuple[str, ...] = AIRFLOW_PINS) -> Path:
  """Path of the venv for ``pins`` (it may not exist yet)."""
  return cache_root() / f'airflow-venv-{venv_key(pins)}'


def ensure_airflow_venv(pins: tuple[str, ...] = AIRFLOW_PINS) -> Path:
  """Return a complete Airflow venv for ``pins``, building it from scratch if missing.

  A marker file is written last, so an interrupted build is never taken for a complete
  venv: the next call deletes it and starts again.

  Raises:
    subprocess.CalledProcessError: venv creation or an install step failed.
  """
  target = venv_dir(pins)
  if (target / COMPLETE_MARKER).exists():
    return target
  shutil.rmtree(target, ignore_errors=True)  # left over from an interrupted build
  target.parent.mkdir(parents=True, exist_ok=True)
  subprocess.run([sys.executable, '-m', 'venv', str(target)], check=True)
  python = target / 'bin' / 'python'
  subprocess.run([str(python), '-m', 'pip', 'install', '--quiet', UV_PIN], check=True)
  # uv reads the platform's CA store (as pip does here) instead of its bundled roots.
  env = {**os.environ, 'UV_NATIVE_TLS': '1'}
  subprocess.run(
    [str(target / 'bin' / 'uv'), 'pip', 'install', '--python', str(python), *pins],
    check=True,
    env=env,
  )
  (target / COMPLETE_MARKER).write_text('\n'.join(pins) + '\n')
  return target


if __name__ == '__main__':
  print(ensure_airflow_venv())
