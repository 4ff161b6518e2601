"""The converter's own flags, validated before any work starts.

``parse_args`` splits the command line in two: the converter's flags (this module) and everything
else, which goes to Beam's ``PipelineOptions`` (``--runner``, ``--direct_num_workers``,
``--s3_endpoint_url``, ``--project``, ...). A flag that neither the converter nor any Beam options
class knows is an error with a suggestion, not a silently ignored typo. ``--config FILE`` puts a
file's flags before the command line's (pipeline/config.py); ``--print_config`` prints the effective
configuration and exits; ``--plan`` prints what a run with these flags would write, and writes
nothing (pipeline/plan.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from apache_beam.options.pipeline_options import PipelineOptions

from beam_private.option_parser import beam_option_parser
from pipeline import command_line, config
from pipeline.command_line import UsageError
from transforms.output import file_format as file_formats
from transforms.duplicates.exact import read_exclusions
from transforms.imaging.image import DEFAULT_MAX_IMAGE_PIXELS, RESAMPLE_FILTERS, ImageSpec
from transforms.inputs.input_file import DEFAULT_MAX_FILE_BYTES
from transforms.inputs.label_map import labels_file_digest
from transforms.output.layout import FORMAT_SHARD_NAMES, OutputLayout, shard_names_for
from transforms.inputs.manifest import (
  LABEL_COLUMNS,
  PATH_COLUMNS,
  SPLIT_COLUMNS,
  ManifestSpec,
  manifest_digest,
)
from transforms.metadata.model_garden import DEFAULT_BATCH_SIZE
from transforms.split.sample import RUN_SAMPLE_SIZE
from transforms.split.shard_count import DEFAULT_NUM_READERS, DEFAULT_TARGET_SHARD_MB, MB
from transforms.duplicates.near import DEFAULT_NEAR_DISTANCE, MAX_NEAR_DISTANCE
from transforms.paths import is_remote, nested
from transforms.split.sharding import TEST, TRAIN, VALIDATION

COMPRESSIONS = file_formats.COMPRESSIONS
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')
# The converter's flags that name files or folders: made absolute (a config file's relative to its
# folder).
PATH_FLAGS = (
  'input',
  'output',
  'labels_file',
  'validation_ground_truth',
  'ground_truth_synsets',
  'class_text_file',
  'bbox_dir',
  'exclude_file',
  'manifest',
  'base',
)
# The flags of a --manifest run (transforms/inputs/manifest.py); --manifest recorded as its
# content's digest.
MANIFEST_FLAGS = (
  'manifest',
  'manifest_path_column',
  'manifest_label_column',
  'manifest_split_column',
  'manifest_path_format',
  'manifest_columns',
  'label_separator',
)
# Flags added after manifest.json's format 1: recorded (manifest "options", _work/run.json) only
# when not at their default, so outputs of earlier versions and of this one with these flags at
# their defaults have byte-identical manifests, and --resume accepts a run interrupted before an
# upgrade.
RECORDED_WHEN_SET = (
  'test_fraction',
  'test_shards',
  'shard_name_template',
  'model_garden_batch_size',
  'resize_longer_side',
  'no_upscale',
  'target_shard_mb',
  'num_readers',
  'drop_duplicates',
  'exclude_file',
  'near_duplicate_distance',
  'group_regex',
  'max_file_bytes',
  'base',
) + MANIFEST_FLAGS
DEFAULT_SIDE = 256  # --resize_shorter_side and --center_crop unless --resize_longer_side is given
# Flags of the plan (--plan), which decide nothing a run writes: never recorded, never compared.
PLAN_FLAGS = ('plan', 'plan_sample', 'num_workers')
DEFAULT_PLAN_SAMPLE = 256

# the usage lines' name of the command (python -m pipeline.run is the same)
PROG = 'folder2tfrecord run'


@dataclasses.dataclass(frozen=True)
class ConverterOptions:
  """Validated converter flags (see `build_parser` for their meaning)."""

  input: str
  output: str
  resize_shorter_side: int = 256
  center_crop: int = 256
  resize_longer_side: int = 0
  no_upscale: bool = False
  jpeg_quality: int = 90
  resample: str = 'bilinear'
  max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
  max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
  train_shards: int = 0
  validation_shards: int = 0
  test_shards: int = 0
  target_shard_mb: float = DEFAULT_TARGET_SHARD_MB
  num_readers: int = DEFAULT_NUM_READERS
  validation_fraction: float = 0.0
  test_fraction: float = 0.0
  shard_name_template: Optional[str] = None  # None: --file_format's default names
  model_garden_batch_size: int = DEFAULT_BATCH_SIZE
  seed: int = 0
  label_offset: int = 0
  labels_file: Optional[str] = None
  compression: str = 'none'
  file_format: str = file_formats.FileFormat.TFRECORD.value  # a plain str, as parsed
  overwrite: bool = False
  resume: bool = False
  base: Optional[str] = None
  max_reject_fraction: float = 1.0
  validation_ground_truth: Optional[str] = None
  ground_truth_synsets: Optional[str] = None
  class_text_file: Optional[str] = None
  bbox_dir: Optional[str] = None
  drop_duplicates: bool = False
  exclude_file: Optional[str] = None
  near_duplicate_distance: int = DEFAULT_NEAR_DISTANCE
  group_regex: Optional[str] = None
  manifest: Optional[str] = None
  manifest_path_column: Optional[str] = None
  manifest_label_column: Optional[str] = None
  manifest_split_column: Optional[str] = None
  manifest_path_format: Optional[str] = None
  manifest_columns: Optional[str] = None
  label_separator: Optional[str] = None
  log_level: str = 'WARNING'
  verbose: bool = False
  plan: bool = False
  plan_sample: int = DEFAULT_PLAN_SAMPLE
  num_workers: int = 0

  def __post_init__(self):
    if self.label_offset not in (0, 1):
      raise UsageError(
        f'--label_offset must be 0 or 1 (1 reserves label 0 for "background", as '
        f"TF Model Garden's ImageNet configs with num_classes 1001), got {self.label_offset}."
      )
    for flag, fraction in (
      ('validation_fraction', self.validation_fraction),
      ('test_fraction', self.test_fraction),
    ):
      if not 0.0 <= fraction < 1.0:
        raise UsageError(f'--{flag} must be in [0, 1), got {fraction}.')
    if self.validation_fraction + self.test_fraction >= 1.0:
      raise UsageError(
        f'--validation_fraction {self.validation_fraction} + --test_fraction '
        f'{self.test_fraction} must be < 1: train keeps the rest.'
      )
    if min(self.requested_shards.values()) < 0:
      raise UsageError(
        '--train_shards, --validation_shards and --test_shards must be >= 0 (0 picks a '
        'count from the planned bytes, see --target_shard_mb).'
      )
    if not self.target_shard_mb > 0 or self.target_shard_bytes < 1:
      raise UsageError(
        f'--target_shard_mb must be > 0 (megabytes, 10^6 bytes), got {self.target_shard_mb}.'
      )
    for flag, value, least in (
      ('plan_sample', self.plan_sample, 1),
      ('num_readers', self.num_readers, 1),
      ('num_workers', self.num_workers, 0),
    ):
      if value < least:
        raise UsageError(f'--{flag} must be >= {least}, got {value}.')
    if self.max_file_bytes < 1:
      raise UsageError(f'--max_file_bytes must be >= 1 (bytes), got {self.max_file_bytes}.')
    if self.model_garden_batch_size < 1:
      raise UsageError(
        f'--model_garden_batch_size must be >= 1, got {self.model_garden_batch_size}.'
      )
    try:
      _ = self.output_layout  # its property checks the flags
    except ValueError as e:
      raise UsageError(f'--shard_name_template: {e}') from None
    if not 0.0 <= self.max_reject_fraction <= 1.0:
      raise UsageError(f'--max_reject_fraction must be in [0, 1], got {self.max_reject_fraction}.')
    if self.log_level not in LOG_LEVELS:
      raise UsageError(f'--log_level must be one of {", ".join(LOG_LEVELS)}, got {self.log_level}.')
    if self.overwrite and self.resume:
      raise UsageError(
        '--overwrite and --resume exclude each other: --resume keeps finished shards, '
        '--overwrite deletes them.'
      )
    self._check_duplicate_flags()
    self._check_manifest_flags()
    if self.base and self.manifest:
      raise UsageError(
        '--base makes a version of a class-folder conversion; it does not take '
        '--manifest yet: convert the manifest afresh (without --base).'
      )
    if self.base and (
      any(self.requested_shards.values()) or self.drop_duplicates or self.group_regex
    ):
      raise UsageError(
        '--base sizes the new shards by --target_shard_mb and keeps every base file '
        'where it is: drop --train_shards, --validation_shards, --test_shards, '
        '--drop_duplicates and --group_regex.'
      )
    if self.base and nested(self.base, self.output):
      raise UsageError(
        f'--base {self.base} and --output {self.output} are the same folder or one is '
        'inside the other: a version is written into a folder of its own, and the base '
        'is never modified.'
      )
    try:
      file_formats.get(self.file_format).check_compression(self.compression)
    except ValueError as e:
      raise UsageError(str(e)) from None
    try:
      _ = self.image_spec  # its property checks the flags
    except ValueError as e:
      message = str(e)
      for flag in ('center_crop', 'resize_shorter_side', 'resize_longer_side'):
        message = message.replace(flag, '--' + flag)
      raise UsageError(message) from None

  def _check_duplicate_flags(self) -> None:
    if not 0 <= self.near_duplicate_distance <= MAX_NEAR_DISTANCE:
      raise UsageError(
        f'--near_duplicate_distance must be in 0..{MAX_NEAR_DISTANCE} bits, got '
        f'{self.near_duplicate_distance} (the search time grows steeply with it, and '
        'beyond ~12 bits distinct photos start to pair up: docs/duplicates.md).'
      )
    if self.group_regex is not None:
      try:
        groups = re.compile(self.group_regex).groups
      except re.error as e:
        raise UsageError(
          f'--group_regex {self.group_regex!r} is not a regular expression: {e}.'
        ) from None
      if groups < 1:
        raise UsageError(
          f'--group_regex {self.group_regex!r} has no capture group: put the part of '
          'the path that names a group in parentheses, e.g. "^(.+)_frame\\d+\\.jpg$".'
        )
      if not (self.validation_fraction or self.test_fraction):
        raise UsageError(
          '--group_regex keeps groups in one split when --validation_fraction or '
          '--test_fraction splits the input; pass one of them, or drop --group_regex '
          '(split folders given in --input are never moved).'
        )
    if self.exclude_file:
      try:
        _ = self.excluded_files  # its property checks the flags
      except ValueError as e:
        raise UsageError(
          f'{e}. Pass a file with one path relative to --input per line, or a duplicates.jsonl.'
        ) from None

  def _check_manifest_flags(self) -> None:
    given = [flag for flag in MANIFEST_FLAGS[1:] if getattr(self, flag) is not None]
    if given and not self.manifest:
      raise UsageError(
        ', '.join(f'--{flag}' for flag in given) + ' describe a --manifest; pass '
        '--manifest FILE or drop them.'
      )
    if self.manifest and (self.validation_ground_truth or self.bbox_dir):
      raise UsageError(
        '--validation_ground_truth and --bbox_dir label class folders; with '
        '--manifest the manifest gives every label.'
      )
    if self.manifest:
      try:
        _ = self.manifest_spec  # its property checks the flags
      except ValueError as e:
        raise UsageError(str(e)) from None

  @property
  def manifest_spec(self) -> Optional[ManifestSpec]:
    """How to read --manifest (transforms/inputs/manifest.py); None without it."""
    if not self.manifest:
      return None
    columns = None
    if self.manifest_columns is not None:
      columns = tuple(name.strip().lower() for name in self.manifest_columns.split(','))
    return ManifestSpec(
      self.manifest,
      self.input,
      self.manifest_path_column,
      self.manifest_label_column,
      self.manifest_split_column,
      self.manifest_path_format,
      columns,
      self.label_separator,
    )

  @property
  def excluded_files(self) -> FrozenSet[str]:
    """The input-relative paths --exclude_file names (transforms/duplicates/exact.py read_exclusions)."""
    return read_exclusions(self.exclude_file) if self.exclude_file else frozenset()

  @property
  def image_spec(self) -> ImageSpec:
    return ImageSpec(
      resize_shorter_side=self.resize_shorter_side,
      center_crop=self.center_crop,
      jpeg_quality=self.jpeg_quality,
      resample=self.resample,
      max_image_pixels=self.max_image_pixels,
      resize_longer_side=self.resize_longer_side,
      upscale=not self.no_upscale,
    )

  @property
  def terminal_log_level(self) -> str:
    """What the terminal shows: --log_level, or INFO for --verbose unless --log_level says DEBUG."""
    return 'INFO' if self.verbose and self.log_level != 'DEBUG' else self.log_level

  @property
  def output_layout(self) -> OutputLayout:
    """The names of every output file (transforms/output/layout.py); shard names follow
    --shard_name_template, else --file_format's default."""
    return OutputLayout(self.output, shard_names_for(self.shard_name_template, self.file_format))

  @property
  def requested_shards(self) -> Dict[str, int]:
    return {TRAIN: self.train_shards, VALIDATION: self.validation_shards, TEST: self.test_shards}

  @property
  def target_shard_bytes(self) -> int:
    """--target_shard_mb in bytes (MB = 10^6 bytes)."""
    return round(self.target_shard_mb * MB)

  def to_dict(self) -> Dict:
    """The flags that decide the output's bytes (recorded in manifest.json; --resume checks them);
    RECORDED_WHEN_SET flags only when they are not at their default; --labels_file as the SHA-256 of
    its label map (transforms/inputs/label_map.py labels_file_digest)."""
    values = dataclasses.asdict(self)
    for key in ('input', 'output', 'overwrite', 'resume', 'log_level', 'verbose') + PLAN_FLAGS:
      values.pop(key)
    defaults = {field.name: field.default for field in dataclasses.fields(self)}
    for key in RECORDED_WHEN_SET:
      if values[key] == defaults[key]:
        values.pop(key)
    if self.labels_file:  # The label map's content, not where it was: see labels_file_digest.
      values['labels_file'] = labels_file_digest(self.labels_file)
    if self.manifest:  # Its content: the rows decide every label and split.
      values['manifest'] = manifest_digest(self.manifest)
    return values


