"""The sink: one DoFn call writes one complete shard.

Only file paths are grouped by shard, not records as ``WriteToTFRecord(num_shards=N)`` groups them
(the DirectRunner holds those in memory, and it starts at a random shard each run; figures in
benchmarks/RESULTS.md). The DoFn reads, converts and appends each image in hash order to a temporary
file and renames it to the final shard name when complete: memory stays flat, the bytes are the same
on every run and runner, a retried bundle rewrites its temporary file, and no reader sees a
half-written shard under a final name. The container is transforms/output/file_format.py's. Before
the rename, a JSON sidecar (`_work/<shard>.json`, a ShardSummary: counts, pixel sums, rejects,
perceptual hashes, the input fingerprint, the shard's size and SHA-256, codec versions and recipe)
is written; `--resume` keeps a finished shard only when its inputs, codecs and recipe are unchanged
(transforms/output/resume.py). Each shard's outcome goes to the output `outcomes`. In `setup()` a
worker whose codec builds differ from the driver's refuses to write
(transforms/imaging/codec_versions.py).
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
from transforms.output import file_format as file_formats
from transforms.imaging import image as image_lib
from transforms.output import layout, resume
from transforms.output.checksum import FileChecksum
from transforms.imaging.codec_versions import check_codecs
from transforms.imaging.convert import RecordRecipe, Rejected, convert_file, read_reason
from transforms.inputs.fingerprint import ShardInputs, class_texts_digest, shard_inputs
from transforms.inputs.input_file import read_input
from transforms.inputs.listing import image_path, input_path
from transforms.output.progress_counters import ProgressFile
from transforms.metadata.reject_reasons import reason_category
from transforms.split.sharding import ImageRef, ShardId, order_key
from transforms.records import Reject, ShardSummary

_NAMESPACE = 'folder2tfrecord'
OUTCOMES_TAG = 'outcomes'  # one transforms/output/resume.py outcome per shard


class WriteShardFn(beam.DoFn):
  """((split, index, num_shards), [ImageRef]) -> ShardSummary, and its outcome on OUTCOMES_TAG;
  writes the shard file unless --resume keeps it."""

  def __init__(
    self,
    output: layout.OutputLayout,
    recipe: RecordRecipe,
    seed: int,
    resume: bool,
    codecs: Optional[Dict[str, str]] = None,
    shard_recipe: Optional[Dict[str, Any]] = None,
  ):
    """`recipe`: how each file becomes a record (transforms/imaging/convert.py; its `split_roots` find
    each ImageRef's file, read through transforms/inputs/input_file.py `read_input` with its
    `max_file_bytes`). `codecs`: the driver's codec_versions(compression, file_format); each worker
    must have the same (None: no check, and --resume does not compare them). `shard_recipe`:
    resume.shard_recipe of the run, stored in each sidecar (None: not stored, and --resume does not
    compare it)."""
    super().__init__()
    self._recipe = recipe
    self._format = file_formats.get(recipe.file_format)
    self._output = output
    self._seed = seed
    self._resume = resume
    self._class_texts_digest = class_texts_digest(recipe.class_texts or {})
    self._codecs = dict(codecs) if codecs is not None else None
    self._shard_recipe = dict(shard_recipe) if shard_recipe is not None else None
    self._written = Metrics.counter(_NAMESPACE, 'images_written')
    self._rejected = Metrics.counter(_NAMESPACE, 'images_rejected')
    self._shards = Metrics.counter(_NAMESPACE, 'shards_written')
    self._skipped = Metrics.counter(_NAMESPACE, 'shards_resumed')
    self._bad_annotations = Metrics.counter(_NAMESPACE, 'bad_bbox_annotations')
    self._internal_errors = Metrics.counter(_NAMESPACE, 'internal_errors')

  def setup(self):
    if self._codecs is not None:
      check_codecs(self._codecs)  # Raises CodecMismatch: this worker cannot write.
    s3.apply_empty_upload_fix()
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
      outcome = resume.decide(finished, shard_bytes, inputs, self._codecs, self._shard_recipe)
      if outcome == resume.KEPT:
        self._skipped.inc()
        self._progress.add(finished.num_examples, finished.num_rejected)
        yield finished
        yield beam.pvalue.TaggedOutput(OUTCOMES_TAG, outcome)
        return
    yield self._write_shard(name, shard.split, refs, inputs)
    self._shards.inc()
    yield beam.pvalue.TaggedOutput(OUTCOMES_TAG, outcome)

  def _write_shard(
    self, name: str, split: str, refs: List[ImageRef], inputs: ShardInputs
  ) -> ShardSummary:
    """Writes the shard to a temp file, its sidecar, then renames the shard into place."""
    final, sidecar = self._output.path(name), self._output.sidecar_path(name)
    temp = layout.temp_path(self._output.work_path(name), uuid.uuid4().hex)
    try:
      checksum = FileChecksum()
      with self._format.create(temp, self._recipe.compression, checksum) as write_record:
        summary = self._write_records(write_record, name, split, refs)
      summary = dataclasses.replace(
        summary,
        inputs=inputs,
        file_bytes=checksum.bytes,
        file_sha256=checksum.sha256,
        codecs=self._codecs,
        recipe=self._shard_recipe,
      )
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

  def _write_records(
    self, write_record: file_formats.RecordWriter, name: str, split: str, refs: List[ImageRef]
  ) -> ShardSummary:
    """Converts and appends every file of the shard with `write_record`; returns what was written
    and rejected."""
    num_examples = num_bytes = num_passthrough = num_pixels = 0
    class_counts = collections.Counter()
    sums, squares = [0] * 3, [0] * 3  # Python integers: exact at any size.
    rejects, phashes, crop_phashes = [], [], []
    filesystems = {}  # One FileSystems lookup per split root, not per file (~25 us an image).
    split_roots = self._recipe.split_roots
    for ref in refs:
      path = image_path(split_roots, ref)
      if ref.split not in filesystems:
        filesystems[ref.split] = FileSystems.get_filesystem(path)
      try:
        data = read_input(path, self._recipe.max_file_bytes, ref.size, filesystems[ref.split])
      except OSError as e:
        self._add_reject(rejects, split, path, read_reason(e))
        continue
      converted = convert_file(ref, data, self._recipe)
      if isinstance(converted, Rejected):
        if converted.error is not None:
          logging.error(
            'Internal error while converting %s (stored as a reject)',
            path,
            exc_info=converted.error,
          )
          self._internal_errors.inc()
        self._add_reject(rejects, split, path, converted.reason)
        continue
      if converted.boxes_error is not None:
        logging.warning('Ignoring the bounding boxes of %s: %s', path, converted.boxes_error)
        self._bad_annotations.inc()
      record, stored = converted.record, converted.image
      write_record(record)
      num_examples += 1
      num_bytes += len(stored.encoded)
      num_passthrough += stored.passthrough
      class_counts[ref.synset] += 1
      num_pixels += stored.height * stored.width
      phashes.append((input_path(split_roots, ref), stored.phash))
      crop_phashes.append(stored.crop_phashes)
      sums = [a + b for a, b in zip(sums, stored.channel_sums)]
      squares = [a + b for a, b in zip(squares, stored.channel_squares)]
      self._progress.add(written=1)
    # Once a shard: a shard is one bundle, counters report per bundle.
    self._written.inc(num_examples)
    return ShardSummary(
      name,
      split,
      num_examples,
      num_bytes,
      num_passthrough,
      dict(class_counts),
      num_pixels,
      tuple(sums),
      tuple(squares),
      tuple(rejects),
      phashes=tuple(phashes),
      crop_phashes=tuple(crop_phashes),
    )

  def _add_reject(self, rejects: List[Reject], split: str, path: str, reason: str) -> None:
    rejects.append(Reject.of(path, split, reason))
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

  def __init__(
    self,
    output: layout.OutputLayout,
    recipe: RecordRecipe,
    seed: int,
    resume: bool,
    codecs: Optional[Dict[str, str]] = None,
    shard_recipe: Optional[Dict[str, Any]] = None,
  ):
    """The arguments of WriteShardFn."""
    super().__init__()
    self._fn = WriteShardFn(output, recipe, seed, resume, codecs, shard_recipe)

  def expand(self, assigned):
    return (
      assigned
      | 'GroupPathsByShard' >> beam.GroupByKey()
      | 'WriteShard' >> beam.ParDo(self._fn).with_outputs(OUTCOMES_TAG, main='summaries')
    )
