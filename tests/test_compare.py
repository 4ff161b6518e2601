"""verify's checksums on a copy in another bucket, and `verify OUTPUT --against OTHER`
(pipeline/checks/compare.py): byte-identical or not, which files, which recipe entries."""

import json
import shutil

import pytest

from clusters.s3 import moto_bucket
from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from pipeline import verify as verify_lib

BUCKET = 'copies'


def _against(output, other, capsys, *beam_args):
  capsys.readouterr()  # What came before.
  code = verify_lib.main([str(output), '--against', str(other), *beam_args])
  captured = capsys.readouterr()
  return code, captured.out.splitlines(), captured.err


def test_a_copy_is_byte_identical(sample_output, tmp_path, capsys):
  copy = shutil.copytree(sample_output, tmp_path / 'copy')
  (copy / 'provenance.json').write_text('{"runner": "SomewhereElse", "started": "later"}')
  code, out, _ = _against(sample_output, copy, capsys)
  assert code == 0, out
  assert out[1] == (
    f'SAME {sample_output} and {copy}: byte-identical (15 files: 5 shards and the '
    'metadata; provenance.json not compared)'
  )
  assert out[2:] and all(line.startswith('RECIPE ') for line in out[2:])  # runner, converter, ...
  assert f'RECIPE runner: FnApiRunner in {sample_output}, SomewhereElse in {copy}' in out


def test_two_runs_into_two_folders_are_the_same_but_for_the_folder_they_name(
  sample_output, tmp_path, capsys
):
  again = tmp_path / 'again'
  assert convert(SAMPLE_DIR, again, *SAMPLE_FLAGS) == 0
  code, out, _ = _against(sample_output, again, capsys)
  assert code == 0, out
  assert out[1] == (
    f'SAME {sample_output} and {again}: byte-identical (15 files: 5 shards and the '
    'metadata; provenance.json not compared; model_garden.yaml differs only by the '
    'output folder it names)'
  )


def test_outputs_made_differently_name_the_shards_and_the_recipe(sample_output, tmp_path, capsys):
  other = tmp_path / 'q95'
  assert convert(SAMPLE_DIR, other, *SAMPLE_FLAGS, '--jpeg_quality', '95') == 0
  (other / 'validation-00001-of-00002').unlink()
  code, out, err = _against(sample_output, other, capsys)
  assert code == 1 and 'PROBLEM' not in err  # sample_output itself is valid
  assert out[1] == (
    f'DIFFERENT {sample_output} and {other}: 4 of 4 shards differ: train-00000-of-00003, '
    'train-00001-of-00003, train-00002-of-00003, validation-00000-of-00002; files that differ: '
    '_SUCCESS, dataset_info.json, manifest.json, stats.json; only in '
    f'{sample_output}: validation-00001-of-00002'
  ), out[1]
  assert f'RECIPE options.jpeg_quality: 90 in {sample_output}, 95 in {other}' in out
  assert not [line for line in out if 'RECIPE packages.' in line or 'RECIPE input.' in line]


@pytest.mark.slow
def test_a_copy_in_another_bucket_that_changed_is_named(sample_output, capsys):
  with moto_bucket(BUCKET) as (s3, client):
    damaged = 'train-00001-of-00003'
    for path in sample_output.iterdir():
      if path.is_file():
        data = path.read_bytes()
        if path.name == damaged:
          data = data[:-1000]  # An upload that lost its tail.
        client.put_object(Bucket=BUCKET, Key=f'copy/{path.name}', Body=data)
    assert verify_lib.main([f's3://{BUCKET}/copy', *s3.beam_args()]) == 1
    err = capsys.readouterr().err
    assert f'PROBLEM s3://{BUCKET}/copy/{damaged}: ' in err
    manifest = json.loads((sample_output / 'manifest.json').read_text())
    size = next(s['bytes'] for s in manifest['splits']['train']['shards'] if s['file'] == damaged)
    assert (
      f'PROBLEM s3://{BUCKET}/copy/{damaged}: {size - 1000} bytes with SHA-256 ' in err
      and f'but manifest.json says {size} bytes' in err
    ), err
    code, out, _ = _against(f's3://{BUCKET}/copy', sample_output, capsys, *s3.beam_args())
    assert code == 1
    assert out[0].startswith(
      f'DIFFERENT s3://{BUCKET}/copy and {sample_output}: 1 of 5 shards differ: {damaged}'
    ), out


def test_outputs_of_earlier_versions_verify_without_checksums(sample_output, tmp_path, capsys):
  output = shutil.copytree(sample_output, tmp_path / 'old')
  manifest = json.loads((output / 'manifest.json').read_text())
  for entry in manifest['splits'].values():
    for shard in entry['shards']:
      del shard['bytes'], shard['sha256']
  (output / 'manifest.json').write_text(json.dumps(manifest))
  (output / '_SUCCESS').write_text('')  # Earlier versions wrote an empty _SUCCESS.
  assert verify_lib.main([str(output)]) == 0
  out = capsys.readouterr().out
  assert 'no checksums in manifest.json (an earlier version made it)' in out
  assert '_SUCCESS lists no SHA-256 (an earlier version made it)' in out


def test_an_output_given_as_a_relative_path_is_the_same(
  sample_output, tmp_path, monkeypatch, capsys
):
  """model_garden.yaml names the (absolute) folder it was written in, not the path given to verify."""
  monkeypatch.chdir(tmp_path)
  other = shutil.copytree(sample_output, tmp_path / 'other')
  config = other / 'model_garden.yaml'  # As a run into tmp_path/other writes it.
  config.write_text(config.read_text().replace(str(sample_output), str(other)))
  code, out, _ = _against(sample_output, 'other', capsys)
  assert code == 0 and out[1] == (
    f'SAME {sample_output} and other: byte-identical (15 files: 5 shards and the metadata; '
    'provenance.json not compared; model_garden.yaml differs only by the output folder it names)'
  ), out
