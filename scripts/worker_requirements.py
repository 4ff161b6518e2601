"""Prints the pins of constraints.txt that Dataflow workers must install: the codec stack.

    python scripts/worker_requirements.py > worker-requirements.txt

run_dataflow.sh passes the result as Beam's --requirements_file, so every worker installs the
Pillow, simplejpeg, OpenCV and numpy the driver was tested with (and the shard writers' codec check,
transforms/imaging/codec_versions.py, finds the driver's versions). Only these: the rest comes with
the package (--setup_file) and Beam's worker image, and a requirements file is downloaded on the
launcher and staged for the workers, which would be hundreds of MB with TensorFlow in it.

Exit status 1 (and a message) when constraints.txt does not pin one of them.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'scripts'))

from install_is_current import CONSTRAINTS, read_pins  # noqa: E402
from transforms.imaging.codec_versions import WORKER_PINNED_DISTRIBUTIONS  # noqa: E402


def worker_requirements(root: pathlib.Path = ROOT) -> str:
  """`name==version` lines of the codec stack, from constraints.txt.

  Raises:
    KeyError: constraints.txt pins one of WORKER_PINNED_DISTRIBUTIONS not.
  """
  pins = read_pins(root / CONSTRAINTS)
  return ''.join(f'{name}=={pins[name]}\n' for name in WORKER_PINNED_DISTRIBUTIONS)


if __name__ == '__main__':
  try:
    sys.stdout.write(worker_requirements())
  except KeyError as e:
    sys.exit(f'error: {CONSTRAINTS} does not pin {e}, which the Dataflow workers need')
