"""`_SUCCESS`: the orchestrator's sensor file, written last, holding the SHA-256 of every other
file.

A sensor (Airflow's, Hadoop's convention) only asks whether `_SUCCESS` exists: it is written after
every other file, through a temporary name and a rename, so its existence means "finished and
acceptable". Its content lets `pipeline.verify` name any file edited or deleted since the run: one
line a file in sha256sum's layout (`<64 hex digits>  <file name>`), sorted by name, for every shard
and metadata file but provenance.json (which holds times, so that two runs of the same data write
the same `_SUCCESS`). model_garden.yaml's line hashes it with its own output folder written as
OUTPUT, so that line is the same wherever the output is (and `sha256sum -c` does not apply to it).
Outputs of earlier versions have an empty `_SUCCESS`: `read_success` gives {} for them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Dict, List, Mapping, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.output import layout
from transforms.output.checksum import file_sha256

# Metadata files never listed: provenance.json differs run to run, _SUCCESS cannot hold its own
# hash.
UNLISTED_FILES = (layout.PROVENANCE_FILE, layout.SUCCESS_FILE)
_LINE = re.compile(r'([0-9a-f]{64})  (\S.*)')
_CONFIG_FILE = re.compile(r'--config_file=(\S+)/' + re.escape(layout.MODEL_GARDEN_FILE))
FOLDER_PLACEHOLDER = 'OUTPUT'


def file_digest(output: layout.OutputLayout, name: str) -> str:
  """Hex SHA-256 of a top-level file as `_SUCCESS` lists it (model_garden.yaml without its folder).

  Raises:
    OSError (Beam's BeamIOError): the file cannot be read.
  """
  if name != layout.MODEL_GARDEN_FILE:
    return file_sha256(output.path(name))[1]
  text = without_folder(layout.read_text(output.path(name)))
  return hashlib.sha256(text.encode('utf-8')).hexdigest()


def without_folder(model_garden_text: str) -> str:
  """model_garden.yaml's text with the output folder it names (its `--config_file=<folder>/...`)
  written as OUTPUT, wherever the file now lies."""
  match = _CONFIG_FILE.search(model_garden_text)
  if not match:
    return model_garden_text
  return model_garden_text.replace(match.group(1), FOLDER_PLACEHOLDER)


def listed_metadata(output: layout.OutputLayout) -> List[str]:
  """Names of the metadata files present in `output` that `_SUCCESS` lists, sorted."""
  return sorted(
    name
    for name in layout.METADATA_FILES
    if name not in UNLISTED_FILES and FileSystems.exists(output.path(name))
  )


def success_text(
  output: layout.OutputLayout, shard_checksums: Mapping[str, Tuple[Optional[int], Optional[str]]]
) -> str:
  """`_SUCCESS`'s content for the shards `shard_checksums` ({name: (bytes, hex SHA-256)}; a shard
  with None, kept from a version before checksums, is hashed here) and the metadata files present."""
  digests = {
    name: sha256 if sha256 else file_sha256(output.path(name))[1]
    for name, (_, sha256) in shard_checksums.items()
  }
  digests.update((name, file_digest(output, name)) for name in listed_metadata(output))
  return success_lines(digests)


def success_lines(digests: Mapping[str, str]) -> str:
  """`<hex SHA-256>  <name>` lines of {file name: hex SHA-256}, sorted by name."""
  return ''.join(f'{digest}  {name}\n' for name, digest in sorted(digests.items()))


def write_success(
  output: layout.OutputLayout, shard_checksums: Mapping[str, Tuple[Optional[int], Optional[str]]]
) -> None:
  """Writes `_SUCCESS` (see success_text) under a temporary name, then renames it into place."""
  final = output.path(layout.SUCCESS_FILE)
  temp = layout.temp_path(final, uuid.uuid4().hex)
  layout.write_text(temp, success_text(output, shard_checksums))
  FileSystems.rename([temp], [final])


def read_success(output: layout.OutputLayout) -> Dict[str, str]:
  """{file name: hex SHA-256} that `_SUCCESS` lists; {} for the empty `_SUCCESS` of earlier versions.

  Raises:
    OSError (Beam's BeamIOError): no `_SUCCESS`.
    ValueError: a line that is not `<64 hex digits>  <name>`, or a name listed twice.
  """
  digests = {}
  for number, line in enumerate(layout.read_text(output.path(layout.SUCCESS_FILE)).splitlines(), 1):
    match = _LINE.fullmatch(line)
    if not match:
      raise ValueError(f'line {number} is not "<SHA-256>  <file name>": {line[:80]!r}')
    digest, name = match.groups()
    if name in digests:
      raise ValueError(f'line {number} lists {name} a second time')
    digests[name] = digest
  return digests
