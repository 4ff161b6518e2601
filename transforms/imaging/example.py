"""tf.train.Example records, in the schema of TensorFlow's protos.

Feature keys are those of TF's ``build_imagenet_data.py`` (tensorflow/models, research/inception),
which TF Model Garden's classification decoder (``image/encoded``, ``image/class/label``), TFDS and
most ImageNet readers expect. Records are serialized with ``deterministic=True`` so the same input
gives the same bytes on every run and every runner.

The message classes come from the protobuf library, built from the field layout of TensorFlow's
``tensorflow/core/example/{example,feature}.proto`` in a private descriptor pool, so the per-image
path never imports TensorFlow (a heavy import on every worker). The wire format is the same by
construction; tests/test_example.py checks byte equality with ``tf.train.Example``. `build_example`
writes a record; `parse_example` is the one reader of them (verify, report, the readers).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, List, Optional, Sequence, Tuple

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

FEATURE_KEYS = (
  'image/encoded',
  'image/format',
  'image/height',
  'image/width',
  'image/channels',
  'image/colorspace',
  'image/filename',
  'image/class/label',
  'image/class/synset',
  'image/class/text',
  'image/object/bbox/xmin',
  'image/object/bbox/ymin',
  'image/object/bbox/xmax',
  'image/object/bbox/ymax',
  'image/object/bbox/label',
  'image/phash',
)
_F = descriptor_pb2.FieldDescriptorProto
MULTI_LABEL_END = '\n'  # ends each label of a `multi_label_synset`


def _message(file, name, fields, nested=(), oneof=None):
  message = (
    file.message_type.add(name=name)
    if file is not None
    else descriptor_pb2.DescriptorProto(name=name)
  )
  for nested_message in nested:
    message.nested_type.add().CopyFrom(nested_message)
  if oneof:
    message.oneof_decl.add(name=oneof)
  for field_name, number, label, kind, type_name in fields:
    field = message.field.add(name=field_name, number=number, label=label, type=kind)
    if type_name:
      field.type_name = type_name
    if oneof:
      field.oneof_index = 0
  return message


@functools.lru_cache(maxsize=None)
def example_class():
  """The tf.train.Example message class (proto3, package tensorflow), without TensorFlow."""
  file = descriptor_pb2.FileDescriptorProto(
    name='folder2tfrecord/tf_example.proto', package='tensorflow', syntax='proto3'
  )
  repeated, optional = _F.LABEL_REPEATED, _F.LABEL_OPTIONAL
  _message(file, 'BytesList', [('value', 1, repeated, _F.TYPE_BYTES, None)])
  _message(file, 'FloatList', [('value', 1, repeated, _F.TYPE_FLOAT, None)])
  _message(file, 'Int64List', [('value', 1, repeated, _F.TYPE_INT64, None)])
  _message(
    file,
    'Feature',
    [
      ('bytes_list', 1, optional, _F.TYPE_MESSAGE, '.tensorflow.BytesList'),
      ('float_list', 2, optional, _F.TYPE_MESSAGE, '.tensorflow.FloatList'),
      ('int64_list', 3, optional, _F.TYPE_MESSAGE, '.tensorflow.Int64List'),
    ],
    oneof='kind',
  )
  entry = _message(
    None,
    'FeatureEntry',
    [
      ('key', 1, optional, _F.TYPE_STRING, None),
      ('value', 2, optional, _F.TYPE_MESSAGE, '.tensorflow.Feature'),
    ],
  )
  entry.options.map_entry = True
  _message(
    file,
    'Features',
    [('feature', 1, repeated, _F.TYPE_MESSAGE, '.tensorflow.Features.FeatureEntry')],
    nested=[entry],
  )
  _message(file, 'Example', [('features', 1, optional, _F.TYPE_MESSAGE, '.tensorflow.Features')])
  pool = descriptor_pool.DescriptorPool()
  pool.Add(file)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName('tensorflow.Example'))


def multi_label_synset(labels: Sequence[Tuple[int, str]]) -> str:
  """A multi-label image's `synset` as the shard writer passes it to `build_example`: `id:name\\n`
  per (label, class name), in label order (a class name never holds a newline: labels.txt)."""
  return ''.join(f'{label}:{name}{MULTI_LABEL_END}' for label, name in labels)


def multi_labels(synset: str) -> Optional[Tuple[List[int], List[str]]]:
  """(labels, class names) of a `multi_label_synset`; None for one class name."""
  if MULTI_LABEL_END not in synset:
    return None
  pairs = [item.split(':', 1) for item in synset.split(MULTI_LABEL_END)[:-1]]
  return [int(label) for label, _ in pairs], [name for _, name in pairs]


def class_names_of(synset: str) -> List[str]:
  """The class names a `synset` stands for: the names of a multi-label one, else itself."""
  multi = multi_labels(synset)
  return multi[1] if multi else [synset]


def build_example(
  encoded: bytes,
  height: int,
  width: int,
  filename: str,
  label: int,
  synset: str,
  text: Optional[str] = None,
  boxes: Optional[Sequence[Tuple[float, float, float, float]]] = None,
  phash: Optional[int] = None,
) -> bytes:
  """Serializes one image as a tf.train.Example.

  Args:
    encoded: JPEG bytes of an RGB image.
    height, width: its size in pixels.
    filename: path relative to the split's root, stored as UTF-8.
    label: integer class id (label_offset already added).
    synset: the class directory name (an ImageNet synset such as n01440764, or any class name); or a
      `multi_label_synset` (a multi-label --manifest, transforms/inputs/manifest.py): its labels are
      then written as one int64 list (as Model Garden's `is_multilabel` input reads them) and its
      names as bytes lists to ``image/class/synset`` and, without `text`, ``image/class/text``;
      `label` is its first label.
    text: optional human-readable class name for ``image/class/text``.
    boxes: optional bounding boxes (xmin, ymin, xmax, ymax) normalised to the stored image, written
      as ``image/object/bbox/*`` with the image's label, as build_imagenet_data.py does.
    phash: the stored pixels' perceptual hash (transforms/imaging/perceptual_hash.py), a signed
    int64 written
      as ``image/phash``; the converter always gives it (None writes no such feature).
  Returns:
    The deterministic serialization of the Example.
  """
  example = example_class()()
  feature = example.features.feature
  feature['image/encoded'].bytes_list.value.append(encoded)
  feature['image/format'].bytes_list.value.append(b'JPEG')
  feature['image/height'].int64_list.value.append(height)
  feature['image/width'].int64_list.value.append(width)
  feature['image/channels'].int64_list.value.append(3)
  feature['image/colorspace'].bytes_list.value.append(b'RGB')
  feature['image/filename'].bytes_list.value.append(filename.encode('utf-8'))
  multi = multi_labels(synset)
  if multi is None:
    feature['image/class/label'].int64_list.value.append(label)
    feature['image/class/synset'].bytes_list.value.append(synset.encode('utf-8'))
  else:
    names = [name.encode('utf-8') for name in multi[1]]
    feature['image/class/label'].int64_list.value.extend(multi[0])
    feature['image/class/synset'].bytes_list.value.extend(names)
    if text is None:
      feature['image/class/text'].bytes_list.value.extend(names)
  if text is not None:
    feature['image/class/text'].bytes_list.value.append(text.encode('utf-8'))
  if boxes is not None:
    for i, key in enumerate(('xmin', 'ymin', 'xmax', 'ymax')):
      feature[f'image/object/bbox/{key}'].float_list.value.extend(box[i] for box in boxes)
    feature['image/object/bbox/label'].int64_list.value.extend([label] * len(boxes))
  if phash is not None:
    feature['image/phash'].int64_list.value.append(phash)
  return example.SerializeToString(deterministic=True)


@dataclasses.dataclass(frozen=True)
class StoredExample:
  """The features of one converter record that its readers use (verify, report, ExampleSource).

  Attributes:
    encoded: `image/encoded`, the stored JPEG's bytes.
    height, width: `image/height`, `image/width`, the stored image's size in pixels.
    label: `image/class/label` as stored (label_offset included).
    filename: `image/filename`, the path relative to the split's root.
    synset: `image/class/synset`, the class folder name.
    text: `image/class/text`, the class's text (--class_text_file).
    phash: `image/phash`, the stored pixels' perceptual hash, a signed int64.
    labels, synsets: every value of `image/class/label` and of `image/class/synset`: one each, or a
      multi-label record's lists (transforms/inputs/manifest.py), in label order.
  Each of the others is None when the record has no such feature, or not exactly one value of its
  type (records of earlier versions have no `image/phash`); `label` and `synset` are None for a
  multi-label record. Strings are UTF-8, invalid bytes replaced.
  """

  encoded: Optional[bytes]
  height: Optional[int]
  width: Optional[int]
  label: Optional[int]
  filename: Optional[str]
  synset: Optional[str]
  text: Optional[str]
  phash: Optional[int]
  labels: Tuple[int, ...] = ()
  synsets: Tuple[str, ...] = ()

  def require(self, *names: str) -> 'StoredExample':
    """Itself, when each attribute of `names` (default: the image and its label) has a value
    ('labels': at least one).

    Raises:
      ValueError: naming the first feature that has none.
    """
    for name in names or ('encoded', 'height', 'width', 'label'):
      if name == 'labels':
        if not self.labels:
          raise ValueError("feature 'image/class/label' missing or empty")
        continue
      if getattr(self, name) is None:
        raise ValueError(f'feature {_FEATURES[name][0]!r} missing or not one {_FEATURES[name][1]}')
    return self


# StoredExample attribute -> (feature key, value list)
_FEATURES = {
  'encoded': ('image/encoded', 'bytes_list'),
  'height': ('image/height', 'int64_list'),
  'width': ('image/width', 'int64_list'),
  'label': ('image/class/label', 'int64_list'),
  'filename': ('image/filename', 'bytes_list'),
  'synset': ('image/class/synset', 'bytes_list'),
  'text': ('image/class/text', 'bytes_list'),
  'phash': ('image/phash', 'int64_list'),
}
_TEXT = ('filename', 'synset', 'text')


def _one_value(feature_map: Any, key: str, kind: str) -> Any:
  if key not in feature_map or feature_map[key].WhichOneof('kind') != kind:
    return None
  values = getattr(feature_map[key], kind).value
  return values[0] if len(values) == 1 else None


def parse_example(record: bytes) -> StoredExample:
  """A serialized tf.train.Example -> its StoredExample (no TensorFlow needed).

  Raises:
    ValueError: `record` is not a serialized Example (protobuf's DecodeError message).
  """
  try:
    feature_map = example_class().FromString(record).features.feature
  except message.DecodeError as e:
    raise ValueError(str(e)) from None
  values = {name: _one_value(feature_map, key, kind) for name, (key, kind) in _FEATURES.items()}
  for name in _TEXT:
    if values[name] is not None:
      values[name] = values[name].decode('utf-8', 'replace')
  return StoredExample(
    **values,
    labels=tuple(_all_values(feature_map, 'image/class/label', 'int64_list')),
    synsets=tuple(
      value.decode('utf-8', 'replace')
      for value in _all_values(feature_map, 'image/class/synset', 'bytes_list')
    ),
  )


def _all_values(feature_map: Any, key: str, kind: str) -> Sequence[Any]:
  if key not in feature_map or feature_map[key].WhichOneof('kind') != kind:
    return ()
  return getattr(feature_map[key], kind).value
