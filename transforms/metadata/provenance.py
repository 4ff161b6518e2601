"""provenance.json: what made an output, written beside manifest.json by the metadata step.

    {"converter": {"version", "commit", "modified"}, "packages": {python, apache-beam, pillow,
     pillow libjpeg-turbo, simplejpeg, simplejpeg libjpeg-turbo, opencv, opencv libjpeg, ...},
     "runner", "run_id", "started", "finished",
     "input": {"root", "files", "bytes", "listing_sha256"},
     "shards": {outcome: count}, "deleted_shards": [...], "format_version": 1}

A file of its own because it holds times, a run id and the runner's name: every other top-level file
stays byte-identical across runs and runners. The versions are the driver's
(`codec_versions.package_versions`), which every shard writer checked before writing; "shards"
counts what this run did with each shard (transforms/output/resume.py outcomes). `pipeline.verify
--against` compares these entries ("the recipe") between two outputs.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import importlib.metadata
import os
import subprocess
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import apache_beam as beam

from transforms.output import layout
from transforms.inputs.fingerprint import InputFingerprint
from transforms.records import ShardSummary

DISTRIBUTION = 'folder2tfrecord'
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIT_TIMEOUT_SECONDS = 5
# Entries that differ for every run by construction: never a difference in the recipe.
PER_RUN_ENTRIES = ('run_id', 'started', 'finished', 'shards', 'deleted_shards')


def utc_now() -> str:
  """The current time as ISO 8601 UTC to the second, e.g. '2026-11-30T12:49:00+00:00'."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def converter_version(repo: str = _REPO) -> Dict[str, Any]:
  """{'version': setup.py's version as installed (None if not installed), 'commit': the git commit
  of the code running (None outside a git checkout), 'modified': whether tracked files differ from
  that commit (None when unknown)}."""
  try:
    version = importlib.metadata.version(DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError:
    version = None
  commit = modified = None
  if os.path.exists(os.path.join(repo, '.git')):  # A directory, or a file in a git worktree.
    try:
      commit = _git(repo, 'rev-parse', 'HEAD').strip() or None
      modified = bool(_git(repo, 'status', '--porcelain', '--untracked-files=no').strip())
    except (OSError, subprocess.SubprocessError):
      commit = modified = None
  return {'version': version, 'commit': commit, 'modified': modified}


def _git(repo: str, *args: str) -> str:
  return subprocess.run(
    ['git', '-C', repo, *args],
    capture_output=True,
    text=True,
    check=True,
    timeout=GIT_TIMEOUT_SECONDS,
  ).stdout


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """What the driver knows about the run before it starts.

  Attributes:
    run_id: the run's id (also in its claim on --output, pipeline/runtime/claim.py).
    started: ISO 8601 UTC start time.
    runner: the Beam runner's name (the last part of --runner).
    input_root: --input.
    converter: `converter_version()`.
    packages: `codec_versions.package_versions()` of the driver.
  """

  run_id: str
  started: str
  runner: str
  input_root: str
  converter: Mapping[str, Any]
  packages: Mapping[str, str]


@dataclasses.dataclass
class OutputFacts:
  """What the shards tell about the run, collected in one value for the metadata step.

  Attributes:
    checksums: {shard name: (size in bytes, hex SHA-256)} of every shard of the output.
    fingerprint: the input's fingerprint (transforms/inputs/fingerprint.py).
    outcomes: {transforms/output/resume.py outcome: number of shards}.
  """

  checksums: Dict[str, Tuple[Optional[int], Optional[str]]] = dataclasses.field(
    default_factory=dict
  )
  fingerprint: InputFingerprint = InputFingerprint()
  outcomes: Dict[str, int] = dataclasses.field(default_factory=dict)

  def add_summary(self, summary: ShardSummary) -> 'OutputFacts':
    """Adds one shard's size, SHA-256 and input fingerprint; returns itself."""
    self.checksums[summary.shard] = (summary.file_bytes, summary.file_sha256)
    if summary.inputs is not None:
      self.fingerprint = self.fingerprint.add(summary.inputs)
    return self

  def add_outcome(self, outcome: str) -> 'OutputFacts':
    """Counts one shard's outcome (one of transforms/output/resume.py OUTCOMES); returns itself."""
    self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
    return self

  def merge(self, other: 'OutputFacts') -> 'OutputFacts':
    """Adds the facts of other shards (`other` is unchanged); returns itself."""
    self.checksums.update(other.checksums)
    self.fingerprint = self.fingerprint.add(other.fingerprint)
    for outcome, count in other.outcomes.items():
      self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
    return self


def _facts_of_summary(summary: ShardSummary) -> OutputFacts:
  return OutputFacts().add_summary(summary)


def _facts_of_outcome(outcome: str) -> OutputFacts:
  return OutputFacts().add_outcome(outcome)


class _OutputFactsFn(beam.CombineFn):
  """The OutputFacts of single shards -> one OutputFacts (exact; any merge order)."""

  def create_accumulator(self) -> OutputFacts:
    return OutputFacts()

  def add_input(self, accumulator: OutputFacts, facts: OutputFacts) -> OutputFacts:
    return accumulator.merge(facts)

  def merge_accumulators(self, accumulators: Iterable[OutputFacts]) -> OutputFacts:
    merged = OutputFacts()
    for accumulator in accumulators:
      merged.merge(accumulator)
    return merged

  def extract_output(self, accumulator: OutputFacts) -> OutputFacts:
    return accumulator


class CollectOutputFacts(beam.PTransform):
  """(shard summaries, shard outcomes) -> a PCollection of exactly one OutputFacts."""

  def expand(self, inputs):
    summaries, outcomes = inputs
    return (
      (
        summaries | 'FactsOfSummaries' >> beam.Map(_facts_of_summary),
        outcomes | 'FactsOfOutcomes' >> beam.Map(_facts_of_outcome),
      )
      | 'SummariesAndOutcomes' >> beam.Flatten()
      | 'CombineFacts' >> beam.CombineGlobally(_OutputFactsFn())
    )


def build_provenance(
  run: RunInfo, facts: OutputFacts, deleted_shards: List[str], finished: str
) -> Dict[str, Any]:
  """provenance.json's content (module docstring)."""
  return {
    'format_version': layout.FORMAT_VERSION,
    'run_id': run.run_id,
    'started': run.started,
    'finished': finished,
    'runner': run.runner,
    'converter': dict(run.converter),
    'packages': dict(sorted(run.packages.items())),
    'input': {'root': run.input_root, **facts.fingerprint.to_json()},
    'shards': dict(sorted(collections.Counter(facts.outcomes).items())),
    'deleted_shards': sorted(deleted_shards),
  }


def write_provenance(output: layout.OutputLayout, provenance: Mapping[str, Any]) -> None:
  layout.write_json(output.path(layout.PROVENANCE_FILE), provenance)


def read_provenance(output: layout.OutputLayout) -> Optional[Dict[str, Any]]:
  """provenance.json, or None for an output without one (converted by an earlier version)."""
  return layout.read_optional_json(output.path(layout.PROVENANCE_FILE))


def recipe_entries(
  provenance: Optional[Mapping[str, Any]], manifest: Optional[Mapping[str, Any]]
) -> Dict[str, Any]:
  """{dotted name: value} of what made an output, for comparing two outputs: provenance.json without
  PER_RUN_ENTRIES, and manifest.json's flags as `options.<flag>`."""
  entries: Dict[str, Any] = {}

  def flatten(prefix: str, value: Any) -> None:
    if isinstance(value, Mapping):
      for key, inner in value.items():
        flatten(f'{prefix}.{key}' if prefix else str(key), inner)
    else:
      entries[prefix] = value

  flatten('', {k: v for k, v in (provenance or {}).items() if k not in PER_RUN_ENTRIES})
  flatten('options', dict((manifest or {}).get('options', {})))
  return entries
