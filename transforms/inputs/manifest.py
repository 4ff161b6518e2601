"""Labels and splits from a manifest file (CSV, TSV or JSON lines) instead of class folders.

Layouts this reads (docs/usage.md): Kaggle's `image_id,label` (`--manifest_path_format '{}.jpg'`),
Hugging Face imagefolder's metadata.csv / metadata.jsonl (`file_name`), Google AutoML Vision's
header-less `ML_USE,GCS_FILE_PATH,LABEL[,LABEL...]` (`--manifest_columns split,path,label`), and
multi-label lists (`"[1.0, 9.0]"`, a JSON list, or `--label_separator`). Columns are found by the
common names of PATH_COLUMNS, LABEL_COLUMNS and SPLIT_COLUMNS (case-insensitive) unless a flag names
them. The driver reads the manifest once before any work (`scan`): a malformed row, an empty label,
an unknown split or a file listed twice with other labels is a ManifestError naming the line; per
row it keeps 20 bytes (two 64-bit hashes and the line) to find repeated paths. The graph reads it
again and joins it with a listing of --input (transforms/inputs/manifest_listing.py).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import heapq
import io
import json
import os
import posixpath
from typing import Dict, FrozenSet, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.imaging.example import multi_label_synset
from transforms.inputs.listing import InputError, is_absolute
from transforms.split.sharding import TEST, TRAIN, UNSPLIT, VALIDATION, ImageRef, stable_hash
from transforms.paths import is_remote

PATH_COLUMNS = ('file_name', 'filename', 'path', 'image', 'image_id', 'id', 'gcs_file_path')
LABEL_COLUMNS = ('label', 'labels', 'class', 'category', 'categories')
SPLIT_COLUMNS = ('split', 'ml_use')
ROLES = ('path', 'label', 'split')  # the column roles --manifest_columns names
# Split names (lower case) of HF, TFDS and AutoML's ML_USE; UNASSIGNED and an empty cell: no split.
SPLIT_NAMES = {
  'train': TRAIN,
  'training': TRAIN,
  'validation': VALIDATION,
  'val': VALIDATION,
  'valid': VALIDATION,
  'validate': VALIDATION,
  'test': TEST,
  'testing': TEST,
  'unassigned': UNSPLIT,
  '': UNSPLIT,
}
CSV_EXTENSIONS = {'.csv': ',', '.tsv': '\t', '.tab': '\t'}
JSON_LINES_EXTENSIONS = ('.jsonl', '.ndjson', '.json')
_UNLABELLABLE = ('\n', '\r', '\0')  # cannot be in a line of labels.txt
_CHUNK_ROWS = 1 << 16  # rows per block of the driver's hash arrays


class ManifestError(InputError):
  """The manifest cannot be used; the message names the file and line and says what to fix."""


@dataclasses.dataclass(frozen=True)
class ManifestSpec:
  """Where the manifest is and how to read it (the --manifest* flags and --label_separator).

  Attributes:
    path: the manifest file (local, gs://, s3://); the format follows its extension.
    input_root: --input; relative paths in the manifest are relative to it.
    path_column, label_column, split_column: column names given by flags (None: PATH_COLUMNS, ...).
    path_format: a str.format pattern with one `{}` that turns a cell into a path ('{}.jpg').
    columns: the roles of a header-less CSV's columns in order ('split', 'path', 'label' or any
      other name for a column to ignore); the last 'label' column also takes every later non-empty
      cell.
    label_separator: splits a label cell into several labels (multi-label).
  """

  path: str
  input_root: str
  path_column: Optional[str] = None
  label_column: Optional[str] = None
  split_column: Optional[str] = None
  path_format: Optional[str] = None
  columns: Optional[Tuple[str, ...]] = None
  label_separator: Optional[str] = None

  def __post_init__(self):
    if self.columns is not None and 'path' not in self.columns:
      raise ManifestError(f'--manifest_columns {",".join(self.columns)} names no "path" column.')
    if self.columns is not None and 'label' not in self.columns:
      raise ManifestError(f'--manifest_columns {",".join(self.columns)} names no "label" column.')
    if self.path_format is not None:
      try:
        self.path_format.format('x')
      except (IndexError, KeyError, ValueError) as e:
        raise ManifestError(
          f'--manifest_path_format {self.path_format!r} must hold one "{{}}" ({e}).'
        ) from None
    file_kind(self.path)


class Row(NamedTuple):
  """One manifest row, checked.

  Attributes:
    line: its line number in the file (1-based; a CSV row's first line).
    key: the file's POSIX path relative to --input, or its absolute path or URI when elsewhere.
    labels: its label values as written (names, or integer ids as decimal text), distinct, in order.
    split: TRAIN, VALIDATION, TEST or UNSPLIT (the fractions decide).
    is_list: the labels were a list (a JSON list or --label_separator): a multi-label manifest.
  """

  line: int
  key: str
  labels: Tuple[str, ...]
  split: str
  is_list: bool = False


def file_kind(path: str) -> str:
  """'csv', 'tsv' or 'jsonl' from the manifest's extension.

  Raises:
    ManifestError: another extension.
  """
  extension = os.path.splitext(path.lower())[1]
  if extension in CSV_EXTENSIONS:
    return 'tsv' if CSV_EXTENSIONS[extension] == '\t' else 'csv'
  if extension in JSON_LINES_EXTENSIONS:
    return 'jsonl'
  raise ManifestError(
    f'--manifest {path}: unknown extension {extension or "(none)"!r}; use .csv, '
    '.tsv or .jsonl (JSON lines).'
  )


def _open_text(path: str) -> io.TextIOWrapper:
  try:
    raw = FileSystems.open(path)
  except Exception as e:  # BeamIOError wraps not found, permissions and credentials alike.
    raise ManifestError(f'cannot read --manifest {path}: {e}') from e
  return io.TextIOWrapper(raw, encoding='utf-8-sig', newline='')


def _pick(
  names: Sequence[str],
  given: Optional[str],
  candidates: Sequence[str],
  role: str,
  flag: str,
  path: str,
  required: bool = True,
) -> Optional[str]:
  """The column (one of `names`) playing `role`: `given`, else the first of `candidates` found."""
  lower = {name.strip().lower(): name for name in names}
  if given is not None:
    if given.lower() not in lower:
      raise ManifestError(
        f'--manifest {path} has no column {given!r} ({flag}); its columns: {list(names)}.'
      )
    return lower[given.lower()]
  found = next((lower[name] for name in candidates if name in lower), None)
  if found is None and required:
    raise ManifestError(
      f'--manifest {path} has no {role} column (looked for '
      f'{", ".join(candidates)}; its columns: {list(names)}): name it with '
      f'{flag}.'
    )
  return found


def _records(spec: ManifestSpec) -> Iterator[Tuple[int, Dict[str, object]]]:
  """(line, {role: value}) per data row of the manifest, streamed."""
  kind, path = file_kind(spec.path), spec.path
  with _open_text(path) as text:
    try:
      if kind == 'jsonl':
        yield from _json_records(spec, text)
      else:
        yield from _csv_records(spec, text, ',' if kind == 'csv' else '\t')
    except UnicodeDecodeError as e:
      raise ManifestError(f'--manifest {path} is not UTF-8 text ({e}).') from None


def _json_records(spec: ManifestSpec, text: Iterable[str]) -> Iterator[Tuple[int, Dict]]:
  roles = None
  for number, line in enumerate(text, start=1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError as e:
      raise ManifestError(
        f'--manifest {spec.path} line {number}: not a JSON object ({e}).'
      ) from None
    if not isinstance(record, dict):
      raise ManifestError(f'--manifest {spec.path} line {number}: not a JSON object.')
    if roles is None:
      roles = _roles(spec, list(record))
    yield number, {role: record.get(name) for role, name in roles.items()}


def _roles(spec: ManifestSpec, names: Sequence[str]) -> Dict[str, str]:
  """{role: column name} of a header (or the first JSON object's keys)."""
  roles = {
    'path': _pick(
      names, spec.path_column, PATH_COLUMNS, 'path', '--manifest_path_column', spec.path
    ),
    'label': _pick(
      names, spec.label_column, LABEL_COLUMNS, 'label', '--manifest_label_column', spec.path
    ),
  }
  split = _pick(
    names,
    spec.split_column,
    SPLIT_COLUMNS,
    'split',
    '--manifest_split_column',
    spec.path,
    required=False,
  )
  return {**roles, 'split': split} if split is not None else roles


def _csv_records(
  spec: ManifestSpec, text: Iterable[str], delimiter: str
) -> Iterator[Tuple[int, Dict]]:
  reader = csv.reader(text, delimiter=delimiter, strict=True)
  try:
    if spec.columns is None:
      header, line = next(reader, None), 1
      if header is None:
        return
      roles = _roles(spec, header)
      index = {role: header.index(name) for role, name in roles.items()}
      width = len(header)
    else:
      index = {role: i for i, role in enumerate(spec.columns) if role in ROLES}
      width = None
    last_label = (
      max(i for i, role in enumerate(spec.columns or ()) if role == 'label')
      if spec.columns
      else None
    )
    line = reader.line_num + 1
    for cells in reader:
      if not any(cell.strip() for cell in cells):
        line = reader.line_num + 1
        continue
      if width is not None and len(cells) != width:
        raise ManifestError(
          f'--manifest {spec.path} line {line}: {len(cells)} cells, the header has {width}.'
        )
      if len(cells) <= max(index.values()):
        raise ManifestError(
          f'--manifest {spec.path} line {line}: {len(cells)} cells, '
          f'--manifest_columns names {len(spec.columns)}.'
        )
      record = {role: cells[i] for role, i in index.items()}
      if last_label is not None and len(cells) > last_label + 1:  # AutoML: LABEL[,LABEL...]
        extra = [cell.strip() for cell in cells[last_label + 1 :] if cell.strip()]
        if extra:
          record['label'] = [record['label'].strip(), *extra]
      yield line, record
      line = reader.line_num + 1
  except csv.Error as e:
    raise ManifestError(
      f'--manifest {spec.path} line {reader.line_num}: malformed CSV ({e}).'
    ) from None


def _label_text(value: object, where: str) -> str:
  """One label as text: a name, or an integer id ('9' for 9 and 9.0)."""
  if isinstance(value, bool) or not isinstance(value, (str, int, float)):
    raise ManifestError(f'{where}: label {value!r} is not a name or an integer id.')
  if isinstance(value, float):
    if not value.is_integer():
      raise ManifestError(f'{where}: label {value!r} is not a name or an integer id.')
    value = int(value)
  text = str(value).strip()
  if not text:
    raise ManifestError(f'{where}: empty label.')
  if any(char in text for char in _UNLABELLABLE):
    raise ManifestError(
      f'{where}: label {text!r} holds a line break or NUL; a label must be one line of labels.txt.'
    )
  return text


def parse_labels(
  value: object, separator: Optional[str], where: str
) -> Tuple[Tuple[str, ...], bool]:
  """(distinct labels in order, whether they were a list) of one row's label value.

  A list is a JSON list (in JSON lines, or a CSV cell such as FathomNet's "[1.0, 9.0]") or a cell
  cut by `separator`; an integral float is an integer id.

  Raises:
    ManifestError: an empty label or list, or a value that is no name or integer id.
  """
  is_list = isinstance(value, list)
  if isinstance(value, str):
    text = value.strip()
    if text.startswith('[') and text.endswith(']'):
      try:
        value, is_list = json.loads(text), True
      except ValueError:
        pass
    elif separator:  # A blank separator (Planet's "clear primary") takes any run of blanks.
      value, is_list = (text.split() if separator.isspace() else text.split(separator)), True
  values = value if isinstance(value, list) else [value]
  if value is None or not values:
    raise ManifestError(f'{where}: empty label.')
  labels = [_label_text(item, where) for item in values]
  return tuple(dict.fromkeys(labels)), is_list


def parse_split(value: object, where: str) -> str:
  """TRAIN, VALIDATION, TEST or UNSPLIT (unassigned or empty) of a split cell (case-insensitive).

  Raises:
    ManifestError: another name.
  """
  name = '' if value is None else str(value).strip().lower()
  if name not in SPLIT_NAMES:
    raise ManifestError(
      f'{where}: unknown split {value!r}; use train, validation (val, valid), '
      'test, or unassigned / empty for --validation_fraction and '
      '--test_fraction.'
    )
  return SPLIT_NAMES[name]


def row_key(value: object, spec: ManifestSpec, where: str) -> str:
  """The file a row names: its path relative to --input, or absolute when it lies elsewhere.

  Raises:
    ManifestError: an empty path, or a relative path that leaves --input ('..').
  """
  text = '' if value is None else str(value).strip()
  if not text:
    raise ManifestError(f'{where}: empty path.')
  if spec.path_format:
    text = spec.path_format.format(text)
  if is_absolute(text):
    root = spec.input_root.rstrip('/') + '/'
    path = text if is_remote(text) else os.path.normpath(text)
    return path[len(root) :] if path.startswith(root) else path
  key = posixpath.normpath(text.replace('\\', '/'))
  if key == '..' or key.startswith('../') or key == '.':
    raise ManifestError(
      f'{where}: path {text!r} is not a file under --input; give an absolute '
      'path or URI for a file elsewhere.'
    )
  return key


def read_rows(spec: ManifestSpec) -> Iterator[Row]:
  """Every data row of the manifest, checked, in file order (streamed).

  Raises:
    ManifestError: the file cannot be read, has no path or label column, or a row is malformed, has
      an empty path or label, or an unknown split (the message names the line).
  """
  for line, record in _records(spec):
    where = f'--manifest {spec.path} line {line}'
    labels, is_list = parse_labels(record.get('label'), spec.label_separator, where)
    split = parse_split(record.get('split'), where)
    yield Row(line, row_key(record.get('path'), spec, where), labels, split, is_list)


def _hash64(text: str) -> int:
  return int.from_bytes(
    hashlib.blake2b(text.encode('utf-8', 'surrogateescape'), digest_size=8).digest(), 'big'
  )


class _RowHashes:
  """Per row, in line order: 64-bit hashes of its key and of (labels, split), and its line, in numpy
  blocks of _CHUNK_ROWS rows (20 bytes a row)."""

  _DTYPES = (np.uint64, np.uint64, np.uint32)

  def __init__(self):
    self._blocks: Tuple[List[np.ndarray], ...] = ([], [], [])  # full blocks of each column
    self._block = tuple(np.zeros(_CHUNK_ROWS, dtype) for dtype in self._DTYPES)
    self._size = 0

  def add(self, row: Row) -> None:
    keys, values, lines = self._block
    keys[self._size] = _hash64(row.key)
    values[self._size] = _hash64('\0'.join(sorted(row.labels)) + '\n' + row.split)
    lines[self._size] = row.line
    self._size += 1
    if self._size == _CHUNK_ROWS:
      for blocks, block in zip(self._blocks, self._block):
        blocks.append(block)
      self._block = tuple(np.zeros(_CHUNK_ROWS, dtype) for dtype in self._DTYPES)
      self._size = 0

  def _column(self, i: int) -> np.ndarray:
    """Column i of every row; its blocks are dropped."""
    column = np.concatenate(self._blocks[i] + [self._block[i][: self._size]])
    self._blocks[i].clear()
    return column

  def repeated(self, path: str) -> FrozenSet[int]:
    """The lines that repeat an earlier row's file with the same labels and split.

    Raises:
      ManifestError: a file listed twice with other labels or another split (naming both lines).
    """
    keys = self._column(0)
    order = np.argsort(keys, kind='stable')  # rows of one key stay in line order
    sorted_keys = keys[order]
    del keys
    same = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0] + 1
    del sorted_keys
    values, lines = self._column(1), self._column(2)
    repeats, first = set(), 0
    for n, i in enumerate(same):
      if n == 0 or same[n - 1] != i - 1:  # the first repeat of a key: its first row is i - 1
        first = order[i - 1]
      if values[order[i]] != values[first]:
        raise ManifestError(
          f'--manifest {path} lines {int(lines[first])} and '
          f'{int(lines[order[i]])} list the same file with different labels or '
          'splits: keep one row per image (its labels in one list for several).'
        )
      repeats.add(int(lines[order[i]]))
    return frozenset(repeats)


@dataclasses.dataclass(frozen=True)
class ManifestFacts:
  """What the driver's pass over the manifest found.

  Attributes:
    labels: every label value the rows hold, sorted (integer ids numerically, before names).
    multi_label: some row holds a list of labels (the dataset is multi-label).
    num_rows: rows, without the repeats of `repeated_lines`.
    split_rows: {TRAIN, VALIDATION, TEST or UNSPLIT: rows}.
    repeated_lines: lines that repeat an earlier row (same file, labels and split): skipped.
    sample: the rows of smallest stable_hash(seed, 'sample', key), at most `sample_size` of `scan`.
  """

  labels: Tuple[str, ...]
  multi_label: bool
  num_rows: int
  split_rows: Dict[str, int]
  repeated_lines: FrozenSet[int]
  sample: Tuple[Row, ...] = ()


def _label_order(label: str) -> Tuple[int, int, str]:
  return (0, int(label), '') if label.isdigit() else (1, 0, label)


def scan(spec: ManifestSpec, seed: int = 0, sample_size: int = 0) -> ManifestFacts:
  """Reads the whole manifest once on the driver: checks every row, finds repeats and the labels.

  Memory: the distinct labels, 20 bytes a row (`_RowHashes`) and the `sample_size` sampled rows.

  Raises:
    ManifestError: see `read_rows` and `_RowHashes.repeated`; a manifest without rows.
  """
  labels, split_rows, hashes, multi_label, heap = set(), {}, _RowHashes(), False, []
  for row in read_rows(spec):
    labels.update(row.labels)
    multi_label = multi_label or row.is_list or len(row.labels) > 1
    split_rows[row.split] = split_rows.get(row.split, 0) + 1
    hashes.add(row)
    if sample_size:
      item = (-stable_hash(seed, 'sample', row.key), row.line, row)
      (heapq.heappush if len(heap) < sample_size else heapq.heappushpop)(heap, item)
  if not split_rows:
    raise ManifestError(f'--manifest {spec.path} has no rows.')
  repeated = hashes.repeated(spec.path)
  sample = tuple(row for _, _, row in sorted(heap, reverse=True) if row.line not in repeated)
  num_rows = sum(split_rows.values()) - len(repeated)
  return ManifestFacts(
    tuple(sorted(labels, key=_label_order)), multi_label, num_rows, split_rows, repeated, sample
  )


def manifest_digest(path: str) -> str:
  """`sha256:<hex>` of the manifest's bytes: what manifest.json records instead of its path.

  Raises:
    ManifestError: it cannot be read.
  """
  digest = hashlib.sha256()
  try:
    with FileSystems.open(path) as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        digest.update(block)
  except Exception as e:  # pylint: disable=broad-except
    raise ManifestError(f'cannot read --manifest {path}: {e}') from e
  return 'sha256:' + digest.hexdigest()


def manifest_label_map(
  facts: ManifestFacts, labels_file_map: Optional[Dict[str, int]], path: str
) -> Dict[str, int]:
  """{class name: id}: the sorted labels (`ManifestFacts.labels`), or `labels_file_map`, whose ids
  the manifest's integer labels may name.

  Raises:
    ManifestError: a label that is neither a name nor an id of --labels_file.
  """
  if labels_file_map is None:
    return {name: i for i, name in enumerate(facts.labels)}
  ids = set(labels_file_map.values())
  unknown = [
    label
    for label in facts.labels
    if label not in labels_file_map and not (label.isdigit() and int(label) in ids)
  ]
  if unknown:
    raise ManifestError(
      f'--manifest {path} has labels that are neither classes nor ids of '
      f'--labels_file: {unknown[:10]}.'
    )
  return labels_file_map


def resolve(
  labels: Sequence[str], label_map: Dict[str, int], names: Sequence[str]
) -> List[Tuple[int, str]]:
  """(id, class name) of a row's labels, sorted by id, each once. `names`:
  label_names(label_map)."""
  pairs = {}
  for label in labels:
    label_id = label_map[label] if label in label_map else int(label)
    pairs[label_id] = names[label_id]
  return sorted(pairs.items())


def image_ref(
  row: Row,
  label_map: Dict[str, int],
  names: Sequence[str],
  label_offset: int,
  multi_label: bool,
  size: int = 0,
  mtime_us: int = 0,
) -> ImageRef:
  """The row's ImageRef: `label` its smallest id (the class the split is stratified by) + offset;
  a multi-label image's `synset` is example.multi_label_synset of every (id + offset, name)."""
  pairs = resolve(row.labels, label_map, names)
  synset = (
    multi_label_synset([(i + label_offset, name) for i, name in pairs])
    if multi_label
    else pairs[0][1]
  )
  return ImageRef(row.split, pairs[0][0] + label_offset, synset, row.key, size, mtime_us)
