"""The sink: one DoFn call writes one complete shard.

Why not ``WriteToTFRecord(num_shards=N)``: it groups every serialized record by shard, which the
DirectRunner holds in memory (10.7 GiB RSS for 1.9 GiB of records, measured on this project's 2-core
machine in 2026-11; 188 MiB this way), and it starts
at a random shard each run. Here only file paths are grouped by shard; the DoFn reads, converts and
appends each image to a temporary file in hash order and renames it to the final shard name when it is
complete. So memory stays flat, the bytes are the same on every run and runner, a retried bundle simply
rewrites its temporary file, and a reader never sees a half-written shard under a final name. The
container (TFRecord or ArrayRecord, --file_format) is transforms/file_format.py's.

Per shard, a small JSON sidecar (`_work/<shard>.json`: counts, pixel sums, rejects, the fingerprint
of the shard's input files, the shard's size and SHA-256 as stored, the codec versions, the recipe:
the flags that decided its bytes) is written before the rename; `--resume` keeps a finished shard
only when its inputs, codecs and recipe are unchanged (transforms/resume.py). Besides the summaries, the DoFn emits each shard's outcome (written, kept,
rewritten and why) on the output `outcomes`.

In `setup()` each worker compares its codec builds with the driver's and refuses to write with others
(transforms/codec_versions.py): one worker with another libjpeg-turbo would make its shards differ.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import uuid
from typing import Any, Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_private import s3
from transforms import file_format as file_formats
from transforms import image as image_lib
from transforms import imagenet, layout, resume
from transforms.checksum import Stored
from transforms.codec_versions import check_codecs
from transforms.fingerprint import ShardInputs, class_texts_digest, shard_inputs
from transforms.input_file import DEFAULT_MAX_FILE_BYTES, InputFileError, read_input
from transforms.listing import image_path, input_path, reject
from transforms.progress import ProgressFile
from transforms.reject_reasons import INTERNAL_ERROR, reason_category
from transforms.sharding import ImageRef, ShardId, order_key
from transforms.summary import ShardSummary

_NAMESPACE = 'folder2tfrecord'
OUTCOMES_TAG = 'outcomes'  # one transforms/resume.py outcome per shard


class WriteShardFn(beam.DoFn):
  """((split, index, num_shards), [ImageRef]) -> ShardSummary, and its outcome on OUTCOMES_TAG;
  writes the shard file unless --resume keeps it."""

  def __init__(self, output: layout.OutputLayout, spec: image_lib.ImageSpec, seed: int,
               compression: str, resume: bool, split_roots: Dict[str, str],
               class_texts: Optional[Dict[str, str]] = None, bbox_dir: Optional[str] = None,
               codecs: Optional[Dict[str, str]] = None,
               file_format: str = file_formats.TFRECORD,
               max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, recipe: Optional[Dict[str, Any]] = None):
    """`split_roots`: {listing split: root folder}, to find each ImageRef's file (Layout.split_roots).
    `codecs`: the driver's codec_versions(compression, file_format); each worker must have the same
    (None: no check, and --resume does not compare them). `file_format`: the shards' container, a name
    of transforms/file_format.py. `max_file_bytes`: --max_file_bytes; each input file is read through
    transforms/input_file.py `read_input` (regular files only, at most this many bytes). `recipe`:
    resume.shard_recipe of the run, stored in each sidecar (None: not stored, and --resume does not
    compare it)."""
    super().__init__()
    self._max_file_bytes = max_file_bytes
    self._format = file_formats.get(file_format)
    self._split_roots = split_roots
    self._bbox_dir = bbox_dir
    self._output = output
    self._spec = spec
    self._seed = seed
    self._compression = compression
    self._resume = resume
    self._class_texts = class_texts or {}
    self._class_texts_digest = class_texts_digest(self._class_texts)
    self._codecs = dict(codecs) if codecs is not None else None
    self._recipe = dict(recipe) if recipe is not None else None
    self._written = Metrics.counter(_NAMESPACE, 'images_written')
    self._rejected = Metrics.counter(_NAMESPACE, 'images_rejected')
    self._shards = Metrics.counter(_NAMESPACE, 'shards_written')
    self._skipped = Metrics.counter(_NAMESPACE, 'shards_resumed')
    self._bad_annotations = Metrics.counter(_NAMESPACE, 'bad_bbox_annotations')
    self._internal_errors = Metrics.counter(_NAMESPACE, 'internal_errors')
    self._build_example = None

  def setup(self):
    if self._codecs is not None:
      check_codecs(self._codecs)  # Raises CodecMismatch: this worker cannot write.
    s3.apply_empty_upload_fix()
    from transforms.example import build_example  # pylint: disable=import-outside-toplevel
    self._build_example = build_example  # Builds the Example message class once per worker.
    self._progress = ProgressFile(self._output.work_path(layout.PROGRESS_DIR))

  def finish_bundle(self):
    self._progress.add(force=True)

  def process(self, element: Tuple[Tuple[str, int, int], Iterable[ImageRef]]) -> Iterable:
    key, refs = element
    shard = ShardId(*key)
    name = self._output.shard_names.name(*shard)
    refs = sorted(refs, key=lambda ref: order_key(self._seed, ref))
    inputs = shard_inputs(refs, self._class_texts_digest)
    outcome = resume.WRITTEN
    if self._resume:
      finished, shard_bytes = resume.read_finished(self._output, name)
      outcome = resume.decide(finished, shard_bytes, inputs, self._codecs, self._recipe)
      if outcome == resume.KEPT:
        self._skipped.inc()
        self._progress.add(finished.num_examples, finished.num_rejected)
        yield finished
        yield beam.pvalue.TaggedOutput(OUTCOMES_TAG, outcome)
        return
    yield self._write_shard(name, shard.split, refs, inputs)
    self._shards.inc()
    yield beam.pvalue.TaggedOutput(OUTCOMES_TAG, outcome)

  def _write_shard(self, name: str, split: str, refs: List[ImageRef], inputs: ShardInputs
                   ) -> ShardSummary:
    """Writes the shard to a temp file, its sidecar, then renames the shard into place."""
    final, sidecar = self._output.path(name), self._output.sidecar_path(name)
    temp = layout.temp_path(self._output.work_path(name), uuid.uuid4().hex)
    try:
      stored = Stored()
      with self._format.create(temp, self._compression, stored) as write_record:
        summary = self._write_records(write_record, name, split, refs)
      summary = dataclasses.replace(summary, inputs=inputs, file_bytes=stored.bytes,
                                    file_sha256=stored.sha256, codecs=self._codecs,
                                    recipe=self._recipe)
      if self._resume:  # An old shard must not stay next to a sidecar that describes the new one.
        _delete_quietly(final)
      temp_sidecar = layout.temp_path(sidecar, uuid.uuid4().hex)
      layout.write_json(temp_sidecar, summary.to_json(), indent=None)
      FileSystems.rename([temp_sidecar], [sidecar])
      FileSystems.rename([temp], [final])
    except BaseException as e:
      _delete_quietly(temp)
      if isinstance(e, Exception):  # Not one image's fault: the shard cannot be written.
        raise RuntimeError(f'while writing shard {name}: {image_lib.describe_error(e)}') from e
      raise
    return summary

  def _write_records(self, write_record: file_formats.RecordWriter, name: str, split: str,
                     refs: List[ImageRef]) -> ShardSummary:
    """Converts and appends every file of the shard with `write_record`; returns what was written
    and rejected."""
    num_examples = num_bytes = num_passthrough = num_pixels = 0
    class_counts = collections.Counter()
    sums, squares = [0] * 3, [0] * 3  # Python integers: exact at any size.
    rejects, phashes, crop_phashes = [], [], []
    filesystems = {}  # One FileSystems lookup per split root, not per file (~25 us an image).
    for ref in refs:
      path = image_path(self._split_roots, ref)
      if ref.split not in filesystems:
        filesystems[ref.split] = FileSystems.get_filesystem(path)
      try:
        data = read_input(path, self._max_file_bytes, ref.size, filesystems[ref.split])
      except InputFileError as e:
        self._add_reject(rejects, split, path, e.reason)
        continue
      except OSError as e:
        self._add_reject(rejects, split, path, f'cannot read the file ({type(e).__name__}: {e})')
        continue
      try:
        stored = image_lib.process_image(data, self._spec)
        record = self._build_example(
            stored.encoded, stored.height, stored.width, ref.key, ref.label, ref.synset,
            self._class_texts.get(ref.synset), self._boxes(ref, path, stored), stored.phash)
      except image_lib.ImageRejected as e:
        self._add_reject(rejects, split, path, e.reason)
        continue
      except Exception as e:  # pylint: disable=broad-except  (a bug must not end an hour of work)
        logging.exception('Internal error while converting %s (stored as a reject)', path)
        self._internal_errors.inc()
        self._add_reject(rejects, split, path, INTERNAL_ERROR + ': ' + image_lib.describe_error(e))
        continue
      write_record(record)
      num_examples += 1
      num_bytes += len(stored.encoded)
      num_passthrough += stored.passthrough
      class_counts[ref.synset] += 1
      num_pixels += stored.height * stored.width
      phashes.append((input_path(self._split_roots, ref), stored.phash))
      crop_phashes.append(stored.crop_phashes)
      sums = [a + b for a, b in zip(sums, stored.channel_sums)]
      squares = [a + b for a, b in zip(squares, stored.channel_squares)]
      self._progress.add(written=1)
    self._written.inc(num_examples)  # Once a shard: a shard is one bundle, counters report per bundle.
    return ShardSummary(name, split, num_examples, num_bytes, num_passthrough, dict(class_counts),
                        num_pixels, tuple(sums), tuple(squares), tuple(rejects),
                        phashes=tuple(phashes), crop_phashes=tuple(crop_phashes))

  def _boxes(self, ref: ImageRef, path: str, stored: image_lib.ProcessedImage):
    """The file's VOC boxes moved to the stored image; None without --bbox_dir."""
    if not self._bbox_dir:
      return None
    try:
      boxes = imagenet.read_boxes(self._bbox_dir, ref.synset, ref.key) or []
    except imagenet.AnnotationError as e:
      logging.warning('Ignoring the bounding boxes of %s: %s', path, e)
      self._bad_annotations.inc()
      return []
    return imagenet.map_boxes(boxes, stored.orientation, stored.crop)

  def _add_reject(self, rejects: List[dict], split: str, path: str, reason: str) -> None:
    rejects.append(reject(path, split, reason))
    self._rejected.inc()
    self._progress.add(rejected=1)
    Metrics.counter(_NAMESPACE, 'rejected: ' + reason_category(reason)).inc()


