"""pipeline.read.dataset: the tf.data input function over the converter's real output."""

from __future__ import annotations

import collections
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from pipeline import read
from conftest import SAMPLE_DIR, convert


def _stats(output: pathlib.Path) -> dict:
  return json.loads((output / 'stats.json').read_text())


def _all(ds: tf.data.Dataset):
  images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
  return np.concatenate(images), np.concatenate(labels)


def test_eval_reads_every_record_once_center_cropped(sample_output):
  manifest = read.load_manifest(str(sample_output))
  images, labels = _all(
    read.dataset(str(sample_output), 'validation', batch_size=4, training=False, image_size=96)
  )
  assert images.shape == (manifest['splits']['validation']['num_examples'], 96, 96, 3)
  assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 255.0
  names = (sample_output / 'labels.txt').read_text().split()
  assert (
    dict(collections.Counter(names[k] for k in labels.tolist()))
    == _stats(sample_output)['validation']['class_counts']
  )


def test_eval_order_and_pixels_are_the_classic_center_crop(sample_output):
  """First element = the first record of the first shard, central 96/128 of it, resized."""
  ds = read.dataset(str(sample_output), 'train', batch_size=1, training=False, image_size=96)
  image, label = next(iter(ds))
  first = read.shard_files(str(sample_output), 'train')[0]
  record = next(iter(tf.data.TFRecordDataset(first)))
  parsed = tf.io.parse_single_example(
    record,
    {
      'image/encoded': tf.io.FixedLenFeature([], tf.string),
      'image/class/label': tf.io.FixedLenFeature([], tf.int64),
    },
  )
  full = tf.io.decode_jpeg(parsed['image/encoded'], channels=3)
  side = min(full.shape[0], full.shape[1])
  crop = int(96 / (96 + 32) * side)
  top, left = (full.shape[0] - crop + 1) // 2, (full.shape[1] - crop + 1) // 2
  expected = tf.image.resize(
    full[top : top + crop, left : left + crop], [96, 96], method='bicubic', antialias=True
  )
  assert int(label[0]) == int(parsed['image/class/label'])
  diff = np.abs(image[0].numpy() - np.clip(np.round(expected.numpy()), 0, 255))
  # decode_and_crop_jpeg upsamples chroma at the crop's edge from fewer neighbours than a full
  # decode, so a few edge values differ by a level or two; a crop off by one pixel differs almost
  # everywhere.
  assert diff.max() <= 8 and np.mean(diff > 1) < 0.001, (diff.max(), np.mean(diff > 1))


def test_training_shuffles_augments_and_is_repeatable_with_a_seed(sample_output):
  def epoch(seed):
    return _all(
      read.dataset(
        str(sample_output), 'train', batch_size=8, training=True, image_size=64, seed=seed
      )
    )

  images_a, labels_a = epoch(1)
  images_b, labels_b = epoch(1)
  _, labels_eval = _all(read.dataset(str(sample_output), 'train', 8, training=False, image_size=64))
  assert sorted(labels_a.tolist()) == sorted(labels_eval.tolist())  # one epoch = every record once
  assert labels_a.tolist() != labels_eval.tolist()  # ... in shuffled order
  np.testing.assert_array_equal(labels_a, labels_b)
  np.testing.assert_array_equal(images_a, images_b)


def test_random_crop_differs_from_center_crop(sample_output):
  jpeg = next(iter(tf.data.TFRecordDataset(read.shard_files(str(sample_output), 'train')[0])))
  image_bytes, _ = read.parse_example(jpeg)
  center = read.decode_and_center_crop(image_bytes, 64).numpy()
  crops = [
    read.decode_and_random_crop(image_bytes, 64, tf.constant([s, 0], tf.int64)).numpy()
    for s in (1, 2, 3)
  ]
  assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for c in crops)
  assert sum(not np.array_equal(c, center) for c in crops) >= 2


def test_normalize_uses_train_mean_and_std(sample_output):
  raw, _ = _all(read.dataset(str(sample_output), 'validation', 64, training=False, image_size=32))
  norm, _ = _all(
    read.dataset(
      str(sample_output), 'validation', 64, training=False, image_size=32, normalize=True
    )
  )
  mean, std = (np.array(v, np.float32) for v in read.channel_stats(str(sample_output)))
  np.testing.assert_allclose(norm, (raw - mean) / std, rtol=1e-5, atol=1e-5)


def test_unknown_split_lists_the_known_ones(sample_output):
  with pytest.raises(ValueError, match=r"'test'.*\['train', 'validation'\]"):
    read.dataset(str(sample_output), 'test', 8, training=False)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gzip_output_reads_the_same_examples(sample_output, tmp_path):
  """A real --compression gzip conversion with the same flags yields the same images and labels."""
  manifest = read.load_manifest(str(sample_output))
  flags = [
    '--train_shards',
    manifest['options']['train_shards'],
    '--validation_shards',
    manifest['options']['validation_shards'],
    '--validation_fraction',
    manifest['options']['validation_fraction'],
  ]
  assert convert(SAMPLE_DIR, tmp_path, *flags, '--compression', 'gzip') == 0
  assert read.load_manifest(str(tmp_path))['compression'] == 'gzip'
  first = read.shard_files(str(tmp_path), 'validation')[0]
  assert pathlib.Path(first).read_bytes()[:2] == b'\x1f\x8b'  # really gzip on disk
  plain = _all(read.dataset(str(sample_output), 'validation', 8, training=False, image_size=64))
  gzip = _all(read.dataset(str(tmp_path), 'validation', 8, training=False, image_size=64))
  np.testing.assert_array_equal(plain[1], gzip[1])
  np.testing.assert_array_equal(plain[0], gzip[0])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_keras_model_trains_one_epoch_end_to_end(sample_output):
  manifest = read.load_manifest(str(sample_output))
  num_classes = manifest['num_classes'] + manifest['label_offset']
  train = read.dataset(
    str(sample_output), 'train', batch_size=8, training=True, image_size=64, seed=0
  )
  validation = read.dataset(
    str(sample_output), 'validation', batch_size=8, training=False, image_size=64
  )
  tf.keras.utils.set_random_seed(0)
  model = tf.keras.Sequential(
    [
      tf.keras.Input((64, 64, 3)),
      tf.keras.layers.Rescaling(1 / 255),
      tf.keras.layers.Conv2D(8, 3, strides=2, activation='relu'),
      tf.keras.layers.GlobalAveragePooling2D(),
      tf.keras.layers.Dense(num_classes),
    ]
  )
  model.compile(
    optimizer='adam',
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=['accuracy'],
  )
  steps = -(-manifest['splits']['train']['num_examples'] // 8)
  assert int(train.cardinality()) == steps  # known up front, from the manifest
  batches = []
  counter = tf.keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
  history = model.fit(train, validation_data=validation, epochs=1, verbose=0, callbacks=[counter])
  assert len(history.history['loss']) == 1 and np.isfinite(history.history['loss'][0])
  assert 'val_accuracy' in history.history
  assert batches == list(range(steps))  # every batch of the epoch, and no more
  predictions = model.predict(validation, verbose=0)
  assert predictions.shape == (manifest['splits']['validation']['num_examples'], num_classes)
