"""constraints.txt: the tested versions, used by the scripts and handed to Dataflow's workers."""

import importlib.metadata
import os
import subprocess
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO
from transforms.imaging.codec_versions import WORKER_PINNED_DISTRIBUTIONS

sys.path.insert(0, str(REPO / 'scripts'))
import install_is_current  # pylint: disable=wrong-import-position
import worker_requirements  # pylint: disable=wrong-import-position

PINS = install_is_current.read_pins(REPO / 'constraints.txt')


def test_every_direct_dependency_is_pinned_within_setup_py():
  literals = install_is_current.setup_literals(REPO / 'setup.py')
  requirements = [
    Requirement(r) for r in literals['REQUIRED'] + sum(literals['EXTRAS'].values(), [])
  ]
  for requirement in requirements:
    name = canonicalize_name(requirement.name)
    assert name in PINS, f'constraints.txt does not pin {name}'
    assert requirement.specifier.contains(PINS[name]), (
      name,
      PINS[name],
      str(requirement.specifier),
    )
  assert set(WORKER_PINNED_DISTRIBUTIONS) <= set(PINS)


def test_the_codec_stack_installed_here_is_the_pinned_one():
  """What the tests ran with (run_tests.sh installs with constraints.txt)."""
  for name in WORKER_PINNED_DISTRIBUTIONS:
    assert importlib.metadata.version(name) == PINS[name], name


def test_install_is_current_wants_the_pinned_versions():
  installed = importlib.metadata.version('pillow')
  assert install_is_current.requirements_met(['pillow>=12'], pins={'pillow': installed})
  assert not install_is_current.requirements_met(['pillow>=12'], pins={'pillow': '12.0.0'})
  assert install_is_current.requirements_met(['pillow>=12'], pins={})


def test_worker_requirements_are_the_codec_pins():
  assert worker_requirements.worker_requirements() == ''.join(
    f'{name}=={PINS[name]}\n' for name in WORKER_PINNED_DISTRIBUTIONS
  )


def test_run_dataflow_sh_hands_the_codec_pins_to_the_workers(tmp_path):
  """run_dataflow.sh up to the converter's command line, with a stand-in interpreter: no install, no
  network, no Google Cloud."""
  venv = tmp_path / 'venv'
  (venv / 'bin').mkdir(parents=True)
  args_file = tmp_path / 'args'
  stub = venv / 'bin' / 'python'
  stub.write_text(f'''#!/bin/sh
case "$1" in
  scripts/install_is_current.py) exit 0 ;;
  -m) printf '%s\\n' "$@" > "{args_file}"; exit 0 ;;
  *) exec "{sys.executable}" "$@" ;;
esac
''')
  stub.chmod(0o755)
  done = subprocess.run(
    ['bash', str(REPO / 'run_dataflow.sh'), 'my-project', 'us-central1', 'gs://bucket/path'],
    env=dict(os.environ, VENV=str(venv)),
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert done.returncode == 0, done.stderr
  args = args_file.read_text().splitlines()
  requirements = venv / 'worker-requirements.txt'
  assert f'--requirements_file={requirements}' in args and '--setup_file=./setup.py' in args, args
  assert requirements.read_text() == worker_requirements.worker_requirements()
  assert '--requirements_cache=skip' not in args  # Downloaded here, staged for the workers.
