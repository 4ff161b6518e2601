"""Re-read a converter output directory and list every problem found in it.

``python -m pipeline.verify OUTPUT [--against OTHER]`` (also ``folder2tfrecord verify OUTPUT``)
exits 0 when the output is complete and readable (and, with --against, byte-identical to OTHER:
pipeline/checks/compare.py), 1 otherwise, 2 when OUTPUT is missing. It prints one line per problem
with the file and, for a record, its index (0-based) and byte offset in the (decompressed) shard.
Checked against manifest.json (docs/output.md#checking-an-output-verify): `_SUCCESS`; the shard set
and names; each shard's size and SHA-256; TFRecord framing and masked crc32c (TensorFlow's
core/lib/io/record_writer.cc) or ArrayRecord chunk hashes; every record a tf.train.Example whose
JPEG decodes completely at its stated size and whose label is in range; counts per shard and split;
duplicates.jsonl against the records' image/phash (pipeline/checks/duplicates_check.py); the
metadata files against the records and `_SUCCESS` (pipeline/checks/metadata_check.py). Everything is
read through Beam's FileSystems (local, gs://, s3://; Beam options after OUTPUT); TensorFlow is not
needed (the Example class of transforms/imaging/example.py is wire-compatible with
tf.train.Example).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import os
import sys
import zlib
from collections.abc import Sequence

from pipeline import extras
from pipeline.runtime import logs

with logs.held_import_logs():  # Beam may log a harmless warning while it is imported (see logs.py).
  from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
from PIL import Image

from pipeline.checks import compare
from pipeline.checks import duplicates_check
from pipeline.checks import metadata_check
from pipeline.command_line import parse_command_line
from transforms.output import file_format as file_formats
from transforms.output.file_format import FramingError, read_tfrecords
from transforms.output import layout
from transforms.output.checksum import HashingReader, file_sha256
from transforms.imaging.example import StoredExample, parse_example
from transforms.paths import is_remote


@dataclasses.dataclass(frozen=True)
class Problem:
  """One thing wrong with the output: where (file, optional record) and what."""

  path: str
  message: str
  record_index: int | None = None
  offset: int | None = None  # byte offset of the record in the decompressed shard

  def __str__(self) -> str:
    if self.record_index is None:
      return f'{self.path}: {self.message}'
    if self.offset is None:
      return f'{self.path}: record {self.record_index}: {self.message}'
    return f'{self.path}: record {self.record_index} (byte {self.offset}): {self.message}'


@dataclasses.dataclass
class VerifyReport:
  """Result of :func:`verify`. ``records_read`` maps split -> records whose framing was intact."""

  output_dir: str
  problems: list[Problem] = dataclasses.field(default_factory=list)
  records_read: dict[str, int] = dataclasses.field(default_factory=dict)
  shards_read: int = 0
  checksums: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)  # as read
  checksums_checked: int = 0  # shards whose manifest entry has a size and SHA-256
  files_listed: int | None = None  # files compared with _SUCCESS's SHA-256; None: it lists none

  @property
  def ok(self) -> bool:
    return not self.problems


# ---------------------------------------------------------------------------------------------
# Example records


def check_example(
  payload: bytes, label_range: range | None, tally: metadata_check.RecordTally | None = None
) -> list[str]:
  """Problems (as messages) with one serialized Example: parse, JPEG decode, size, label range.
  `tally`, when given, counts the record (pipeline/checks/metadata_check.py)."""
  try:
    multi_label = tally is not None and tally.multi_label
    example = parse_example(payload).require(
      'encoded', 'height', 'width', 'labels' if multi_label else 'label'
    )
    labels = _labels(example) if multi_label else [example.label]
  except ValueError as error:
    return [f'not a tf.train.Example with the expected features: {error}']
  encoded, height, width = example.encoded, example.height, example.width
  messages, pixels = [], None
  try:
    with Image.open(io.BytesIO(encoded)) as image:
      if image.format != 'JPEG':
        messages.append(f'image/encoded is {image.format}, not JPEG')
      image.load()
      if image.size != (width, height):
        messages.append(
          f'image is {image.size[0]}x{image.size[1]} but image/width x '
          f'image/height say {width}x{height}'
        )
      if tally is not None:
        pixels = np.asarray(image.convert('RGB'))
  except Exception as error:  # pylint: disable=broad-except  (Pillow raises many types)
    messages.append(f'image/encoded does not decode as JPEG: {error}')
  if tally is not None:
    tally.add(example, pixels)
  for one in labels:
    if label_range is not None and one not in label_range:
      messages.append(f'label {one} outside [{label_range.start}, {label_range.stop})')
  return messages


def _labels(example: StoredExample) -> list[int]:
  """A multi-label record's labels: one or more, increasing, as many as its synsets.

  Raises:
    ValueError: they are not.
  """
  labels, synsets = list(example.labels), example.synsets
  if not labels or labels != sorted(set(labels)) or len(synsets) != len(labels):
    raise ValueError(
      f"'image/class/label' {labels} is not an increasing list of labels, one per "
      f"'image/class/synset' ({len(synsets)})"
    )
  return labels


# ---------------------------------------------------------------------------------------------
# The output directory


def verify_shard(
  path: str,
  compression: str,
  label_range: range | None,
  problems: list[Problem],
  file_format: str = file_formats.FileFormat.TFRECORD,
  phashes: list | None = None,
  tally: metadata_check.RecordTally | None = None,
) -> tuple[int, tuple[int, str] | None]:
  """Check one shard; append its problems; return the number of records it holds intact and the
  file's (size in bytes, hex SHA-256) as stored (None when it could not be read to the end).
  `phashes`, when given, gets (image/filename, image/phash or None) of each readable record; `tally`
  counts them.

  Gzip shards are decompressed as a stream (Python's gzip module, small reads), so the records
  before a corrupt or truncated part of the gzip stream are still checked and counted.
  """
  if file_format != file_formats.FileFormat.TFRECORD:
    return _verify_records(
      path, file_formats.get(file_format), compression, label_range, problems, phashes, tally
    )
  count, checksum = 0, None
  try:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
      hashed = HashingReader(raw)
      try:
        handle = gzip.GzipFile(fileobj=hashed, mode='rb') if compression == 'gzip' else hashed
        for record in read_tfrecords(handle):
          count += 1
          messages = (
            check_example(record.data, label_range, tally)
            if record.data_crc_ok
            else [file_formats.DATA_CRC_MISMATCH]
          )
          if phashes is not None and record.data_crc_ok:
            phashes.append(duplicates_check.record_phash(record.data))
          problems.extend(Problem(path, m, record.index, record.offset) for m in messages)
      except FramingError as error:
        problems.append(Problem(path, str(error), error.index, error.offset))
      except (EOFError, zlib.error, gzip.BadGzipFile) as error:  # corrupt gzip stream
        problems.append(_read_failed(path, count, error))
      hashed.drain()
      checksum = hashed.bytes, hashed.hexdigest()
  except OSError as error:  # unreadable file
    problems.append(_read_failed(path, count, error))
  return count, checksum


def _read_failed(path: str, count: int, error: Exception) -> Problem:
  return Problem(path, f'read failed after {count} records: {type(error).__name__}: {error}', count)


def _check_checksum(
  path: str, entry: dict, checksum: tuple[int, str] | None, problems: list[Problem]
) -> bool:
  """Compares a shard's size and SHA-256 as read with its manifest entry; False when the entry has
  none (an output of an earlier version)."""
  if 'sha256' not in entry or 'bytes' not in entry:
    return False
  if checksum is not None and checksum != (entry['bytes'], entry['sha256']):
    problems.append(
      Problem(
        path,
        f'{checksum[0]} bytes with SHA-256 {checksum[1][:16]}..., but '
        f'manifest.json says {entry["bytes"]} bytes with SHA-256 '
        f'{entry["sha256"][:16]}...: the file changed after it was written',
      )
    )
  return True


def _verify_records(
  path: str,
  shard_format: file_formats.ShardFormat,
  compression: str,
  label_range: range | None,
  problems: list[Problem],
  phashes: list | None = None,
  tally: metadata_check.RecordTally | None = None,
) -> tuple[int, tuple[int, str] | None]:
  """verify_shard through the format's own reader (ArrayRecord: chunk hashes checked); reading
  stops at the first unreadable record. The file is hashed in a read of its own (the format's C++
  reader reads it by itself)."""
  count = 0
  try:
    for data in shard_format.read(path, compression):
      problems.extend(Problem(path, m, count) for m in check_example(data, label_range, tally))
      if phashes is not None:
        phashes.append(duplicates_check.record_phash(data))
      count += 1
  except file_formats.ShardReadError as error:
    problems.append(Problem(path, f'unreadable: {error.reason}', error.index))
  except (OSError, RuntimeError, ValueError) as error:  # not an ArrayRecord file, unreadable file
    problems.append(
      Problem(path, f'read failed after {count} records: {type(error).__name__}: {error}', count)
    )
  try:
    return count, file_sha256(path)
  except OSError:
    return count, None


def _check_manifest_self(
  output: layout.OutputLayout, manifest: dict, problems: list[Problem]
) -> None:
  """The manifest's own arithmetic: shard names, num_shards and per-split sums."""
  where = output.path(layout.MANIFEST_FILE)
  for split, entry in manifest['splits'].items():
    shards = entry['shards']
    if entry['num_shards'] != len(shards):
      problems.append(
        Problem(
          where,
          f'split {split!r}: num_shards {entry["num_shards"]} but {len(shards)} shards listed',
        )
      )
    expected = output.shard_names.names(split, len(shards))
    if [s['file'] for s in shards] != expected:
      problems.append(
        Problem(
          where,
          f'split {split!r}: shard names are not '
          f'{expected[0] if expected else "(none)"} ... in order',
        )
      )
    total = sum(s['num_examples'] for s in shards)
    if total != entry['num_examples']:
      problems.append(
        Problem(
          where,
          f'split {split!r}: num_examples {entry["num_examples"]} but its shards add up to {total}',
        )
      )


def verify(output_dir: str, pipeline_options: PipelineOptions | None = None) -> VerifyReport:
  """Check a converter output directory and return every problem found (none = valid).

  Args:
    output_dir: local path, gs:// or s3:// URL of a converter output.
    pipeline_options: Beam options for the file system (e.g. --s3_endpoint_url); optional.
  Returns:
    A VerifyReport; ``report.ok`` is True when no problem was found. Never raises for a
    problem in the output itself (missing or corrupt files are reported, not raised).
  """
  if pipeline_options is not None:
    FileSystems.set_options(pipeline_options)
  output_dir = output_dir.rstrip('/')
  report = VerifyReport(output_dir)
  problems = report.problems
  success_path = layout.join(output_dir, layout.SUCCESS_FILE)
  if not FileSystems.exists(success_path):
    problems.append(Problem(success_path, 'missing: the conversion did not finish'))
  manifest_path = layout.join(output_dir, layout.MANIFEST_FILE)
  try:
    output, manifest = layout.read_output(output_dir)
    if manifest.get('format_version') != layout.FORMAT_VERSION:
      raise ValueError(
        f'format_version {manifest.get("format_version")!r}, expected {layout.FORMAT_VERSION}'
      )
    label_range = range(
      manifest['label_offset'], manifest['label_offset'] + manifest['num_classes']
    )
    listed = {
      s['file']: (split, s) for split, entry in manifest['splits'].items() for s in entry['shards']
    }
    _check_manifest_self(output, manifest, problems)
  except Exception as error:  # pylint: disable=broad-except  (missing, not JSON, wrong keys)
    problems.append(Problem(manifest_path, f'cannot use manifest: {type(error).__name__}: {error}'))
    return report
  found = {
    FileSystems.split(m.path)[1] for m in FileSystems.match([output.path('*')])[0].metadata_list
  }
  for name in sorted(n for n in found if output.is_shard(n) and n not in listed):
    problems.append(Problem(output.path(name), 'extra shard file not listed in manifest.json'))
  record_phashes = []  # (split, image/filename, image/phash) of every record read
  tallies = {}  # split -> metadata_check.RecordTally
  for name, (split, entry) in sorted(listed.items()):
    path = output.path(name)
    report.records_read.setdefault(split, 0)
    if name not in found:
      problems.append(Problem(path, 'missing: listed in manifest.json'))
      continue
    shard_phashes = []
    count, checksum = verify_shard(
      path,
      manifest.get('compression', 'none'),
      label_range,
      problems,
      file_formats.of_manifest(manifest).name,
      shard_phashes,
      tallies.setdefault(
        split, metadata_check.RecordTally(multi_label=bool(manifest.get('multi_label')))
      ),
    )
    record_phashes.extend((split, name, value) for name, value in shard_phashes)
    report.shards_read += 1
    report.records_read[split] += count
    if checksum is not None:
      report.checksums[name] = checksum
    report.checksums_checked += _check_checksum(path, entry, checksum, problems)
    if count != entry['num_examples']:
      problems.append(Problem(path, f'{count} records, manifest.json says {entry["num_examples"]}'))
  for split, entry in manifest['splits'].items():
    if report.records_read.get(split, 0) != entry['num_examples']:
      problems.append(
        Problem(
          manifest_path,
          f'split {split!r}: read '
          f'{report.records_read.get(split, 0)} records, manifest '
          f'says {entry["num_examples"]}',
        )
      )
  problems.extend(
    Problem(path, message)
    for path, message in duplicates_check.check_duplicates(output, manifest, record_phashes)
  )
  metadata_problems, report.files_listed = metadata_check.check_metadata(
    output, manifest, tallies, records_complete=not problems
  )
  problems.extend(Problem(path, message) for path, message in metadata_problems)
  return report


def build_parser() -> argparse.ArgumentParser:
  """The flags of `folder2tfrecord verify` (scripts/flags_doc.py documents them)."""
  parser = argparse.ArgumentParser(
    prog='folder2tfrecord verify',
    allow_abbrev=False,
    description='Check a converter output directory: _SUCCESS, manifest.json counts, every '
    "shard's size and SHA-256, TFRecord crcs or ArrayRecord chunk hashes, Example "
    'parsing, JPEG decoding and label range, and every metadata file against the '
    "records and _SUCCESS's SHA-256 list (labels.txt, stats.json, rejects.jsonl, ...).",
  )
  parser.add_argument('output', help='output directory (local path, gs:// or s3:// URL)')
  parser.add_argument(
    '--against',
    metavar='OTHER',
    help='another output to compare with byte for byte (shards and metadata but '
    'provenance.json); names the files and the recipe entries (versions, '
    'flags, input) that differ. Exit 1 when they differ.',
  )
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """CLI: ``python -m pipeline.verify OUTPUT [--against OTHER] [beam options]``; 0 = valid (and
  identical to OTHER), 1 = problems found (or OTHER differs), 2 = no such OUTPUT, or an unreadable
  store."""
  args, beam_args = parse_command_line(build_parser(), argv)
  try:
    extras.require_for_args([args.output, *([args.against] if args.against else []), *beam_args])
  except extras.MissingDependency as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  try:
    options = PipelineOptions(beam_args)
    FileSystems.set_options(options)
    if not _folder_exists(args.output):
      print(
        f'error: {args.output} does not exist (or holds no file): nothing to verify',
        file=sys.stderr,
      )
      return 2
    report = verify(args.output, options)
  except Exception as e:  # pylint: disable=broad-except  (the store is unreachable, credentials...)
    print(f'error: cannot read {args.output}: {type(e).__name__}: {str(e)[:300]}', file=sys.stderr)
    return 2
  code = _print_report(report)
  if args.against:
    try:
      comparison = compare.compare_outputs(report.output_dir, args.against, report.checksums)
    except Exception as e:  # pylint: disable=broad-except
      print(
        f'error: cannot compare with {args.against}: {type(e).__name__}: {str(e)[:300]}',
        file=sys.stderr,
      )
      return 2
    print('\n'.join(comparison.lines()))
    code = code or (0 if comparison.identical else 1)
  return code


def _folder_exists(output: str) -> bool:
  """Whether a local folder exists, or an object-store prefix holds a file."""
  if not is_remote(output):
    return os.path.isdir(output)
  return bool(FileSystems.match([layout.join(output, '*')])[0].metadata_list)


def _print_report(report: VerifyReport) -> int:
  """Prints the problems and the OK/FAILED line; returns 0 when the output is valid, else 1."""
  for problem in report.problems:
    print(f'PROBLEM {problem}', file=sys.stderr)
  counts = ', '.join(f'{split}: {n}' for split, n in sorted(report.records_read.items()))
  if report.ok:
    checked = (
      f'SHA-256 of {report.checksums_checked} shards as in manifest.json'
      if report.checksums_checked
      else 'no checksums in manifest.json (an earlier version made it): bytes not compared'
    )
    listed = (
      f'{report.files_listed} metadata files as {layout.SUCCESS_FILE} lists their SHA-256'
      if report.files_listed is not None
      else f'{layout.SUCCESS_FILE} lists no SHA-256 (an earlier version made it): edits of the '
      'metadata files since the run cannot be checked'
    )
    print(
      f'OK {report.output_dir}: {report.shards_read} shards, records {counts}; {checked}; {listed}'
    )
    return 0
  print(
    f'FAILED {report.output_dir}: {len(report.problems)} problem(s); '
    f'records read {counts or "none"}',
    file=sys.stderr,
  )
  return 1


if __name__ == '__main__':
  sys.exit(main())
