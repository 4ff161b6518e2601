"""Entry point: ``python -m pipeline.run --input DIR --output DIR [flags] [Beam pipeline options]``.

Exit codes: 0 success; 1 the pipeline failed, or finished but failed its checks (no example written,
or more rejects than --max_reject_fraction; the rejects list is written either way); 2 a usage or
input error, a missing optional dependency, or an --output that another run holds
(pipeline/runtime/claim.py), found before any work started; 130 interrupted (Ctrl-C, SIGINT), 143
stopped by SIGTERM (as Airflow, Kubernetes and systemd stop a task), 129 by SIGHUP
(pipeline/runtime/interrupts.py). Finished shards are kept after 1, 130, 143 and 129: --resume keeps
those whose input is unchanged and writes the rest, then prints a `resumed: ...` line
(transforms/output/resume.py). A full disk is exit 1 with one line naming the file or step being
written; free space and rerun with --resume.

With --plan (`folder2tfrecord plan`), nothing is written: the plan of the run is printed
(pipeline/plan.py) and the exit code is 0, or 2 as above.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import sys
import textwrap
import time
from typing import List, Optional, Sequence

from pipeline.runtime import interrupts

if __name__ == '__main__':
  interrupts.install()  # Before every other import: Ctrl-C while Beam and TF load ends cleanly too.

from pipeline import extras  # pylint: disable=wrong-import-position
from pipeline.runtime import logs

with logs.held_import_logs():  # Beam may log a harmless warning while it is imported (see logs.py).
  import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
  DirectOptions,
  PipelineOptions,
  SetupOptions,
  StandardOptions,
  TestOptions,
  WorkerOptions,
)

from pipeline.runtime.claim import ClaimRecord, OutputClaim, new_run_id
from pipeline.graph import ConvertImageFolder, plan_dataset
from pipeline.options import ConverterOptions, UsageError, parse_args
from pipeline.runtime.output_dir import check_output_location, prepare_output
from pipeline.plan import format_plan, make_plan
from pipeline.runtime.progress import Progress, count_files
from pipeline.runtime.worker_watch import DeadWorkerWatch, death_reported, stop_local_workers
from beam_private import s3
from beam_private.runners import FN_API_RUNNER
from transforms.output import file_format, layout, versions
from transforms.imaging.codec_versions import package_versions
from transforms.inputs.survey import empty_classes_warning, left_behind_counts, left_behind_line
from transforms.inputs.listing import InputError
from transforms.inputs.manifest_listing import unlisted_count, unlisted_line
from transforms.metadata.write import reject_fraction
from transforms.paths import is_remote
from transforms.metadata.provenance import RunInfo, converter_version, read_provenance, utc_now
from transforms.output.resume import resume_message
from transforms.metadata.reject_reasons import INTERNAL_ERROR
from transforms.split.sharding import SPLITS

# The FnApiRunner, which the DirectRunner uses for batch pipelines, is the default so that
# --direct_running_mode / --direct_num_workers always apply (the DirectRunner may first try the
# Prism runner, which downloads a binary).
DEFAULT_RUNNER = FN_API_RUNNER
SUMMARY_COLUMNS = 80  # the summary's widest line: a terminal's default width
NO_SPLIT = '(no split)'  # the summary's row of rejects listed before any split was chosen
_LOGGER = logging.getLogger(__name__)


def pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
  options = PipelineOptions(list(beam_args))
  if not options.view_as(StandardOptions).runner:
    options.view_as(StandardOptions).runner = DEFAULT_RUNNER
  # Workers import our modules from the installed package (setup.py), not from a pickled __main__.
  options.view_as(SetupOptions).save_main_session = False
  worker_options = options.view_as(WorkerOptions)
  if not worker_options.default_sdk_harness_log_level:
    # Local workers log INFO per bundle. 'WARN': Flink's and Spark's Java job servers reject
    # 'WARNING'.
    worker_options.default_sdk_harness_log_level = 'WARN'
  return options


def duplicates_line(counts: dict, max_distance: int) -> str:
  """`duplicates: 7 groups (2 exact, 5 near within 8 bits), 4 files across splits (see
  duplicates.jsonl)`: groups of transforms/duplicates/near.py, and the files of those groups stored
  or listed in another split than their group's first file (leakage)."""
  exact = counts['exact_within_split'] + counts['exact_across_splits']
  near = counts['near_within_split'] + counts['near_across_splits']
  across = counts.get('files_across_splits', 0)
  return (
    f'duplicates: {exact + near} group{"s" * (exact + near != 1)} ({exact} exact, {near} near '
    f'within {max_distance} bits), {across} file{"s" * (across != 1)} across splits (see '
    f'{layout.DUPLICATES_FILE})'
  )


