"""verify's check of duplicates.jsonl against the records' `image/phash` (pipeline/verify.py).

duplicates.jsonl names files by their path relative to --input; a record names its file by
`image/filename`, relative to its split folder: a stored file `(split, path)` is the record of that
split whose filename is `path`, or `path` without its first component (the split folder). Read one
line at a time (memory: the records' hashes and one group id a record, never the pairs), it must
hold: every line well formed (`line_problem`); every stored file it names a record, in at most one
group; an exact group's records share one image/phash; each member's `distance` the bits between its
image/phash and the first member's; no two records within the run's --near_duplicate_distance in
different groups or missing (crop matches, found through the sidecars' crop hashes, cannot be
re-derived from records and are not required); stats.json's `duplicates` the counts of the lines.
Outputs of versions before duplicates.jsonl have neither it nor `image/phash`: nothing is checked.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.output import layout
from transforms.imaging.example import parse_example
from transforms.duplicates.near import (
  COUNT_KEYS,
  DEFAULT_NEAR_DISTANCE,
  EXACT,
  NEAR,
  count_lines,
  near_components,
)
from transforms.imaging.perceptual_hash import hamming_distance

RecordId = Tuple[str, str]  # (split, image/filename)
MAX_LISTED_PROBLEMS = 10  # problems of one kind shown before a count of the rest
_FILE_KEYS = {
  'path': (str,),
  'split': (str, type(None)),
  'stored': (bool,),
  'distance': (int, type(None)),
}


def record_phash(payload: bytes) -> Tuple[str, Optional[int]]:
  """(image/filename, image/phash or None) of a serialized Example ('' and None if it does not
  parse)."""
  try:
    example = parse_example(payload).require('filename')
  except ValueError:  # check_example reports a bad record
    return '', None
  return example.filename, example.phash


def line_problem(line: Any) -> Optional[str]:
  """What is wrong with one parsed duplicates.jsonl line, or None when it has the schema of
  transforms/duplicates/near.py: {"kind": "exact" | "near", "sha256": str (exact only), "files":
  [two or more {"path": str, "split": str | null, "stored": bool, "distance": int >= 0 | null}]}."""
  if not isinstance(line, dict):
    return f'not a JSON object: {type(line).__name__}'
  if line.get('kind') not in (EXACT, NEAR):
    return f'"kind" is {line.get("kind")!r}, not "exact" or "near"'
  if line['kind'] == EXACT and not isinstance(line.get('sha256'), str):
    return 'an exact group without a "sha256" string'
  files = line.get('files')
  if not isinstance(files, list) or len(files) < 2:
    return '"files" is not a list of two or more files'
  for k, entry in enumerate(files):
    if not isinstance(entry, dict) or set(entry) != set(_FILE_KEYS):
      return f'file {k} does not have exactly the keys {sorted(_FILE_KEYS)}'
    for key, types in _FILE_KEYS.items():
      if type(entry[key]) not in types or (key == 'distance' and (entry[key] or 0) < 0):
        return f'file {k}: "{key}" is {entry[key]!r}'
  return None


def _json_lines(path: str) -> Iterator[Tuple[int, Any]]:
  """(line number, parsed value) of each non-empty line that is JSON, one line at a time (a line that
  is not JSON is skipped: pipeline/checks/metadata_check.py names it).

  Raises:
    OSError (Beam's BeamIOError): the file cannot be read.
  """
  for number, text, _ in layout.iter_lines(path):
    if text.strip():
      try:
        yield number, json.loads(text)
      except ValueError:
        continue


def iter_groups(path: str) -> Iterator[Tuple[int, Dict]]:
  """(line number, group) of each line of duplicates.jsonl that has the schema (`line_problem`),
  read one line at a time; other lines are skipped (verify names them).

  Raises:
    OSError (Beam's BeamIOError): the file cannot be read.
  """
  return ((number, line) for number, line in _json_lines(path) if line_problem(line) is None)


def _record_of(entry: Dict, index: Dict[RecordId, int]) -> Optional[int]:
  split, path = entry['split'], entry['path']
  for name in (path, path.split('/', 1)[-1]):
    if (split, name) in index:
      return index[(split, name)]
  return None


class _Problems:
  """Problems of one file, at most MAX_LISTED_PROBLEMS of each kind, then a count of the rest."""

  def __init__(self, where: str):
    self.where, self.listed, self._extra = where, [], {}

  def add(self, kind: str, message: str, where: Optional[str] = None) -> None:
    shown = sum(k == kind for k, _, _ in self.listed)
    if shown < MAX_LISTED_PROBLEMS:
      self.listed.append((kind, where or self.where, message))
    else:
      self._extra[kind] = self._extra.get(kind, 0) + 1

  def all(self) -> List[Tuple[str, str]]:
    extra = [
      (self.where, f'... and {n} more problems of the kind "{kind}"')
      for kind, n in sorted(self._extra.items())
    ]
    return [(where, message) for _, where, message in self.listed] + extra


def check_duplicates(
  output: layout.OutputLayout, manifest: Dict, records: Sequence[Tuple[str, str, Optional[int]]]
) -> List[Tuple[str, str]]:
  """Problems, as (file, message), of duplicates.jsonl and stats.json's `duplicates` (module
  docstring).

  Args:
    records: (split, image/filename, image/phash or None) of every record verify read.
  """
  where = output.path(layout.DUPLICATES_FILE)
  if not FileSystems.exists(where):
    if any(value is not None for _, _, value in records):
      return [(where, 'missing, but the records have image/phash')]
    return []  # An output of an earlier version.
  problems = _Problems(where)
  with_hash = [(split, name, value) for split, name, value in records if value is not None]
  if len(with_hash) < len(records):
    problems.add(
      'no phash', f'{len(records) - len(with_hash)} records have no image/phash to check it against'
    )
  index = {(split, name): i for i, (split, name, _) in enumerate(with_hash)}
  hashes = np.array([value for _, _, value in with_hash], dtype=np.int64)
  group = np.full(len(with_hash), -1, np.int64)  # the line holding each record
  max_distance = manifest.get('options', {}).get('near_duplicate_distance', DEFAULT_NEAR_DISTANCE)
  counts = dict.fromkeys(COUNT_KEYS, 0)
  try:
    for number, line in _json_lines(where):
      problem = line_problem(line)
      if problem:
        problems.add('schema', f'line {number}: {problem}')
        continue
      _check_line(number, line, index, hashes, group, problems)
      counts = _added(counts, line)
  except Exception as e:  # pylint: disable=broad-except  (unreadable: reported, not raised)
    problems.add('unreadable', f'cannot read: {type(e).__name__}: {e}')
    return problems.all()
  _check_complete(with_hash, hashes, group, max_distance, problems)
  _check_counts(output, counts, problems)
  return problems.all()


def _added(counts: Dict[str, int], line: Dict) -> Dict[str, int]:
  line_counts = count_lines([line])
  return {key: counts[key] + line_counts[key] for key in counts}


def _check_line(
  number: int,
  line: Dict,
  index: Dict[RecordId, int],
  hashes: np.ndarray,
  group: np.ndarray,
  problems: _Problems,
) -> None:
  members = []  # (entry, record index) of the stored files
  for entry in line['files']:
    if not entry['stored']:
      continue
    record = _record_of(entry, index)
    if record is None:
      problems.add(
        'no record', f'line {number}: no record holds {entry["path"]} in split {entry["split"]!r}'
      )
    elif group[record] >= 0:
      problems.add('twice', f'line {number}: {entry["path"]} is also in line {group[record] + 1}')
    else:
      group[record] = number - 1
      members.append((entry, record))
  values = [int(hashes[record]) for _, record in members]
  if line['kind'] == EXACT and len(set(values)) > 1:
    problems.add(
      'exact', f'line {number}: identical files whose records have different image/phash'
    )
  first = line['files'][0]
  if members and members[0][0] is first:
    for entry, value in zip((entry for entry, _ in members), values):
      distance = hamming_distance(value, values[0])
      if entry['distance'] != distance:
        problems.add(
          'distance',
          f'line {number}: {entry["path"]} at distance {entry["distance"]}, '
          f"the records' image/phash are {distance} bits apart",
        )


def _check_complete(
  records: Sequence[Tuple[str, str, int]],
  hashes: np.ndarray,
  group: np.ndarray,
  max_distance: int,
  problems: _Problems,
) -> None:
  """Every component of records within max_distance lies in one line."""
  labels = near_components(hashes, None, max_distance)
  order = np.lexsort((group, labels))
  labels, lines = labels[order], group[order]
  starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
  ends = np.r_[starts[1:], len(labels)]
  for start, end in zip(starts.tolist(), ends.tolist()):
    if end - start > 1 and (lines[start] < 0 or lines[start] != lines[end - 1]):
      a, b = records[order[start]], records[order[end - 1]]
      problems.add(
        'unlisted',
        f'records {a[0]}/{a[1]} and {b[0]}/{b[1]} are linked by pairs within '
        f'{max_distance} bits but not in one group',
      )


def _check_counts(
  output: layout.OutputLayout, expected: Dict[str, int], problems: _Problems
) -> None:
  path = output.path(layout.STATS_FILE)
  try:
    got = layout.read_json(path).get('duplicates')
  except Exception:  # pylint: disable=broad-except  (verify's stats check reports it)
    return
  if got != expected:
    problems.add('counts', f"duplicates {got}, duplicates.jsonl's lines give {expected}", path)
