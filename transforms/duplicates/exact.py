"""Exact duplicates (identical bytes), found before the split, and the files a run leaves out.

Staged so that the input is not read once more: only files whose size another file shares (ImageRef
`size`, from the listing) are opened; of those the first HEAD_BYTES are hashed, and the whole file
only when another file has the same size and head. Identity is SHA-256 (hashlib) of the bytes, read
through Beam's FileSystems. A group is every listed file with that digest, in `member_order` (the
copy that is kept first: validation and test before train, then split order, then key). What a group
does: without split folders every member but the first follows the first one's split
(transforms/split/sharding.py), so copies never straddle splits; with split folders nothing moves
and groups across splits are reported (duplicates.jsonl). --drop_duplicates instead drops every
train (or unsplit) member but the first member, as a reject `duplicate of <kept path>`; a file named
by --exclude_file is a reject `excluded`. Costs: benchmarks/duplicates.py, docs/duplicates.md.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import json
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.inputs.input_file import DEFAULT_MAX_FILE_BYTES, open_input
from transforms.inputs.listing import image_path, input_path
from transforms.records import DuplicateGroup, Reject
from transforms.split.sharding import SPLITS, TRAIN, UNSPLIT, ImageRef, ref_id

THREADS = 16  # the driver's concurrent reads (exact_duplicate_groups)
HEAD_BYTES = 16 << 10  # bytes hashed of every file whose size another file shares
_READ_BYTES = 1 << 20  # read size while hashing a whole file
EXCLUDED = 'excluded'
DUPLICATE_OF = 'duplicate of '
DROPPED_TAG = 'dropped'  # the rejects output of DropAndExclude


def file_digest(
  path: str,
  limit: Optional[int] = None,
  filesystem=None,
  max_bytes: int = DEFAULT_MAX_FILE_BYTES,
  size: Optional[int] = None,
) -> str:
  """Hex SHA-256 of a file's first `limit` bytes (the whole file when None), via FileSystems, opened
  as every input file is (transforms/inputs/input_file.py `open_input`).

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


def copy_order(split: Optional[str], path: str) -> Tuple[bool, int, str]:
  """The one order of a group's copies: the first is the copy that is kept (and leads the group's
  split), and duplicates.jsonl lists a group's files in it. Validation and test before train (they
  stay as given), then SPLITS order, then path.

  Args:
    split: the listing split or the split the file is stored in; UNSPLIT or None (not split yet)
      ranks as train, after the named splits.
    path: the file's key or its path relative to --input (the same order within one split: its
      files share the split's prefix).
  """
  rank = SPLITS.index(split) if split in SPLITS else len(SPLITS)
  return split in (TRAIN, UNSPLIT, None), rank, path


def member_order(ref: ImageRef) -> Tuple[bool, int, str]:
  """`copy_order` of a listed file."""
  return copy_order(ref.split, ref.key)


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


def shared_sizes(refs: Iterable[ImageRef]) -> FrozenSet[int]:
  """The file sizes (bytes) that more than one of `refs` has: only those files can have a copy."""
  counts = collections.Counter(ref.size for ref in refs)
  return frozenset(size for size, count in counts.items() if count > 1)


def _head_key(ref: ImageRef, sizes: FrozenSet[int], digest: _Digests) -> Optional[Tuple[int, str]]:
  """(size, digest of the first HEAD_BYTES) of a file whose size is in `sizes`, else None."""
  if ref.size in sizes:
    head = digest(ref, HEAD_BYTES)
    if head is not None:
      return ref.size, head
  return None


def _identical_groups(refs: Iterable[ImageRef], digest: _Digests) -> Iterator[DuplicateGroup]:
  """The DuplicateGroups of files with one size and head: whole-file digests, by digest."""
  refs = sorted(refs, key=member_order)
  if len(refs) < 2:
    return
  by_digest: Dict[str, List[ImageRef]] = {}
  for ref in refs:
    whole = digest(ref)
    if whole is not None:
      by_digest.setdefault(whole, []).append(ref)
  for whole, members in sorted(by_digest.items()):
    if len(members) > 1:
      yield DuplicateGroup(whole, tuple(members))


