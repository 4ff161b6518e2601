"""Exit 0 when the running interpreter has this checkout installed with the given extras; 1 if not.

    python scripts/install_is_current.py ["[gcp]"]

scripts/ensure_venv.sh asks this before it calls pip, so that a run after the first one does not
call pip at all (no network, nothing printed). "Installed" means all of:
* the `folder2tfrecord` distribution is an editable install of this folder, of setup.py's version;
* every requirement in setup.py's REQUIRED and in EXTRAS[extra] for each extra asked for is
  installed at a version its specifier allows, and so are the extras those requirements ask for in
  turn (`apache-beam[gcp]` needs Beam's own `gcp` requirements);
* each of them that constraints.txt pins (`name==version`, what ensure_venv.sh passes to pip's -c)
  is installed at exactly that version: a virtualenv made before a pin changed is brought up to it.
The lists are read from setup.py's REQUIRED and EXTRAS literals with `ast` (setup.py is not run).
Anything this script cannot decide (no `packaging` yet, an unreadable setup.py) counts as not
installed: pip then runs and decides.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import pathlib
import sys
from typing import Dict, Iterable, Set, Tuple

PROJECT = 'folder2tfrecord'
CONSTRAINTS = 'constraints.txt'
ROOT = pathlib.Path(__file__).resolve().parent.parent


def setup_literals(setup_py: pathlib.Path) -> Dict[str, object]:
  """setup.py's module-level REQUIRED and EXTRAS, and the `version=` of its setup() call."""
  found: Dict[str, object] = {}
  for node in ast.walk(ast.parse(setup_py.read_text(encoding='utf-8'))):
    if (
      isinstance(node, ast.Assign)
      and len(node.targets) == 1
      and isinstance(node.targets[0], ast.Name)
    ):
      if node.targets[0].id in ('REQUIRED', 'EXTRAS'):
        found[node.targets[0].id] = ast.literal_eval(node.value)
    elif isinstance(node, ast.keyword) and node.arg == 'version':
      found['version'] = ast.literal_eval(node.value)
  return found


def _editable_install_of(root: pathlib.Path, version: str) -> bool:
  for dist in importlib.metadata.distributions(name=PROJECT):  # A checkout's own .egg-info is one.
    direct_url = json.loads(dist.read_text('direct_url.json') or '{}')
    if (
      dist.version == version
      and direct_url.get('dir_info', {}).get('editable', False)
      and direct_url.get('url') == root.as_uri()
    ):
      return True
  return False


def read_pins(constraints: pathlib.Path) -> Dict[str, str]:
  """{canonical distribution name: version} of the `name==version` lines of a constraints file (none
  when there is no such file)."""
  from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel
  from packaging.utils import canonicalize_name  # pylint: disable=import-outside-toplevel

  pins = {}
  if constraints.exists():
    for line in constraints.read_text(encoding='utf-8').splitlines():
      line = line.split('#', 1)[0].strip()
      if line:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        pins[canonicalize_name(requirement.name)] = spec.version
  return pins


def requirements_met(
  requirements: Iterable[str],
  extra: str = '',
  seen: Set[Tuple[str, str]] = None,
  pins: Dict[str, str] = None,
) -> bool:
  """True when each requirement that applies (its marker, evaluated for `extra`) is installed, at the
  version `pins` ({canonical name: version}) names if it names one."""
  from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel
  from packaging.utils import canonicalize_name  # pylint: disable=import-outside-toplevel

  seen = set() if seen is None else seen
  pins = pins or {}
  for text in requirements:
    requirement = Requirement(text)
    if requirement.marker is not None and not requirement.marker.evaluate({'extra': extra}):
      continue
    try:
      dist = importlib.metadata.distribution(requirement.name)
    except importlib.metadata.PackageNotFoundError:
      return False
    if not requirement.specifier.contains(dist.version, prereleases=True):
      return False
    if pins.get(canonicalize_name(requirement.name), dist.version) != dist.version:
      return False
    for wanted in sorted(requirement.extras):
      if (requirement.name.lower(), wanted) not in seen:
        seen.add((requirement.name.lower(), wanted))
        if not requirements_met(dist.requires or [], wanted, seen, pins):
          return False
  return True


def install_is_current(extras: str, root: pathlib.Path = ROOT) -> bool:
  """`extras`: '' or e.g. '[gcp]' / '[gcp,test]', as ensure_venv.sh passes them to pip."""
  literals = setup_literals(root / 'setup.py')
  wanted = [e.strip() for e in extras.strip('[]').split(',') if e.strip()]
  requirements = list(literals['REQUIRED'])
  for extra in wanted:
    requirements += literals['EXTRAS'][extra]
  return _editable_install_of(root, literals['version']) and requirements_met(
    requirements, pins=read_pins(root / CONSTRAINTS)
  )


def main(argv) -> int:
  try:
    return 0 if install_is_current(argv[1] if len(argv) > 1 else '') else 1
  except Exception:  # pylint: disable=broad-except
    return 1  # Undecided: let pip decide.


if __name__ == '__main__':
  sys.exit(main(sys.argv))
