"""tf.train.Example records, built with TensorFlow's own protos.

Feature keys are those of TF's ``build_imagenet_data.py`` (tensorflow/models, research/inception), which
TF Model Garden's classification decoder (``image/encoded``, ``image/class/label``), TFDS and most
ImageNet readers expect. Records are serialized with ``deterministic=True`` so the same input gives the
same bytes on every run and every runner.

TensorFlow is imported on first use, not at module import, so the command line and the driver start fast;
each worker pays the import once.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence, Tuple

FEATURE_KEYS = (
    'image/encoded', 'image/format', 'image/height', 'image/width', 'image/channels',
    'image/colorspace', 'image/filename', 'image/class/label', 'image/class/synset',
    'image/class/text', 'image/object/bbox/xmin', 'image/object/bbox/ymin', 'image/object/bbox/xmax',
    'image/object/bbox/ymax', 'image/object/bbox/label')


@functools.lru_cache(maxsize=None)
def _example_pb2():
  from tensorflow.core.example import example_pb2  # pylint: disable=import-outside-toplevel
  return example_pb2


def build_example(encoded: bytes, height: int, width: int, filename: str, label: int, synset: str,
                  text: Optional[str] = None,
                  boxes: Optional[Sequence[Tuple[float, float, float, float]]] = None) -> bytes:
  """Serializes one image as a tf.train.Example.

  Args:
    encoded: JPEG bytes of an RGB image.
    height, width: its size in pixels.
    filename: path relative to the split's root, stored as UTF-8.
    label: integer class id (label_offset already added).
    synset: the class directory name (an ImageNet synset such as n01440764, or any class name).
    text: optional human-readable class name for ``image/class/text``.
    boxes: optional bounding boxes (xmin, ymin, xmax, ymax) normalised to the stored image, written
      as ``image/object/bbox/*`` with the image's label, as build_imagenet_data.py does.
  Returns:
    The deterministic serialization of the Example.
  """
  example = _example_pb2().Example()
  feature = example.features.feature
  feature['image/encoded'].bytes_list.value.append(encoded)
  feature['image/format'].bytes_list.value.append(b'JPEG')
  feature['image/height'].int64_list.value.append(height)
  feature['image/width'].int64_list.value.append(width)
  feature['image/channels'].int64_list.value.append(3)
  feature['image/colorspace'].bytes_list.value.append(b'RGB')
  feature['image/filename'].bytes_list.value.append(filename.encode('utf-8'))
  feature['image/class/label'].int64_list.value.append(label)
  feature['image/class/synset'].bytes_list.value.append(synset.encode('utf-8'))
  if text is not None:
    feature['image/class/text'].bytes_list.value.append(text.encode('utf-8'))
  if boxes is not None:
    for i, key in enumerate(('xmin', 'ymin', 'xmax', 'ymax')):
      feature[f'image/object/bbox/{key}'].float_list.value.extend(box[i] for box in boxes)
    feature['image/object/bbox/label'].int64_list.value.extend([label] * len(boxes))
  return example.SerializeToString(deterministic=True)
