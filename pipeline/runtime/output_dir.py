"""Guarding --output: an existing dataset is never silently overwritten, mixed or left half-written.

* --output and --input must not be the same folder nor one inside the other (compared as real paths
  locally, as normalised prefixes for gs:// and s3://).
* A local --output must be a folder in which a file can be created: tried before any work by
  creating and deleting a temporary file (file modes alone do not stop root).
* A folder that already holds shards or metadata is refused unless --overwrite (delete them first)
  or --resume (keep finished shards); --resume requires the interrupted run's --input root and
  output-deciding flags (_work/run.json, else a shard's sidecar: transforms/output/resume.py).
* Only files this tool writes are ever deleted. Shards are recognised by this run's
  --shard_name_template and by the one the earlier run recorded, so --overwrite with new names
  leaves no old shard behind.
* The claim of the running run (pipeline/runtime/claim.py, made before this module runs) is never
  deleted.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Dict, List, Optional

from apache_beam.io.filesystems import FileSystems

from pipeline.options import ConverterOptions, UsageError
from transforms.output import layout, resume
from transforms.inputs.listing import InputError, list_entries
from transforms.paths import comparable, inside, is_remote


def nesting_problem(input_path: str, output_path: str) -> Optional[str]:
  """What is wrong when --input and --output are the same folder or one is inside the other, or None."""
  source, target = comparable(input_path), comparable(output_path)
  real = (
    '' if (source, target) == (input_path, output_path) else f' (compared as {source} and {target})'
  )
  if source == target:
    return (
      f'--output {output_path} and --input {input_path} are the same folder{real}; inputs are '
      'never modified: choose an --output outside --input.'
    )
  if inside(target, source):
    return (
      f'--output {output_path} is inside --input {input_path}{real}: the next run would list '
      'it as a class folder. Choose an --output outside --input.'
    )
  if inside(source, target):
    return (
      f'--input {input_path} is inside --output {output_path}{real}: the shards and metadata '
      'would be written into a folder that holds the input. Choose an --output outside --input.'
    )
  return None


def _existing_ancestor(path: str) -> str:
  """`path` if it exists, else its closest existing parent (local paths)."""
  while not os.path.lexists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  return path


def check_output_location(opts: ConverterOptions, writable: bool = True) -> None:
  """Checks where --output is, before any work; see the module docstring.

  Args:
    opts: the run's flags.
    writable: also check that a file can be created in a local --output (or in the closest existing
      folder above it); off for --plan, which writes nothing.
  Raises:
    UsageError: --output and --input nested or equal; a local --output that is (or lies under) a
      file; with `writable`, a local --output folder in which no file can be created.
  """
  problem = nesting_problem(opts.input, opts.output)
  if problem:
    raise UsageError(problem)
  if is_remote(opts.output):
    return
  existing = _existing_ancestor(opts.output)
  if not os.path.isdir(existing):
    where = 'is a file' if existing == opts.output else f'lies under {existing}, which is a file'
    raise UsageError(
      f'--output {opts.output} {where}, not a folder: choose a folder (a new one, or '
      'one holding an earlier output).'
    )
  if writable:
    try:
      with tempfile.NamedTemporaryFile(dir=existing, prefix='.folder2tfrecord-write-check-'):
        pass
    except OSError as e:
      raise UsageError(
        f'--output {opts.output}: cannot create a file in {existing} '
        f'({e.strerror or e}); choose a folder you can write to.'
      ) from None


def _entries(directory: str):
  try:
    return list_entries(directory)
  except InputError:
    return []  # Does not exist yet.


def _earlier_shard_names(output: layout.OutputLayout) -> List[layout.ShardNameTemplate]:
  """The shard names an earlier run in this folder recorded: in its manifest.json's "options" and in
  _work/run.json (the same flags, written before any shard); the default names where none is
  recorded. Unreadable or invalid records name nothing."""
  templates = []
  for path, in_manifest in (
    (output.path(layout.MANIFEST_FILE), True),
    (output.work_path(layout.RUN_FILE), False),
  ):
    try:
      recorded = layout.read_optional_json(path) or {}
      templates.append(
        layout.recorded_shard_names(recorded.get('options') if in_manifest else recorded)
      )
    except (OSError, ValueError, AttributeError):  # AttributeError: JSON that is not an object
      continue
  return templates


def owned_files(output: layout.OutputLayout) -> List[str]:
  """Paths of the shard and metadata files this tool wrote in the output folder, sorted: shards named
  by this layout, by the template an earlier run recorded, or by either --file_format's default
  names (--overwrite never leaves an earlier run's TFRecord shards next to ArrayRecord ones, or the
  reverse)."""
  names = [entry.name for entry in _entries(output.root) if not entry.is_folder]
  names += [layout.SUCCESS_FILE] if FileSystems.exists(output.path(layout.SUCCESS_FILE)) else []
  templates = (
    [output.shard_names] + _earlier_shard_names(output) + list(layout.FORMAT_SHARD_NAMES.values())
  )
  return sorted(
    {
      output.path(n)
      for n in names
      if n in layout.METADATA_FILES or any(t.parse(n) for t in templates)
    }
  )


def _work_files(output: layout.OutputLayout) -> List[str]:
  """Files directly in _work/ but the claim (the current run's own)."""
  return [
    entry.path
    for entry in _entries(output.work_dir)
    if not entry.is_folder and entry.name != layout.CLAIM_FILE
  ]


def prepare_output(opts: ConverterOptions) -> None:
  """Checks and prepares --output before any work; see the module docstring.

  Raises:
    UsageError: the output holds a dataset and neither --overwrite nor --resume allows touching it,
      or --resume was given with different flags.
  """
  output = opts.output_layout
  existing = owned_files(output)
  run_file = output.work_path(layout.RUN_FILE)
  if existing and not (opts.overwrite or opts.resume):
    raise UsageError(
      f'--output {opts.output} already holds a dataset ({len(existing)} files, e.g. '
      f'{existing[0].rsplit("/", 1)[-1]}). Pass --overwrite to replace it, --resume to finish an '
      'interrupted run with the same flags, or choose another --output.'
    )
  if opts.resume:
    _check_same_run(opts)
  if opts.overwrite:
    _delete(existing + _work_files(output))
  elif opts.resume:  # Keep shards and their sidecars; drop temp files and the old verdict.
    _delete(
      [p for p in _work_files(output) if layout.is_temp(p.rsplit('/', 1)[-1])]
      + [p for p in existing if not output.is_shard(p.rsplit('/', 1)[-1])]
    )
  progress_dir = output.work_path(layout.PROGRESS_DIR)
  if FileSystems.exists(progress_dir):
    # Counts of an earlier run would inflate this run's progress.
    FileSystems.delete([progress_dir])
  layout.write_json(run_file, run_record(opts), indent=None)


def run_record(opts: ConverterOptions) -> Dict:
  """What _work/run.json holds: the output-deciding flags (ConverterOptions.to_dict) and --input
  (`s3://b/in/` and `s3://b/in` are one root)."""
  return {**opts.to_dict(), 'input': opts.input.rstrip('/') or opts.input}


def shard_recipe_of(opts: ConverterOptions) -> Dict:
  """The recipe every shard's sidecar records (transforms/output/resume.py RECIPE_FLAGS), defaults
  included."""
  return resume.shard_recipe({**dataclasses.asdict(opts), **run_record(opts)})


def _check_same_run(opts: ConverterOptions) -> None:
  """Refuses a --resume that would not finish the run it claims to finish.

  Raises:
    UsageError: the interrupted run (its _work/run.json, or a shard sidecar's recipe when run.json
    is
      gone) had another --input or another output-deciding flag; the message names each.
  """
  try:
    recorded = resume.recorded_run(opts.output_layout)
  except ValueError as e:
    raise UsageError(
      f'--resume cannot read what the interrupted run recorded: {e}. Use --overwrite '
      'to replace the output.'
    ) from None
  if recorded is None:
    return
  where, flags = recorded
  current = run_record(opts) if where.endswith(layout.RUN_FILE) else shard_recipe_of(opts)
  if where.endswith(layout.RUN_FILE):  # A run.json of an earlier version holds no --input.
    flags = {
      k: v for k, v in _with_new_defaults(flags, current).items() if k != 'input' or k in flags
    }
  differences = resume.run_differences(flags, current)
  if differences:
    raise UsageError(
      f'--resume finishes the interrupted run, and these flags differ from it (as '
      f'{where} records them): {"; ".join(differences)}. Rerun with '
      f'{resume.rerun_hint(flags, differences)}, or use --overwrite to replace the '
      'output.'
    )


def _with_new_defaults(previous: Dict, current: Dict) -> Dict:
  """The flags of an interrupted run, with flags added since (absent from its run.json, such as
  --file_format) at their defaults: what that run did."""
  defaults = {field.name: field.default for field in dataclasses.fields(ConverterOptions)}
  return {**{k: defaults[k] for k in current if k not in previous and k in defaults}, **previous}


def _delete(paths: List[str]) -> None:
  if paths:
    FileSystems.delete(paths)
