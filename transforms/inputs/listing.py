"""Finding the classes and images of an image folder, through Beam's FileSystems (local, gs://,
s3://).

  root/<class>/<image>                    one pool; --validation_fraction / --test_fraction split it
  root/train/<class>/<image> + root/validation/<class>/<image> (or root/val/...)
    [+ root/test/<class>/<image>]         explicit splits (train/ + test/ alone also works)
  root/train/<class>/<image> + root/validation/<image>   ImageNet's flat validation folder,
                                          labelled by --validation_ground_truth (imagenet.py)

Classes are found on the driver (transforms/inputs/survey.py), so the label map (the sorted class
folders, as Keras' `image_dataset_from_directory` and TFDS' `ImageFolder`; an empty one keeps its
label) is fixed before the graph runs; each class's files are listed inside the graph, one class
folder per element (apache/beam#20557). What tools leave behind (`is_left_behind`: names starting
with `.` or `_`, Thumbs.db, desktop.ini) is skipped and counted; anything else that is not a
readable image of a class folder is a reject with its reason, never dropped silently.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.inputs.input_file import (
  NOT_UTF8_NAME,
  escaped,
  is_utf8,
  stat_error_reason,
  stat_problem,
)
from transforms.output.layout import join
from transforms.paths import is_remote
from transforms.records import Reject
from transforms.split.sharding import TEST, TRAIN, UNSPLIT, VALIDATION, ImageRef

VALIDATION_DIR_NAMES = ('validation', 'val')
_LOGGER = logging.getLogger(__name__)
REJECTS_TAG = 'rejects'
# the kind (`left_behind_kind`) of each skipped entry of a class folder
LEFT_BEHIND_TAG = 'left_behind'
NOT_IN_CLASS_FOLDER = 'not in a class folder'
# Metric counters 'left behind: <kind>' of the graph's listing (namespace METRICS_NAMESPACE).
METRICS_NAMESPACE = 'folder2tfrecord'
LEFT_BEHIND_COUNTER = 'left behind: '
# Names (compared in lower case) that tools write into folders they show: macOS Finder, Windows
# Explorer, Jupyter, zip on macOS, this converter's own work folder.
_LEFT_BEHIND_NAMES = {
  name.lower(): name
  for name in ('.DS_Store', 'Thumbs.db', 'desktop.ini', '__MACOSX', '.ipynb_checkpoints', '_work')
}


class InputError(ValueError):
  """The input folder cannot be converted; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where each split's class folders are: {split: root}; split UNSPLIT when there are no split
  folders. `flat_validation`: the validation root holds images, not class folders."""

  split_roots: Dict[str, str]
  flat_validation: bool = False

  @property
  def has_split_folders(self) -> bool:
    return UNSPLIT not in self.split_roots


def image_path(split_roots: Dict[str, str], ref: ImageRef) -> str:
  """The listed file's path: the same string the listing saw (`join(join(root, class), name)`); a
  manifest's absolute path or URI as it is."""
  if is_absolute(ref.key):
    return ref.key
  return join(split_roots[ref.split], *ref.key.split('/'))


def is_absolute(path: str) -> bool:
  """A URI or an absolute local path (a manifest's row may name one; a listed key never is)."""
  return is_remote(path) or os.path.isabs(path)


def input_path(split_roots: Dict[str, str], ref: ImageRef) -> str:
  """The listed file's POSIX path relative to --input (`class/file`, or `train/class/file` with split
  folders): how duplicates.jsonl and --exclude_file name a file. A manifest's rows (every split's
  root is --input): the row's path."""
  if ref.split == UNSPLIT or split_roots[ref.split] == split_roots.get(UNSPLIT):
    return ref.key
  return split_roots[ref.split].rstrip('/').rsplit('/', 1)[-1] + '/' + ref.key


def relative(path: str, base: str) -> str:
  """POSIX path of `path` relative to directory `base` (both local paths or both URLs)."""
  base = base.rstrip('/') + '/'
  if not path.startswith(base):
    raise ValueError(f'{path} is not under {base}')
  return path[len(base) :].replace('\\', '/')


def is_hidden(name: str) -> bool:
  return name.startswith('.')


def is_left_behind(name: str) -> bool:
  """A name that tools and operating systems leave in folders (module docstring): skipped."""
  return name.startswith(('.', '_')) or name.lower() in _LEFT_BEHIND_NAMES


def left_behind_kind(name: str) -> str:
  """What a left-behind entry is, for the count the run prints: its well-known name, else `._*`
  (AppleDouble), `.*` or `_*` (a bounded set: one metric counter each)."""
  if name.lower() in _LEFT_BEHIND_NAMES:
    return _LEFT_BEHIND_NAMES[name.lower()]
  return '._*' if name.startswith('._') else name[0] + '*'


def _match(pattern: str) -> List[FileMetadata]:
  try:
    return FileSystems.match([pattern])[0].metadata_list
  except Exception as e:  # BeamIOError wraps "not found", permissions and credentials errors alike.
    raise InputError(f'cannot list {pattern}: {e}') from e


