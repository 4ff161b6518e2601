"""verify on a finished output edited after the run: every metadata file is checked against the
records and `_SUCCESS`'s SHA-256 list (pipeline/checks/metadata_check.py, transforms/output/success.py)."""

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from pipeline import verify as verify_lib
from transforms.output import layout
from transforms.output.success import read_success

# Files whose records the sample photos do not give: two rejects, so rejects.jsonl has lines.
BAD_FILES = {
  'animal/not_an_image.jpg': b'plain text, not an image\n',
  'flower/truncated.jpg': (SAMPLE_DIR / 'flower' / 'skl_flower.jpg').read_bytes()[:2000],
}


@pytest.fixture(scope='module')
def converted(tmp_path_factory) -> Path:
  """The sample photos plus BAD_FILES converted once (read-only: tests edit copies)."""
  source = tmp_path_factory.mktemp('input') / 'photos'
  shutil.copytree(SAMPLE_DIR, source, ignore=shutil.ignore_patterns('*.md'))
  for name, data in BAD_FILES.items():
    (source / name).write_bytes(data)
  output = tmp_path_factory.mktemp('converted') / 'out'
  assert convert(source, output, *SAMPLE_FLAGS) == 0
  return output


@pytest.fixture
def output(converted, tmp_path) -> Path:
  return Path(shutil.copytree(converted, tmp_path / 'out'))


def _verify(output: Path, capsys) -> tuple:
  code = verify_lib.main([str(output)])
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def _edit_json(path: Path, edit) -> None:
  value = json.loads(path.read_text())
  edit(value)
  path.write_text(json.dumps(value, indent=2, sort_keys=True) + '\n')


def _swap_first_labels(output: Path) -> None:
  lines = (output / 'labels.txt').read_text().splitlines(keepends=True)
  (output / 'labels.txt').write_text(''.join([lines[1], lines[0], *lines[2:]]))


def _add(output: Path, key: str, index, amount) -> None:
  """Adds `amount` to stats.json's train[key][index]."""

  def edit(stats):
    stats['train'][key][index] += amount

  _edit_json(output / 'stats.json', edit)


def _add_to_mean(output: Path) -> None:
  _add(output, 'mean_rgb', 0, 0.5)


def _add_to_class_count(output: Path) -> None:
  _add(output, 'class_counts', 'animal', 1)


