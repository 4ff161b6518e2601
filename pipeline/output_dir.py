"""Guarding --output: an existing dataset is never silently overwritten, mixed or left half-written.

* A folder that already holds shards or metadata is refused unless --overwrite (delete them first) or
  --resume (keep finished shards) is given.
* --resume requires the same output-deciding flags as the interrupted run (recorded in _work/run.json).
* Only files this tool writes are ever deleted; anything else in --output is left alone.
"""

from __future__ import annotations

import json
import re
from typing import List

from apache_beam.io.filesystems import FileSystems

from pipeline.options import ConverterOptions, UsageError
from transforms.listing import InputError, join, list_entries
from transforms.progress import PROGRESS_DIR
from transforms.metadata import LABELS_FILE, MANIFEST_FILE, REJECTS_FILE, STATS_FILE, SUCCESS_FILE
from transforms.shard_writer import read_json, work_dir

SHARD_FILE = re.compile(r'^(train|validation)-\d{5}-of-\d{5}$')
METADATA_FILES = (LABELS_FILE, STATS_FILE, REJECTS_FILE, MANIFEST_FILE, SUCCESS_FILE,
                  'dataset_info.json', 'features.json', 'image-class-label.labels.txt')
RUN_FILE = 'run.json'


def _entries(directory: str):
  try:
    return list_entries(directory)
  except InputError:
    return []  # Does not exist yet.


def owned_files(output_dir: str) -> List[str]:
  """Paths of the shard and metadata files this tool wrote in `output_dir`, sorted."""
  names = [name for _, name, is_dir in _entries(output_dir) if not is_dir]
  names += [SUCCESS_FILE] if FileSystems.exists(join(output_dir, SUCCESS_FILE)) else []
  return sorted({join(output_dir, n) for n in names if SHARD_FILE.match(n) or n in METADATA_FILES})


def _work_files(output_dir: str) -> List[str]:
  return [path for path, _, is_dir in _entries(work_dir(output_dir)) if not is_dir]


def prepare_output(opts: ConverterOptions) -> None:
  """Checks and prepares --output before any work; see the module docstring.

  Raises:
    UsageError: the output holds a dataset and neither --overwrite nor --resume allows touching it,
      or --resume was given with different flags.
  """
  existing = owned_files(opts.output)
  run_file = join(work_dir(opts.output), RUN_FILE)
  if existing and not (opts.overwrite or opts.resume):
    raise UsageError(
        f'--output {opts.output} already holds a dataset ({len(existing)} files, e.g. '
        f'{existing[0].rsplit("/", 1)[-1]}). Pass --overwrite to replace it, --resume to finish an '
        'interrupted run with the same flags, or choose another --output.')
  if opts.resume and FileSystems.exists(run_file):
    previous = read_json(run_file)
    if previous != opts.to_dict():
      changed = sorted(k for k in set(previous) | set(opts.to_dict())
                       if previous.get(k) != opts.to_dict().get(k))
      raise UsageError(f'--resume needs the flags of the interrupted run; these differ: {changed}. '
                       'Rerun with the same flags, or use --overwrite to start again.')
  if opts.overwrite:
    _delete(existing + _work_files(opts.output))
  elif opts.resume:  # Keep shards and their sidecars; drop temp files and the old verdict.
    _delete([p for p in _work_files(opts.output) if '.tmp-' in p] +
            [p for p in existing if not SHARD_FILE.match(p.rsplit('/', 1)[-1])])
  progress_dir = join(work_dir(opts.output), PROGRESS_DIR)
  if FileSystems.exists(progress_dir):
    FileSystems.delete([progress_dir])  # Counts of an earlier run would inflate this run's progress.
  with FileSystems.create(run_file) as f:
    f.write(json.dumps(opts.to_dict(), sort_keys=True).encode('utf-8'))


def _delete(paths: List[str]) -> None:
  if paths:
    FileSystems.delete(paths)