def exact_duplicate_groups(
  refs: Sequence[ImageRef], split_roots: Dict[str, str], max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> List[DuplicateGroup]:
  """FindExactDuplicates on the driver (the plan): the same stages, so the same groups; heads are
  read by THREADS threads (an object store answers each request in tens of milliseconds).

  Args:
    refs: the listed files (every one of them: a copy is found only among these).
    split_roots: {listing split: root folder}; max_bytes: --max_file_bytes.
  Returns:
    The groups, by digest.
  """
  digest, sizes = _Digests(split_roots, max_bytes), shared_sizes(refs)
  candidates = [ref for ref in refs if ref.size in sizes]
  buckets: Dict[Tuple[int, str], List[ImageRef]] = {}
  with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
    keys = pool.map(lambda ref: _head_key(ref, sizes, digest), candidates)
    for ref, key in zip(candidates, keys):
      if key is not None:
        buckets.setdefault(key, []).append(ref)
  groups = [group for members in buckets.values() for group in _identical_groups(members, digest)]
  return sorted(groups, key=lambda group: group.digest)


class _DigestingFn(beam.DoFn):
  """A DoFn that hashes listed files (`self._digest`, set up once per worker)."""

  def __init__(self, split_roots: Dict[str, str], max_bytes: int):
    super().__init__()
    self._split_roots = split_roots
    self._max_bytes = max_bytes

  def setup(self):
    self._digest = _Digests(self._split_roots, self._max_bytes)


class _HashHeadFn(_DigestingFn):
  """ImageRef -> ((size, head digest), ImageRef) for a file whose size another file shares."""

  def process(self, ref: ImageRef, sizes: FrozenSet[int]):
    key = _head_key(ref, sizes, self._digest)
    if key is not None:
      yield key, ref


class _HashFilesFn(_DigestingFn):
  """Files with the same size and head -> DuplicateGroup per set of identical ones (whole-file
  digests)."""

  def process(self, element: Tuple[Tuple[int, str], Iterable[ImageRef]]):
    yield from _identical_groups(element[1], self._digest)


class FindExactDuplicates(beam.PTransform):
  """ImageRef -> DuplicateGroup per set of listed files with identical bytes (module docstring)."""

  def __init__(self, split_roots: Dict[str, str], max_bytes: int = DEFAULT_MAX_FILE_BYTES):
    """`max_bytes`: --max_file_bytes; larger files are not hashed (the shard writer rejects them)."""
    super().__init__()
    self._split_roots = split_roots
    self._max_bytes = max_bytes

  def expand(self, refs):
    sizes = (
      refs
      | 'Sizes' >> beam.Map(lambda ref: ref.size)
      | 'CountSizes' >> beam.combiners.Count.PerElement()
      | 'SharedSizes' >> beam.FlatMap(lambda kv: [kv[0]] if kv[1] > 1 else [])
      | 'AsSet' >> beam.combiners.ToList()
      | 'Freeze' >> beam.Map(frozenset)
    )
    return (
      refs
      | 'HashHeads'
      >> beam.ParDo(_HashHeadFn(self._split_roots, self._max_bytes), beam.pvalue.AsSingleton(sizes))
      | 'GroupBySizeAndHead' >> beam.GroupByKey()
      | 'HashFiles' >> beam.ParDo(_HashFilesFn(self._split_roots, self._max_bytes))
    )


def read_exclusions(path: str) -> FrozenSet[str]:
  """The input-relative paths (`class/file`, `train/class/file`) --exclude_file names.

  A file of one path per line (blank lines and lines starting with '#' ignored), or a
  duplicates.jsonl (lines that are JSON objects with "files"): every file of a line but the first,
  the copy that is kept (duplicates.jsonl lists it first).

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
        raise ValueError(
          f'--exclude_file {path} line {number}: not a duplicates.jsonl line '
          f'({e}); expected {{"files": [{{"path": ...}}, ...], ...}}'
        ) from None
    else:
      excluded.add(line.lstrip('./').replace('\\', '/'))
  return frozenset(excluded)


def left_out(ref: ImageRef, split_roots: Dict[str, str], reason: str) -> Reject:
  """The reject of a file the run leaves out before the split (`excluded`, `duplicate of`)."""
  return Reject.of(image_path(split_roots, ref), ref.split, reason)


def is_excluded(ref: ImageRef, excluded: FrozenSet[str], split_roots: Dict[str, str]) -> bool:
  """Whether --exclude_file names the file (by its path relative to --input)."""
  return input_path(split_roots, ref) in excluded


def dropped_copies(
  group: DuplicateGroup, split_roots: Dict[str, str]
) -> List[Tuple[Tuple[str, str], str]]:
  """(ref_id, path of the kept copy) of each copy --drop_duplicates drops from `group`."""
  return [(ref_id(ref), image_path(split_roots, group.members[0])) for ref in group.dropped()]


def _reject_ref(ref: ImageRef, split_roots: Dict[str, str], reason: str):
  return beam.pvalue.TaggedOutput(DROPPED_TAG, left_out(ref, split_roots, reason))


def _unless_excluded(ref: ImageRef, excluded: FrozenSet[str], split_roots: Dict[str, str]):
  yield _reject_ref(ref, split_roots, EXCLUDED) if is_excluded(ref, excluded, split_roots) else ref


def _unless_dropped(
  ref: ImageRef, dropped: Dict[Tuple[str, str], str], split_roots: Dict[str, str]
):
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
      lambda group: dropped_copies(group, split_roots) if drop else []
    )
    return refs | 'UnlessDropped' >> beam.FlatMap(
      _unless_dropped, beam.pvalue.AsDict(dropped), split_roots
    ).with_output_types(ImageRef).with_outputs(DROPPED_TAG, main='kept')
