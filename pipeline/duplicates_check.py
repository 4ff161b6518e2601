"""verify's check of duplicates.jsonl against the records' `image/phash` (pipeline/verify.py).

duplicates.jsonl names files by their path relative to --input (transforms/near_duplicates.py); a
record names its file by `image/filename`, the path relative to its split folder. A stored file
`(split, path)` is the record of that split whose filename is `path`, or `path` without its first
component (the split folder: `train/`, `val/`, ...).

Outputs of versions before duplicates.jsonl have neither the file nor `image/phash`: nothing is
checked then.
"""

from __future__ import annotations

import json
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from transforms import layout
from transforms.example import example_class
from transforms.hamming_search import pairs_within
from transforms.near_duplicates import DEFAULT_NEAR_DISTANCE, EXACT, NEAR, count_lines
from transforms.perceptual_hash import hamming_distance

RecordId = Tuple[str, str]  # (split, image/filename)


def record_phash(payload: bytes) -> Tuple[str, Optional[int]]:
  """(image/filename, image/phash or None) of a serialized Example ('' and None if it does not
  parse)."""
  try:
    feature = example_class().FromString(payload).features.feature
    name = feature['image/filename'].bytes_list.value[0].decode('utf-8')
  except Exception:  # pylint: disable=broad-except  (check_example reports a bad record)
    return '', None
  values = feature['image/phash'].int64_list.value if 'image/phash' in feature else []
  return name, (values[0] if len(values) == 1 else None)


def _read_lines(path: str) -> Optional[List[Dict]]:
  """The well-formed lines of duplicates.jsonl (pipeline/metadata_check.py names the others); None
  when it is missing or unreadable."""
  lines = []
  try:
    for _, text, _ in layout.iter_lines(path):
      try:
        line = json.loads(text)
      except ValueError:
        continue
      if _well_formed(line):
        lines.append(line)
  except OSError:
    return None
  return lines


def _well_formed(line) -> bool:
  return (isinstance(line, dict) and line.get('kind') in (EXACT, NEAR)
          and isinstance(line.get('distance'), int) and isinstance(line.get('files'), list)
          and all(isinstance(entry, dict) and 'path' in entry and 'split' in entry
                  for entry in line['files']))


def _record_of(entry: Dict, hashes: Dict[RecordId, int]) -> Optional[RecordId]:
  split, path = entry.get('split'), entry['path']
  for name in (path, path.split('/', 1)[-1]):
    if (split, name) in hashes:
      return split, name
  return None


def check_duplicates(output: layout.OutputLayout, manifest: Dict,
                     records: Sequence[Tuple[str, str, Optional[int]]]) -> List[Tuple[str, str]]:
  """Problems, as (file, message), of duplicates.jsonl and stats.json's `duplicates`.

  Args:
    records: (split, image/filename, image/phash or None) of every record verify read.
  """
  where = output.path(layout.DUPLICATES_FILE)
  lines = _read_lines(where)
  if lines is None:
    if any(value is not None for _, _, value in records):
      return [(where, 'missing or unreadable, but the records have image/phash')]
    return []  # An output of an earlier version.
  problems = []
  hashes = {(split, name): value for split, name, value in records if value is not None}
  missing = sum(value is None for _, _, value in records)
  if missing:
    problems.append((where, f'{missing} records have no image/phash to check it against'))
  max_distance = manifest.get('options', {}).get('near_duplicate_distance', DEFAULT_NEAR_DISTANCE)
  listed: Set[frozenset] = set()
  for number, line in enumerate(lines, start=1):
    ids = []
    for entry in line['files']:
      if not entry.get('stored'):
        continue
      record = _record_of(entry, hashes)
      if record is None:
        problems.append((where, f'line {number}: no record holds {entry["path"]} in split '
                                f'{entry.get("split")!r}'))
      else:
        ids.append(record)
    values = [hashes[record] for record in ids]
    if line['kind'] == EXACT and len(set(values)) > 1:
      problems.append((where, f'line {number}: identical files whose records have different '
                              'image/phash'))
    if line['kind'] == NEAR and len(values) == 2:
      distance = hamming_distance(*values)
      if distance != line['distance'] or distance > max_distance:
        problems.append((where, f'line {number}: distance {line["distance"]}, the records\' '
                                f'image/phash are {distance} bits apart (limit {max_distance})'))
    listed.update(frozenset((a, b)) for i, a in enumerate(ids) for b in ids[i + 1:])
  problems.extend(_unlisted_pairs(where, hashes, listed, max_distance))
  problems.extend(_check_counts(output, lines))
  return problems


def _unlisted_pairs(where: str, hashes: Dict[RecordId, int], listed: Set[frozenset],
                    max_distance: int) -> Iterable[Tuple[str, str]]:
  ids = sorted(hashes)
  first, second, distance = pairs_within(np.array([hashes[i] for i in ids], np.int64), max_distance)
  unlisted = [(ids[i], ids[j], d) for i, j, d in zip(first.tolist(), second.tolist(),
                                                      distance.tolist())
              if frozenset((ids[i], ids[j])) not in listed]
  for a, b, d in unlisted[:10]:
    yield where, f'records {a[0]}/{a[1]} and {b[0]}/{b[1]} are {d} bits apart but not listed'
  if len(unlisted) > 10:
    yield where, f'... and {len(unlisted) - 10} more pairs of records within {max_distance} bits'


def _check_counts(output: layout.OutputLayout, lines: List[Dict]) -> Iterable[Tuple[str, str]]:
  path = output.path(layout.STATS_FILE)
  try:
    got = layout.read_json(path).get('duplicates')
  except Exception:  # pylint: disable=broad-except  (verify's stats check reports it)
    return
  expected = count_lines(lines)
  if got != expected:
    yield path, f'duplicates {got}, duplicates.jsonl\'s lines give {expected}'
