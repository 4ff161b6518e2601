"""Read throughput (records/s): random access to ArrayRecord output vs sequential TFRecord with
tf.data.

    python -m benchmarks.read_throughput [--images 4000] [--repeats 3]

The benchmark set of ``python -m benchmarks.run`` (``benchmarks.synth`` profile ``imagenet``: 4,000
ImageNet-like JPEGs in 100 classes, seed 0) is converted twice with the product's defaults (shorter
side 256, crop 256, q90; 4 train shards), once per ``--file_format``; both outputs are kept in the
synth cache and reused. Then, in this process, on the train split, each row is timed ``--repeats``
times after one untimed warm-up pass (so every shard is in the page cache for both formats), and the
median is reported, as records/s of wall time and as CPU microseconds per record (this process,
every thread: what a busy shared machine does not distort):

* ``array_record raw, random``: ``ArrayRecordDataSource[i]`` (the array_record package, what Grain's
  ``ArrayRecordDataSource`` is) over a fixed random permutation of every index, one thread;
* ``ExampleSource, random``: ``pipeline.read.ExampleSource[i]`` over the same permutation: read,
  parse the Example, decode the JPEG (libjpeg-turbo, accurate IDCT), one thread;
* ``ExampleSource, random, Grain 2 threads``: the same through ``grain.MapDataset.source(...)`` read
  with ``grain.ReadOptions(num_threads=2)``;
* ``tfrecord raw, sequential``: ``tf.data.TFRecordDataset`` over the shards in order, tf.data's
  private thread pool limited to 1 thread;
* ``tf.data, sequential``: + ``parse_single_example`` + ``decode_jpeg`` (TF's default fast IDCT), 1
  thread;
* ``tf.data, sequential, AUTOTUNE``: the same map with ``num_parallel_calls=AUTOTUNE`` and tf.data's
  default thread pool (every core).

``measure(tfrecord_dir, array_record_dir, repeats)`` returns the rows (a function ``benchmarks.run``
can call); ``main`` prints them as a markdown table with the machine's load before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

from benchmarks.synth import default_cache_dir, synthesize

REPO = Path(__file__).resolve().parent.parent
SPLIT = 'train'


def convert(input_dir: Path, output: Path, file_format: str) -> Path:
  """``python -m pipeline.run`` on ``input_dir`` into ``output`` (reused when it holds a _SUCCESS)."""
  if not (output / '_SUCCESS').exists():
    subprocess.run(
      [
        sys.executable,
        '-m',
        'pipeline.run',
        '--input',
        str(input_dir),
        '--output',
        str(output),
        '--overwrite',
        '--train_shards',
        '4',
        '--file_format',
        file_format,
        '--direct_running_mode=multi_processing',
        '--direct_num_workers=2',
      ],
      cwd=REPO,
      check=True,
      env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
  return output


def _time(passes: Callable[[], int], repeats: int) -> Dict:
  passes()  # warm-up: page cache, readers, imports
  seconds, cpu_seconds, count = [], [], 0
  for _ in range(repeats):
    start, cpu_start = time.perf_counter(), time.process_time()
    count = passes()
    seconds.append(time.perf_counter() - start)
    cpu_seconds.append(time.process_time() - cpu_start)
  return {
    'records': count,
    'seconds': [round(s, 3) for s in seconds],
    'records_per_s': count / statistics.median(seconds),
    'cpu_us_per_record': statistics.median(cpu_seconds) / count * 1e6,
  }


def _tf_rows(tfrecord_dir: Path, repeats: int) -> Dict[str, Dict]:
  import tensorflow as tf

  from pipeline import read

  files = read.shard_files(str(tfrecord_dir), SPLIT)
  one_thread = tf.data.Options()
  one_thread.threading.private_threadpool_size = 1

  def decode(serialized):
    image_bytes, label = read.parse_example(serialized)
    return tf.io.decode_jpeg(image_bytes, channels=3), label

  def count(ds) -> int:
    return sum(1 for _ in ds)

  raw = tf.data.TFRecordDataset(files).with_options(one_thread)
  return {
    'tfrecord raw, sequential (tf.data, 1 thread)': _time(lambda: count(raw), repeats),
    'tf.data parse + decode_jpeg, sequential, 1 thread': _time(
      lambda: count(tf.data.TFRecordDataset(files).map(decode).with_options(one_thread)), repeats
    ),
    'tf.data parse + decode_jpeg, sequential, AUTOTUNE': _time(
      lambda: count(
        tf.data.TFRecordDataset(files)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
      ),
      repeats,
    ),
  }


def _array_record_rows(array_record_dir: Path, repeats: int) -> Dict[str, Dict]:
  import grain
  from array_record.python.array_record_data_source import ArrayRecordDataSource

  from pipeline.read import ExampleSource

  source = ExampleSource(str(array_record_dir), SPLIT)
  raw = ArrayRecordDataSource(source.paths)
  order = list(range(len(source)))
  random.Random(0).shuffle(order)

  def random_reads(read: Callable[[int], object]) -> int:
    for i in order:
      read(i)
    return len(order)

  def grain_threads() -> int:
    dataset = grain.MapDataset.source(source).shuffle(seed=0)  # a global random order
    return sum(1 for _ in dataset.to_iter_dataset(grain.ReadOptions(num_threads=2)))

  return {
    'array_record raw, random (ArrayRecordDataSource, 1 thread)': _time(
      lambda: random_reads(raw.__getitem__), repeats
    ),
    'ExampleSource parse + decode, random, 1 thread': _time(
      lambda: random_reads(source.__getitem__), repeats
    ),
    'ExampleSource parse + decode, random, Grain 2 threads': _time(grain_threads, repeats),
  }


def measure(tfrecord_dir: Path, array_record_dir: Path, repeats: int = 3) -> List[Dict]:
  """One row per reader: {'reader', 'records', 'seconds' (wall, per repeat), 'records_per_s' (wall,
  median), 'cpu_us_per_record' (this process's CPU time, every thread, median)}."""
  rows = {**_array_record_rows(array_record_dir, repeats), **_tf_rows(tfrecord_dir, repeats)}
  return [{'reader': name, **values} for name, values in rows.items()]


def format_rows(rows: List[Dict]) -> str:
  lines = [
    '| reader (train split, records in the page cache) | records | records/s (wall, median) '
    '| CPU us/record |',
    '|---|--:|--:|--:|',
  ]
  lines += [
    f'| {r["reader"]} | {r["records"]} | {r["records_per_s"]:,.0f} | {r["cpu_us_per_record"]:,.1f} |'
    for r in rows
  ]
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--images', type=int, default=4000)
  parser.add_argument('--num_classes', type=int, default=100)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args(argv)
  dataset = synthesize(args.images, min(args.num_classes, args.images), args.seed)
  outputs = {
    file_format: convert(
      dataset.root, default_cache_dir() / f'read-n{args.images}-{file_format}', file_format
    )
    for file_format in ('tfrecord', 'array_record')
  }
  load_before = os.getloadavg()
  rows = measure(outputs['tfrecord'], outputs['array_record'], args.repeats)
  print(
    f'{args.images} images ({dataset.root}); {os.cpu_count()} cores; 1/5/15-minute load '
    f'{" ".join(f"{v:.2f}" for v in load_before)} before, '
    f'{" ".join(f"{v:.2f}" for v in os.getloadavg())} after'
  )
  print(format_rows(rows))
  return 0


if __name__ == '__main__':
  sys.exit(main())
