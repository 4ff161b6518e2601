"""--resume finishes only the run it claims to finish: the recipe in every sidecar and the run's
--input root (transforms/output/resume.py, pipeline/runtime/output_dir.py), also when _work/run.json
is gone; the label map recorded by content, not path (transforms/inputs/label_map.py
labels_file_digest)."""

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from pipeline import verify as verify_lib
from transforms.output import layout, resume
from transforms.inputs.fingerprint import shard_inputs
from transforms.split.sharding import ImageRef
from transforms.records import ShardSummary

KILLED = ('train-00001-of-00003', 'validation-00000-of-00002')


@pytest.fixture(scope='module')
def source(tmp_path_factory) -> Path:
  root = tmp_path_factory.mktemp('input') / 'photos'
  shutil.copytree(SAMPLE_DIR, root, ignore=shutil.ignore_patterns('*.md'))
  return root


@pytest.fixture(scope='module')
def q90(source, tmp_path_factory) -> Path:
  """A finished --jpeg_quality 90 run (read-only: tests interrupt copies)."""
  output = tmp_path_factory.mktemp('q90') / 'out'
  assert convert(source, output, *SAMPLE_FLAGS, '--jpeg_quality', '90') == 0
  return output


def _interrupted(q90: Path, tmp_path: Path, keep_run_file: bool = False) -> Path:
  """What a run killed at quality 90 leaves (some shards never renamed into place, no _SUCCESS),
  with _work/run.json deleted unless `keep_run_file`."""
  output = Path(shutil.copytree(q90, tmp_path / 'out'))
  for name in KILLED:
    (output / name).unlink()
  (output / layout.SUCCESS_FILE).unlink()
  if not keep_run_file:
    (output / '_work' / layout.RUN_FILE).unlink()
  return output


def _files(output: Path) -> dict:
  return {
    p.relative_to(output).as_posix(): p.read_bytes()
    for p in sorted(output.rglob('*'))
    if p.is_file() and 'progress' not in p.parts and p.name != layout.CLAIM_FILE
  }


def _quality_tables(encoded: bytes) -> dict:
  with Image.open(io.BytesIO(encoded)) as image:
    return {k: list(v) for k, v in image.quantization.items()}


def _stored_jpegs(output: Path) -> list:
  from transforms.imaging.example import parse_example  # pylint: disable=import-outside-toplevel
  from transforms.output.file_format import read_tfrecords  # pylint: disable=import-outside-toplevel

  jpegs = []
  for shard in sorted(output.glob('*-of-*')):
    with open(shard, 'rb') as f:
      jpegs += [parse_example(r.data).encoded for r in read_tfrecords(f)]
  return jpegs


@pytest.mark.parametrize('keep_run_file', [False, True], ids=['run_json_deleted', 'run_json_kept'])
def test_resume_with_another_jpeg_quality_is_refused_before_any_work(
  q90, source, tmp_path, capsys, keep_run_file
):
  output = _interrupted(q90, tmp_path, keep_run_file)
  before = _files(output)
  assert convert(source, output, *SAMPLE_FLAGS, '--jpeg_quality', '50', '--resume') == 2
  err = capsys.readouterr().err
  where = output / '_work' / (layout.RUN_FILE if keep_run_file else 'train-00000-of-00003.json')
  assert err == (
    f'error: --resume finishes the interrupted run, and these flags differ from it (as '
    f'{where} records them): --jpeg_quality was 90 in the interrupted run, 50 now. Rerun '
    'with --jpeg_quality 90 --resume, or use --overwrite to replace the output.\n'
  ), err
  assert _files(output) == before  # Nothing written, nothing deleted.


def test_resume_with_the_same_flags_finishes_the_run_byte_identical(q90, source, tmp_path, capsys):
  output = _interrupted(q90, tmp_path)
  assert convert(source, output, *SAMPLE_FLAGS, '--jpeg_quality', '90', '--resume') == 0
  assert 'resumed: 3 shards kept, 0 rewritten because their input changed, 2 missing' in (
    capsys.readouterr().out
  )
  assert {
    n: d
    for n, d in _files(output).items()
    if '/' not in n and n != layout.PROVENANCE_FILE and n != layout.MODEL_GARDEN_FILE
  } == {
    n: d
    for n, d in _files(q90).items()
    if '/' not in n and n != layout.PROVENANCE_FILE and n != layout.MODEL_GARDEN_FILE
  }
  assert verify_lib.main([str(output)]) == 0


@pytest.mark.parametrize('keep_run_file', [False, True], ids=['run_json_deleted', 'run_json_kept'])
def test_resume_with_another_input_root_is_refused(q90, source, tmp_path, capsys, keep_run_file):
  output = _interrupted(q90, tmp_path, keep_run_file)
  other = Path(shutil.copytree(source, tmp_path / 'other_photos'))
  shutil.rmtree(other / 'space')  # Another dataset: --overwrite, not --resume, replaces it.
  assert convert(other, output, *SAMPLE_FLAGS, '--resume') == 2
  err = capsys.readouterr().err
  assert (
    f'--input was {source} in the interrupted run, {other} now. Rerun with --input {source} '
    '--resume, or use --overwrite to replace the output.'
  ) in err, err
  assert not (output / layout.SUCCESS_FILE).exists()
  assert convert(other, output, *SAMPLE_FLAGS, '--overwrite') == 0
  assert verify_lib.main([str(output)]) == 0


