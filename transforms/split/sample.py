"""The driver's look at a few input files before the graph runs: a deterministic, stratified sample,
converted by the shard writer's own `convert_file` (transforms/imaging/convert.py).

Users: every run with an automatic shard count (pipeline/graph.py `plan_dataset`: RUN_SAMPLE_SIZE
files give the planned bytes per file, transforms/split/shard_count.py), which must give the same
count on every run of the same input and flags; and the plan (pipeline/plan.py, --plan_sample
files). Strata are the listing's folders (split, split root, class folder). With at most `size`
folders each gives one file and the rest go in proportion to their file counts (`allocate`); with
more, the `size` folders of smallest stable_hash(seed, 'sample', split, folder) give one each
(`pick_folders`). In a folder, the files of smallest stable_hash(seed, 'sample', key) are taken: not
the validation files, which come first in transforms/split/sharding.py's 'order' hash. A sampled
file's planned bytes are its record as written (the serialized Example plus the container's framing;
with gzip, times the sample's gzip fraction), 0 for a reject; bytes per listed file are the
stratified mean sum(N_h * mean_h) / sum(N_h). Listing and reading use a thread pool (THREADS);
converting runs on the calling thread, timed with its CPU clock.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import apache_beam as beam

from transforms.imaging import example
from transforms.output import file_format as file_formats
from transforms.imaging.convert import RecordRecipe, Rejected, convert_file, read_reason
from transforms.inputs.input_file import read_input
from transforms.inputs.listing import LEFT_BEHIND_TAG, REJECTS_TAG, image_path, list_class_dir
from transforms.records import Reject
from transforms.split.sharding import ImageRef, stable_hash

RUN_SAMPLE_SIZE = 32  # files a run converts on the driver for its automatic shard counts
THREADS = 16  # concurrent folder listings and file reads
# the stable_hash domain of the sample; never 'order' (transforms/split/sharding.py)
SAMPLE_TAG = 'sample'
Folder = Tuple[str, str, str]  # (split, split root, class folder; '' for a flat validation folder)


@dataclasses.dataclass(frozen=True)
class FolderListing:
  """One listed folder: what ListImages' ListClassFolder step yields for it.

  Attributes:
    folder: (split, split root, class folder).
    refs: its images, in listing order.
    rejects: Rejects of its entries that are no image of a listed class (nested folders, ...).
    left_behind: the `listing.left_behind_kind` of each entry it skipped.
  """

  folder: Folder
  refs: Tuple[ImageRef, ...]
  rejects: Tuple[Reject, ...]
  left_behind: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SampledFile:
  """One sampled file, converted.

  Attributes:
    stratum: index of its folder in the sample's listings.
    ref: the listed file.
    record_bytes: bytes of its serialized Example; 0 when rejected.
    reason: why it was rejected (the shard writer's words), None when it gave a record.
    cpu_seconds: CPU time of this thread converting it (process_image and the Example), seconds.
  """

  stratum: int
  ref: ImageRef
  record_bytes: int
  reason: Optional[str]
  cpu_seconds: float


@dataclasses.dataclass(frozen=True)
class ConvertedSample:
  """Sampled and converted files with the listings they were drawn from.

  Attributes:
    listings: the listed folders (the strata).
    files: the converted files, in folder order, hash order inside a folder.
    record_overhead: framing bytes the container adds to each record.
    compressed_fraction: the gzip fraction of the sample's records (1.0 without --compression).
  """

  listings: Tuple[FolderListing, ...]
  files: Tuple[SampledFile, ...]
  record_overhead: int
  compressed_fraction: float = 1.0

  def planned_bytes(self, sampled: SampledFile) -> float:
    """The file's bytes in the output: its framed record (compressed), 0 for a reject."""
    if sampled.reason is not None:
      return 0.0
    return (sampled.record_bytes + self.record_overhead) * self.compressed_fraction

  def stratum_means(self) -> Dict[int, float]:
    """{stratum: mean planned bytes of its sampled files}, for the strata with a sampled file."""
    totals: Dict[int, List[float]] = {}
    for sampled in self.files:
      totals.setdefault(sampled.stratum, []).append(self.planned_bytes(sampled))
    return {h: sum(values) / len(values) for h, values in totals.items()}

  def file_bytes(self) -> int:
    """Planned output bytes per listed file, the stratified mean (module docstring), rounded to
    whole bytes (so that what AssignSplitShard computes from it is integer arithmetic); 0 when
    nothing was sampled."""
    means = self.stratum_means()
    weights = {h: len(self.listings[h].refs) for h in means}
    total = sum(weights.values())
    return round(sum(weights[h] * means[h] for h in means) / total) if total else 0


def folders_of(split_roots: Dict[str, str], class_dirs: Dict[str, List[str]]) -> List[Folder]:
  """Every folder the listing reads, sorted as ListImages creates them."""
  return sorted(
    (split, split_roots[split], synset)
    for split, synsets in class_dirs.items()
    for synset in synsets
  )


def pick_folders(folders: Sequence[Folder], size: int, seed: int) -> List[Folder]:
  """All `folders` when they are at most `size`, else the `size` of smallest sample hash (sorted)."""
  if len(folders) <= size:
    return list(folders)
  chosen = sorted(folders, key=lambda f: (stable_hash(seed, SAMPLE_TAG, f[0], f[2]), f))[:size]
  return sorted(chosen)


def list_folders(
  folders: Sequence[Folder],
  label_map: Dict[str, int],
  label_offset: int,
  ground_truth: Optional[Dict[str, str]] = None,
) -> List[FolderListing]:
  """Lists `folders` as ListImages does (listing.list_class_dir), concurrently, in `folders` order.

  Raises:
    InputError: a folder cannot be listed.
  """

  def list_one(folder: Folder) -> FolderListing:
    refs, tagged = [], {REJECTS_TAG: [], LEFT_BEHIND_TAG: []}
    for item in list_class_dir(folder, label_map, label_offset, ground_truth):
      if isinstance(item, beam.pvalue.TaggedOutput):
        tagged[item.tag].append(item.value)
      else:
        refs.append(item)
    return FolderListing(
      folder, tuple(refs), tuple(tagged[REJECTS_TAG]), tuple(tagged[LEFT_BEHIND_TAG])
    )

  with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
    return list(pool.map(list_one, folders))


def allocate(sizes: Sequence[int], size: int) -> List[int]:
  """Files to sample from strata of `sizes` files: all of them when they hold at most `size`; else one
  from every non-empty stratum (so more than `size` when more strata than `size` are non-empty) and
  the rest in proportion to the files not yet taken (Hamilton's largest remainders, ties to the
  earlier stratum)."""
  population = sum(sizes)
  if population <= size:
    return list(sizes)
  counts = [min(n, 1) for n in sizes]
  rest, weights = size - sum(counts), [n - c for n, c in zip(sizes, counts)]
  if rest <= 0:
    return counts
  total = sum(weights)
  counts = [c + w * rest // total for c, w in zip(counts, weights)]
  # Remainders scaled by `total` (integers): w * rest mod total, largest first.
  order = sorted(range(len(sizes)), key=lambda i: (-(weights[i] * rest % total), i))
  for i in order[: size - sum(counts)]:
    counts[i] += 1
  return counts


def pick_files(refs: Sequence[ImageRef], count: int, seed: int) -> List[ImageRef]:
  """The `count` files of smallest sample hash."""
  return sorted(refs, key=lambda ref: (stable_hash(seed, SAMPLE_TAG, ref.key), ref.key))[:count]


def draw(listings: Sequence[FolderListing], size: int, seed: int) -> List[Tuple[int, ImageRef]]:
  """(stratum, file) of the sample of `size` files from `listings` (module docstring)."""
  counts = allocate([len(listing.refs) for listing in listings], size)
  return [
    (h, ref)
    for h, (listing, count) in enumerate(zip(listings, counts))
    for ref in pick_files(listing.refs, count, seed)
  ]


def convert(
  listings: Sequence[FolderListing], drawn: Sequence[Tuple[int, ImageRef]], recipe: RecordRecipe
) -> ConvertedSample:
  """Reads (concurrently) and converts (on this thread) the drawn files as the shard writer would."""
  example.example_class()  # Built once, before any timing.
  shard_format = file_formats.get(recipe.file_format)
  paths = [image_path(recipe.split_roots, ref) for _, ref in drawn]
  files, records = [], []
  read = functools.partial(_read, max_bytes=recipe.max_file_bytes)
  sizes = [ref.size for _, ref in drawn]
  with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
    for (stratum, ref), data in zip(drawn, pool.map(read, paths, sizes)):
      record, reason, seconds = _record(ref, data, recipe)
      files.append(SampledFile(stratum, ref, len(record or b''), reason, seconds))
      records += [record] if record is not None else []
  fraction = file_formats.gzip_fraction(records) if recipe.compression == 'gzip' else 1.0
  return ConvertedSample(
    tuple(listings), tuple(files), shard_format.record_overhead_bytes, fraction
  )


def run_sample(
  folders: Sequence[Folder],
  label_map: Dict[str, int],
  label_offset: int,
  ground_truth: Optional[Dict[str, str]],
  recipe: RecordRecipe,
  seed: int,
  size: int = RUN_SAMPLE_SIZE,
) -> ConvertedSample:
  """A run's sample: at most `size` folders listed (`pick_folders`, among the folders of classes in
  the label map and flat folders: the others hold only rejects), `size` files converted.

  Raises:
    InputError: a picked folder cannot be listed.
  """
  start = time.monotonic()
  labelled = [folder for folder in folders if not folder[2] or folder[2] in label_map]
  listings = list_folders(pick_folders(labelled, size, seed), label_map, label_offset, ground_truth)
  sample = convert(listings, draw(listings, size, seed), recipe)
  logging.getLogger(__name__).info(
    'Sampled %d files of %d folders in %.2f s: %d bytes a file planned for the shard counts.',
    len(sample.files),
    len(listings),
    time.monotonic() - start,
    sample.file_bytes(),
  )
  return sample


def _read(path: str, size: int, max_bytes: int) -> Union[bytes, OSError]:
  try:
    return read_input(path, max_bytes, size)
  except OSError as e:
    return e


def _record(
  ref: ImageRef, data: Union[bytes, OSError], recipe: RecordRecipe
) -> Tuple[Optional[bytes], Optional[str], float]:
  """(the file's serialized Example or None, the reject reason or None, CPU seconds of
  `convert_file`)."""
  if isinstance(data, OSError):
    return None, read_reason(data), 0.0
  start = time.thread_time()
  converted = convert_file(ref, data, recipe)
  seconds = time.thread_time() - start
  if isinstance(converted, Rejected):
    return None, converted.reason, seconds
  return converted.record, None, seconds
