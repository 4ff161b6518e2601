"""ImageNet's own file formats: validation ground truth, synset texts and Pascal VOC bounding boxes.

* A flat validation folder (ILSVRC2012_val_00000001.JPEG, ...) gets its labels from either
  ``LOC_val_solution.csv`` (Kaggle's ILSVRC release: ``ImageId,PredictionString``, the first word
  of the prediction string is the synset) or ``ILSVRC2012_validation_ground_truth.txt`` (devkit:
  line i is the 1-based class ID of image i) together with a synset list (line k is the synset of
  ID k), or a file with one synset per line in image order (as tensorflow/models'
  imagenet_2012_validation_synset_labels.txt).
* ``synset_words.txt`` / ``LOC_synset_mapping.txt`` / ``imagenet_metadata.txt`` map a synset to its
  human-readable text (``n01440764 tench, Tinca tinca``) for ``image/class/text``.
* Bounding boxes come from Pascal VOC XML files (``Annotation/<synset>/<stem>.xml`` for train,
  ``<stem>.xml`` for validation) and are stored as build_imagenet_data.py does
  (``image/object/bbox/{xmin,ymin,xmax,ymax}`` normalised to [0, 1], ``image/object/bbox/label``),
  but in the coordinates of the stored image: moved through the EXIF orientation and the centre
  crop, clipped, and dropped when nothing of them is left.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Optional, Sequence, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.inputs.input_file import DEFAULT_MAX_FILE_BYTES, InputFileError, read_input

Box = Tuple[float, float, float, float]  # (xmin, ymin, xmax, ymax), normalised to [0, 1].
_SYNSET = re.compile(r'^n\d{8}$')


class AnnotationError(ValueError):
  """An ImageNet metadata file cannot be used; the message says which and why."""


def read_text(path: str) -> str:
  try:
    with FileSystems.open(path) as f:
      return f.read().decode('utf-8')
  except Exception as e:
    raise AnnotationError(f'cannot read {path}: {e}') from e


def _validation_stem(index: int) -> str:
  return f'ILSVRC2012_val_{index:08d}'


def read_ground_truth(path: str, synsets_path: Optional[str] = None) -> Dict[str, str]:
  """{image file stem: synset} for a flat validation folder.

  Raises:
    AnnotationError: unknown format, or class IDs without a synset list.
  """
  text = read_text(path)
  first = text.lstrip().split('\n', 1)[0]
  if first.startswith('ImageId'):
    rows = csv.DictReader(io.StringIO(text))
    return {
      row['ImageId']: row['PredictionString'].split()[0]
      for row in rows
      if row.get('PredictionString')
    }
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if all(_SYNSET.match(line) for line in lines):
    return {_validation_stem(i): synset for i, synset in enumerate(lines, start=1)}
  if not all(line.isdigit() for line in lines):
    raise AnnotationError(
      f'{path}: expected LOC_val_solution.csv, one class ID per line, or one synset per line.'
    )
  if not synsets_path:
    raise AnnotationError(
      f'{path} holds class IDs: also pass --ground_truth_synsets (the synset '
      'list whose line k is the synset of ID k, e.g. LOC_synset_mapping.txt).'
    )
  synsets = [line.split()[0] for line in read_text(synsets_path).splitlines() if line.strip()]
  try:
    return {_validation_stem(i): synsets[int(line) - 1] for i, line in enumerate(lines, start=1)}
  except IndexError:
    raise AnnotationError(
      f'{path} has class IDs beyond the {len(synsets)} lines of {synsets_path}'
    ) from None


def read_class_texts(path: str) -> Dict[str, str]:
  """{synset: human-readable text} from lines 'synset<whitespace>text'."""
  texts = {}
  for line in read_text(path).splitlines():
    parts = line.strip().split(None, 1)
    if len(parts) == 2:
      texts[parts[0]] = parts[1]
  if not texts:
    raise AnnotationError(f'{path} has no "synset text" lines.')
  return texts


def parse_voc_xml(data: bytes) -> List[Box]:
  """Boxes of a Pascal VOC annotation, normalised by its <size> (the stored pixels' frame).

  Raises:
    AnnotationError: not VOC XML, or no usable size.
  """
  try:
    root = ElementTree.fromstring(data)
    width = float(root.findtext('size/width'))
    height = float(root.findtext('size/height'))
  except (ElementTree.ParseError, TypeError, ValueError) as e:
    raise AnnotationError(f'not a Pascal VOC annotation ({e})') from None
  if width <= 0 or height <= 0:
    raise AnnotationError(f'annotation size {width}x{height} is empty')
  boxes = []
  for box in root.iter('bndbox'):
    xmin, ymin, xmax, ymax = (float(box.findtext(k)) for k in ('xmin', 'ymin', 'xmax', 'ymax'))
    boxes.append(
      (_clip(xmin / width), _clip(ymin / height), _clip(xmax / width), _clip(ymax / height))
    )
  return boxes


def _clip(value: float) -> float:
  return min(1.0, max(0.0, value))


def _orient_point(x: float, y: float, orientation: int) -> Tuple[float, float]:
  """Where a normalised stored-frame point lands once EXIF `orientation` is applied (EXIF 2.32 4.6.4)."""
  return {
    1: (x, y),
    2: (1 - x, y),
    3: (1 - x, 1 - y),
    4: (x, 1 - y),
    5: (y, x),
    6: (1 - y, x),
    7: (1 - y, 1 - x),
    8: (y, 1 - x),
  }[orientation]


def map_boxes(boxes: Sequence[Box], orientation: int, crop: Box) -> List[Box]:
  """Moves boxes from the stored frame of the input file to the stored output image.

  Args:
    boxes: normalised boxes in the input file's pixel frame (as VOC annotations give them).
    orientation: the input's EXIF orientation (1-8).
    crop: the region of the upright image that became the output, normalised.
  Returns:
    Normalised boxes of the output image, clipped; boxes left empty by the crop are dropped.
  """
  left, top, right, bottom = crop
  mapped = []
  for xmin, ymin, xmax, ymax in boxes:
    (x0, y0), (x1, y1) = (
      _orient_point(xmin, ymin, orientation),
      _orient_point(xmax, ymax, orientation),
    )
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, x1 = (_clip((x - left) / (right - left)) for x in (x0, x1))
    y0, y1 = (_clip((y - top) / (bottom - top)) for y in (y0, y1))
    if x1 > x0 and y1 > y0:
      mapped.append((x0, y0, x1, y1))
  return mapped


def annotation_paths(bbox_dir: str, synset: str, filename: str) -> List[str]:
  """Where a file's VOC annotation may be: <bbox_dir>/<synset>/<stem>.xml, then <bbox_dir>/<stem>.xml."""
  stem = filename.rsplit('/', 1)[-1].rsplit('.', 1)[0]
  return [
    FileSystems.join(bbox_dir, synset, stem + '.xml'),
    FileSystems.join(bbox_dir, stem + '.xml'),
  ]


def read_boxes(bbox_dir: str, synset: str, filename: str) -> Optional[List[Box]]:
  """The file's annotation boxes, or None when it has no annotation file.

  Raises:
    AnnotationError: the annotation file is not a regular file, is larger than
      DEFAULT_MAX_FILE_BYTES, or cannot be parsed (transforms/inputs/input_file.py reads it).
  """
  for path in annotation_paths(bbox_dir, synset, filename):
    if FileSystems.exists(path):
      try:
        data = read_input(path, DEFAULT_MAX_FILE_BYTES)
      except InputFileError as e:
        raise AnnotationError(f'{path}: {e.reason}') from None
      return parse_voc_xml(data)
  return None
