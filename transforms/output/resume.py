"""What --resume does with each shard, and the line that tells the user.

The shard writer keeps a finished shard only when nothing that decides its bytes changed, and
otherwise writes it again, so the output ends byte-identical to a fresh run on the current input.
Kept when: the shard file and its sidecar exist and the file has the recorded size; the file list,
the files' fingerprint and what the records store besides images (transforms/inputs/fingerprint.py)
equal the sidecar's; so do the codec builds (transforms/imaging/codec_versions.py) and the shard's
recipe (RECIPE_FLAGS, the label map's content, the input root): never on the word of
`_work/run.json` alone. Before any work, pipeline/runtime/output_dir.py refuses (exit 2) a --resume
whose flags or --input root differ from the interrupted run's (`recorded_run`, `run_differences`). A
file added or removed moves every later file of its split in the round-robin
(transforms/split/sharding.py), so most of that split's shards are rewritten (the message says so);
with automatic counts, shards of an old count are deleted by the metadata step
(`delete_stale_shards`) before `_SUCCESS`. Each shard's outcome is one of OUTCOMES, counted into
provenance.json; the driver prints `resume_message`.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.output import layout
from transforms.inputs.fingerprint import ShardInputs
from transforms.records import ShardSummary

# no finished shard to keep: a fresh run, or a shard the earlier run did not finish
WRITTEN = 'written'
KEPT = 'kept'
FILES_MODIFIED = 'rewritten: files modified'  # the same names, another size or modification time
OTHER_FILES = 'rewritten: other files'  # files added, removed, or moved here by the assignment
# the same files with other labels, classes or class texts
LABELS_CHANGED = 'rewritten: labels changed'
# the shard's size is not the one its sidecar recorded
SHARD_CHANGED = 'rewritten: shard file changed'
OTHER_CODECS = 'rewritten: other codecs'
NO_FINGERPRINT = 'rewritten: no fingerprint'  # a sidecar of a version before fingerprints
NO_PHASHES = 'rewritten: no perceptual hashes'  # records of a version before image/phash
OTHER_RECIPE = 'rewritten: other recipe'  # written with other image flags, label map, format, ...
NO_RECIPE = 'rewritten: no recipe'  # a sidecar of a version before recipes: its flags are unknown
OUTCOMES = (
  WRITTEN,
  KEPT,
  FILES_MODIFIED,
  OTHER_FILES,
  LABELS_CHANGED,
  SHARD_CHANGED,
  OTHER_CODECS,
  NO_FINGERPRINT,
  NO_PHASHES,
  OTHER_RECIPE,
  NO_RECIPE,
)
# What decides a shard's bytes besides its files: the image flags (transforms/imaging/image.py
# ImageSpec), the labels (--label_offset, the label map's content as manifest.json records it), the
# container (--file_format, --compression), the order (--seed), the boxes (--bbox_dir) and the input
# root. Every sidecar records them ("recipe"); codec versions are recorded apart ("codecs").
RECIPE_FLAGS = (
  'input',
  'resize_shorter_side',
  'center_crop',
  'resize_longer_side',
  'no_upscale',
  'jpeg_quality',
  'resample',
  'max_image_pixels',
  'label_offset',
  'labels_file',
  'file_format',
  'compression',
  'seed',
  'bbox_dir',
)
# Recipe flags recorded only when given, so the recipes of runs without them stay as they were:
# --manifest as its content's SHA-256 (pipeline/options.py to_dict).
RECIPE_FLAGS_WHEN_SET = ('manifest',)
# Recorded flags whose change is no reason to refuse --resume: the label map's content is checked
# per shard (its records' labels), as the files are.
_CHECKED_PER_SHARD = ('labels_file',)
_LOGGER = logging.getLogger(__name__)


def shard_recipe(flags: Mapping[str, Any]) -> Dict[str, Any]:
  """{flag: value} of RECIPE_FLAGS from every flag of a run (absent ones as None), and of the
  RECIPE_FLAGS_WHEN_SET that are given."""
  recipe = {flag: flags.get(flag) for flag in RECIPE_FLAGS}
  recipe.update({flag: flags[flag] for flag in RECIPE_FLAGS_WHEN_SET if flags.get(flag)})
  return recipe


def decide(
  finished: Optional[ShardSummary],
  shard_bytes: Optional[int],
  inputs: ShardInputs,
  codecs: Optional[Mapping[str, str]],
  recipe: Optional[Mapping[str, Any]] = None,
) -> str:
  """The outcome (one of OUTCOMES) for a shard whose files now have the fingerprint `inputs`.

  Args:
    finished: the shard's sidecar, or None when there is none (or it cannot be read).
    shard_bytes: the size of the shard file in bytes, or None when there is none.
    codecs: the codec versions this run writes with; None skips that comparison.
    recipe: `shard_recipe` of this run; None skips that comparison.
  """
  if finished is None or shard_bytes is None:
    return WRITTEN
  if finished.inputs is None or finished.file_bytes is None:
    return NO_FINGERPRINT
  if finished.file_bytes != shard_bytes:
    return SHARD_CHANGED
  if finished.inputs.names_sha256 != inputs.names_sha256:
    return OTHER_FILES
  if finished.inputs.sha256 != inputs.sha256:
    return FILES_MODIFIED
  if finished.inputs != inputs:
    return LABELS_CHANGED
  if codecs is not None and finished.codecs != dict(codecs):
    return OTHER_CODECS
  if finished.phashes is None:
    return NO_PHASHES
  if recipe is not None and finished.recipe is None:
    return NO_RECIPE
  if recipe is not None and dict(finished.recipe) != dict(recipe):
    return OTHER_RECIPE
  return KEPT


def recorded_run(output: layout.OutputLayout) -> Optional[Tuple[str, Dict[str, Any]]]:
  """(file, flags) that an interrupted run in `output` recorded: _work/run.json (its output-deciding
  flags and, since recipes, its --input), else the recipe of the first shard sidecar that has one;
  None when there is neither.

  Raises:
    ValueError: _work/run.json is there but not a JSON object.
  """
  run_file = output.work_path(layout.RUN_FILE)
  if FileSystems.exists(run_file):
    flags = layout.read_json(run_file)
    if not isinstance(flags, dict):
      raise ValueError(f'{run_file} is not a JSON object')
    return run_file, flags
  for path in sorted(_file_paths(output.sidecar_path('*'))):
    if not output.is_shard(_name(path)[: -len(layout.SIDECAR_SUFFIX)]):
      continue
    try:
      recipe = layout.read_json(path).get('recipe')
    except Exception:  # pylint: disable=broad-except  (half-written when killed, not JSON)
      continue
    if isinstance(recipe, dict):
      return path, recipe
  return None


def run_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> List[str]:
  """`--jpeg_quality was 90 in the interrupted run, 50 now`, one per flag that differs.

  Compares the flags `recorded` holds (a run.json of an earlier version holds no `input`: not
  compared then) but the label map, which --resume checks per shard.
  """
  flags = sorted(
    k
    for k in set(recorded) | set(current)
    if k in recorded and k not in _CHECKED_PER_SHARD and recorded[k] != current.get(k)
  )
  return [
    f'--{flag} was {_shown(recorded[flag])} in the interrupted run, {_shown(current.get(flag))} now'
    for flag in flags
  ]


def rerun_hint(recorded: Mapping[str, Any], differences: Iterable[str]) -> str:
  """`--jpeg_quality 90 --resume`: the flags that finish the interrupted run."""
  parts = []
  for line in differences:
    flag = line.split(' ', 1)[0][2:]
    value = recorded[flag]
    if value is None or value is False:
      parts.append(f'(without --{flag})')
    elif value is True:
      parts.append(f'--{flag}')
    else:
      parts.append(f'--{flag} {value}')
  return ' '.join(parts + ['--resume'])


def _shown(value: Any) -> str:
  return 'not given' if value is None else str(value)


def read_finished(
  output: layout.OutputLayout, name: str
) -> Tuple[Optional[ShardSummary], Optional[int]]:
  """(sidecar, shard size in bytes) of a finished shard; None for what is missing or unreadable.

  Two file-system calls (a match of the shard, a read of the sidecar), whatever the shard's size.
  """
  final = output.path(name)
  sizes = [m.size_in_bytes for m in _match(final) if m.path == final]
  if not sizes:
    return None, None
  try:
    summary = ShardSummary.from_json(layout.read_json(output.sidecar_path(name)))
  except Exception as e:  # pylint: disable=broad-except  (missing, half-written when killed, not JSON)
    _LOGGER.info('No usable sidecar for %s (%s): the shard is written again.', name, e)
    return None, sizes[0]
  return summary, sizes[0]


def _match(path: str):
  try:
    return FileSystems.match([path])[0].metadata_list
  except Exception:  # pylint: disable=broad-except  (BeamIOError: no such file)
    return []


def delete_stale_shards(output: layout.OutputLayout, current: Iterable[str]) -> List[str]:
  """Deletes the shard files and sidecars of shards not in `current`: those of an earlier attempt
  whose shard count the current input no longer gives. Returns the names of the deleted shard files,
  sorted (a sidecar whose shard was never finished is deleted without being named)."""
  current = set(current)
  stale_files = sorted(
    path for path in _file_paths(output.path('*')) if _stale(output, _name(path), current)
  )
  stale_sidecars = [
    path
    for path in _file_paths(output.sidecar_path('*'))
    if _stale(output, _name(path)[: -len(layout.SIDECAR_SUFFIX)], current)
  ]
  if stale_files or stale_sidecars:
    FileSystems.delete(stale_files + stale_sidecars)
  return [_name(path) for path in stale_files]


def _file_paths(pattern: str) -> List[str]:
  return [m.path for m in _match(pattern)]


def _name(path: str) -> str:
  return path.rstrip('/').rsplit('/', 1)[-1]


def _stale(output: layout.OutputLayout, name: str, current: set) -> bool:
  return output.is_shard(name) and name not in current


def resume_message(counts: Mapping[str, int], deleted: int = 0) -> str:
  """`resumed: 14 shards kept, 2 rewritten because their input changed (...), 3 missing`.

  Args:
    counts: {outcome: number of shards}, outcomes from OUTCOMES.
    deleted: shards of an earlier shard count that were deleted.
  """
  kept, missing = counts.get(KEPT, 0), counts.get(WRITTEN, 0)
  modified, moved = counts.get(FILES_MODIFIED, 0), counts.get(OTHER_FILES, 0)
  parts = [f'{kept} shard{"s" if kept != 1 else ""} kept']
  if modified or moved:
    why = []
    if modified:
      why.append(f'{modified} with files replaced or modified in place')
    if moved:
      why.append(
        f'{moved} with other files: a file added or removed (or another class order) moves '
        'every later file of its split to another shard'
      )
    parts.append(f'{modified + moved} rewritten because their input changed ({"; ".join(why)})')
  else:
    parts.append('0 rewritten because their input changed')
  for outcome, reason in (
    (
      LABELS_CHANGED,
      'their labels, classes or class texts changed (a class '
      'folder added or removed, or --labels_file, '
      '--validation_ground_truth or --class_text_file edited)',
    ),
    (SHARD_CHANGED, 'the shard file no longer had the size its sidecar recorded'),
    (OTHER_CODECS, 'other codec versions wrote them'),
    (NO_FINGERPRINT, 'an earlier version wrote them without an input fingerprint'),
    (NO_PHASHES, 'an earlier version wrote them without image/phash'),
    (OTHER_RECIPE, 'other flags or another label map wrote them'),
    (NO_RECIPE, 'an earlier version wrote them without recording its flags'),
  ):
    if counts.get(outcome):
      parts.append(f'{counts[outcome]} rewritten because {reason}')
  parts.append(f'{missing} missing')
  line = 'resumed: ' + ', '.join(parts)
  if deleted:
    line += (
      f'; {deleted} shard{"s" if deleted != 1 else ""} of an earlier shard count deleted (the '
      'input changed the automatic shard count)'
    )
  return line