def summarize(opts: ConverterOptions, stats: dict, seconds: float) -> str:
  """A plain-text table of what the run wrote and why files were rejected, every line at most
  SUMMARY_COLUMNS wide; every count is stats.json's (transforms/metadata/write.py build_stats)."""
  output = f'Output: {_shown(opts.output)}'
  lines = (
    [output]
    if len(output) <= SUMMARY_COLUMNS
    else ['Output:', '  ' + _shortened(_shown(opts.output), SUMMARY_COLUMNS - 2)]
  )
  lines.append(
    f'{"split":<12}{"examples":>9}{"rejected":>9}{"shards":>7}  '
    f'{"mean RGB (0-255)":<17}  std RGB (0-255)'
  )
  for split in SPLITS:
    if split in stats:
      s = stats[split]
      lines.append(
        f'{split:<12}{s["num_examples"]:>9}{s["num_rejected"]:>9}{s["num_shards"]:>7}  '
        f'{_rgb(s["mean_rgb"])}  {_rgb(s["std_rgb"])}'
      )
  if stats.get('num_rejected_without_split'):
    lines.append(f'{NO_SPLIT:<12}{"-":>9}{stats["num_rejected_without_split"]:>9}{"-":>7}')
  total = stats['num_examples'] + stats['num_rejected']
  lines += _wrapped(
    f'total: {stats["num_examples"]} examples, {stats["num_rejected"]} rejected '
    f'(see {layout.REJECTS_FILE}), {seconds:.1f} s wall, '
    f'{total / max(seconds, 1e-3):.1f} files/s',
    '  ',
  )
  if 'duplicates' in stats:
    lines += _wrapped(duplicates_line(stats['duplicates'], opts.near_duplicate_distance), '  ')
  reasons = stats.get('reject_reasons', {})
  for reason, count in reasons.items():
    if reason != INTERNAL_ERROR:
      lines += _wrapped(f'  rejected {count:>6}  {reason}', ' ' * 19)
  if reasons.get(INTERNAL_ERROR):
    lines += _wrapped(
      f'  rejected {reasons[INTERNAL_ERROR]:>6}  internal error: a bug in '
      'folder2tfrecord, not in your data; please report it with those lines of '
      f'{layout.REJECTS_FILE}',
      ' ' * 19,
    )
  return '\n'.join(lines)


def _rgb(values: Sequence[float]) -> str:
  """Three channel values in 17 columns; '-' for NaN (a split without examples)."""
  return ' '.join('  -  ' if math.isnan(v) else f'{v:5.1f}' for v in values)


def _wrapped(text: str, indent: str) -> List[str]:
  """`text` as lines of at most SUMMARY_COLUMNS, continued with `indent`."""
  return textwrap.wrap(
    text, SUMMARY_COLUMNS, subsequent_indent=indent, break_on_hyphens=False, drop_whitespace=True
  ) or ['']


def _shortened(path: str, width: int) -> str:
  """`path`, its middle replaced by '...' when it is longer than `width` characters."""
  if len(path) <= width:
    return path
  head = (width - 3) // 2
  return path[:head] + '...' + path[len(path) - (width - 3 - head) :]


def run_info(
  opts: ConverterOptions, options: PipelineOptions, run_id: str, started: str
) -> RunInfo:
  """What provenance.json records about this run from the driver."""
  runner = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
  return RunInfo(
    run_id=run_id,
    started=started,
    runner=str(runner).rsplit('.', 1)[-1],
    input_root=opts.input,
    converter=converter_version(),
    packages=package_versions(opts.compression, opts.file_format),
  )