def _url_or_abspath(path: str) -> str:
  return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def _prog() -> str:
  """The command's name in usage lines: `folder2tfrecord run` or `folder2tfrecord plan`
  (pipeline/cli.py sets it as sys.argv[0]), also for python -m pipeline.run."""
  name = os.path.basename(sys.argv[0]) if sys.argv else ''
  return name if name.startswith('folder2tfrecord ') else PROG


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """--help with "(default: ...)" only where the default is the real value: not for a switch (off
  unless given) nor for a flag whose default is None (its help says what happens without it)."""

  def _get_help_string(self, action: argparse.Action) -> str:
    if action.nargs == 0 or action.default is None:
      return action.help
    return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
    prog=_prog(),
    description='Convert an image folder (root/<class>/<image>) into sharded TFRecord files of '
    'tf.train.Example, with a label map, per-channel statistics and a rejects list. '
    'Flags not listed here are Apache Beam pipeline options (--runner, '
    '--direct_running_mode, --direct_num_workers, --s3_endpoint_url, --project, ...).',
    formatter_class=_DefaultsHelpFormatter,
    allow_abbrev=False,
  )
  io_group = parser.add_argument_group('input and output')
  io_group.add_argument(
    '--input',
    required=True,
    help='Folder of class folders: a local path, gs://... or s3://... . With '
    'train/ plus validation/ (or val/) and/or test/ sub-folders, those are '
    'the splits. With --manifest: the folder its relative paths start '
    'from.',
  )
  io_group.add_argument(
    '--output', required=True, help='Folder for the shards and metadata (local, gs:// or s3://).'
  )
  io_group.add_argument(
    '--overwrite',
    action='store_true',
    help='Delete the shards and metadata of an earlier run in --output first.',
  )
  io_group.add_argument(
    '--resume',
    action='store_true',
    help='Keep the finished shards of an interrupted run with the same flags and '
    'write only the missing ones.',
  )
  io_group.add_argument(
    '--base',
    help='A finished output (local, gs:// or s3://) to make a new version of: '
    'its shards whose files are unchanged are placed into --output as they '
    'are (hard link or server-side copy; the base is never modified), only '
    'new and changed files are converted (docs/usage.md).',
  )
  io_group.add_argument(
    '--config',
    help='YAML or JSON file of flags (keys are flag names, train_shards or '
    'train-shards; Beam options too; relative paths are relative to the '
    "file's folder). A manifest.json works too. Command-line flags win.",
  )
  io_group.add_argument(
    '--print_config',
    action='store_true',
    help='Print the effective configuration as YAML (a --config file) and exit without converting.',
  )
  image = parser.add_argument_group('images')
  image.add_argument(
    '--resize_shorter_side',
    type=int,
    default=None,
    help=f'Resize so the shorter side has this many pixels; 0 keeps the size. '
    f'Default {DEFAULT_SIDE} (0 with --resize_longer_side).',
  )
  image.add_argument(
    '--center_crop',
    type=int,
    default=None,
    help=f'Then keep the centred square of this side in pixels; 0 keeps the aspect '
    f'ratio. Default {DEFAULT_SIDE} (0 with --resize_longer_side). Shorter side '
    f'256 + crop 256 as AlexNet (Krizhevsky et al. 2012).',
  )
  image.add_argument(
    '--resize_longer_side',
    type=int,
    default=0,
    help='Instead: scale the longer side down to this many pixels, aspect ratio '
    "kept, nothing cropped, smaller images kept as they are (ffcv's "
    'max_resolution): what train-time RandomResizedCrop wants. 0 = off.',
  )
  image.add_argument(
    '--no_upscale',
    action='store_true',
    help='An image smaller than --resize_shorter_side keeps its size (the crop then '
    'takes the largest centred square that fits) instead of being blown up.',
  )
  image.add_argument(
    '--jpeg_quality', type=int, default=90, help='Quality of the stored JPEGs, 1-100.'
  )
  image.add_argument(
    '--resample',
    choices=sorted(RESAMPLE_FILTERS),
    default='bilinear',
    help="Resampling filter. bicubic and lanczos: Pillow's antialiased filters on the full "
    "decode. bilinear: DCT-domain power-of-two scaling and Pillow's antialiased "
    'steps, then one plain bilinear step (OpenCV) for the last < 2x of a '
    'downscale, which samples 2x2 source pixels at most (docs/decoding.md).',
  )
  image.add_argument(
    '--max_image_pixels',
    type=int,
    default=DEFAULT_MAX_IMAGE_PIXELS,
    help='Reject images whose header declares more pixels (decompression bombs).',
  )
  image.add_argument(
    '--max_file_bytes',
    type=int,
    default=DEFAULT_MAX_FILE_BYTES,
    help='Reject input files larger than this many bytes (256 MiB by default) from '
    'their size, unread; only regular files are read (FIFOs, sockets and '
    'devices are rejects).',
  )
  splits = parser.add_argument_group('labels, splits and shards')
  splits.add_argument(
    '--labels_file',
    help='Label map: a text file with one class folder name per line (label order, '
    'each class once), or a JSON object {"class": id, ...} of distinct ids >= 0 '
    '(ids it leaves out are named __unused_<id>__ in labels.txt). Images of '
    'classes it does not list are rejected. Default: sorted class folders.',
  )
  splits.add_argument(
    '--label_offset',
    type=int,
    choices=(0, 1),
    default=0,
    help='Added to every label. 1 for TF Model Garden / build_imagenet_data.py '
    '(labels 1..N, 0 = background); 0 for Keras and TFDS.',
  )
  splits.add_argument(
    '--validation_fraction',
    type=float,
    default=0.0,
    help='Without split folders, put this fraction of each class in the '
    'validation split (deterministic given --seed).',
  )
  splits.add_argument(
    '--test_fraction',
    type=float,
    default=0.0,
    help='Without split folders, put this fraction of each class in the test split '
    '(the files after the validation ones in hash order; stratified, '
    'deterministic given --seed).',
  )
  splits.add_argument(
    '--seed',
    type=int,
    default=0,
    help='Seed of the stable hash that orders, splits and shards the files.',
  )
  for split in (TRAIN, VALIDATION, TEST):
    splits.add_argument(
      f'--{split}_shards',
      type=int,
      default=0,
      help=f"Number of {split} shards (at most one per image); 0 = from the split's "
      'planned bytes, see --target_shard_mb.',
    )
  splits.add_argument(
    '--target_shard_mb',
    type=float,
    default=DEFAULT_TARGET_SHARD_MB,
    help='Shard size that automatic shard counts aim at, in MB (10^6 bytes): a split '
    'of B planned bytes gets the power of two nearest to B / target shards '
    '(a multiple of 1024 from 1,536 on), or more for --num_readers, at most one '
    f'per image. The bytes per image come from {RUN_SAMPLE_SIZE} images the '
    'driver converts before the run. The default gives a large split shards of '
    "91-181 MB (TF's TFRecord guide: 10 MB+, ideally 100 MB+; TFDS: 64 MiB to "
    '1 GiB).',
  )
  splits.add_argument(
    '--num_readers',
    type=int,
    default=DEFAULT_NUM_READERS,
    help='Hosts that will read the output. Automatic shard counts give each at least '
    "10 files (TF's TFRecord guide) as long as shards keep 10 MB; the plan warns "
    'about a split with fewer.',
  )
  splits.add_argument(
    '--shard_name_template',
    help='Shard file names: {split}, {index}, {num_shards} with format specs, e.g. '
    'flowers_{split}_{index:05d}-of-{num_shards:05d}.tfrecord. Default: '
    + ' or '.join(f'{t.template} ({f})' for f, t in FORMAT_SHARD_NAMES.items())
    + ' by --file_format. Needs {index} '
    'and {num_shards}, and {split} when there are several splits; no "/", no '
    'leading "_" or ".". TFDS metadata only with {index:05d} and '
    '{num_shards:05d}.',
  )
  splits.add_argument(
    '--compression',
    choices=COMPRESSIONS,
    default='none',
    help='Shard compression (gzip: read with TFRecordDataset(..., "GZIP")); TFRecord only.',
  )
  splits.add_argument(
    '--file_format',
    choices=sorted(f.value for f in file_formats.FileFormat),
    default=file_formats.FileFormat.TFRECORD.value,
    help='Shard container: tfrecord (read front to back: tf.data, TFDS '
    'as_dataset) or array_record (random access: Grain, TFDS '
    'as_data_source, pipeline.read.ExampleSource; named '
    'train.array_record-00000-of-00004). Same records, shards and order.',
  )
  splits.add_argument(
    '--max_reject_fraction',
    type=float,
    default=1.0,
    help='Fail the run (non-zero exit, no _SUCCESS) when more than this fraction '
    'of the files is rejected. The rejects list is written anyway.',
  )
  dups = parser.add_argument_group('duplicates (docs/duplicates.md)')
  dups.add_argument(
    '--drop_duplicates',
    action='store_true',
    help='Drop the extra copies of identical files (reject reason "duplicate of '
    '<path>"): with split folders only train copies, so validation and test '
    'stay as given; with fractions every copy but the first.',
  )
  dups.add_argument(
    '--exclude_file',
    help='Skip the files it names (reject reason "excluded"): one path relative to '
    '--input per line, or a duplicates.jsonl (every file of a line but the '
    'first).',
  )
  dups.add_argument(
    '--near_duplicate_distance',
    type=int,
    default=DEFAULT_NEAR_DISTANCE,
    help='Stored images whose image/phash differ in at most this many bits (or '
    'whose image/phash is within 2 bits fewer of a crop hash of the other) are '
    'near duplicates, reported as groups in duplicates.jsonl; 0-%d.' % MAX_NEAR_DISTANCE,
  )
  dups.add_argument(
    '--group_regex',
    help='Keep files in one split when the first capture group of this regex, '
    'searched in the path relative to the class folder, is the same (frames '
    'of a video, photos of one patient); fractions only.',
  )
  listed = parser.add_argument_group('manifest: labels and splits from a file (docs/usage.md)')
  listed.add_argument(
    '--manifest',
    help='CSV, TSV (with a header row) or JSON lines file (by extension; local, gs:// or s3://) '
    'with one row per image: its path relative to --input (or absolute, or a URI), its '
    'label(s) and optionally its split. Replaces the class folders: files under --input in '
    'no row are not converted.',
  )
  listed.add_argument(
    '--manifest_path_column',
    help='Column of the image path. Default: the first of '
    + ', '.join(PATH_COLUMNS)
    + ' (any case).',
  )
  listed.add_argument(
    '--manifest_label_column',
    help='Column of the label: a class name, an integer id (named by --labels_file), or a list '
    '(a JSON list, or cut by --label_separator) for a multi-label dataset. Default: the '
    'first of ' + ', '.join(LABEL_COLUMNS) + '.',
  )
  listed.add_argument(
    '--manifest_split_column',
    help='Column of the split: train, validation (val, valid), test; unassigned or empty follow '
    '--validation_fraction and --test_fraction. Default: the first of '
    + ', '.join(SPLIT_COLUMNS)
    + " (AutoML's ML_USE), if any.",
  )
  listed.add_argument(
    '--manifest_path_format',
    help='Turns the path cell into a path: "{}.jpg" for Kaggle\'s image ids.',
  )
  listed.add_argument(
    '--manifest_columns',
    help='A CSV without a header: the roles of its columns, e.g. split,path,label for AutoML '
    'Vision (later cells are more labels); other names are ignored.',
  )
  listed.add_argument(
    '--label_separator',
    help='Cuts a label cell into several labels (multi-label), e.g. "|" or " ".',
  )
  readers = parser.add_argument_group('readers')
  readers.add_argument(
    '--model_garden_batch_size',
    type=int,
    default=DEFAULT_BATCH_SIZE,
    help='Global batch size of model_garden.yaml, from which its steps per epoch, '
    'train and validation steps and learning rate follow.',
  )
  imagenet = parser.add_argument_group('ImageNet files (transforms/inputs/imagenet.py)')
  imagenet.add_argument(
    '--validation_ground_truth',
    help='Labels of a flat validation folder (input/validation/<image>): '
    'LOC_val_solution.csv, ILSVRC2012_validation_ground_truth.txt (with '
    '--ground_truth_synsets), or one synset per line in image order.',
  )
  imagenet.add_argument(
    '--ground_truth_synsets',
    help='Synset list whose line k is the synset of class ID k (1-based) in '
    'ILSVRC2012_validation_ground_truth.txt.',
  )
  imagenet.add_argument(
    '--class_text_file',
    help='Lines "synset text" (synset_words.txt, LOC_synset_mapping.txt): the '
    'text goes into image/class/text.',
  )
  imagenet.add_argument(
    '--bbox_dir',
    help='Folder of Pascal VOC XML boxes (<synset>/<stem>.xml or <stem>.xml), '
    "stored as image/object/bbox/* in the stored image's coordinates.",
  )
  plan = parser.add_argument_group(
    'plan (pipeline/plan.py): what a run would write; nothing is written'
  )
  plan.add_argument(
    '--plan',
    action='store_true',
    help='List the input, convert a sample with these flags and print the examples per '
    'split and class, the rejects, the predicted bytes per split (95%% interval), '
    'the shard counts and sizes and the CPU time; write nothing. Same as '
    'folder2tfrecord plan.',
  )
  plan.add_argument(
    '--plan_sample',
    type=int,
    default=DEFAULT_PLAN_SAMPLE,
    help='Images the plan converts: stratified by class folder (at least one from '
    'each), chosen by a stable hash (the same every time).',
  )
  plan.add_argument(
    '--num_workers',
    type=int,
    default=0,
    help='The plan also projects the conversion time on this many one-core workers '
    "(besides this machine's cores); 0: only this machine. Also Beam's "
    "--num_workers (Dataflow's initial worker count), which it is passed on as.",
  )
  logs = parser.add_argument_group('terminal and run log (pipeline/runtime/logs.py)')
  logs.add_argument(
    '--log_level',
    choices=LOG_LEVELS,
    default='WARNING',
    help='What the terminal shows besides the progress bar, the summary and errors. '
    'The rest goes to the run log, <output>/_work/run.log (a temporary folder '
    'for gs:// and s3:// outputs; named when the run starts): INFO and up (DEBUG '
    "with DEBUG) and the output of the local workers, whose own level is Beam's "
    '--default_sdk_harness_log_level (WARN unless given).',
  )
  logs.add_argument(
    '--verbose',
    action='store_true',
    help="Same as --log_level INFO: Beam's logs and the local workers' output on the terminal too.",
  )
  return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> Tuple[ConverterOptions, List[str]]:
  """Splits argv into validated converter options and the remaining Beam pipeline arguments.

  With --config FILE, the file's flags go before argv's (so argv's win); with --print_config, the
  effective configuration is printed (YAML, a --config file) and SystemExit(0) raised, like --help.
  Every word of argv must be a flag, a flag's value or --config's file (pipeline/command_line.py).

  Raises:
    SystemExit: --help, --print_config, or a converter flag with a wrong type (argparse prints the
      usage).
    UsageError: a value out of range, an unknown flag, a switch given a value, a stray word, or a
      config file that cannot be used (the message names the file and the key).
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  config_file = _config_flags().parse_known_args(argv)[0].config
  from_file = []
  if config_file:
    try:
      values = config.read_config(_url_or_abspath(config_file), PATH_FLAGS)
      file_argv = config.config_argv(values, [parser, beam_option_parser()], config_file)
    except ValueError as e:
      raise UsageError(str(e)) from None
    from_file = [key for key in values if not _given(key, argv)]
    argv = file_argv + argv
  known, beam_args = command_line.split_args(parser, argv)
  if known.num_workers:  # The converter's flag shadows Beam's WorkerOptions flag of the same name.
    beam_args.append(f'--num_workers={known.num_workers}')
  values = vars(known)
  values.pop('config')
  for key in MANIFEST_FLAGS:  # '' (an Airflow Param left empty): not given
    values[key] = values[key] or None
  print_config = values.pop('print_config')
  for key in PATH_FLAGS:
    if values[key]:
      values[key] = _url_or_abspath(values[key])
  values['base'] = values['base'] or None  # `--base=` (the Airflow DAG's empty Param): no base
  try:
    _resolve_resize_policy(values)
    opts = ConverterOptions(**values)
  except UsageError as e:
    named = [key for key in from_file if f'--{key}' in str(e)]
    if not named:
      raise
    raise UsageError(
      f'{e} (' + ', '.join(f'--{key}' for key in named) + f' from --config {config_file})'
    ) from None
  if print_config:
    beam_values = PipelineOptions(beam_args).get_all_options(drop_default=True)
    print(config.dump_config({**dataclasses.asdict(opts), **beam_values}), end='')
    raise SystemExit(0)
  return opts, beam_args


def _given(key: str, argv: Sequence[str]) -> bool:
  """Whether argv (the command line) gives flag `key` itself."""
  return any(word.split('=', 1)[0] == f'--{key}' for word in argv)


def _resolve_resize_policy(values: Dict) -> None:
  """--resize_shorter_side and --center_crop default to DEFAULT_SIDE, or to 0 with
  --resize_longer_side, which excludes any other value of theirs.

  Raises:
    UsageError: --resize_longer_side with a non-zero --resize_shorter_side or --center_crop.
  """
  given = {key: values[key] for key in ('resize_shorter_side', 'center_crop') if values[key]}
  if values['resize_longer_side'] and given:
    raise UsageError(
      f'--resize_longer_side {values["resize_longer_side"]} scales the longer side and '
      'crops nothing, so it excludes '
      + ' and '.join(f'--{key} {value}' for key, value in given.items())
      + '; drop one of them.'
    )
  for key in ('resize_shorter_side', 'center_crop'):
    if values[key] is None:
      values[key] = 0 if values['resize_longer_side'] else DEFAULT_SIDE


def _config_flags() -> argparse.ArgumentParser:
  """Finds --config before the full parse (its flags must come first)."""
  parser = argparse.ArgumentParser(prog=_prog(), add_help=False, allow_abbrev=False)
  parser.add_argument('--config')
  return parser
