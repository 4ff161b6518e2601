"""Reading the output: with tf.data (Keras, any TensorFlow loop), or without TensorFlow.

    from pipeline.read import dataset
    train = dataset('OUTPUT', 'train', batch_size=64, training=True)      # (images, labels) batches
    model.fit(train, validation_data=dataset('OUTPUT', 'validation', 64, training=False))

The pipeline is the classic ImageNet input function's (tensorflow/tpu `imagenet_input.py` with
`resnet_preprocessing.py`; docs/readers.md#keras--tfdata): the shards manifest.json lists, never a
glob. Elements: images float32 [B, image_size, image_size, 3] of 0-255 RGB values (what
`keras.applications`' `preprocess_input` expects; `normalize=True` uses stats.json's train mean and
std instead), labels int32 [B] as stored, label offset included; a multi-label output (manifest.json
"multi_label") gives multi-hot float32 [B, num_classes + label_offset]. tf.data reads TFRecord
output only (gzip too), through tf.io.gfile. `ExampleSource` (pipeline/example_source.py,
re-exported here) reads either format into numpy; TensorFlow is imported on the first use of a
tf.data function, so `from pipeline.read import ExampleSource` works without it.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Dict, List, Optional, Tuple

from pipeline.example_source import ExampleSource, decode_example  # noqa: F401 (re-exported)
from transforms.output import file_format as file_formats
from transforms.output import layout


class _LazyModule:
  """A module imported on first attribute access (TensorFlow costs ~3 s and ~600 MB to import)."""

  def __init__(self, name: str):
    self._name = name

  def __getattr__(self, attribute: str) -> Any:
    return getattr(importlib.import_module(self._name), attribute)


tf = _LazyModule('tensorflow')
CROP_PADDING = 32  # the classic eval crop keeps image_size / (image_size + 32) of the shorter side
SHUFFLE_BUFFER = 1024  # examples; ~150 MB of 256 px JPEG records
CYCLE_LENGTH = 16  # shards read at once by the interleave


def features() -> Dict[str, Any]:
  """The parsing spec of the two keys training reads (`tf.io.parse_single_example`)."""
  return {
    'image/encoded': tf.io.FixedLenFeature([], tf.string),
    'image/class/label': tf.io.FixedLenFeature([], tf.int64),
  }


def __getattr__(name: str) -> Any:  # PEP 562: `read.FEATURES` without importing TensorFlow early.
  if name == 'FEATURES':
    return features()
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def _read_json(output_dir: str, name: str) -> Dict:
  """A metadata file of the output, read through TensorFlow's file systems like the shards (gs://
  works without Beam's gcp extra)."""
  with tf.io.gfile.GFile(layout.join(output_dir, name), 'r') as f:
    return json.loads(f.read())


def load_manifest(output_dir: str) -> Dict:
  """manifest.json of an output directory (FileNotFoundError/NotFoundError if absent)."""
  return _read_json(output_dir, layout.MANIFEST_FILE)


def shard_files(output_dir: str, split: str, manifest: Optional[Dict] = None) -> List[str]:
  """Full paths of the split's shards, in manifest order.

  Raises:
    ValueError: the split is not in the manifest (the message lists the ones that are).
  """
  manifest = manifest or load_manifest(output_dir)
  if split not in manifest['splits']:
    raise ValueError(
      f'split {split!r} is not in {output_dir}/{layout.MANIFEST_FILE}; it has '
      f'{sorted(manifest["splits"])}.'
    )
  output = layout.OutputLayout.of_manifest(output_dir, manifest)
  return [output.path(shard['file']) for shard in manifest['splits'][split]['shards']]


def decode_and_random_crop(image_bytes: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
  """JPEG bytes -> uint8 [image_size, image_size, 3]: Inception-style random crop, then resize.

  A random box covering 8-100% of the area with aspect ratio 3/4-4/3 is decoded with
  `decode_and_crop_jpeg` (only the box's pixels are decoded); if no box is found in 10 attempts the
  whole image is used (as the classic input function's fallback to the central crop, on our already
  center-cropped records). `seed` is a stateless-op seed, int32/int64 [2]: same seed, same crop.
  """
  shape = tf.io.extract_jpeg_shape(image_bytes)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
    shape,
    bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]),
    seed=seed,
    min_object_covered=0.1,
    aspect_ratio_range=(3 / 4, 4 / 3),
    area_range=(0.08, 1.0),
    max_attempts=10,
    use_image_if_no_bounding_boxes=True,
  )
  offset_y, offset_x, _ = tf.unstack(begin)
  height, width, _ = tf.unstack(size)
  crop_window = tf.stack([offset_y, offset_x, height, width])
  image = tf.io.decode_and_crop_jpeg(image_bytes, crop_window, channels=3)
  return _resize(image, image_size)