def test_a_shard_written_with_another_recipe_is_rewritten(q90, source, tmp_path, capsys):
  """A q90 shard and its sidecar next to q50 ones (run.json gone): the first sidecar says q50, so
  the run goes on; the q90 shard is not kept, and the output ends as a fresh q50 run."""
  q50 = tmp_path / 'q50'
  assert convert(source, q50, *SAMPLE_FLAGS, '--jpeg_quality', '50') == 0
  fresh = _files(q50)
  mixed = 'train-00002-of-00003'
  shutil.copy(q90 / mixed, q50 / mixed)
  shutil.copy(q90 / '_work' / f'{mixed}.json', q50 / '_work' / f'{mixed}.json')
  (q50 / layout.SUCCESS_FILE).unlink()
  (q50 / '_work' / layout.RUN_FILE).unlink()
  assert convert(source, q50, *SAMPLE_FLAGS, '--jpeg_quality', '50', '--resume') == 0
  line = next(text for text in capsys.readouterr().out.splitlines() if text.startswith('resumed:'))
  assert line == (
    'resumed: 4 shards kept, 0 rewritten because their input changed, 1 rewritten '
    'because other flags or another label map wrote them, 0 missing'
  ), line
  assert verify_lib.main([str(q50)]) == 0
  assert _files(q50)[mixed] == fresh[mixed]
  tables = {json.dumps(_quality_tables(jpeg)) for jpeg in _stored_jpegs(q50)}
  q90_tables = {json.dumps(_quality_tables(jpeg)) for jpeg in _stored_jpegs(q90)}
  assert len(tables) == 1 and not tables & q90_tables  # Every stored JPEG has q50's tables.


def test_the_label_map_is_recorded_by_content_not_path(source, tmp_path, capsys):
  classes = sorted(p.name for p in source.iterdir())
  first, second = tmp_path / 'a' / 'labels.txt', tmp_path / 'b' / 'classes.json'
  first.parent.mkdir()
  second.parent.mkdir()
  first.write_text('\n'.join(classes) + '\n')
  second.write_text(json.dumps({name: i for i, name in enumerate(classes)}))
  one, two = tmp_path / 'one', tmp_path / 'two'
  assert convert(source, one, *SAMPLE_FLAGS, '--labels_file', first) == 0
  assert convert(source, two, *SAMPLE_FLAGS, '--labels_file', second) == 0
  manifest = json.loads((one / 'manifest.json').read_text())
  assert manifest['options']['labels_file'].startswith('sha256:')
  assert str(tmp_path) not in (one / 'manifest.json').read_text()
  capsys.readouterr()
  assert verify_lib.main([str(one), '--against', str(two)]) == 0
  assert capsys.readouterr().out.splitlines()[1].startswith(f'SAME {one} and {two}')
  # The same map at another path finishes the run: the shards are kept.
  for name in KILLED:
    (one / name).unlink()
  (one / layout.SUCCESS_FILE).unlink()
  assert convert(source, one, *SAMPLE_FLAGS, '--labels_file', second, '--resume') == 0
  assert 'resumed: 3 shards kept, 0 rewritten because their input changed, 2 missing' in (
    capsys.readouterr().out
  )
  assert _files(one)['manifest.json'] == _files(two)['manifest.json']
  # --config OLD/manifest.json repeats the run: the label map is OLD/labels.txt, whose digest it is.
  again = tmp_path / 'again'
  assert convert(source, again, '--config', one / 'manifest.json') == 0
  assert _files(again)['manifest.json'] == _files(one)['manifest.json']


REFS = [ImageRef('', 0, 'a', f'a/{i}.jpg', 1000 + i, 1_700_000_000_000_000 + i) for i in range(3)]
RECIPE = resume.shard_recipe({'input': '/data', 'jpeg_quality': 90})


@pytest.mark.parametrize(
  'recipe, outcome',
  [
    (RECIPE, resume.KEPT),
    ({**RECIPE, 'jpeg_quality': 50}, resume.OTHER_RECIPE),
    ({**RECIPE, 'input': '/elsewhere'}, resume.OTHER_RECIPE),
    (None, resume.NO_RECIPE),
  ],
  ids=['same', 'other_quality', 'other_input', 'sidecar_without_recipe'],
)
def test_decide_compares_the_recipe(recipe, outcome):
  inputs = shard_inputs(REFS)
  finished = ShardSummary(
    'train-00000-of-00001',
    'train',
    inputs=inputs,
    file_bytes=10,
    codecs={},
    phashes=(),
    recipe=recipe,
  )
  finished = ShardSummary.from_json(json.loads(json.dumps(finished.to_json())))  # a sidecar
  assert resume.decide(finished, 10, inputs, {}, RECIPE) == outcome