def _delete_quietly(path: str) -> None:
  try:
    if FileSystems.exists(path):
      FileSystems.delete([path])
  except Exception:  # pylint: disable=broad-except
    pass  # A leftover temp file is harmless: it never carries a final shard name.


class WriteShards(beam.PTransform):
  """(shard key, ImageRef) pairs -> one ShardSummary per shard (output `summaries`), each shard
  written exactly once (or kept by --resume), and each shard's outcome (output `outcomes`)."""

  def __init__(self, output: layout.OutputLayout, spec: image_lib.ImageSpec, seed: int,
               compression: str, resume: bool, split_roots: Dict[str, str],
               class_texts: Optional[Dict[str, str]] = None, bbox_dir: Optional[str] = None,
               codecs: Optional[Dict[str, str]] = None,
               file_format: str = file_formats.TFRECORD,
               max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, recipe: Optional[Dict[str, Any]] = None):
    super().__init__()
    self._fn = WriteShardFn(output, spec, seed, compression, resume, split_roots, class_texts,
                            bbox_dir, codecs, file_format, max_file_bytes, recipe)

  def expand(self, assigned):
    return (assigned
            | 'GroupPathsByShard' >> beam.GroupByKey()
            | 'WriteShard' >> beam.ParDo(self._fn).with_outputs(OUTCOMES_TAG, main='summaries'))