class Entry(NamedTuple):
  """One entry of a folder listing.

  Attributes:
    path: its full path or URL; name: its name in the folder.
    is_folder: a sub-folder (on an object store: the first component of deeper object names).
    size: bytes of a file (0 for a folder).
    mtime_us: modification time of a file in integer microseconds since the Unix epoch, as the file
      system reports it in the listing (local: st_mtime_ns; S3/GCS: the object's last-modified time,
      S3 to the second); 0 for a folder or when the store gives none.
    problem: why the entry cannot be read as a file (its reject reason: a broken link, a FIFO, a
    name
      that is not UTF-8, ...), decided from os.stat without opening it; None when it can.
  """

  path: str
  name: str
  is_folder: bool
  size: int = 0
  mtime_us: int = 0
  problem: Optional[str] = None


def _local_entry(entry: os.DirEntry) -> Entry:
  """One os.scandir entry, stat'ed through links (transforms/inputs/input_file.py decides what is
  readable)."""
  try:
    info = entry.stat()
  except OSError as e:  # A broken link, a link loop, a file deleted meanwhile.
    return Entry(entry.path, entry.name, False, problem=stat_error_reason(e, entry.path))
  problem = stat_problem(info.st_mode, entry.is_symlink())
  if problem is None and entry.is_dir():
    return Entry(entry.path, entry.name, True)
  if problem is None and not is_utf8(entry.name):
    problem = NOT_UTF8_NAME
  return Entry(entry.path, entry.name, False, info.st_size, info.st_mtime_ns // 1000, problem)


def list_entries(directory: str) -> List[Entry]:
  """Entries directly under `directory`, hidden names excluded, sorted by name.

  Local folders are read with os.scandir (Beam's local glob does not return folders) and one stat
  per entry, through links (size, mtime and `Entry.problem`); object stores through
  FileSystems.match of `<dir>/**` (Beam's `*` does not cross '/'; its S3 and GCS listings fetch the
  whole prefix either way, with each object's size and last-modified time), where a "folder" is the
  first component of a deeper object name.

  Raises:
    InputError: the folder cannot be listed.
  """
  return [entry for entry in _scan(directory) if not is_hidden(entry.name)]


def list_input_folder(directory: str) -> Tuple[List[Entry], List[str]]:
  """(entries, names of left-behind entries) directly under a folder of --input, each sorted by name;
  `entries` holds the others (`is_left_behind`).

  Raises:
    InputError: the folder cannot be listed.
  """
  entries, left_behind = [], []
  for entry in _scan(directory):
    if is_left_behind(entry.name):
      left_behind.append(entry.name)
    else:
      entries.append(entry)
  return entries, left_behind


def _scan(directory: str) -> List[Entry]:
  """Every entry directly under `directory`, sorted by name (list_entries)."""
  entries = {}
  if not is_remote(directory):
    try:
      with os.scandir(directory) as it:
        for entry in it:
          entries[entry.name] = _local_entry(entry)
    except OSError as e:
      raise InputError(f'cannot list {escaped(directory)}: {e}') from e
  else:
    for metadata in _match(join(directory, '**')):
      rel = relative(metadata.path, directory)
      name = rel.split('/', 1)[0]
      if '/' in rel:
        entries[name] = Entry(join(directory, name), name, True)
      elif name not in entries:
        entries[name] = Entry(
          metadata.path,
          name,
          False,
          metadata.size_in_bytes,
          round((metadata.last_updated_in_seconds or 0.0) * 1e6),
        )
  return [entries[name] for name in sorted(entries) if name]


def list_children(root: str) -> Tuple[List[str], List[str]]:
  """(sub-folder names, names of other entries) directly under `root`, left-behind ones excluded,
  sorted."""
  entries = list_input_folder(root)[0]
  return [e.name for e in entries if e.is_folder], [e.name for e in entries if not e.is_folder]


def discover_layout(input_root: str, labelled_validation: bool = False) -> Layout:
  """Decides between the one-pool and the explicit-split layouts.

  Args:
    labelled_validation: --validation_ground_truth was given: a validation folder that holds images
    is
      the flat ImageNet layout even when it also holds folders (those become rejects); without it, a
      validation folder is flat only when it holds images and no folder.
  Raises:
    InputError: the input cannot be listed or has no class folders.
  """
  try:
    dirs, _ = list_children(input_root)
  except InputError as e:
    raise InputError(
      f'--input {input_root} cannot be read ({e}). Point --input at a folder of class '
      'folders (root/<class>/<image>).'
    ) from None
  validation = next((d for d in VALIDATION_DIR_NAMES if d in dirs), None)
  if TRAIN in dirs and (validation or TEST in dirs):
    roots = {TRAIN: join(input_root, TRAIN)}
    flat_validation = False
    if validation:
      roots[VALIDATION] = join(input_root, validation)
      validation_dirs, validation_files = list_children(roots[VALIDATION])
      flat_validation = bool(validation_files and (labelled_validation or not validation_dirs))
    if TEST in dirs:
      test_dirs, test_files = list_children(join(input_root, TEST))
      if test_dirs or not test_files:
        roots[TEST] = join(input_root, TEST)
      else:
        _LOGGER.warning(
          'Skipping %s: it holds %d files but no class folders (an unlabelled test '
          "set, as ImageNet's); only root/test/<class>/<image> is converted.",
          join(input_root, TEST),
          len(test_files),
        )
    return Layout(roots, flat_validation=flat_validation)
  if not dirs:
    raise InputError(
      f'--input {input_root} holds no class folders. Expected root/<class>/<image> (or '
      'root/train/<class>/... with root/validation/<class>/... and/or root/test/<class>/...).'
    )
  return Layout({UNSPLIT: input_root})


def list_class_dir(
  element: Tuple[str, str, str],
  label_map: Dict[str, int],
  label_offset: int,
  ground_truth: Optional[Dict[str, str]] = None,
) -> Iterable:
  """Lists one class folder: yields ImageRef for files, tagged rejects for everything else.

  Args:
    element: (split, split root, class name); class name '' for a flat folder labelled by
      `ground_truth` ({file stem: class name}).
    label_map: {class name: label without offset}.
  """
  split, root, synset = element
  entries, left_behind = list_input_folder(join(root, synset) if synset else root)
  for name in left_behind:
    yield beam.pvalue.TaggedOutput(LEFT_BEHIND_TAG, left_behind_kind(name))
  if not synset:
    yield from _list_flat_dir(split, entries, label_map, label_offset, ground_truth or {})
    return
  for entry in entries:
    if synset not in label_map:
      yield beam.pvalue.TaggedOutput(
        REJECTS_TAG, Reject.of(entry.path, split, f'class {synset!r} is not in --labels_file')
      )
    elif entry.is_folder:
      yield beam.pvalue.TaggedOutput(
        REJECTS_TAG,
        Reject.of(entry.path, split, 'nested folder: only root/<class>/<image> is read'),
      )
    elif entry.problem:
      yield beam.pvalue.TaggedOutput(REJECTS_TAG, Reject.of(entry.path, split, entry.problem))
    else:
      yield ImageRef(
        split,
        label_map[synset] + label_offset,
        synset,
        f'{synset}/{entry.name}',
        entry.size,
        entry.mtime_us,
      )


def _list_flat_dir(
  split: str,
  entries: List[Entry],
  label_map: Dict[str, int],
  label_offset: int,
  ground_truth: Dict[str, str],
) -> Iterable:
  for entry in entries:
    synset = ground_truth.get(entry.name.rsplit('.', 1)[0])
    if entry.is_folder:
      reason = 'folder inside a flat validation folder'
    elif entry.problem:
      reason = entry.problem
    elif synset is None:
      reason = 'no ground-truth label for this file in --validation_ground_truth'
    elif synset not in label_map:
      reason = f'ground-truth class {synset!r} is not in the label map'
    else:
      yield ImageRef(
        split, label_map[synset] + label_offset, synset, entry.name, entry.size, entry.mtime_us
      )
      continue
    yield beam.pvalue.TaggedOutput(REJECTS_TAG, Reject.of(entry.path, split, reason))


class Listed(NamedTuple):
  """ListImages' outputs: ImageRefs, and Rejects (the class folders' and `loose_files`)."""

  images: beam.PCollection
  rejects: beam.PCollection


def _count_left_behind(kind: str) -> None:
  Metrics.counter(METRICS_NAMESPACE, LEFT_BEHIND_COUNTER + kind).inc()


class ListImages(beam.PTransform):
  """Class folders -> ImageRef per image (`images`) and reject dicts (`rejects`), as `Listed`.

  Folders of classes missing from the label map are listed too, so their files appear as rejects.
  Left-behind entries of the class folders are counted in the metric counters
  'left behind: <kind>' (namespace METRICS_NAMESPACE).
  """

  def __init__(
    self,
    layout: Layout,
    class_dirs: Dict[str, List[str]],
    label_map: Dict[str, int],
    label_offset: int,
    ground_truth: Optional[Dict[str, str]] = None,
    loose_files: Iterable[Reject] = (),
  ):
    """`loose_files`: Rejects the driver found beside the class folders (InputSurvey)."""
    super().__init__()
    self._loose_files = list(loose_files)
    self._ground_truth = ground_truth
    self._elements = sorted(
      (split, layout.split_roots[split], synset)
      for split, synsets in class_dirs.items()
      for synset in synsets
    )
    self._label_map = label_map
    self._label_offset = label_offset

  def expand(self, pbegin):
    listed = (
      pbegin
      | 'ClassFolders' >> beam.Create(self._elements)
      | 'SpreadFolders' >> beam.Reshuffle()
      | 'ListClassFolder'
      >> beam.FlatMap(list_class_dir, self._label_map, self._label_offset, self._ground_truth)
      .with_output_types(ImageRef)
      .with_outputs(REJECTS_TAG, LEFT_BEHIND_TAG, main='images')
    )
    _ = listed[LEFT_BEHIND_TAG] | 'CountLeftBehind' >> beam.Map(_count_left_behind)
    loose = pbegin | 'LooseFiles' >> beam.Create(self._loose_files)
    rejects = (listed[REJECTS_TAG], loose) | 'ListingRejects' >> beam.Flatten()
    return Listed(listed.images, rejects)