def run(argv: Optional[Sequence[str]] = None) -> int:
  """Runs the conversion; returns the process exit code (see the module docstring).

  A run claims --output (pipeline/runtime/claim.py) before it writes anything and releases it when
  it ends.
  """
  run_id, started = new_run_id(), utc_now()
  claim = None
  try:
    opts, beam_args = parse_args(argv)
    check_output_location(opts, writable=not opts.plan)
    if opts.file_format == file_format.FileFormat.ARRAY_RECORD:
      extras.require(
        'array_record', file_format.ARRAY_RECORD_REQUIREMENT, '--file_format array_record needs'
      )
    options = pipeline_options(beam_args)
    FileSystems.set_options(options)  # The driver lists --input before any Pipeline exists (s3://).
    s3.apply_empty_upload_fix()
    plan = plan_dataset(opts)
    empty_classes = empty_classes_warning(plan.survey)
    if empty_classes:
      print(empty_classes, file=sys.stderr)
    if opts.plan:
      print(format_plan(make_plan(opts, plan), opts))
      return 0
    dry_run = options.view_as(TestOptions).dry_run
    if not dry_run:
      claim = OutputClaim(opts.output_layout, ClaimRecord.for_this_process(run_id, started))
      note = claim.acquire(may_take_over=opts.resume or opts.overwrite)
      interrupts.hold(claim)
      if note:
        print(note, file=sys.stderr)
      prepare_output(opts)
  except (UsageError, InputError, extras.MissingDependency) as e:
    _release(claim)
    print(f'error: {e}', file=sys.stderr)
    return 2
  except OSError as e:
    if e.errno != errno.ENOSPC:
      raise
    _release(claim)  # Claiming or preparing --output on a full disk.
    print(failure_line(e), file=sys.stderr)
    return 1
  try:
    return _convert(opts, options, plan, run_info(opts, options, run_id, started), dry_run)
  finally:
    _release(claim)


def _release(claim: Optional[OutputClaim]) -> None:
  """Releases the claim; in a command-line run after stopping the workers that may still write."""
  if claim is None:
    return
  if interrupts.installed():
    stop_local_workers()
  claim.release()
  interrupts.hold(None)


def _convert(
  opts: ConverterOptions, options: PipelineOptions, plan, run: RunInfo, dry_run: bool
) -> int:
  """Runs the pipeline on a claimed and prepared --output, then prints what it did."""
  log_path = logs.open_run_log(
    opts.output_layout.work_path(layout.LOG_FILE), opts.terminal_log_level
  )
  print(
    f'Converting {len(plan.class_names)} classes from {_shown(opts.input)} into '
    f'{_shown(opts.output)}' + (f' (log: {_shown(log_path)})' if log_path else ''),
    file=sys.stderr,
  )
  start = time.monotonic()
  try:
    total = (
      plan.manifest.num_rows
      if plan.manifest
      else count_files(plan.layout.split_roots, plan.class_dirs)
    )
    progress_dir = opts.output_layout.work_path(layout.PROGRESS_DIR)
    with Progress(progress_dir, total), beam.Pipeline(options=options) as p:
      _ = p | 'ConvertImageFolder' >> ConvertImageFolder(opts, plan, run)
  except Exception as e:  # pylint: disable=broad-except
    _LOGGER.info('The pipeline failed.', exc_info=True)  # The run log; the terminal gets one line.
    if (
      interrupts.installed()
      and _worker_processes(options)
      and death_reported(DEAD_WORKER_GRACE_SECONDS)
    ):
      time.sleep(_ENDING_SECONDS)  # The watch's thread ends the process (end_now) meanwhile.
      return 1
    print(failure_line(e), file=sys.stderr)
    return 1
  seconds = time.monotonic() - start
  if dry_run:  # DataflowRunner --dry_run=True builds and translates the job, runs nothing.
    print(f'Dry run: the job graph was built in {seconds:.1f} s; nothing was read or written.')
    return 0
  stats = layout.read_json(opts.output_layout.path(layout.STATS_FILE))
  if opts.resume and not opts.base:
    provenance = read_provenance(opts.output_layout) or {}
    print(resume_message(provenance.get('shards', {}), len(provenance.get('deleted_shards', []))))
  if opts.base:
    manifest = layout.read_json(opts.output_layout.path(layout.MANIFEST_FILE))
    print(versions.version_message(manifest['version']['changes']))
  print(summarize(opts, stats, seconds))
  left_behind = left_behind_line(left_behind_counts(plan.survey, p.result))
  if left_behind:
    print('\n'.join(_wrapped(left_behind, '  ')))
  unlisted = unlisted_line(unlisted_count(p.result)) if plan.manifest else None
  if unlisted:
    print('\n'.join(_wrapped(unlisted, '  ')))
  if not stats['num_examples']:
    print(
      'error: no image could be converted; every file was rejected (see rejects.jsonl).',
      file=sys.stderr,
    )
    return 1
  if reject_fraction(stats) > opts.max_reject_fraction:
    print(
      f'error: {stats["num_rejected"]} files rejected ({reject_fraction(stats):.1%}), more than '
      f'--max_reject_fraction {opts.max_reject_fraction:.1%}; see rejects.jsonl. No _SUCCESS '
      'was written.',
      file=sys.stderr,
    )
    return 1
  return 0


