"""The driver's look at --input before the graph runs: class folders, what lies beside them, what
tools left behind, empty class folders; and the lines the run and the plan print about them.

The rules of what is a class, a reject or left behind are transforms/inputs/listing.py's; this
module applies them to --input and the split roots (one listing each) and checks every class folder
for an entry (local: os.scandir up to the first one; object stores: one request of at most
_EMPTY_CHECK_LIMIT names), on _THREADS threads. The class folders' own left-behind entries are
counted by ListImages in the graph (metric counters, `left_behind_counts`), or by the plan's listing
on the driver.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
from typing import Dict, List, Mapping, Optional, Tuple

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from transforms.inputs.input_file import escaped, is_utf8
from transforms.output.layout import join
from transforms.inputs.listing import (
  LEFT_BEHIND_COUNTER,
  METRICS_NAMESPACE,
  NOT_IN_CLASS_FOLDER,
  InputError,
  Layout,
  is_left_behind,
  left_behind_kind,
  list_input_folder,
  relative,
)
from transforms.paths import is_remote
from transforms.records import Reject
from transforms.split.sharding import UNSPLIT, VALIDATION

_UNLABELLABLE = {'\n': 'a newline', '\r': 'a carriage return', '\0': 'a NUL'}
_EMPTY_CHECK_LIMIT = 100  # object-store names looked at per class folder to tell it is not empty
_THREADS = 16  # concurrent class-folder checks (an object store answers in tens of milliseconds)


@dataclasses.dataclass(frozen=True)
class InputSurvey:
  """What the driver's listing of --input and of the split roots found, besides the layout.

  Attributes:
    class_dirs: {split: class folder names under its root, sorted; [''] for a flat validation
      folder}.
    loose_files: Rejects (NOT_IN_CLASS_FOLDER, split None) of the files directly in --input or in
      a split root beside its class folders.
    left_behind: {left_behind_kind: entries} skipped in --input and the split roots (the class
      folders' own are counted by ListImages).
    empty_classes: paths of the class folders that hold nothing but left-behind entries.
  """

  class_dirs: Dict[str, List[str]]
  loose_files: Tuple[Reject, ...] = ()
  left_behind: Mapping[str, int] = dataclasses.field(default_factory=dict)
  empty_classes: Tuple[str, ...] = ()


def survey_input(input_root: str, layout: Layout) -> InputSurvey:
  """Lists --input and the split roots: the class folders, the files beside them, the left-behind
  entries, the empty class folders.

  Raises:
    InputError: a folder cannot be listed; a class folder name cannot be one line of labels.txt.
  """
  left_behind, loose, class_dirs = collections.Counter(), [], {}
  top_entries, top_left_behind = list_input_folder(input_root)
  left_behind.update(left_behind_kind(name) for name in top_left_behind)
  loose += [entry.path for entry in top_entries if not entry.is_folder]
  for split, root in layout.split_roots.items():
    if split == UNSPLIT:
      entries = top_entries
    else:
      entries, names = list_input_folder(root)
      left_behind.update(left_behind_kind(name) for name in names)
      if split == VALIDATION and layout.flat_validation:
        class_dirs[split] = ['']  # The folder itself (ListImages rejects the folders in it).
        continue
      loose += [entry.path for entry in entries if not entry.is_folder]
    class_dirs[split] = [entry.name for entry in entries if entry.is_folder]
    for name in class_dirs[split]:
      check_class_name(root, name)
  folders = [
    join(layout.split_roots[split], name)
    for split, names in class_dirs.items()
    for name in names
    if name
  ]
  with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
    empty = [path for path, full in zip(folders, pool.map(_holds_entries, folders)) if not full]
  loose_files = tuple(Reject.of(path, None, NOT_IN_CLASS_FOLDER) for path in loose)
  return InputSurvey(class_dirs, loose_files, dict(left_behind), tuple(empty))


def check_class_name(root: str, name: str) -> None:
  """Raises InputError when the class folder `name` cannot be one line of labels.txt (UTF-8)."""
  found = [what for char, what in _UNLABELLABLE.items() if char in name]
  found += [] if is_utf8(name) else ['bytes that are not UTF-8']
  if found:
    raise InputError(
      f'the class folder {shown_name(name)} in {escaped(root)} has a name that cannot '
      f'be one line of labels.txt ({", ".join(found)}): rename the folder.'
    )


def _holds_entries(folder: str) -> bool:
  """Whether `folder` holds anything but left-behind entries (local: stops at the first one; object
  stores: among its first _EMPTY_CHECK_LIMIT names)."""
  try:
    if not is_remote(folder):
      with os.scandir(folder) as it:
        return any(not is_left_behind(entry.name) for entry in it)
    metadata = FileSystems.match([join(folder, '**')], limits=[_EMPTY_CHECK_LIMIT])[0].metadata_list
    return any(not is_left_behind(relative(m.path, folder).split('/', 1)[0]) for m in metadata)
  except Exception:  # pylint: disable=broad-except  (the listing in the graph reports it)
    return True


def check_has_images(layout: Layout, survey: InputSurvey) -> None:
  """Fails before any work when no class folder holds a single entry (tensorflow/tpu#980).

  Raises:
    InputError: every class folder is empty (or holds only left-behind entries).
  """
  folders = sum(1 for names in survey.class_dirs.values() for name in names if name)
  if layout.flat_validation or len(survey.empty_classes) < folders:
    return
  raise InputError(
    'the class folders under '
    + ', '.join(layout.split_roots.values())
    + ' are all empty: there are no images to convert. Check --input.'
  )


def left_behind_line(counts: Mapping[str, int]) -> Optional[str]:
  """`skipped 4 files and folders that tools leave behind (2 .DS_Store, 1 __MACOSX, 1 _work)`, or
  None when nothing was skipped. `counts`: {left_behind_kind: entries}."""
  total = sum(counts.values())
  if not total:
    return None
  kinds = sorted(counts.items(), key=lambda item: (-item[1], item[0].lower()))
  return (
    f'skipped {total} file{"s" * (total != 1)} and folders that tools leave behind ('
    + ', '.join(f'{n} {kind}' for kind, n in kinds)
    + ')'
  )


def left_behind_counts(survey: Optional[InputSurvey], result=None) -> Dict[str, int]:
  """{left_behind_kind: entries} of a run: the driver's (`survey`) plus the graph's metric counters
  of `result` (a Beam PipelineResult; a runner without metrics adds nothing)."""
  counts = collections.Counter(survey.left_behind if survey else {})
  if result is None:
    return dict(counts)
  try:
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
  except Exception:  # pylint: disable=broad-except  (a runner without metrics)
    return dict(counts)
  for counter in query['counters']:
    name = counter.key.metric.name
    if name.startswith(LEFT_BEHIND_COUNTER):
      value = counter.committed if counter.committed is not None else counter.attempted
      counts[name[len(LEFT_BEHIND_COUNTER) :]] += value or 0
  return dict(counts)


def empty_classes_warning(survey: Optional[InputSurvey], limit: int = 10) -> Optional[str]:
  """`warning: 1 class folder is empty ...: <path>` naming at most `limit` of them; None when none
  is."""
  paths = survey.empty_classes if survey else ()
  if not paths:
    return None
  shown = ', '.join(escaped(path) for path in paths[:limit]) + (
    ', ...' if len(paths) > limit else ''
  )
  one = len(paths) == 1
  return (
    f'warning: {len(paths)} class folder{"s" * (not one)} {"is" if one else "are"} empty (only '
    f'left-behind files or nothing): {"its label is" if one else "their labels are"} kept in '
    f'labels.txt, with no examples: {shown}'
  )


def shown_name(name: str) -> str:
  """A file or folder name for a message: repr(), with bytes that are not UTF-8 as `\\xNN`."""
  return repr(name) if is_utf8(name) else repr(name.encode('utf-8', 'surrogateescape'))
