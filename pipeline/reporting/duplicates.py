"""The report's duplicates section (pipeline/report.py): the closest pairs across splits, side by
side.

From duplicates.jsonl (transforms/duplicates/near.py), the groups whose stored files are in two
different splits (leakage), closest first (exact groups, then near groups by the Hamming distance of
the pair shown); of each, the first stored file and the first stored file of another split are
shown, decoded from the shards' own `image/encoded` as the contact sheet is. duplicates.jsonl is
read one line at a time, keeping only the closest groups; only the shards of the splits involved are
read, and reading stops once every wanted record is found.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from pipeline.checks.duplicates_check import iter_groups
from transforms.output import file_format as file_formats
from transforms.output import layout
from transforms.imaging.example import parse_example

MAX_PAIRS = 6  # pairs shown


@dataclasses.dataclass
class DuplicatePair:
  """Two stored files of one duplicates.jsonl group, in different splits.

  Attributes:
    kind: 'exact' or 'near' (the group's); distance: Hamming distance of their image/phash in bits
      (the second file's distance to the group's first; None when not known).
    files: ((split, path relative to --input), ...) of the two.
    images: their decoded stored images, uint8 [H, W, 3] (None when a record was not found).
  """

  kind: str
  distance: Optional[int]
  files: Tuple[Tuple[str, str], Tuple[str, str]]
  images: List[Optional[np.ndarray]] = dataclasses.field(default_factory=lambda: [None, None])

  def caption(self) -> str:
    (split_a, path_a), (split_b, path_b) = self.files
    return f'{self.kind}, {self.distance} bits: {path_a} ({split_a})  |  {path_b} ({split_b})'


def closest_cross_split_pairs(
  lines: Iterable[Dict], max_pairs: int = MAX_PAIRS
) -> List[DuplicatePair]:
  """The closest `max_pairs` groups whose stored files span two splits: of each, its first stored
  file and the first stored file in another split. Holds only `max_pairs` groups at a time."""

  def pairs() -> Iterator[Tuple[Tuple, int, DuplicatePair]]:
    for number, line in enumerate(lines):
      stored = [f for f in line['files'] if f.get('stored')]
      other = (
        next((f for f in stored[1:] if f['split'] != stored[0]['split']), None) if stored else None
      )
      if other is not None:
        distance = other.get('distance')
        key = (line['kind'] != 'exact', distance is None, distance or 0)
        yield (
          key,
          number,
          DuplicatePair(
            line['kind'],
            distance,
            ((stored[0]['split'], stored[0]['path']), (other['split'], other['path'])),
          ),
        )

  return [pair for _, _, pair in heapq.nsmallest(max_pairs, pairs(), key=lambda item: item[:2])]


def read_pair_images(
  output: layout.OutputLayout,
  manifest: Dict,
  pairs: List[DuplicatePair],
  decode: Callable[[bytes], np.ndarray],
) -> None:
  """Fills each pair's `images` from the shards (records found by split and image/filename: the
  input-relative path, or it without the split folder)."""
  wanted: Dict[Tuple[str, str], List[Tuple[DuplicatePair, int]]] = {}
  for pair in pairs:
    for i, (split, path) in enumerate(pair.files):
      for name in (path, path.split('/', 1)[-1]):
        wanted.setdefault((split, name), []).append((pair, i))
  splits = sorted({split for split, _ in wanted})
  shard_format = file_formats.of_manifest(manifest)
  for split in splits:
    for shard in manifest['splits'].get(split, {}).get('shards', []):
      if all(image is not None for pair in pairs for image in pair.images):
        return
      with contextlib.closing(
        shard_format.read(output.path(shard['file']), manifest.get('compression', 'none'))
      ) as records:
        for data in records:
          example = parse_example(data)
          for pair, i in wanted.get((split, example.filename), ()):
            pair.images[i] = decode(example.encoded)


def pairs_sheet(
  pairs: Sequence[DuplicatePair],
  tile: Callable[[np.ndarray], np.ndarray],
  tile_pixels: int,
  gap: int,
  background: int,
) -> np.ndarray:
  """uint8 [H, W, 3]: one row per pair, its two images as tiles side by side."""
  height = len(pairs) * (tile_pixels + gap) + gap
  width = 2 * (tile_pixels + gap) + gap
  sheet = np.full((height, width, 3), background, np.uint8)
  for r, pair in enumerate(pairs):
    for c, image in enumerate(pair.images):
      if image is not None:
        y, x = gap + r * (tile_pixels + gap), gap + c * (tile_pixels + gap)
        sheet[y : y + tile_pixels, x : x + tile_pixels] = tile(image)
  return sheet


def read_duplicate_pairs(
  output: layout.OutputLayout,
  manifest: Dict,
  decode: Callable[[bytes], np.ndarray],
  max_pairs: int = MAX_PAIRS,
) -> List[DuplicatePair]:
  """The closest cross-split pairs of an output with their images; [] without duplicates.jsonl."""
  path = output.path(layout.DUPLICATES_FILE)
  try:
    pairs = closest_cross_split_pairs((line for _, line in iter_groups(path)), max_pairs)
  except Exception:  # pylint: disable=broad-except  (an output of an earlier version, or not JSON)
    return []
  read_pair_images(output, manifest, pairs, decode)
  return pairs