def _worker_processes(options: PipelineOptions) -> bool:
  """Whether the run's Beam workers are local processes (worker_watch.DeadWorkerWatch)."""
  return options.view_as(DirectOptions).direct_running_mode == 'multi_processing'


def failure_line(error: Exception) -> str:
  """What the terminal says about a failed pipeline: `error: ...` and how to go on.

  A full disk (ENOSPC, from this process or a worker's report) is named with the shard, else the
  file, whose write failed when the error names one, else with the step that failed.
  """
  text = str(error)
  cause = _cause(text) or type(error).__name__
  if _NO_SPACE.search(text):
    path, shard, step = (
      pattern.search(cause) for pattern in (_FAILED_PATH, _FAILED_SHARD, _FAILED_STEP)
    )
    where = (
      f'while writing shard {shard.group(1)}'
      if shard
      else f'while writing {os.path.basename(path.group(1))}'
      if path
      else f'in step {_top_step(step.group(1))}'
      if step
      else 'while writing the output'
    )
    return (
      f'error: no space left on device {where}: free space and rerun with the same flags and '
      '--resume.'
    )
  return f'error: the pipeline failed: {cause}\n{interrupts.RESUME_HINT}'


def _cause(text: str) -> str:
  """The line of an error's text that names it: its first line, or for a traceback (what a Beam worker
  reports) its last one, 'SomeError: message [while running ...]'."""
  lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
  if not lines:
    return ''
  return lines[-1] if lines[0].startswith('Traceback (most recent call last)') else lines[0]


def _top_step(label: str) -> str:
  """'WriteShards' for 'ConvertImageFolder/WriteShards/WriteShard/ParDo(WriteShardFn)'."""
  parts = label.split('/')
  return parts[1] if len(parts) > 1 else parts[0]


_NO_SPACE = re.compile(r'\[Errno 28\]|No space left on device')
_FAILED_PATH = re.compile(r"\[Errno 28\] No space left on device: '([^']+)'")
_FAILED_SHARD = re.compile(r'while writing shard ([^:\s{}]+):')  # transforms/output/shard_writer.py
_FAILED_STEP = re.compile(r"\[while running '([^']+)'\]")
DEAD_WORKER_GRACE_SECONDS = 2.0  # A dead worker's report follows the driver's channel error.
_ENDING_SECONDS = 60.0  # Longer than end_now() takes (stop_local_workers waits up to 5 s).


def _shown(path: str) -> str:
  """A local path relative to the current folder when it is inside it (shorter lines)."""
  if is_remote(path) or os.path.relpath(path).startswith(os.pardir):
    return path
  return os.path.relpath(path)


def main() -> None:
  """The command line: a quiet terminal, everything else in the run log (pipeline/runtime/logs.py)."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # Workers inherit it; TensorFlow's C++ banner.
  try:
    extras.require_for_args(sys.argv[1:])
  except extras.MissingDependency as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  interrupts.install()  # Again: the folder2tfrecord script imports this module, not as __main__.
  with (
    logs.CommandLineLogs() as command_line,
    DeadWorkerWatch(lambda failure: _end_run(f'the pipeline failed: {failure}.', command_line)),
  ):
    code = run()
    if code != 0 and command_line.path:
      print(_run_log_line(command_line.path), file=sys.stderr)
  sys.exit(code)


def _run_log_line(path: str) -> str:
  return f"The run log (Beam's and the workers' logs): {_shown(path)}"


def _end_run(error: str, command_line: logs.CommandLineLogs) -> None:
  """Ends the run at once with exit code 1 after a failure that Beam does not report (a dead worker):
  the workers stop, the claim is released, then the error, the --resume hint and the run log's path
  are printed (pipeline/runtime/interrupts.py end_now)."""
  sys.stdout.flush()
  log_line = f'\n{_run_log_line(command_line.path)}' if command_line.path else ''
  interrupts.end_now(f'error: {error}\n{interrupts.RESUME_HINT}{log_line}', 1)


if __name__ == '__main__':
  main()
