"""Optional dependencies: a missing one is a one-line error that names the command installing it.

Checked on the command line before any work, because Beam finds out late and says it as a traceback:
a gs:// path without Beam's gcp extra ends in a ValueError from the first listing, an s3:// path
without its aws extra in an AssertionError inside a BeamIOError, and `pipeline.report` without
matplotlib in a ModuleNotFoundError halfway through. The command installs Beam's extra at the Beam
version installed here, with this interpreter's pip, so it fits however the package was installed
(run_local.sh's virtualenv, `pip install .`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shlex
import sys
from typing import Sequence, Tuple

# (text in a flag's value, a module of the extra, the extra of apache-beam, what needs it)
BEAM_EXTRAS: Sequence[Tuple[str, str, str, str]] = (
  ('gs://', 'google.cloud.storage', 'gcp', 'gs:// paths need'),
  ('s3://', 'boto3', 'aws', 's3:// paths need'),
  ('DataflowRunner', 'apitools', 'gcp', 'the DataflowRunner needs'),
)


class MissingDependency(Exception):
  """An optional dependency is not installed; the message names the command that installs it."""


def installed(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except ImportError:  # A parent package is missing.
    return False


def install_command(requirement: str) -> str:
  """`<this interpreter> -m pip install '<requirement>'`; the interpreter relative to the cwd if in it."""
  python = sys.executable
  relative = os.path.relpath(python)
  if not relative.startswith(os.pardir):
    python = relative if os.sep in relative else os.path.join(os.curdir, relative)
  return f'{shlex.quote(python)} -m pip install {shlex.quote(requirement)}'


def require(module: str, requirement: str, needed_by: str) -> None:
  """Raises MissingDependency unless `module` can be imported; `needed_by`: e.g. 'gs:// paths need'."""
  if not installed(module):
    raise MissingDependency(
      f'{needed_by} {requirement}, which is not installed here; install it '
      f'with: {install_command(requirement)}'
    )


def require_for_args(argv: Sequence[str]) -> None:
  """Raises MissingDependency when a flag's value needs a Beam extra that is not installed."""
  values = [arg.split('=', 1)[-1] for arg in argv]
  for text, module, extra, needed_by in BEAM_EXTRAS:
    if any(text in value for value in values):
      version = importlib.metadata.version('apache-beam')
      require(module, f'apache-beam[{extra}]=={version}', needed_by)
