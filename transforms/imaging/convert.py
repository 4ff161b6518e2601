"""One input file to one record: the shard writer's per-file conversion, which the driver's samples
(transforms/split/sample.py) use too, so both give the same bytes.

`convert_file` processes the image (transforms/imaging/image.py `process_image`: decode, orient,
RGB, resize, crop, JPEG), moves its --bbox_dir boxes onto the stored image and serializes the
tf.train.Example (transforms/imaging/example.py). A file that gives no record is a `Rejected` with
the reason rejects.jsonl gives, and the run goes on; reading the bytes is the caller's
(transforms/inputs/input_file.py `read_input`), and `read_reason` words its errors.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Union

from transforms.imaging import example, image
from transforms.inputs import imagenet
from transforms.output import file_format as file_formats
from transforms.inputs.input_file import DEFAULT_MAX_FILE_BYTES, InputFileError
from transforms.metadata.reject_reasons import INTERNAL_ERROR
from transforms.split.sharding import ImageRef


@dataclasses.dataclass(frozen=True)
class RecordRecipe:
  """How a file becomes a record (the flags and files WriteShards is given).

  Attributes:
    split_roots: {listing split: root folder} (Layout.split_roots).
    spec: the image flags.
    file_format: --file_format, a name of transforms/output/file_format.py.
    compression: --compression.
    class_texts: {synset: text} for image/class/text, or None.
    bbox_dir: --bbox_dir, or None.
    max_file_bytes: --max_file_bytes (transforms/inputs/input_file.py `read_input`).
  """

  split_roots: Dict[str, str]
  spec: image.ImageSpec
  file_format: str = file_formats.FileFormat.TFRECORD
  compression: str = 'none'
  class_texts: Optional[Dict[str, str]] = None
  bbox_dir: Optional[str] = None
  max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


@dataclasses.dataclass(frozen=True)
class Converted:
  """A file's record.

  Attributes:
    record: the serialized tf.train.Example.
    image: the stored image it holds (size, pixel sums, pHashes).
    boxes_error: why the file's --bbox_dir annotation was ignored (stored without boxes), or None.
  """

  record: bytes
  image: image.ProcessedImage
  boxes_error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Rejected:
  """A file that gives no record.

  Attributes:
    reason: rejects.jsonl's reason (transforms/metadata/reject_reasons.py).
    error: the exception of an internal error (a bug, `INTERNAL_ERROR`), for the log; else None.
  """

  reason: str
  error: Optional[BaseException] = None


def read_reason(error: OSError) -> str:
  """The reject reason of a file that `read_input` could not read."""
  if isinstance(error, InputFileError):
    return error.reason
  return f'cannot read the file ({type(error).__name__}: {error})'


def convert_file(ref: ImageRef, data: bytes, recipe: RecordRecipe) -> Union[Converted, Rejected]:
  """The record of a listed file whose bytes are `data`, or why it gives none.

  Never raises for one file's content: an image that does not decode is rejected with its reason,
  and any other error is an internal error, rejected with `error` set.
  """
  try:
    stored = image.process_image(data, recipe.spec)
    boxes, boxes_error = _boxes(ref, stored, recipe)
    texts = recipe.class_texts or {}
    record = example.build_example(
      stored.encoded,
      stored.height,
      stored.width,
      ref.key,
      ref.label,
      ref.synset,
      texts.get(ref.synset),
      boxes,
      stored.phash,
    )
  except image.ImageRejected as e:
    return Rejected(e.reason)
  except Exception as e:  # pylint: disable=broad-except  (a bug must not end an hour of work)
    return Rejected(f'{INTERNAL_ERROR}: {image.describe_error(e)}', e)
  return Converted(record, stored, boxes_error)


def _boxes(ref: ImageRef, stored: image.ProcessedImage, recipe: RecordRecipe):
  """(the file's VOC boxes moved onto the stored image, None), or (None, None) without --bbox_dir,
  or ([], why) when its annotation cannot be read."""
  if not recipe.bbox_dir:
    return None, None
  try:
    boxes = imagenet.read_boxes(recipe.bbox_dir, ref.synset, ref.key) or []
  except imagenet.AnnotationError as e:
    return [], str(e)
  return imagenet.map_boxes(boxes, stored.orientation, stored.crop), None
