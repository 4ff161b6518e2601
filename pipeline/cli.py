"""The `folder2tfrecord` console script: `run` (default), `verify` and `report` subcommands.

  folder2tfrecord [run] --input DIR --output DIR [flags]   same as python -m pipeline.run
  folder2tfrecord plan --input DIR --output DIR [flags]    same as python -m pipeline.run --plan
  folder2tfrecord verify OUTPUT                             same as python -m pipeline.verify
  folder2tfrecord report OUTPUT --output report.png         same as python -m pipeline.report
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from pipeline import extras, interrupts, logs

SUBCOMMANDS = {'run': 'pipeline.run', 'plan': 'pipeline.run', 'verify': 'pipeline.verify',
               'report': 'pipeline.report'}
EXTRA_ARGS = {'plan': ['--plan']}  # what a subcommand adds to its module's command line


def main(argv: Optional[Sequence[str]] = None) -> None:
  argv = list(sys.argv[1:] if argv is None else argv)
  command = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else 'run'
  if not argv:
    print(__doc__)
    sys.exit(2)
  try:
    extras.require_for_args(argv)  # gs:// or s3:// without Beam's extra: one line, not a traceback
  except extras.MissingDependency as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  if SUBCOMMANDS[command] == 'pipeline.run':
    interrupts.install()  # Before Beam's import: Ctrl-C, SIGTERM, SIGHUP end a run cleanly.
  with logs.held_import_logs():  # Beam may log a harmless warning while it is imported (logs.py).
    module = importlib.import_module(SUBCOMMANDS[command])
  sys.argv = [f'folder2tfrecord {command}'] + argv + EXTRA_ARGS.get(command, [])
  sys.exit(module.main())


if __name__ == '__main__':
  main()
