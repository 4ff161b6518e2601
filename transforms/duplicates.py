"""Exact duplicates (identical bytes), found before the split, and the files a run leaves out.

Why staged: hashing every input file would read the whole input once more before conversion. Two
files can only be identical if they have the same size, which the listing already knows (ImageRef
`size`), so only files whose size is shared with another file are opened. Of those, the first
HEAD_BYTES are hashed, and the whole file only when another file has the same size and the same
head. On a few thousand photos almost no size repeats; on ImageNet (1.33 M files between a few KB
and a few MB) most sizes repeat, and the cost is one open + a 16 KiB read per file
(benchmarks/duplicates.py measures it against the cost of converting the image).

Identity: SHA-256 (hashlib; ~2.5x faster than BLAKE2b on CPUs with SHA extensions, as this one) of
the file's bytes, read through Beam's FileSystems, so local folders, gs:// and s3:// behave alike.
Two distinct files with the same size and the same first 16 KiB are rare (a JPEG's entropy-coded
data starts within its first few KiB, and an EXIF thumbnail differs with the picture), so the
whole-file hash is in practice paid for real copies only. A group is every listed file with that digest, in the order
`member_order` gives (the copy that is kept first).

What a group does to the run:
  * With --validation_fraction / --test_fraction (an input without split folders): every member
    but the first follows the first one's split (transforms/sharding.py `AssignSplitShard`), so a
    file and its copies never straddle splits. With --drop_duplicates the other members are dropped
    instead.
  * With split folders given by the user: nothing moves; groups that span splits are reported
    (duplicates.jsonl). With --drop_duplicates every train member but the first member is dropped,
    so validation and test stay as given.
A dropped file is a reject with the reason `duplicate of <path of the kept copy>`; a file named by
--exclude_file is a reject with the reason `excluded`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.input_file import DEFAULT_MAX_FILE_BYTES, open_input
from transforms.listing import image_path, input_path
from transforms.records import DuplicateGroup, Reject
from transforms.sharding import SPLITS, TRAIN, UNSPLIT, ImageRef, ref_id

HEAD_BYTES = 16 << 10  # bytes hashed of every file whose size another file shares
_READ_BYTES = 1 << 20  # read size while hashing a whole file
EXCLUDED = 'excluded'
DUPLICATE_OF = 'duplicate of '
DROPPED_TAG = 'dropped'  # the rejects output of DropAndExclude


def file_digest(path: str, limit: Optional[int] = None, filesystem=None,
                max_bytes: int = DEFAULT_MAX_FILE_BYTES, size: Optional[int] = None) -> str:
  """Hex SHA-256 of a file's first `limit` bytes (the whole file when None), via FileSystems, opened
  as every input file is (transforms/input_file.py `open_input`).

  Args:
    filesystem: the path's Beam FileSystem, when the caller has it (saves ~25 us of lookup).
    max_bytes: --max_file_bytes; size: the listing's size of the file in bytes (object stores).
  Raises:
    InputFileError: the file is not to be read (not a regular file, larger than `max_bytes`).
    OSError / BeamIOError: the file cannot be read.
  """
  digest = hashlib.sha256()
  with open_input(path, max_bytes, size, filesystem) as src:
    remaining = limit
    while remaining is None or remaining > 0:
      chunk = src.read(_READ_BYTES if remaining is None else min(_READ_BYTES, remaining))
      if not chunk:
        break
      digest.update(chunk)
      if remaining is not None:
        remaining -= len(chunk)
  return digest.hexdigest()


def member_order(ref: ImageRef) -> Tuple[bool, int, str]:
  """A group's members in the order copies are kept: validation and test before train (they stay as
  given), then split order, then key."""
  rank = SPLITS.index(ref.split) if ref.split in SPLITS else len(SPLITS)
  return ref.split in (TRAIN, UNSPLIT), rank, ref.key


class _Digests:
  """Content digests of listed files, with one FileSystems lookup per split root."""

  def __init__(self, split_roots: Dict[str, str], max_bytes: int):
    self._split_roots = split_roots
    self._max_bytes = max_bytes
    self._filesystems = {}

  def __call__(self, ref: ImageRef, limit: Optional[int] = None) -> Optional[str]:
    """The digest, or None when the file cannot be read (the shard writer rejects it)."""
    path = image_path(self._split_roots, ref)
    if ref.split not in self._filesystems:
      self._filesystems[ref.split] = FileSystems.get_filesystem(path)
    try:
      return file_digest(path, limit, self._filesystems[ref.split], self._max_bytes, ref.size)
    except Exception:  # pylint: disable=broad-except
      return None


class _HashHeadFn(beam.DoFn):
  """ImageRef -> ((size, head digest), ImageRef) for a file whose size another file shares."""

  def __init__(self, split_roots: Dict[str, str], max_bytes: int):
    super().__init__()
    self._split_roots = split_roots
    self._max_bytes = max_bytes

  def setup(self):
    self._digest = _Digests(self._split_roots, self._max_bytes)

  def process(self, ref: ImageRef, shared_sizes: FrozenSet[int]):
    if ref.size in shared_sizes:
      head = self._digest(ref, HEAD_BYTES)
      if head is not None:
        yield (ref.size, head), ref


class _HashFilesFn(beam.DoFn):
  """Files with the same size and head -> DuplicateGroup per set of identical ones (whole-file
  digests)."""

  def __init__(self, split_roots: Dict[str, str], max_bytes: int):
    super().__init__()
    self._split_roots = split_roots
    self._max_bytes = max_bytes

  def setup(self):
    self._digest = _Digests(self._split_roots, self._max_bytes)

  def process(self, element: Tuple[Tuple[int, str], Iterable[ImageRef]]):
    refs = sorted(element[1], key=member_order)
    if len(refs) < 2:
      return
    by_digest: Dict[str, List[ImageRef]] = {}
    for ref in refs:
      digest = self._digest(ref)
      if digest is not None:
        by_digest.setdefault(digest, []).append(ref)
    for digest, members in sorted(by_digest.items()):
      if len(members) > 1:
        yield DuplicateGroup(digest, tuple(members))


class FindExactDuplicates(beam.PTransform):
  """ImageRef -> DuplicateGroup per set of listed files with identical bytes (module docstring)."""

  def __init__(self, split_roots: Dict[str, str], max_bytes: int = DEFAULT_MAX_FILE_BYTES):
    """`max_bytes`: --max_file_bytes; larger files are not hashed (the shard writer rejects them)."""
    super().__init__()
    self._split_roots = split_roots
    self._max_bytes = max_bytes

  def expand(self, refs):
    shared_sizes = (refs
                    | 'Sizes' >> beam.Map(lambda ref: ref.size)
                    | 'CountSizes' >> beam.combiners.Count.PerElement()
                    | 'SharedSizes' >> beam.FlatMap(lambda kv: [kv[0]] if kv[1] > 1 else [])
                    | 'AsSet' >> beam.combiners.ToList()
                    | 'Freeze' >> beam.Map(frozenset))
    return (refs
            | 'HashHeads' >> beam.ParDo(_HashHeadFn(self._split_roots, self._max_bytes),
                                         beam.pvalue.AsSingleton(shared_sizes))
            | 'GroupBySizeAndHead' >> beam.GroupByKey()
            | 'HashFiles' >> beam.ParDo(_HashFilesFn(self._split_roots, self._max_bytes)))


def read_exclusions(path: str) -> FrozenSet[str]:
  """The input-relative paths (`class/file`, `train/class/file`) --exclude_file names.

  A file of one path per line (blank lines and lines starting with '#' ignored), or a duplicates.jsonl
  (lines that are JSON objects with "files"): every file of a line but the first, the copy that is
  kept (duplicates.jsonl lists it first).

  Raises:
    ValueError: the file cannot be read, or a JSON line has no "files" list.
  """
  try:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
      text = src.read().decode('utf-8')
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'cannot read --exclude_file {path}: {e}') from e
  excluded = set()
  for number, line in enumerate(text.splitlines(), start=1):
    line = line.strip()
    if not line or line.startswith('#'):
      continue
    if line.startswith('{'):
      try:
        files = json.loads(line)['files']
        excluded.update(entry['path'] for entry in files[1:])
      except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'--exclude_file {path} line {number}: not a duplicates.jsonl line '
                         f'({e}); expected {{"files": [{{"path": ...}}, ...], ...}}') from None
    else:
      excluded.add(line.lstrip('./').replace('\\', '/'))
  return frozenset(excluded)


def _reject_ref(ref: ImageRef, split_roots: Dict[str, str], reason: str):
  reject = Reject.of(image_path(split_roots, ref), ref.split, reason)
  return beam.pvalue.TaggedOutput(DROPPED_TAG, reject)


def _unless_excluded(ref: ImageRef, excluded: FrozenSet[str], split_roots: Dict[str, str]):
  yield _reject_ref(ref, split_roots, EXCLUDED) if input_path(split_roots, ref) in excluded else ref


def _unless_dropped(ref: ImageRef, dropped: Dict[Tuple[str, str], str], split_roots: Dict[str, str]):
  reason = dropped.get(ref_id(ref))
  yield _reject_ref(ref, split_roots, DUPLICATE_OF + reason) if reason else ref


class ExcludeFiles(beam.PTransform):
  """ImageRef -> the ImageRefs whose input-relative path is not in `excluded` (main output `kept`)
  and a Reject `excluded` for each other one (output `dropped`)."""

  def __init__(self, excluded: FrozenSet[str], split_roots: Dict[str, str]):
    super().__init__()
    self._excluded = excluded
    self._split_roots = split_roots

  def expand(self, refs):
    return refs | 'UnlessExcluded' >> beam.FlatMap(
        _unless_excluded, self._excluded, self._split_roots
    ).with_output_types(ImageRef).with_outputs(DROPPED_TAG, main='kept')


class DropDuplicates(beam.PTransform):
  """ImageRef -> the ImageRefs to convert (main output `kept`) and a Reject `duplicate of
  <path>` (output `dropped`) for each copy `DuplicateGroup.dropped` names; nothing is dropped unless
  `drop` (--drop_duplicates)."""

  def __init__(self, groups, split_roots: Dict[str, str], drop: bool):
    """`groups`: the PCollection of DuplicateGroup."""
    super().__init__()
    self._groups = groups
    self._split_roots = split_roots
    self._drop = drop

  def expand(self, refs):
    split_roots, drop = self._split_roots, self._drop
    dropped = self._groups | 'DroppedCopies' >> beam.FlatMap(
        lambda group: [(ref_id(ref), image_path(split_roots, group.members[0]))
                       for ref in group.dropped()] if drop else [])
    return refs | 'UnlessDropped' >> beam.FlatMap(
        _unless_dropped, beam.pvalue.AsDict(dropped), split_roots
    ).with_output_types(ImageRef).with_outputs(DROPPED_TAG, main='kept')