def _cut_rejects(output: Path) -> None:
  path = output / 'rejects.jsonl'
  data = path.read_bytes()
  assert data.count(b'\n') == 2
  last = data.splitlines()[-1]
  path.write_bytes(data[: len(data) - 1 - len(last) // 2])  # Half the last line, no newline.


def test_untampered_output_passes_and_lists_every_file(converted, capsys):
  code, out, err = _verify(converted, capsys)
  assert code == 0 and not err, err
  listed = read_success(layout.OutputLayout(str(converted)))
  files = sorted(
    p.name
    for p in converted.iterdir()
    if p.is_file() and p.name not in (layout.SUCCESS_FILE, layout.PROVENANCE_FILE)
  )
  assert sorted(listed) == files and len(files) == 5 + 9  # 5 shards, every metadata file but two
  assert '9 metadata files as _SUCCESS lists their SHA-256' in out
  assert len((converted / 'rejects.jsonl').read_text().splitlines()) == len(BAD_FILES)


@pytest.mark.parametrize(
  'tamper, expected',
  [
    (
      _swap_first_labels,
      [
        'labels.txt: changed since the run: SHA-256',
        "labels.txt: line 1 is 'flower', but train records with label 0 have "
        "image/class/synset 'animal'",
      ],
    ),
    (lambda o: (o / 'labels.txt').unlink(), ['labels.txt: missing: _SUCCESS lists it']),
    (
      _add_to_mean,
      ['stats.json: changed since the run', "stats.json: split 'train': mean_rgb is ["],
    ),
    (_add_to_class_count, ["stats.json: split 'train': class_counts {'animal': "]),
    (
      lambda o: _edit_json(o / 'manifest.json', lambda m: m['options'].update(jpeg_quality=50)),
      ['manifest.json: changed since the run: SHA-256'],
    ),
    (
      lambda o: (o / 'dataset_info.json').unlink(),
      ['dataset_info.json: missing: _SUCCESS lists it'],
    ),
    (lambda o: (o / 'features.json').unlink(), ['features.json: missing: _SUCCESS lists it']),
    (
      lambda o: (o / 'image-class-label.labels.txt').write_text('a\nb\nc\nd\ne\n'),
      [
        'image-class-label.labels.txt: changed since the run',
        "image-class-label.labels.txt: label 0 is named 'a', labels.txt and the records give 'animal'",
      ],
    ),
    (lambda o: (o / 'rejects.jsonl').unlink(), ['rejects.jsonl: missing: _SUCCESS lists it']),
    (
      lambda o: (o / 'model_garden.yaml').unlink(),
      ['model_garden.yaml: missing: _SUCCESS lists it'],
    ),
    (lambda o: (o / 'provenance.json').unlink(), ['provenance.json: missing: every run writes it']),
    (
      _cut_rejects,
      [
        'rejects.jsonl: changed since the run',
        'rejects.jsonl: line 2 is not JSON (',
        'stats.json: split ',
        'stats.json: ...: num_rejected 1, rejects.jsonl has 0',
      ],
    ),
    (
      lambda o: (o / 'duplicates.jsonl').write_text('{"kind": "near"}\n'),
      ['duplicates.jsonl: changed since the run', 'duplicates.jsonl: line 1 has no files'],
    ),
  ],
  ids=[
    'swap_labels',
    'delete_labels',
    'stats_mean_rgb',
    'stats_class_counts',
    'manifest_options',
    'delete_dataset_info',
    'delete_features',
    'edit_tfds_labels',
    'delete_rejects',
    'delete_model_garden',
    'delete_provenance',
    'truncate_rejects',
    'bad_duplicates',
  ],
)
def test_tampered_output_fails_naming_the_file(output, capsys, tamper, expected):
  tamper(output)
  code, out, err = _verify(output, capsys)
  assert code == 1 and not out
  problems = [line[len('PROBLEM ') :] for line in err.splitlines() if line.startswith('PROBLEM ')]
  for text in expected:  # `file: message`; `...` in it stands for any text
    name, message = text.split(': ', 1)
    pattern = '.*'.join(map(re.escape, message.split('...')))
    assert any(
      line.startswith(f'{output / name}: ') and re.search(pattern, line) for line in problems
    ), (text, problems)


@pytest.mark.parametrize('drop_work', [False, True], ids=['sidecars', 'no_work_folder'])
def test_stats_are_checked_against_the_records_without_success_hashes(output, capsys, drop_work):
  """An earlier version's empty _SUCCESS: the edits are still found from the records (and the run's
  sidecars when the copy has them)."""
  (output / '_SUCCESS').write_text('')
  if drop_work:
    shutil.rmtree(output / '_work')
  code, out, _ = _verify(output, capsys)
  assert code == 0 and 'edits of the metadata files since the run cannot be checked' in out
  _add(output, 'mean_rgb', 1, 10.0)
  _swap_first_labels(output)
  code, _, err = _verify(output, capsys)
  source = (
    'the decoded records give' if drop_work else "the pixel sums of its shards' sidecars give"
  )
  assert code == 1
  assert f"PROBLEM {output / 'stats.json'}: split 'train': mean_rgb is [" in err
  assert source in err
  assert f"PROBLEM {output / 'labels.txt'}: line 1 is 'flower'" in err


def test_a_copy_in_another_folder_verifies(converted, tmp_path, capsys):
  """model_garden.yaml names its folder; _SUCCESS lists it without the folder, so a copy verifies."""
  copy = Path(
    shutil.copytree(converted, tmp_path / 'elsewhere', ignore=shutil.ignore_patterns('_work'))
  )
  assert str(converted) in (copy / 'model_garden.yaml').read_text()
  code, _, err = _verify(copy, capsys)
  assert code == 0, err


def test_missing_folder_is_a_usage_error(tmp_path, capsys):
  code, out, err = _verify(tmp_path / 'nothing-here', capsys)
  assert code == 2 and not out
  assert err == (
    f'error: {tmp_path / "nothing-here"} does not exist (or holds no file): nothing to verify\n'
  )
