"""The classic TensorFlow converter, rebuilt: tensorflow/models research/inception
build_imagenet_data.py.

Structure kept from the original: one ``ImageCoder`` holding a single TF1-style Session with
placeholder-fed decode/encode ops shared by all threads (``session.run`` releases the GIL, which is
how the original gets parallelism); ``np.linspace`` thread ranges, each thread writing its own
contiguous shards with ``TFRecordWriter``; PNG detected by file name and converted to JPEG.

One deliberate change so that it does the same work as our converter: the original stores the
original bytes (it decodes only to validate); here ``--resize_shorter_side N`` adds, in the same
graph, ``tf.image.resize`` (bilinear, no antialiasing: TF's default) of the shorter side to N, a
central crop and ``tf.io.encode_jpeg``. ``--resize_shorter_side 0`` is the original behaviour.

Usage: ``python -m benchmarks.classic_tf --input DIR --output DIR --workers 2``
"""

from __future__ import annotations

import os
import threading
import time

from benchmarks import classic_common as common

import tensorflow as tf  # noqa: E402  (timed as start-up, like the original's imports)


class ImageCoder:
  """TF graph ops run through one shared Session, fed by placeholders (as in the original)."""

  def __init__(self, shorter_side: int, crop: int, quality: int):
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._png_data = tf.compat.v1.placeholder(dtype=tf.string)
      image = tf.io.decode_png(self._png_data, channels=3)
      self._png_to_jpeg = tf.io.encode_jpeg(image, format='rgb', quality=100)

      self._jpeg_data = tf.compat.v1.placeholder(dtype=tf.string)
      self._decode_jpeg = tf.io.decode_jpeg(self._jpeg_data, channels=3)

      decoded = self._decode_jpeg
      if shorter_side:
        shape = tf.cast(tf.shape(decoded)[:2], tf.float32)
        scale = shorter_side / tf.reduce_min(shape)
        size = tf.cast(tf.round(shape * scale), tf.int32)
        resized = tf.image.resize(decoded, size, method='bilinear')
        if crop:
          resized = tf.image.resize_with_crop_or_pad(resized, crop, crop)
        out = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        self._resize_encode = (tf.io.encode_jpeg(out, format='rgb', quality=quality), tf.shape(out))
      else:
        self._resize_encode = None
    self._sess = tf.compat.v1.Session(graph=self._graph)

  def png_to_jpeg(self, image_data: bytes) -> bytes:
    return self._sess.run(self._png_to_jpeg, feed_dict={self._png_data: image_data})

  def decode_jpeg(self, image_data: bytes):
    image = self._sess.run(self._decode_jpeg, feed_dict={self._jpeg_data: image_data})
    assert len(image.shape) == 3 and image.shape[2] == 3
    return image

  def resize_encode(self, image_data: bytes) -> tuple[bytes, int, int]:
    encoded, shape = self._sess.run(self._resize_encode, feed_dict={self._jpeg_data: image_data})
    return encoded, int(shape[0]), int(shape[1])


def _process_image(filename: str, coder: ImageCoder) -> tuple[bytes, int, int]:
  with tf.io.gfile.GFile(filename, 'rb') as f:
    image_data = f.read()
  if filename.lower().endswith('.png'):
    image_data = coder.png_to_jpeg(image_data)
  if coder._resize_encode is not None:
    return coder.resize_encode(image_data)
  image = coder.decode_jpeg(image_data)
  return image_data, image.shape[0], image.shape[1]


def _process_image_files_batch(coder, thread_index, ranges, name, files, num_shards, output_dir):
  num_threads = len(ranges)
  shards_per_batch = num_shards // num_threads
  shard_ranges = common.shard_ranges(
    ranges[thread_index][1] - ranges[thread_index][0], shards_per_batch
  )
  for s, (start, end) in enumerate(shard_ranges):
    shard = thread_index * shards_per_batch + s
    path = os.path.join(output_dir, '%s-%.5d-of-%.5d' % (name, shard, num_shards))
    with tf.io.TFRecordWriter(path) as writer:
      for i in range(ranges[thread_index][0] + start, ranges[thread_index][0] + end):
        filename, label, synset = files[i]
        encoded, height, width = _process_image(filename, coder)
        example = common.to_example(
          os.path.basename(filename), encoded, label, synset, height, width
        )
        writer.write(example.SerializeToString())


def main(argv=None) -> None:
  args = common.parse_args(__doc__.splitlines()[0], argv)
  files = common.listing(args.input)
  os.makedirs(args.output, exist_ok=True)
  num_shards = common.num_shards_for(len(files), args.workers)
  coder = ImageCoder(args.resize_shorter_side, args.center_crop, args.jpeg_quality)
  process_start = time.perf_counter()
  ranges = common.shard_ranges(len(files), args.workers)
  threads = [
    threading.Thread(
      target=_process_image_files_batch,
      args=(coder, t, ranges, 'train', files, num_shards, args.output),
    )
    for t in range(args.workers)
  ]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  common.report(len(files), process_start)


if __name__ == '__main__':
  main()
