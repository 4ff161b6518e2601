"""The `folder2tfrecord` console script: `run` (default), `plan`, `verify` and `report` commands.

usage: folder2tfrecord [run] --input DIR --output DIR [flags]  same as python -m pipeline.run
       folder2tfrecord plan --input DIR --output DIR [flags]   same as python -m pipeline.run --plan
       folder2tfrecord verify OUTPUT [flags]                   same as python -m pipeline.verify
       folder2tfrecord report OUTPUT --output report.png       same as python -m pipeline.report

commands:
  run      convert an image folder into sharded TFRecords and metadata (the default command)
  plan     print what a run with these flags would write; write nothing
  verify   check a finished output (shards, checksums, counts)
  report   draw a contact sheet and histograms of an output (PNG and HTML)

folder2tfrecord COMMAND --help lists a command's flags.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import Optional, Sequence

from pipeline import extras
from pipeline.runtime import interrupts, logs

SUBCOMMANDS = {
  'run': 'pipeline.run',
  'plan': 'pipeline.run',
  'verify': 'pipeline.verify',
  'report': 'pipeline.report',
}
EXTRA_ARGS = {'plan': ['--plan']}  # what a subcommand adds to its module's command line
HELP_FLAGS = ('-h', '--help')
HELP = __doc__.split('\n\n', 1)[1]  # the docstring from its usage lines on


def _usage_error(message: str) -> None:
  print(f'error: {message}\n\n{HELP}', file=sys.stderr)
  sys.exit(2)


def main(argv: Optional[Sequence[str]] = None) -> None:
  """Runs the command argv names (run when argv starts with a flag); exits with its exit code.

  Exit codes as in pipeline/run.py; 2 for a word that is no command (with the closest command).
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv:
    _usage_error('no command or flags given.')
  if argv[0] in HELP_FLAGS:
    print(HELP)
    print('The flags of run (the default command) follow.\n')
  if argv[0] in SUBCOMMANDS:
    command = argv.pop(0)
  elif argv[0].startswith('-'):
    command = 'run'
  else:
    close = difflib.get_close_matches(argv[0], list(SUBCOMMANDS), n=1)
    _usage_error(
      f'unknown command {argv[0]!r}'
      + (f' (did you mean {close[0]!r}?)' if close else '')
      + f'; the commands are {", ".join(SUBCOMMANDS)}.'
    )
  if not argv:
    _usage_error(f'{command} needs arguments; see folder2tfrecord {command} --help.')
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
