"""Reading a converter output back, local or in an object store, to compare runs byte for byte."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
from typing import Dict, Sequence

from apache_beam.io.filesystems import FileSystems

from transforms.output.layout import PROVENANCE_FILE

from .beam_services import timed_conversion

# What every complete output holds besides its shards.
METADATA_FILES = (
  'labels.txt',
  'stats.json',
  'rejects.jsonl',
  'manifest.json',
  'model_garden.yaml',
  '_SUCCESS',
)
# The shards of the sample photos converted with conftest.SAMPLE_FLAGS.
SAMPLE_SHARDS = [
  'train-00000-of-00003',
  'train-00001-of-00003',
  'train-00002-of-00003',
  'validation-00000-of-00002',
  'validation-00001-of-00002',
]


def read_dataset(output: str) -> Dict[str, bytes]:
  """{file name: bytes} of the top-level files of an output that are byte-identical across runs and
  runners: all but provenance.json (times, runner) and the private _work/ folder.

  Works for local paths and any URL Beam's FileSystems knows (s3:// with the S3 options set).
  """
  prefix = output.rstrip('/') + '/'
  files = {}
  for metadata in FileSystems.match([prefix + '*'])[0].metadata_list:
    name = metadata.path[len(prefix) :]
    if '/' in name or name.startswith('_work') or name == PROVENANCE_FILE:
      continue
    with FileSystems.open(metadata.path, compression_type='uncompressed') as f:
      files[name] = f.read()
  return files


def shard_names(files: Dict[str, bytes]):
  return sorted(n for n in files if n.startswith(('train-', 'validation-')))


def assert_matches_direct_runner(
  repo: pathlib.Path, common: Sequence[str], actual: pathlib.Path, work_dir: pathlib.Path
) -> float:
  """Converts `common` args on the DirectRunner into work_dir/direct, checks the sample's shards and
  that `actual` holds the same bytes; returns the DirectRunner's wall time in seconds."""
  direct_seconds = timed_conversion(
    repo, [*common, '--output', str(work_dir / 'direct')], work_dir / 'direct.log'
  )
  expected = read_dataset(str(work_dir / 'direct'))
  assert shard_names(expected) == SAMPLE_SHARDS
  assert_same_dataset(read_dataset(str(actual)), expected)
  return direct_seconds


def without_root(name: str, data: bytes) -> bytes:
  """A file's bytes with its output's own root written as OUTPUT: model_garden.yaml names the output
  it lies in (its input paths), so two outputs of the same data differ there and only there; the
  paths of rejects.jsonl are cut to their file names (outputs of copies of one input at other
  roots, e.g. on S3), and so is the SHA-256 `_SUCCESS` lists for rejects.jsonl."""
  if name == 'rejects.jsonl':
    return re.sub(rb'"path": "[^"]*/', b'"path": "INPUT/', data)
  if name == '_SUCCESS':  # It lists rejects.jsonl's SHA-256, of the paths under its own input root.
    return re.sub(rb'(?m)^[0-9a-f]{64}(  rejects\.jsonl)$', rb'SHA256\1', data)
  if name != 'model_garden.yaml':
    return data
  match = re.search(rb'--config_file=(\S+)/model_garden\.yaml', data)
  assert match, 'model_garden.yaml names no --config_file'
  return data.replace(match.group(1), b'OUTPUT')


def assert_same_dataset(actual: Dict[str, bytes], expected: Dict[str, bytes]) -> None:
  """Same file names and same bytes (model_garden.yaml: but for the output's root); names the first
  differing files on failure."""
  assert sorted(actual) == sorted(expected)
  # model_garden.yaml only for TFRecord shards (Model Garden reads no ArrayRecord).
  required = [
    n
    for n in METADATA_FILES
    if n != 'model_garden.yaml'
    or b'"file_format": "array_record"' not in expected.get('manifest.json', b'')
  ]
  assert all(name in expected for name in required)
  differing = [
    name
    for name in expected
    if without_root(name, actual[name]) != without_root(name, expected[name])
  ]
  assert not differing, f'files differ from the reference run: {differing}'


# A version (--base) of the sample conversion: its flags (new shards sized by bytes, ~2 photos a
# shard) and the input changes (tests/test_versions.py covers each kind on its own).
VERSION_FLAGS = ('--validation_fraction', '0.2', '--target_shard_mb', '0.05')


def version_input(sample_dir: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
  """A copy of the sample photos (same modification times) with one file added under a new name,
  one removed and one replaced by another photo's bytes: the input of a version of their output."""
  shutil.copytree(sample_dir, dest)  # copy2: the base's files stay unchanged
  flowers = sorted((dest / 'flower').iterdir())
  shutil.copy(flowers[0], dest / 'flower' / 'added_copy.jpg')
  flowers[1].unlink()
  flowers[2].write_bytes((sample_dir / 'landscape' / 'es_dmottl3.JPEG').read_bytes())
  return dest


def assert_version_matches_direct_runner(
  repo: pathlib.Path,
  input_dir: pathlib.Path,
  base: pathlib.Path,
  actual: pathlib.Path,
  work_dir: pathlib.Path,
) -> None:
  """Makes the same version of `base` from `input_dir` on the DirectRunner and checks that `actual`
  holds the same bytes, with some base shards reused and some written anew."""
  direct = work_dir / 'direct_version'
  timed_conversion(
    repo,
    ['--input', str(input_dir), '--base', str(base), '--output', str(direct), *VERSION_FLAGS],
    work_dir / 'direct_version.log',
  )
  expected = read_dataset(str(direct))
  changes = json.loads(expected['manifest.json'])['version']['changes']
  assert changes['shards_reused'] and changes['shards_new'], changes
  assert_same_dataset(read_dataset(str(actual)), expected)
