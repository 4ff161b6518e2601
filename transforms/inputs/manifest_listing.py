"""A manifest's rows (transforms/inputs/manifest.py) joined with a listing of --input: its images.

`ListManifestImages` reads the manifest again in the graph (one element) and lists every file under
--input (one element; left-behind names are skipped and counted as the folder listing counts them),
then joins the two by the row's path: a row whose file is missing is a reject (NOT_FOUND), a file in
no row is counted (UNLISTED_COUNTER, one line of the run's summary) and not converted, a row naming
an absolute path or URI outside --input is stat'ed alone. The plan (pipeline/plan.py) makes the same
join on the driver (`manifest_listings`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from transforms.inputs.input_file import stat_error_reason, stat_problem
from transforms.output.layout import join
from transforms.inputs.listing import (
  LEFT_BEHIND_COUNTER,
  METRICS_NAMESPACE,
  REJECTS_TAG,
  Entry,
  InputError,
  Listed,
  is_absolute,
  is_left_behind,
  left_behind_kind,
  list_input_folder,
  relative,
)
from transforms.paths import is_remote
from transforms.records import Reject
from transforms.inputs.manifest import ManifestFacts, ManifestSpec, image_ref, read_rows
from transforms.split.sample import FolderListing
from transforms.split.sharding import ImageRef

NOT_FOUND = 'listed in the manifest, not found'
UNLISTED_COUNTER = 'not in the manifest'  # metric counter: files under --input in no row


def check_input_root(root: str) -> None:
  """Raises InputError when --input is not a folder that can be listed (one request at most)."""
  if not is_remote(root):
    if not os.path.isdir(root):
      raise InputError(
        f'--input {root} is not a folder: with --manifest, --input is the folder '
        'its relative paths start from.'
      )
    return
  try:
    FileSystems.match([join(root, '**')], limits=[1])
  except Exception as e:  # pylint: disable=broad-except  (BeamIOError: permissions, credentials)
    raise InputError(f'--input {root} cannot be listed: {e}') from e


def list_tree(root: str, skip: Sequence[str] = ()) -> Iterator:
  """(key, Entry) of every file under `root` (key relative to it), left-behind names skipped (their
  kinds counted in listing's metric counters), `skip` (absolute paths) left out.

  Raises:
    InputError: a folder cannot be listed.
  """
  skipped = set(skip)
  if is_remote(root):
    for metadata in FileSystems.match([join(root, '**')])[0].metadata_list:
      key = relative(metadata.path, root)
      parts = key.split('/')
      left = next((part for part in parts if is_left_behind(part)), None)
      if left is not None:
        _count(LEFT_BEHIND_COUNTER + left_behind_kind(left))
      elif metadata.path not in skipped:
        yield (
          key,
          Entry(
            metadata.path,
            parts[-1],
            False,
            metadata.size_in_bytes,
            round((metadata.last_updated_in_seconds or 0.0) * 1e6),
          ),
        )
    return
  folders = ['']
  while folders:
    folder = folders.pop()
    entries, left_behind = list_input_folder(join(root, folder) if folder else root)
    for name in left_behind:
      _count(LEFT_BEHIND_COUNTER + left_behind_kind(name))
    for entry in entries:
      key = f'{folder}/{entry.name}' if folder else entry.name
      if entry.is_folder:
        folders.append(key)
      elif entry.path not in skipped:
        yield key, entry


def _count(name: str) -> None:
  Metrics.counter(METRICS_NAMESPACE, name).inc()


def stat_entry(path: str) -> Optional[Entry]:
  """The Entry of one file named by an absolute path or URI; None when it does not exist."""
  if not is_remote(path):
    try:
      info = os.stat(path)
    except FileNotFoundError:
      return None
    except OSError as e:
      return Entry(path, os.path.basename(path), False, problem=stat_error_reason(e, path))
    problem = stat_problem(info.st_mode, os.path.islink(path))
    return Entry(
      path, os.path.basename(path), False, info.st_size, info.st_mtime_ns // 1000, problem
    )
  try:
    found = FileSystems.match([path])[0].metadata_list
  except Exception:  # pylint: disable=broad-except  (not found)
    return None
  match = next((m for m in found if m.path == path), None)
  if match is None:
    return None
  return Entry(
    path,
    path.rsplit('/', 1)[-1],
    False,
    match.size_in_bytes,
    round((match.last_updated_in_seconds or 0.0) * 1e6),
  )


def match_rows(element, input_root: str) -> Iterator:
  """(key, {'rows': [ImageRef], 'files': [Entry]}) -> the ImageRef with the file's size and mtime,
  a tagged reject (the file is missing or unreadable), or a count of a file in no row."""
  key, joined = element
  refs, entries = list(joined['rows']), list(joined['files'])
  if not refs:
    _count(UNLISTED_COUNTER)
    return
  ref = refs[0]
  entry = entries[0] if entries else (stat_entry(key) if is_absolute(key) else None)
  path = key if is_absolute(key) else join(input_root, *key.split('/'))
  split = ref.split or None
  if entry is None:
    yield beam.pvalue.TaggedOutput(REJECTS_TAG, Reject.of(path, split, NOT_FOUND))
  elif entry.problem:
    yield beam.pvalue.TaggedOutput(REJECTS_TAG, Reject.of(path, split, entry.problem))
  else:
    yield ref._replace(size=entry.size, mtime_us=entry.mtime_us)


def _keyed_refs(
  _,
  spec: ManifestSpec,
  facts: ManifestFacts,
  label_map: Dict[str, int],
  names: Sequence[str],
  label_offset: int,
) -> Iterator[Tuple[str, ImageRef]]:
  for row in read_rows(spec):
    if row.line not in facts.repeated_lines:
      yield row.key, image_ref(row, label_map, names, label_offset, facts.multi_label)


class ListManifestImages(beam.PTransform):
  """PBegin -> `listing.Listed`: an ImageRef per manifest row whose file exists, reject dicts for
  the others; files under --input in no row are counted (metric counter UNLISTED_COUNTER)."""

  def __init__(
    self,
    spec: ManifestSpec,
    facts: ManifestFacts,
    label_map: Dict[str, int],
    names: Sequence[str],
    label_offset: int,
  ):
    """`names`: label_names(label_map)."""
    super().__init__()
    self._spec, self._facts, self._label_map = spec, facts, label_map
    self._names, self._label_offset = list(names), label_offset

  def expand(self, pbegin):
    spec, root = self._spec, self._spec.input_root
    rows = (
      pbegin
      | 'Manifest' >> beam.Create([spec.path])
      | 'ReadManifest'
      >> beam.FlatMap(
        _keyed_refs, spec, self._facts, self._label_map, self._names, self._label_offset
      )
    )
    files = (
      pbegin
      | 'InputRoot' >> beam.Create([root])
      | 'ListInputFiles' >> beam.FlatMap(lambda top: list_tree(top, [spec.path]))
    )
    matched = (
      {'rows': rows, 'files': files}
      | 'JoinRowsFiles' >> beam.CoGroupByKey()
      | 'MatchRows'
      >> beam.FlatMap(match_rows, root)
      .with_output_types(ImageRef)
      .with_outputs(REJECTS_TAG, main='images')
    )
    return Listed(matched.images, matched[REJECTS_TAG])


def manifest_listings(
  spec: ManifestSpec,
  facts: ManifestFacts,
  label_map: Dict[str, int],
  names: Sequence[str],
  label_offset: int,
) -> List[FolderListing]:
  """The whole manifest as the plan's strata (pipeline/plan.py): one FolderListing per (split, first
  class) of the rows whose file exists, in sorted order; the missing files' rejects on the first.
  Holds every file of --input and every row, as the plan's listing of class folders does."""
  entries = dict(list_tree(spec.input_root, [spec.path]))
  strata: Dict[Tuple[str, str], List[ImageRef]] = {}
  rejects = []
  for _, ref in _keyed_refs(None, spec, facts, label_map, names, label_offset):
    element = (ref.key, {'rows': [ref], 'files': [entries[ref.key]] if ref.key in entries else []})
    for item in match_rows(element, spec.input_root):
      if isinstance(item, beam.pvalue.TaggedOutput):
        rejects.append(item.value)
      else:
        strata.setdefault((item.split, names[item.label - label_offset]), []).append(item)
  listings = [
    FolderListing((split, spec.input_root, name), tuple(refs), ())
    for (split, name), refs in sorted(strata.items())
  ]
  if listings and rejects:
    listings[0] = dataclasses.replace(listings[0], rejects=tuple(rejects))
  return listings


def unlisted_count(result) -> int:
  """Files under --input that no manifest row names, from a PipelineResult's counters (0 without
  metrics)."""
  try:
    query = result.metrics().query(
      MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(UNLISTED_COUNTER)
    )
  except Exception:  # pylint: disable=broad-except  (a runner without metrics)
    return 0
  return sum(
    (c.committed if c.committed is not None else c.attempted) or 0 for c in query['counters']
  )


def unlisted_line(count: int) -> Optional[str]:
  """The summary's line about files under --input in no manifest row; None when there are none."""
  if not count:
    return None
  return f'not converted: {count} file{"s" * (count != 1)} under --input in no row of --manifest'
