"""The output folder's layout: every file name, the shard-name template, and the files' JSON/text I/O.

Nothing else in the tree spells an output file name or a shard-name pattern: the shard writer, the
metadata step, ``--resume``/``--overwrite``, ``verify``, ``report`` and ``read`` all go through this
module, as TFDS's ``naming.ShardedFileTemplate`` owns TFDS's shard names. All I/O goes through Beam's
FileSystems, so local folders, ``gs://`` and ``s3://`` behave alike.

    OUTPUT/
      train-00000-of-00004 ...      shards, named by ShardNameTemplate (one template formats and parses);
                                    train.array_record-00000-of-00004 ... with --file_format array_record
      labels.txt  stats.json  rejects.jsonl  manifest.json          the converter's metadata
      dataset_info.json  features.json  image-class-label.labels.txt   TFDS's metadata
      _SUCCESS                      written last, only when the run is acceptable
      _work/                        <shard>.json sidecars (what --resume reads), run.json (the flags of
                                    the run), progress/ (live counts), run.log

DO NOT rename a file here: users' scripts, TFDS and Model Garden read these names.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import string
from typing import Any, Iterable, List, Optional

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

LABELS_FILE = 'labels.txt'
STATS_FILE = 'stats.json'
REJECTS_FILE = 'rejects.jsonl'
MANIFEST_FILE = 'manifest.json'
SUCCESS_FILE = '_SUCCESS'
DATASET_INFO_FILE = 'dataset_info.json'  # TFDS
FEATURES_FILE = 'features.json'  # TFDS
TFDS_LABEL_NAMES_FILE = 'image-class-label.labels.txt'  # TFDS's name for ClassLabel 'image/class/label'
# Every file the converter writes at the top of the output besides the shards (what --overwrite may
# delete; nothing else in --output is ever touched).
METADATA_FILES = (LABELS_FILE, STATS_FILE, REJECTS_FILE, MANIFEST_FILE, DATASET_INFO_FILE,
                  FEATURES_FILE, TFDS_LABEL_NAMES_FILE, SUCCESS_FILE)
WORK_DIR = '_work'
RUN_FILE = 'run.json'  # in WORK_DIR: the output-deciding flags of the run (--resume compares them)
PROGRESS_DIR = 'progress'  # in WORK_DIR: live counts of local runs (transforms/progress.py)
LOG_FILE = 'run.log'  # in WORK_DIR: Beam's and the workers' logs (pipeline/logs.py)
SIDECAR_SUFFIX = '.json'  # WORK_DIR/<shard name>.json
TEMP_MARKER = '.tmp-'  # <final name>.tmp-<uuid>: a file being written, never read
FORMAT_VERSION = 1  # manifest.json's "format_version"


@dataclasses.dataclass(frozen=True)
class ShardNameTemplate:
  """Formats and parses shard file names: one template string, both directions (TFDS's naming).

  Attributes:
    template: a `str.format` template with the fields {split}, {index} and {num_shards} (format specs
      allowed, e.g. {index:05d}). The default gives `train-00003-of-00128`, the naming of TF's
      build_imagenet_data.py that Model Garden's `train*` / `valid*` globs match.
  Raises:
    ValueError: a field other than those three, or {index} / {num_shards} missing.
  """
  template: str = '{split}-{index:05d}-of-{num_shards:05d}'

  _PATTERNS = {'split': r'[A-Za-z0-9_]+', 'index': r'\d+', 'num_shards': r'\d+'}

  def __post_init__(self):
    fields = [field for _, field, _, _ in string.Formatter().parse(self.template) if field is not None]
    unknown = sorted(set(fields) - set(self._PATTERNS))
    if unknown or not {'index', 'num_shards'} <= set(fields):
      raise ValueError(f'shard name template {self.template!r} must use {{index}} and {{num_shards}} '
                       f'(and may use {{split}}); unknown fields: {unknown}')

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
    split, index, num_shards = values.get('split', ''), int(values['index']), int(values['num_shards'])
    if index >= num_shards or self.name(split, index, num_shards) != filename:
      return None
    return split, index, num_shards

  def tfds_filepath_template(self, file_suffix: Optional[str] = None) -> str:
    """The same names in TFDS's `filepathTemplate` language (dataset_info.json).

    Args:
      file_suffix: a file format's suffix (TFDS's `FileFormat` value, e.g. 'array_record'): its
        literal `.<suffix>` in the template becomes TFDS's `.{FILEFORMAT}`, as TFDS writes it.
    Raises:
      ValueError: the template formats index or count other than as TFDS does (5 digits).
    """
    parts = []
    for literal, field, spec, _ in string.Formatter().parse(self.template):
      literal = literal.replace('{', '{{').replace('}', '}}')
      parts.append(literal.replace(f'.{file_suffix}', '.{FILEFORMAT}') if file_suffix else literal)
      if field == 'split':
        parts.append('{SPLIT}')
      elif field in ('index', 'num_shards'):
        if spec != '05d':
          raise ValueError(f'TFDS numbers shards with 5 digits; {self.template!r} uses {{{field}:{spec}}}')
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


@dataclasses.dataclass(frozen=True)
class OutputLayout:
  """Where each file of one output lives.

  Attributes:
    root: the output folder (local path, gs:// or s3:// URL), as given to --output.
    shard_names: how shard files are named.
  """
  root: str
  shard_names: ShardNameTemplate = DEFAULT_SHARD_NAMES

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
    """A file of the work folder (RUN_FILE, LOG_FILE, PROGRESS_DIR)."""
    return join(self.work_dir, name)

  def sidecar_path(self, shard_name: str) -> str:
    """The per-shard summary that --resume reads: `_work/<shard name>.json`."""
    return self.work_path(shard_name + SIDECAR_SUFFIX)


def join(base: str, *parts: str) -> str:
  """`base/part/...` for local paths and URLs alike (a trailing slash on `base` is ignored), as Beam's
  FileSystems.join gives it, without needing the URL scheme's file system installed (TensorFlow
  readers of gs:// outputs may not have Beam's gcp extra)."""
  if '://' in base:
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
  with FileSystems.create(path, mime_type='text/plain',
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write(text.encode('utf-8'))


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


def write_jsonl(path: str, values: Iterable[Any]) -> None:
  write_text(path, ''.join(to_json(value, indent=None) + '\n' for value in values))