def decode_and_center_crop(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
  """JPEG bytes -> uint8 [image_size, image_size, 3]: the central image_size/(image_size+32) square
  of the shorter side, resized (the classic ImageNet eval preprocessing)."""
  shape = tf.io.extract_jpeg_shape(image_bytes)
  height, width = shape[0], shape[1]
  crop = tf.cast(
    image_size / (image_size + CROP_PADDING) * tf.cast(tf.minimum(height, width), tf.float32),
    tf.int32,
  )
  offset_y = (height - crop + 1) // 2
  offset_x = (width - crop + 1) // 2
  image = tf.io.decode_and_crop_jpeg(
    image_bytes, tf.stack([offset_y, offset_x, crop, crop]), channels=3
  )
  return _resize(image, image_size)


def _resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
  resized = tf.image.resize(image, [image_size, image_size], method='bicubic', antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def parse_example(serialized: tf.Tensor, num_labels: int = 0) -> Tuple[tf.Tensor, tf.Tensor]:
  """Serialized tf.train.Example -> (JPEG bytes scalar string, label int32 scalar); with
  `num_labels` (a multi-label output) the label is multi-hot float32 [num_labels]."""
  if not num_labels:
    parsed = tf.io.parse_single_example(serialized, features())
    return parsed['image/encoded'], tf.cast(parsed['image/class/label'], tf.int32)
  parsed = tf.io.parse_single_example(
    serialized,
    {
      'image/encoded': tf.io.FixedLenFeature([], tf.string),
      'image/class/label': tf.io.VarLenFeature(tf.int64),
    },
  )
  ids = parsed['image/class/label'].values
  return parsed['image/encoded'], tf.reduce_max(tf.one_hot(ids, num_labels), axis=0)


def channel_stats(output_dir: str, split: str = 'train') -> Tuple[List[float], List[float]]:
  """(mean_rgb, std_rgb) of a split from stats.json, 0-255 units."""
  stats = _read_json(output_dir, layout.STATS_FILE)[split]
  return stats['mean_rgb'], stats['std_rgb']


def dataset(
  output_dir: str,
  split: str,
  batch_size: int,
  training: bool,
  image_size: int = 224,
  shuffle_buffer: int = SHUFFLE_BUFFER,
  seed: Optional[int] = None,
  repeat: bool = False,
  drop_remainder: bool = False,
  normalize: bool = False,
  cycle_length: int = CYCLE_LENGTH,
) -> tf.data.Dataset:
  """A batched (images, labels) tf.data.Dataset of one split of an output directory.

  Args:
    output_dir: the converter's output (local path or gs://), holding manifest.json.
    split: 'train', 'validation', 'test' (a key of the manifest's "splits").
    batch_size: examples per batch; the last batch is smaller unless drop_remainder.
    training: shuffle shards and records and apply random crop + flip; else center crop, fixed
    order.
    image_size: side in pixels of the square images produced.
    shuffle_buffer: record shuffle buffer (examples), used when training.
    seed: makes the order and the augmentation repeatable, run to run (None: different every run).
    repeat: repeat forever (for steps_per_epoch style training loops).
    drop_remainder: drop the last incomplete batch (static batch shape, e.g. for TPUs).
    normalize: subtract the train split's mean_rgb and divide by its std_rgb (stats.json).
    cycle_length: how many shards the interleave reads at once.

  Returns:
    Elements (float32 [B, image_size, image_size, 3] 0-255 RGB or normalized, int32 [B] labels, or
    for a multi-label output float32 [B, num_classes + label_offset] multi-hot labels).
  """
  manifest = load_manifest(output_dir)
  if file_formats.of_manifest(manifest).name != file_formats.FileFormat.TFRECORD:
    raise ValueError(
      f'{output_dir} holds {manifest["file_format"]} shards, which tf.data cannot read; '
      "use ExampleSource(output_dir, split), Grain or TFDS's as_data_source()."
    )
  files = shard_files(output_dir, split, manifest)
  compression = 'GZIP' if manifest.get('compression') == 'gzip' else ''
  autotune = tf.data.AUTOTUNE
  # Evaluation keeps shard order; training without a seed lets the interleave and map reorder
  # freely.
  deterministic = not training or seed is not None

  shards = tf.data.Dataset.from_tensor_slices(files)
  if training:
    shards = shards.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  records = shards.interleave(
    lambda path: tf.data.TFRecordDataset(path, compression_type=compression, buffer_size=8 << 20),
    cycle_length=min(cycle_length, len(files)),
    num_parallel_calls=autotune,
    deterministic=deterministic,
  )
  if training:
    records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    records = records.repeat()
  # Keras then knows the steps per epoch; a shard shorter/longer than the manifest is an error
  else:
    records = records.apply(
      tf.data.experimental.assert_cardinality(manifest['splits'][split]['num_examples'])
    )
  # One stateless-op seed per record ([2] int64): augmentation does not depend on thread timing.
  records = tf.data.Dataset.zip((records, tf.data.Dataset.random(seed=seed).batch(2)))

  mean = std = None
  if normalize:
    mean, std = (tf.constant(v, tf.float32) for v in channel_stats(output_dir))

  num_labels = (
    manifest['num_classes'] + manifest['label_offset'] if manifest.get('multi_label') else 0
  )

  def preprocess(serialized, op_seed):
    image_bytes, label = parse_example(serialized, num_labels)
    if training:
      image = tf.image.stateless_random_flip_left_right(
        decode_and_random_crop(image_bytes, image_size, op_seed), seed=op_seed[::-1]
      )
    else:
      image = decode_and_center_crop(image_bytes, image_size)
    image = tf.cast(image, tf.float32)
    if normalize:
      image = (image - mean) / std
    return image, label

  return (
    records.map(preprocess, num_parallel_calls=autotune, deterministic=deterministic)
    .batch(batch_size, drop_remainder=drop_remainder)
    .prefetch(autotune)
  )
