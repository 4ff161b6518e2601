"""verify's checks of the metadata files against the records and `_SUCCESS` (pipeline/verify.py).

  * `_SUCCESS` (transforms/output/success.py): a listed file missing or changed, a metadata file not
    listed, a missing provenance.json; an empty `_SUCCESS` (an earlier version's) cannot be checked.
  * labels.txt: one line per class, line `label - label_offset` the `image/class/synset` of every
    record with that label; its SHA-256 equals manifest.json's --labels_file digest.
  * image-class-label.labels.txt is the one labels.txt gives; one `image/class/text` a class.
  * stats.json against the records: per split examples, shards, bytes of `image/encoded`, class
    counts and rejects, and the totals; mean_rgb and std_rgb exactly against the shard sidecars'
    pixel sums (when their SHA-256 is the shard's), else within MEAN_TOLERANCE and STD_TOLERANCE of
    the decoded records' (the run sums the pixels before JPEG encoding).
  * rejects.jsonl and duplicates.jsonl, line by line (bounded memory): JSON objects with the file's
    keys, the last line ended by a newline.
Each problem names its file and what differs.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
from typing import Dict, List, Mapping, Optional, Set, Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.output import layout, success
from transforms.imaging.example import StoredExample
from transforms.imaging.image import channel_sums
from transforms.metadata.stats import SplitTotals, mean_std
from transforms.records import Reject, ShardSummary
from transforms.metadata.tfds_metadata import tfds_label_names

Problems = List[Tuple[str, str]]  # (file, message)
# Largest difference between stats.json's mean_rgb / std_rgb (of the pixels handed to the JPEG
# encoder) and the decoded records' that is put down to the JPEG encoding, in 0-255 units: chroma
# subsampling and quantisation at --jpeg_quality 1-5 move a split's blue mean by up to ~2.
MEAN_TOLERANCE = 3.0
STD_TOLERANCE = 5.0
_REJECT_KEYS = tuple(field.name for field in dataclasses.fields(Reject))  # rejects.jsonl's
_DUPLICATE_KEYS = ('kind', 'files')
_ALWAYS_IN_STATS = ('num_examples', 'class_counts')  # a split's keys in stats.json of every version


@dataclasses.dataclass
class RecordTally:
  """What one split's records hold that the metadata counts (bounded by the number of classes).

  Attributes:
    num_examples: records whose features could be read.
    num_bytes: bytes of `image/encoded`, summed.
    class_counts: {image/class/synset: records}.
    synsets: {image/class/label: the image/class/synset values seen with it}.
    texts: {image/class/synset: the image/class/text values seen with it}.
    num_pixels, channel_sums, channel_squares: of the decoded JPEGs (0-255 units, exact integers).
    multi_label: the records are a multi-label --manifest's (manifest.json "multi_label"): each
      holds a list of labels and the list of their names (transforms/inputs/manifest.py), counted
      per label.
  """

  num_examples: int = 0
  num_bytes: int = 0
  class_counts: Dict[str, int] = dataclasses.field(default_factory=collections.Counter)
  synsets: Dict[int, Set[str]] = dataclasses.field(
    default_factory=lambda: collections.defaultdict(set)
  )
  texts: Dict[str, Set[str]] = dataclasses.field(
    default_factory=lambda: collections.defaultdict(set)
  )
  num_pixels: int = 0
  channel_sums: List[int] = dataclasses.field(default_factory=lambda: [0, 0, 0])
  channel_squares: List[int] = dataclasses.field(default_factory=lambda: [0, 0, 0])
  multi_label: bool = False

  def add(self, example: StoredExample, pixels: Optional[np.ndarray]) -> None:
    """Counts one record (its image and label present: StoredExample.require()); `pixels`: its
    decoded uint8 [H, W, 3] image, None when it did not decode. A multi-label record counts for
    each of its labels."""
    self.num_examples += 1
    self.num_bytes += len(example.encoded)
    if self.multi_label:
      for one_label, synset in zip(example.labels, example.synsets):
        self.class_counts[synset] += 1
        self.synsets[one_label].add(synset)
        self.texts[synset].add(synset)
    else:
      synset = example.synset
      self.class_counts[synset] += 1
      self.synsets[example.label].add(synset)
      self.texts[synset].add(example.text)
    if pixels is not None:
      sums, squares = channel_sums(np.ascontiguousarray(pixels))
      self.num_pixels += pixels.shape[0] * pixels.shape[1]
      self.channel_sums = [a + b for a, b in zip(self.channel_sums, sums)]
      self.channel_squares = [a + b for a, b in zip(self.channel_squares, squares)]


def check_metadata(
  output: layout.OutputLayout,
  manifest: Dict,
  tallies: Mapping[str, RecordTally],
  records_complete: bool = True,
) -> Tuple[Problems, Optional[int]]:
  """Every check of the module docstring.

  Args:
    tallies: {split: RecordTally} of every record read.
    records_complete: every shard and record was read without a problem; when not, stats.json's
      sums are not compared with the records' (the shards' problems are named already).
  Returns:
    (problems, files whose SHA-256 `_SUCCESS` lists and that were compared; None for an empty or
    missing `_SUCCESS`).
  """
  problems: Problems = []
  checked = check_success(output, problems)
  labels = _check_labels(output, manifest, tallies, problems)
  if labels is not None:
    _check_tfds_labels(output, manifest, labels, problems)
  rejects = check_jsonl(output.path(layout.REJECTS_FILE), _REJECT_KEYS, problems)
  check_jsonl(output.path(layout.DUPLICATES_FILE), _DUPLICATE_KEYS, problems, required=False)
  _check_stats(output, manifest, tallies if records_complete else None, rejects, problems)
  return problems, checked


def check_success(output: layout.OutputLayout, problems: Problems) -> Optional[int]:
  """Compares the metadata files with `_SUCCESS`'s list; returns how many were compared (None: no
  list). Its shard lines are not read again: manifest.json, which it lists, holds the same SHA-256
  and verify compares every shard with those."""
  where = output.path(layout.SUCCESS_FILE)
  if not FileSystems.exists(where):
    return None  # verify names the missing _SUCCESS itself.
  try:
    listed = success.read_success(output)
  except (OSError, ValueError, UnicodeDecodeError) as e:
    problems.append((where, f'cannot read the list of SHA-256: {e}'))
    return None
  if not listed:
    return None
  for name in success.listed_metadata(output):
    if name not in listed:
      problems.append(
        (
          output.path(name),
          f'not listed in {layout.SUCCESS_FILE}: the run did not write it (added after the run?)',
        )
      )
  if not FileSystems.exists(output.path(layout.PROVENANCE_FILE)):
    problems.append(
      (
        output.path(layout.PROVENANCE_FILE),
        'missing: every run writes it (the one file _SUCCESS does not list, as it holds times)',
      )
    )
  checked = 0
  for name, expected in sorted(listed.items()):
    path = output.path(name)
    if output.is_shard(name):
      continue
    if not FileSystems.exists(path):
      problems.append((path, f'missing: {layout.SUCCESS_FILE} lists it (deleted after the run)'))
      continue
    else:
      try:
        actual = success.file_digest(output, name)
      except (OSError, UnicodeDecodeError) as e:
        problems.append((path, f'cannot read: {e}'))
        continue
    checked += 1
    if actual != expected:
      problems.append(
        (
          path,
          f'changed since the run: SHA-256 {actual[:16]}..., but '
          f'{layout.SUCCESS_FILE} says {expected[:16]}...',
        )
      )
  return checked


def _check_labels(
  output: layout.OutputLayout,
  manifest: Dict,
  tallies: Mapping[str, RecordTally],
  problems: Problems,
) -> Optional[List[str]]:
  """labels.txt against the records and manifest.json; returns its lines (None: unreadable)."""
  path = output.path(layout.LABELS_FILE)
  try:
    text = layout.read_text(path)
  except (OSError, UnicodeDecodeError) as e:
    if FileSystems.exists(path):
      problems.append((path, f'unreadable: {e}'))
    else:
      _missing(path, problems)
    return None
  names = text.splitlines()
  if len(names) != manifest['num_classes']:
    problems.append(
      (path, f'{len(names)} lines, manifest.json says num_classes {manifest["num_classes"]}')
    )
  digest = (manifest.get('options') or {}).get('labels_file')
  if isinstance(digest, str) and digest.startswith('sha256:'):
    actual = 'sha256:' + hashlib.sha256(text.encode('utf-8')).hexdigest()
    if actual != digest:
      problems.append(
        (
          path,
          f'its SHA-256 is not the label map manifest.json records for '
          f'--labels_file ({digest[:23]}...)',
        )
      )
  offset = manifest['label_offset']
  for split, tally in sorted(tallies.items()):
    for synset, texts in sorted(tally.texts.items(), key=lambda item: str(item[0])):
      if len(texts) > 1:
        problems.append(
          (
            path,
            f'{split} records of class {synset!r} have {len(texts)} different '
            f'image/class/text values: {sorted(map(str, texts))[:3]}',
          )
        )
    for label, synsets in sorted(tally.synsets.items()):
      line = label - offset
      if not 0 <= line < len(names):
        continue  # Outside the label range: named with the record.
      for synset in sorted(s for s in synsets if s != names[line] and s is not None):
        problems.append(
          (
            path,
            f'line {line + 1} is {names[line]!r}, but {split} records with label '
            f'{label} have image/class/synset {synset!r}',
          )
        )
  return names


def _missing(path: str, problems: Problems) -> None:
  """Names a missing file, unless the `_SUCCESS` check named it already."""
  if not any(where == path for where, _ in problems):
    problems.append((path, 'missing'))


def _check_tfds_labels(
  output: layout.OutputLayout, manifest: Dict, names: List[str], problems: Problems
) -> None:
  path = output.path(layout.TFDS_LABEL_NAMES_FILE)
  if not FileSystems.exists(path):
    return  # Named by check_success when the run wrote it.
  try:
    expected = tfds_label_names(manifest, names)
    actual = layout.read_text(path).splitlines()
  except (OSError, ValueError, UnicodeDecodeError) as e:
    problems.append((path, f'cannot check: {e}'))
    return
  if actual != expected:
    first = next(
      (i for i, (a, b) in enumerate(zip(actual, expected)) if a != b),
      min(len(actual), len(expected)),
    )
    problems.append(
      (
        path,
        f'label {first} is named {_at(actual, first)!r}, labels.txt and the records '
        f'give {_at(expected, first)!r} ({len(actual)} names, {len(expected)} '
        'expected)',
      )
    )


def _at(values: List[str], index: int) -> Optional[str]:
  return values[index] if index < len(values) else None


def check_jsonl(
  path: str, keys: Tuple[str, ...], problems: Problems, required: bool = True
) -> Optional[Dict[Optional[str], int]]:
  """Checks that every line of a JSON-lines file is an object with `keys`; returns its lines per
  value of 'split' when the lines have one (None: missing or unreadable)."""
  if not FileSystems.exists(path):
    if required:
      _missing(path, problems)
    return None
  per_split = collections.Counter()
  try:
    for number, line, ended in layout.iter_lines(path):
      if not line.strip():
        continue
      try:
        value = json.loads(line)
      except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        problems.append(
          (path, f'line {number} is not JSON ({e})' + ('' if ended else ': the file is cut short'))
        )
        continue
      missing = [k for k in keys if not isinstance(value, dict) or k not in value]
      if missing:
        problems.append((path, f'line {number} has no {", ".join(missing)}'))
        continue
      if not ended:
        problems.append((path, f'line {number} has no newline at its end: the file is cut short'))
      per_split[value.get('split')] += 1
  except OSError as e:
    problems.append((path, f'cannot read: {e}'))
    return None
  return per_split


def _check_stats(
  output: layout.OutputLayout,
  manifest: Dict,
  tallies: Optional[Mapping[str, RecordTally]],
  rejects: Optional[Mapping[Optional[str], int]],
  problems: Problems,
) -> None:
  """stats.json's counts, sums and statistics against manifest.json, rejects.jsonl and (unless
  `tallies` is None) the records."""
  path = output.path(layout.STATS_FILE)
  try:
    stats = layout.read_json(path)
  except Exception as error:  # pylint: disable=broad-except  (missing, not JSON)
    problems.append((path, f'cannot read: {error}'))
    return
  totals = _sidecar_totals(output, manifest) if tallies is not None else {}
  for split, entry in sorted(manifest['splits'].items()):
    got = stats.get(split)
    if not isinstance(got, dict):
      problems.append((path, f'split {split!r} missing'))
      continue
    expected = {'num_examples': entry['num_examples'], 'num_shards': entry['num_shards']}
    tally = tallies.get(split, RecordTally()) if tallies is not None else None
    if tally is not None:
      expected.update(
        num_bytes=tally.num_bytes, class_counts=dict(sorted(tally.class_counts.items()))
      )
    if rejects is not None:
      expected['num_rejected'] = rejects.get(split, 0)
    for key, value in expected.items():
      if key not in got and key not in _ALWAYS_IN_STATS:
        continue  # An output of a version before the key.
      if got.get(key) != value:
        source = {
          'num_rejected': 'rejects.jsonl has',
          'num_examples': 'manifest.json says',
          'num_shards': 'manifest.json says',
        }.get(key, 'the records give')
        problems.append((path, f'split {split!r}: {key} {got.get(key)}, {source} {value}'))
    if tally is not None:
      _check_mean_std(path, split, got, totals.get(split), tally, problems)
  top = {
    'num_examples': (
      sum(
        stats[s].get('num_examples', 0)
        for s in manifest['splits']
        if isinstance(stats.get(s), dict)
      ),
      'its splits add up to',
    )
  }
  # Rejects of no split (a class missing from --labels_file) count here only.
  if rejects is not None:
    top['num_rejected'] = sum(rejects.values()), 'rejects.jsonl has'
  for key, (value, source) in top.items():
    if stats.get(key) != value:
      problems.append((path, f'{key} {stats.get(key)}, {source} {value}'))


def _check_mean_std(
  path: str,
  split: str,
  got: Dict,
  totals: Optional[SplitTotals],
  tally: RecordTally,
  problems: Problems,
) -> None:
  if totals is not None:
    mean, std = totals.mean_std
    source, tolerances = "the pixel sums of its shards' sidecars", (0.0, 0.0)
  else:
    mean, std = mean_std(tally.num_pixels, tally.channel_sums, tally.channel_squares)
    source, tolerances = 'the decoded records', (MEAN_TOLERANCE, STD_TOLERANCE)
  for key, values, tolerance in (
    ('mean_rgb', mean, tolerances[0]),
    ('std_rgb', std, tolerances[1]),
  ):
    stored = got.get(key)
    if not (
      isinstance(stored, list)
      and len(stored) == 3
      and all(
        isinstance(v, (int, float)) and (math.isnan(v) and math.isnan(e) or abs(v - e) <= tolerance)
        for v, e in zip(stored, values)
      )
    ):
      problems.append(
        (
          path,
          f'split {split!r}: {key} is {stored}, {source} give '
          f'[{", ".join(f"{v:.4f}" for v in values)}]'
          + (f' (± {tolerance} allowed for the JPEG encoding)' if tolerance else ''),
        )
      )


def _sidecar_totals(output: layout.OutputLayout, manifest: Dict) -> Dict[str, SplitTotals]:
  """{split: totals of its shards' sidecars} for the splits whose every shard has a sidecar that
  describes it (its SHA-256 is the manifest's); splits without are left out."""
  result = {}
  for split, entry in manifest['splits'].items():
    totals = SplitTotals()
    for shard in entry['shards']:
      try:
        summary = ShardSummary.from_json(layout.read_json(output.sidecar_path(shard['file'])))
      except Exception:  # pylint: disable=broad-except  (no _work/ in a copy, not JSON)
        break
      if summary.file_sha256 is None or summary.file_sha256 != shard.get('sha256'):
        break
      totals.merge(SplitTotals.of(summary))
    else:
      result[split] = totals
  return result
