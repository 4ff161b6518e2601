"""The output folder's layout: every file name, the shard-name template, and the files' JSON/text
I/O.

Nothing else in the tree spells an output file name or a shard-name pattern (as TFDS's
``naming.ShardedFileTemplate`` owns TFDS's); all I/O goes through Beam's FileSystems.

    OUTPUT/
      train-00000-of-00004 ...      shards, named by ShardNameTemplate (one template formats and
                                    parses); train.array_record-00000-of-00004 ... for ArrayRecord
      labels.txt  stats.json  rejects.jsonl  duplicates.jsonl  manifest.json   the converter's
      dataset_info.json  features.json  image-class-label.labels.txt   TFDS's metadata
      model_garden.yaml  provenance.json  _SUCCESS (written last, only when the run is acceptable)
      _work/                        <shard>.json sidecars, run.json, progress/, run.log, claim(s)

DO NOT rename a file here: users' scripts, TFDS and Model Garden read these names.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import string
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.output.file_format import FileFormat
from transforms.paths import is_remote
from transforms.split.sharding import SPLITS

LABELS_FILE = 'labels.txt'
STATS_FILE = 'stats.json'
REJECTS_FILE = 'rejects.jsonl'
DUPLICATES_FILE = 'duplicates.jsonl'  # transforms/duplicates/near.py
MANIFEST_FILE = 'manifest.json'
SUCCESS_FILE = '_SUCCESS'
DATASET_INFO_FILE = 'dataset_info.json'  # TFDS
FEATURES_FILE = 'features.json'  # TFDS
# TFDS's name for ClassLabel 'image/class/label'
TFDS_LABEL_NAMES_FILE = 'image-class-label.labels.txt'
MODEL_GARDEN_FILE = 'model_garden.yaml'
# differs run to run (times, runner): never compared byte for byte
PROVENANCE_FILE = 'provenance.json'
# Every file the converter writes at the top of the output besides the shards (what --overwrite may
# delete; nothing else in --output is ever touched).
METADATA_FILES = (
  LABELS_FILE,
  STATS_FILE,
  REJECTS_FILE,
  DUPLICATES_FILE,
  MANIFEST_FILE,
  DATASET_INFO_FILE,
  FEATURES_FILE,
  TFDS_LABEL_NAMES_FILE,
  MODEL_GARDEN_FILE,
  PROVENANCE_FILE,
  SUCCESS_FILE,
)
WORK_DIR = '_work'
RUN_FILE = 'run.json'  # in WORK_DIR: the output-deciding flags of the run (--resume compares them)
PROGRESS_DIR = 'progress'  # in WORK_DIR: live counts (transforms/output/progress_counters.py)
LOG_FILE = 'run.log'  # in WORK_DIR: Beam's and the workers' logs (pipeline/runtime/logs.py)
# in WORK_DIR: the claim of the run using a local output (pipeline/runtime/claim.py)
CLAIM_FILE = 'claim.json'
CLAIMS_DIR = 'claims'  # in WORK_DIR: claims <run id>.json of runs using an object-store output
SIDECAR_SUFFIX = '.json'  # WORK_DIR/<shard name>.json
TEMP_MARKER = '.tmp-'  # <final name>.tmp-<uuid>: a file being written, never read
FORMAT_VERSION = 1  # "format_version" of manifest.json and provenance.json
_LINE_READ_BYTES = 1 << 16  # iter_lines' block size


# (split, index, num_shards) of the names a template is checked on: every split, 1 to 7 digits.
_SAMPLE_SHARDS = tuple(
  (split, index, num_shards)
  for split in SPLITS
  for index, num_shards in ((0, 1), (7, 12), (11, 12), (99999, 100000), (123456, 1000000))
)


@dataclasses.dataclass(frozen=True)
class ShardNameTemplate:
  """Formats and parses shard file names: one template string, both directions (TFDS's naming).

  Attributes:
    template: a `str.format` template with the fields {split}, {index} and {num_shards} (format
    specs
      allowed, e.g. {index:05d}). The default gives `train-00003-of-00128`, the naming of TF's
      build_imagenet_data.py that Model Garden's `train*` / `valid*` globs match; TF-slim's
      `flowers_{split}_{index:05d}-of-{num_shards:05d}.tfrecord` and TFDS's
      `name-{split}.tfrecord-{index:05d}-of-{num_shards:05d}` work too.
  Raises:
    ValueError: a field other than those three, {index} or {num_shards} missing, or names that
      could leave the output folder (`/`, `\\`), hide (a leading `_` or `.`), look like a file being
      written (TEMP_MARKER), be read back wrongly (names that do not parse back to their own split,
      index and count), be misread as a glob or a list by Model Garden (`*?[],`), or be taken for a
      metadata file (METADATA_FILES).
  """

  template: str = '{split}-{index:05d}-of-{num_shards:05d}'

  _PATTERNS = {'split': r'[A-Za-z0-9_]+', 'index': r'\d+', 'num_shards': r'\d+'}
  _FORBIDDEN = '/\\*?[],'  # path separators; glob and list characters (Model Garden's input_path)

  def __post_init__(self):
    try:
      fields = self._fields()
    except ValueError as e:  # unbalanced braces
      raise ValueError(
        f'shard name template {self.template!r} is not a format string: {e} (write '
        'a literal brace as {{ or }})'
      ) from None
    problems = [f'has no {{{name}}}' for name in ('index', 'num_shards') if name not in fields]
    unknown = sorted(set(fields) - set(self._PATTERNS))
    if unknown:
      problems.append(
        'has ' + ', '.join('{' + name + '}' for name in unknown) + ', which is no field'
      )
    if problems:
      raise ValueError(
        f'shard name template {self.template!r} ' + ' and '.join(problems) + ': it '
        'must use {index} and {num_shards}, and may use {split}.'
      )
    try:
      names = {sample: self.name(*sample) for sample in _SAMPLE_SHARDS}
    except (ValueError, TypeError) as e:  # a format spec the field's type does not take
      raise ValueError(f'shard name template {self.template!r} does not format: {e}') from None
    problem = self._problem(names)
    if problem:
      raise ValueError(f'shard name template {self.template!r} {problem}')

  def _problem(self, names: Dict[tuple, str]) -> Optional[str]:
    """What is wrong with the names the template gives the sample shards, or None."""
    bad = sorted({c for name in names.values() for c in name if c in self._FORBIDDEN})
    if bad:
      return (
        f'makes names with {"".join(bad)!r}: a shard is a file directly in --output, and '
        'Model Garden reads its input path as comma-separated globs.'
      )
    if any(name.startswith(('_', '.')) or TEMP_MARKER in name for name in names.values()):
      return (
        f'makes names starting with "_" or "." (hidden files to TFDS and Hadoop) or holding '
        f'{TEMP_MARKER!r} (the mark of a file being written).'
      )
    has_split = 'split' in self._fields()
    globs = {split: self.glob(split) for split in SPLITS}
    for (split, index, num_shards), name in names.items():
      if self.parse(name) != ((split if has_split else ''), index, num_shards):
        return (
          f'is ambiguous: {name!r} does not read back as split {split!r}, shard {index} of '
          f'{num_shards}; put a separator between the fields.'
        )
      if has_split and {s for s, glob in globs.items() if fnmatch.fnmatchcase(name, glob)} != {
        split
      }:
        return f'gives split {split!r} a name, {name!r}, that the glob of another split matches.'
    clash = [name for name in METADATA_FILES if self.parse(name)]
    return f'would take the metadata file {clash[0]} for a shard.' if clash else None

  def _fields(self) -> List[str]:
    return [
      field for _, field, _, _ in string.Formatter().parse(self.template) if field is not None
    ]

  def check_splits(self, splits: Sequence[str]) -> None:
    """Refuses a template that names two splits' shards alike (case-insensitively, as macOS and
    Windows disks compare names), e.g. one without {split} when a run writes several splits.

    Raises:
      ValueError: two of `splits` would share shard file names.
    """
    seen = {}
    for split in splits:
      for index, num_shards in ((0, 1), (0, 2), (1, 2)):
        key = self.name(split, index, num_shards).casefold()
        if seen.setdefault(key, split) != split:
          raise ValueError(
            f'shard name template {self.template!r} gives splits {seen[key]!r} and '
            f'{split!r} the same file names ({key!r}); use {{split}} in it.'
          )

  def glob(self, split: str) -> str:
    """A glob matching every shard file of `split` and no file of another split (Model Garden's
    input_path): the template with index and count as `*`, e.g. `train-*-of-*`."""
    formatter = string.Formatter()
    parts = []
    for literal, field, spec, conversion in formatter.parse(self.template):
      parts.append(literal)
      if field == 'split':
        parts.append(formatter.format_field(formatter.convert_field(split, conversion), spec))
      elif field is not None:
        parts.append('*')
    return ''.join(parts)

  def name(self, split: str, index: int, num_shards: int) -> str:
    """`train-00003-of-00128` for ('train', 3, 128)."""
    return self.template.format(split=split, index=index, num_shards=num_shards)

  def names(self, split: str, num_shards: int) -> List[str]:
    """Every shard name of a split of `num_shards` shards, in index order."""
    return [self.name(split, i, num_shards) for i in range(num_shards)]

  def parse(self, filename: str) -> Optional[tuple]:
    """(split, index, num_shards) of a name this template writes, else None (temp files, sidecars,
    metadata and names a human gave a similar look all give None)."""
    match = self._regex().fullmatch(filename)
    if not match:
      return None
    values = match.groupdict()
    split, index, num_shards = (
      values.get('split', ''),
      int(values['index']),
      int(values['num_shards']),
    )
    if index >= num_shards or self.name(split, index, num_shards) != filename:
      return None
    return split, index, num_shards

  def tfds_filepath_template(self, file_suffix: Optional[str] = None) -> str:
    """The same names in TFDS's `filepathTemplate` language (dataset_info.json).

    Args:
      file_suffix: a file format's suffix (TFDS's `FileFormat` value, e.g. 'array_record'): its
        literal `.<suffix>` in the template becomes TFDS's `.{FILEFORMAT}`, as TFDS writes it.
    Raises:
      ValueError: the template formats index or count other than as TFDS does (5 digits). (A split
        always comes out as it is: __post_init__ refuses a template whose names do not read back.)
    """
    parts = []
    for literal, field, spec, _ in string.Formatter().parse(self.template):
      literal = literal.replace('{', '{{').replace('}', '}}')
      parts.append(literal.replace(f'.{file_suffix}', '.{FILEFORMAT}') if file_suffix else literal)
      if field == 'split':
        parts.append('{SPLIT}')
      elif field in ('index', 'num_shards'):
        if spec != '05d':
          raise ValueError(
            f'TFDS numbers shards with 5 digits ({{{field}:05d}}); {self.template!r} '
            f'has {{{field}{":" + spec if spec else ""}}}'
          )
        parts.append('{SHARD_INDEX}' if field == 'index' else '{NUM_SHARDS}')
    return ''.join(parts).replace('{SHARD_INDEX}-of-{NUM_SHARDS}', '{SHARD_X_OF_Y}')

  def _regex(self) -> re.Pattern:
    parts = []
    for literal, field, _, _ in string.Formatter().parse(self.template):
      parts.append(re.escape(literal))
      if field is not None:
        seen = any(f'(?P<{field}>' in p for p in parts)
        parts.append(f'(?P={field})' if seen else f'(?P<{field}>{self._PATTERNS[field]})')
    return re.compile(''.join(parts))


DEFAULT_SHARD_NAMES = ShardNameTemplate()
# --file_format array_record: TFDS's names for ArrayRecord shards, the format before the shard spec
# (`mnist-train.array_record-00000-of-00001`, tensorflow_datasets/core/naming.py), without the
# dataset name: `train.array_record-00003-of-00128` (Model Garden's `train*` globs still match).
ARRAY_RECORD_SHARD_NAMES = ShardNameTemplate('{split}.array_record-{index:05d}-of-{num_shards:05d}')


# Each --file_format's default shard names.
FORMAT_SHARD_NAMES = {
  FileFormat.TFRECORD: DEFAULT_SHARD_NAMES,
  FileFormat.ARRAY_RECORD: ARRAY_RECORD_SHARD_NAMES,
}


def shard_names_for(
  template: Optional[str], file_format: str = FileFormat.TFRECORD
) -> ShardNameTemplate:
  """The shard names of a run: its --shard_name_template, else its --file_format's default.

  Raises:
    ValueError: an invalid template (see ShardNameTemplate).
  """
  return ShardNameTemplate(template) if template else FORMAT_SHARD_NAMES[file_format]


def recorded_shard_names(options: Optional[Dict]) -> ShardNameTemplate:
  """The shard names a run used, from its recorded flags (manifest.json's "options", _work/run.json):
  --shard_name_template when it was set, else the default of its --file_format (outputs of earlier
  versions record neither: TFRecord's default names).

  Raises:
    ValueError: the recorded template is not a valid one.
  """
  options = options or {}
  return shard_names_for(
    options.get('shard_name_template'), options.get('file_format', FileFormat.TFRECORD)
  )


@dataclasses.dataclass(frozen=True)
class OutputLayout:
  """Where each file of one output lives.

  Attributes:
    root: the output folder (local path, gs:// or s3:// URL), as given to --output.
    shard_names: how shard files are named.
  """

  root: str
  shard_names: ShardNameTemplate = DEFAULT_SHARD_NAMES

  @classmethod
  def of_manifest(cls, root: str, manifest: Dict) -> 'OutputLayout':
    """The layout of a finished output, its shard names as its manifest.json records them (what
    verify, report, read and the TFDS metadata use; never a guess from the file names).

    Raises:
      ValueError: the manifest records an invalid shard name template.
    """
    return cls(root, recorded_shard_names(manifest.get('options')))

  def path(self, name: str) -> str:
    """A top-level file of the output (a shard or a *_FILE name)."""
    return join(self.root, name)

  def shard_path(self, split: str, index: int, num_shards: int) -> str:
    return self.path(self.shard_names.name(split, index, num_shards))

  def is_shard(self, name: str) -> bool:
    return self.shard_names.parse(name) is not None

  @property
  def work_dir(self) -> str:
    return join(self.root, WORK_DIR)

  def work_path(self, name: str) -> str:
    """A file of the work folder (RUN_FILE, LOG_FILE, PROGRESS_DIR, CLAIM_FILE, CLAIMS_DIR)."""
    return join(self.work_dir, name)

  def claim_path(self, run_id: str) -> str:
    """The claim of run `run_id` on an object-store output: `_work/claims/<run id>.json`."""
    return join(self.work_dir, CLAIMS_DIR, run_id + '.json')

  def sidecar_path(self, shard_name: str) -> str:
    """The per-shard summary that --resume reads: `_work/<shard name>.json`."""
    return self.work_path(shard_name + SIDECAR_SUFFIX)


def read_output(root: str) -> Tuple[OutputLayout, Dict]:
  """(layout, manifest.json content) of a finished output, its shard names as the manifest records.

  Raises:
    OSError (Beam's BeamIOError): no manifest.json. ValueError: not JSON, or an invalid template.
  """
  manifest = read_json(join(root, MANIFEST_FILE))
  return OutputLayout.of_manifest(root, manifest), manifest


def join(base: str, *parts: str) -> str:
  """`base/part/...` for local paths and URLs alike (a trailing slash on `base` is ignored), as Beam's
  FileSystems.join gives it, without needing the URL scheme's file system installed (TensorFlow
  readers of gs:// outputs may not have Beam's gcp extra)."""
  if is_remote(base):
    return '/'.join([base.rstrip('/'), *parts])
  return os.path.join(base.rstrip('/') or base, *parts)


def temp_path(final: str, unique: str) -> str:
  """Where `final` is written before its atomic rename."""
  return f'{final}{TEMP_MARKER}{unique}'


def is_temp(name: str) -> bool:
  return TEMP_MARKER in name


# ---------------------------------------------------------------------------------------------
# File I/O: UTF-8 text, JSON (sorted keys, so every run writes the same bytes) and JSON lines.


def read_text(path: str) -> str:
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    return f.read().decode('utf-8')


def write_text(path: str, text: str) -> None:
  """Raises OSError naming `path` (a full disk fails at write or close, where Python names no file)."""
  try:
    with FileSystems.create(
      path, mime_type='text/plain', compression_type=CompressionTypes.UNCOMPRESSED
    ) as f:
      f.write(text.encode('utf-8'))
  except OSError as e:
    if e.filename is None and e.errno is not None:
      raise OSError(e.errno, e.strerror, path) from e
    raise


def to_json(value: Any, indent: Optional[int] = 2) -> str:
  """Sorted keys, UTF-8 kept as is; indented documents end with a newline, compact ones do not."""
  text = json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)
  return text + '\n' if indent else text


def read_json(path: str) -> Any:
  return json.loads(read_text(path))


def read_optional_json(path: str) -> Optional[Any]:
  """The JSON document at `path`, or None when there is no such file."""
  return read_json(path) if FileSystems.exists(path) else None


def write_json(path: str, value: Any, indent: Optional[int] = 2) -> None:
  write_text(path, to_json(value, indent))


def read_jsonl(path: str) -> List[Any]:
  """One JSON value per non-empty line."""
  return [json.loads(line) for line in read_text(path).splitlines() if line.strip()]


def iter_lines(path: str) -> Iterator[Tuple[int, bytes, bool]]:
  """(line number from 1, line without its newline, whether a newline ended it) of a file, read in
  64 KiB blocks (memory bounded by the longest line).

  Raises:
    OSError (Beam's BeamIOError): the file cannot be read.
  """
  number, pending = 0, b''
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
    while True:
      block = handle.read(_LINE_READ_BYTES)
      if not block:
        break
      *lines, pending = (pending + block).split(b'\n')
      for line in lines:
        number += 1
        yield number, line, True
  if pending:
    yield number + 1, pending, False


def write_jsonl(path: str, values: Iterable[Any]) -> None:
  write_text(path, ''.join(to_json(value, indent=None) + '\n' for value in values))
