"""Duplicates (docs/duplicates.md): corpora built from the real sample photos with planted exact and
near copies, converted by the real pipeline (DirectRunner), and the pure helpers on their own."""

import json
import pathlib
import re
import shutil

import pytest

from benchmarks.duplicates import near_copies
from conftest import convert, sample_files
from pipeline import options
from pipeline import verify as verify_lib
from pipeline.checks.duplicates_check import record_phash
from transforms.output import file_format, layout
from transforms.duplicates.exact import DuplicateGroup, read_exclusions
from transforms.split.groups import group_value, merged_followers
from transforms.duplicates.near import count_lines, find_duplicates
from transforms.split.sharding import ImageRef

# Found at the default distance on every sample photo (benchmarks/duplicates.py;
# docs/duplicates.md).
NEAR_KINDS = ('q60', 'resize0.7', 'bright10', 'crop1')
PARTLY_FOUND = 'crop2'  # 2% cut from every side: 96% of the sample photos' copies within 8 bits
SHARDS = ('--train_shards', '2', '--validation_shards', '2', '--test_shards', '1')


# ---------------------------------------------------------------------------------------------
# Corpora


def _origin(path: str) -> str:
  """The sample photo a corpus file was made from: its name without the planted prefix."""
  name = path.rsplit('/', 1)[-1]
  for prefix in ('dup_', 'leak_', 'twin_'):
    name = name[len(prefix) :] if name.startswith(prefix) else name
  if name.startswith('near_'):
    name = name.split('_', 2)[2].rsplit('.', 1)[0]
  return name.rsplit('.', 1)[0]


def _plant_near(folder: pathlib.Path, photo: pathlib.Path, kinds=NEAR_KINDS) -> list:
  copies = near_copies(photo.read_bytes(), crops=(1, 2))
  names = []
  for kind in kinds:
    name = f'near_{kind}_{photo.stem}.jpg'
    (folder / name).write_bytes(copies[kind])
    names.append(name)
  return names


@pytest.fixture(scope='module')
def pool(tmp_path_factory):
  """root/<class>/<image>: every sample photo; 3 photos copied twice (into their class and into the
  next class), 4 photos with 5 near copies each. Returns (root, exact groups, near pairs, 2%-crop
  pairs) as input-relative paths."""
  root = tmp_path_factory.mktemp('pool') / 'photos'
  files = sample_files()
  classes = sorted({synset for synset, _ in files})
  for synset, path in files:
    (root / synset).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, root / synset / path.name)
  exact, near, cropped = [], [], []
  for synset, path in (files[0], files[10], files[20]):
    other = classes[(classes.index(synset) + 1) % len(classes)]
    shutil.copy(path, root / synset / f'dup_{path.name}')
    shutil.copy(path, root / other / f'dup_{path.name}')
    exact.append({f'{synset}/{path.name}', f'{synset}/dup_{path.name}', f'{other}/dup_{path.name}'})
  for synset, path in (files[5], files[15], files[25], files[35]):
    for name in _plant_near(root / synset, path, NEAR_KINDS + (PARTLY_FOUND,)):
      (cropped if PARTLY_FOUND in name else near).append(
        {f'{synset}/{path.name}', f'{synset}/{name}'}
      )
  return root, exact, near, cropped


@pytest.fixture(scope='module')
def splits(tmp_path_factory):
  """root/train|validation/<class>/<image>: every 4th sample photo in validation, the rest in train;
  2 validation photos copied into train (leak_), 1 train photo copied within train (twin_), 2
  validation photos with a quality-60 copy in train. Returns (root, {kind: [input-relative paths]})."""
  root = tmp_path_factory.mktemp('splits') / 'photos'
  files = sample_files()
  planted = {'leaks': [], 'twins': [], 'near_leaks': []}
  for i, (synset, path) in enumerate(files):
    split = 'validation' if i % 4 == 0 else 'train'
    (root / split / synset).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, root / split / synset / path.name)
  for i in (0, 8):
    synset, path = files[i]
    (root / 'train' / synset).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, root / 'train' / synset / f'leak_{path.name}')
    planted['leaks'].append(
      (f'validation/{synset}/{path.name}', f'train/{synset}/leak_{path.name}')
    )
  synset, path = files[1]
  shutil.copy(path, root / 'train' / synset / f'twin_{path.name}')
  planted['twins'].append((f'train/{synset}/{path.name}', f'train/{synset}/twin_{path.name}'))
  for i in (4, 12):
    synset, path = files[i]
    (name,) = _plant_near(root / 'train' / synset, path, kinds=('q60',))
    planted['near_leaks'].append((f'validation/{synset}/{path.name}', f'train/{synset}/{name}'))
  return root, planted


def _records(output: pathlib.Path) -> dict:
  """{(split, image/filename): image/phash} of every record, read from the shards."""
  manifest = json.loads((output / layout.MANIFEST_FILE).read_text())
  found = {}
  for split, entry in manifest['splits'].items():
    for shard in entry['shards']:
      with open(output / shard['file'], 'rb') as handle:
        for record in file_format.read_tfrecords(handle):
          name, value = record_phash(record.data)
          found[(split, name)] = value
  return found


def _lines(output: pathlib.Path) -> list:
  return layout.read_jsonl(str(output / layout.DUPLICATES_FILE))


def _paths(line: dict) -> set:
  return {entry['path'] for entry in line['files']}


def _rejects(output: pathlib.Path) -> dict:
  return {r['path']: r['reason'] for r in layout.read_jsonl(str(output / layout.REJECTS_FILE))}


@pytest.fixture(scope='module')
def pool_output(pool, tmp_path_factory):
  root, _, _, _ = pool
  output = tmp_path_factory.mktemp('pool_out') / 'out'
  assert (
    convert(root, output, '--validation_fraction', '0.3', '--test_fraction', '0.2', *SHARDS) == 0
  )
  return output


@pytest.fixture(scope='module')
def splits_output(splits, tmp_path_factory):
  root, _ = splits
  output = tmp_path_factory.mktemp('splits_out') / 'out'
  assert convert(root, output, *SHARDS[:4]) == 0
  return output


# ---------------------------------------------------------------------------------------------
# Converted corpora (slow: real conversions)


@pytest.mark.slow
def test_planted_exact_copies_are_one_line_each_and_never_straddle_a_fraction_split(
  pool, pool_output
):
  _, exact, _, _ = pool
  lines = _lines(pool_output)
  exact_lines = [line for line in lines if line['kind'] == 'exact']
  assert sorted(map(sorted, map(_paths, exact_lines))) == sorted(map(sorted, exact))
  records = _records(pool_output)
  split_of = {name: split for split, name in records}
  for group in exact:
    assert len({split_of[path] for path in group}) == 1, group
  for line in exact_lines:
    assert all(entry['stored'] for entry in line['files'])
    assert len({entry['split'] for entry in line['files']}) == 1


@pytest.mark.slow
def test_planted_near_copies_are_one_group_with_their_photo_and_distinct_photos_are_not(
  pool, pool_output
):
  _, exact, near, cropped = pool
  found = [_paths(line) for line in _lines(pool_output) if line['kind'] == 'near']
  for pair in near + cropped:
    assert any(pair <= group for group in found), pair
  assert len(found) == 4  # one group a photo with near copies
  for group in found:
    assert len({_origin(path) for path in group}) == 1, group  # never two different photos
  assert not any(group & exact_group for group in found for exact_group in exact)


@pytest.mark.slow
def test_stats_count_the_lines_and_verify_agrees(pool_output):
  stats = json.loads((pool_output / layout.STATS_FILE).read_text())
  lines = _lines(pool_output)
  assert stats['duplicates'] == count_lines(lines)
  assert stats['duplicates']['exact_within_split'] == 3
  assert stats['duplicates']['exact_across_splits'] == 0
  assert stats['duplicates']['near_within_split'] + stats['duplicates']['near_across_splits'] == 4
  report = verify_lib.verify(str(pool_output))
  assert report.ok, [str(p) for p in report.problems]


@pytest.mark.slow
def test_verify_finds_a_tampered_duplicates_file(pool_output, tmp_path):
  copy = shutil.copytree(pool_output, tmp_path / 'copy')
  lines = _lines(copy)
  near = next(i for i, line in enumerate(lines) if line['kind'] == 'near')
  del lines[near]
  layout.write_jsonl(str(copy / layout.DUPLICATES_FILE), lines)
  problems = [str(p) for p in verify_lib.verify(str(copy)).problems]
  assert any('but not in one group' in p for p in problems), problems
  assert any("duplicates.jsonl's lines give" in p for p in problems), problems


@pytest.mark.slow
def test_split_folders_report_leaks_across_splits(splits, splits_output):
  _, planted = splits
  lines = _lines(splits_output)
  exact = [(_paths(line), line) for line in lines if line['kind'] == 'exact']
  near = [_paths(line) for line in lines if line['kind'] == 'near']
  for kept, copy in planted['leaks'] + planted['twins']:
    line = next(line for paths, line in exact if paths == {kept, copy})
    assert line['files'][0]['path'] == kept  # the copy to keep first: validation before train
  for pair in planted['near_leaks']:
    assert set(pair) in near
  for pair in near:
    assert len({_origin(path) for path in pair}) == 1, pair
  counts = json.loads((splits_output / layout.STATS_FILE).read_text())['duplicates']
  assert counts['exact_across_splits'] == 2 and counts['exact_within_split'] == 1
  assert counts['near_across_splits'] >= 2
  assert verify_lib.verify(str(splits_output)).ok


@pytest.mark.slow
def test_drop_duplicates_drops_train_copies_only(splits, splits_output, tmp_path):
  root, planted = splits
  output = tmp_path / 'dropped'
  assert convert(root, output, *SHARDS[:4], '--drop_duplicates') == 0
  rejects = _rejects(output)
  for kept, copy in planted['leaks'] + planted['twins']:
    assert rejects[str(root / copy)] == f'duplicate of {root / kept}'
  assert len(rejects) == 3
  before, after = _records(splits_output), _records(output)
  assert {k for k in after if k[0] == 'validation'} == {k for k in before if k[0] == 'validation'}
  assert len(after) == len(before) - 3
  counts = json.loads((output / layout.STATS_FILE).read_text())['duplicates']
  assert counts['exact_across_splits'] == 2  # still reported, with the train copies not stored
  assert all(
    not f['stored'] for line in _lines(output) if line['kind'] == 'exact' for f in line['files'][1:]
  )
  assert verify_lib.verify(str(output)).ok


@pytest.mark.slow
def test_exclude_file_from_duplicates_jsonl_or_a_list(splits, splits_output, tmp_path):
  root, planted = splits
  output = tmp_path / 'excluded'
  assert (
    convert(root, output, *SHARDS[:4], '--exclude_file', splits_output / layout.DUPLICATES_FILE)
    == 0
  )
  rejects = _rejects(output)
  expected = {
    str(root / entry['path']) for line in _lines(splits_output) for entry in line['files'][1:]
  }
  assert {path for path, reason in rejects.items() if reason == 'excluded'} == expected
  for _, copy in planted['leaks'] + planted['near_leaks']:
    assert str(root / copy) in expected
  counts = json.loads((output / layout.STATS_FILE).read_text())['duplicates']
  assert counts['exact_across_splits'] == counts['near_across_splits'] == 0
  listed = tmp_path / 'exclude.txt'
  listed.write_text('# two files\n' + '\n'.join(copy for _, copy in planted['leaks']) + '\n')
  output = tmp_path / 'listed'
  assert convert(root, output, *SHARDS[:4], '--exclude_file', listed) == 0
  assert {p for p, r in _rejects(output).items() if r == 'excluded'} == {
    str(root / copy) for _, copy in planted['leaks']
  }


@pytest.mark.slow
def test_same_input_and_flags_give_the_same_bytes(pool, pool_output, tmp_path):
  root, _, _, _ = pool
  again = tmp_path / 'again'
  assert (
    convert(root, again, '--validation_fraction', '0.3', '--test_fraction', '0.2', *SHARDS) == 0
  )
  for path in sorted(pool_output.iterdir()):
    if path.is_file() and path.name not in (layout.PROVENANCE_FILE, layout.MODEL_GARDEN_FILE):
      assert (again / path.name).read_bytes() == path.read_bytes(), path.name


# ---------------------------------------------------------------------------------------------
# Pure helpers (fast)


def _ref(split, key):
  return ImageRef(split, 0, key.split('/')[0], key, 10)


def test_a_group_keeps_validation_and_test_and_drops_train_copies():
  group = DuplicateGroup(
    'd',
    (
      _ref('validation', 'a/v.jpg'),
      _ref('test', 'a/t.jpg'),
      _ref('train', 'a/x.jpg'),
      _ref('train', 'b/y.jpg'),
    ),
  )
  assert [r.key for r in group.dropped()] == ['a/x.jpg', 'b/y.jpg']
  assert group.followers() == []  # split folders: nothing moves
  unsplit = DuplicateGroup('d', (_ref('', 'a/1.jpg'), _ref('', 'b/2.jpg')))
  assert unsplit.dropped() == [unsplit.members[1]]
  assert unsplit.followers() == [(unsplit.members[1], unsplit.members[0])]


def test_read_exclusions_of_a_list_and_of_a_duplicates_file(tmp_path):
  listed = tmp_path / 'list.txt'
  listed.write_text('# comment\n\n./train/a/x.jpg\nb/y.jpg\n')
  assert read_exclusions(str(listed)) == {'train/a/x.jpg', 'b/y.jpg'}
  jsonl = tmp_path / 'duplicates.jsonl'
  jsonl.write_text(
    json.dumps(
      {
        'kind': 'near',
        'distance': 2,
        'files': [{'path': 'validation/a/1.jpg'}, {'path': 'train/a/2.jpg'}],
      }
    )
    + '\n'
  )
  assert read_exclusions(str(jsonl)) == {'train/a/2.jpg'}
  jsonl.write_text('{"kind": "near"}\n')
  with pytest.raises(ValueError, match='line 1'):
    read_exclusions(str(jsonl))
  with pytest.raises(ValueError, match='cannot read'):
    read_exclusions(str(tmp_path / 'missing.txt'))


def test_find_duplicates_lists_each_group_once_and_counts_it():
  stored = [
    ('a/1.jpg', 'train', 0b1111),
    ('a/2.jpg', 'validation', 0b0111),
    ('a/3.jpg', 'train', 0b1111),
    ('b/4.jpg', 'train', -1),
  ]
  found = find_duplicates(stored, [('d', [('a/1.jpg', None), ('a/3.jpg', None)])], 1)
  kinds = [
    (line['kind'], [(f['path'], f['distance']) for f in line['files']]) for line in found.lines
  ]
  assert kinds == [('near', [('a/2.jpg', 0), ('a/1.jpg', 1), ('a/3.jpg', 1)])]
  assert found.counts == {
    'exact_within_split': 0,
    'exact_across_splits': 0,
    'near_within_split': 0,
    'near_across_splits': 1,
    'files_across_splits': 2,
  }
  alone = find_duplicates(stored, [('d', [('a/1.jpg', None), ('a/3.jpg', None)])], 0)
  assert [(line['kind'], line['sha256'], len(line['files'])) for line in alone.lines] == [
    ('exact', 'd', 2)
  ]


@pytest.mark.slow
def test_group_regex_keeps_each_group_and_its_copies_in_one_split(tmp_path):
  """9 clips of 6 frames (distinct sample photos) over 3 classes, clip 0 spanning two classes, and a
  copy of one of clip 1's frames outside any clip: every clip, and the copy, in one split."""
  root = tmp_path / 'photos'
  files = sample_files()
  for i, (_, path) in enumerate(files):
    clip, frame = i // 6, i % 6
    synset = f'class{(i // 2) % 3}' if clip == 0 else f'class{clip % 3}'
    (root / synset).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, root / synset / f'clip{clip}_frame{frame}{path.suffix}')
  copied = next(root.glob('class1/clip1_frame0.*'))
  shutil.copy(copied, root / 'class2' / f'loose{copied.suffix}')
  output = tmp_path / 'out'
  assert (
    convert(
      root,
      output,
      '--validation_fraction',
      '0.3',
      '--test_fraction',
      '0.2',
      '--group_regex',
      r'^(clip\d+)_',
      *SHARDS,
    )
    == 0
  )
  split_of = {name: split for split, name in _records(output)}
  clips = {}
  for name, split in split_of.items():
    clip = name.split('/')[1].split('_')[0]
    clips.setdefault('clip1' if clip.startswith('loose') else clip, set()).add(split)
  assert len(clips) == 9 and all(len(splits) == 1 for splits in clips.values()), clips
  assert len({splits.pop() for splits in clips.values()}) > 1  # and yet the input is split
  assert verify_lib.verify(str(output)).ok


def test_group_value_and_merged_groups():
  pattern = re.compile(r'^(clip\d+)_')
  assert group_value(pattern, 'cat/clip7_frame3.jpg') == 'clip7'
  assert group_value(pattern, 'cat/other.jpg') is None
  a, b, c, d, e = (_ref('', f'x/{n}.jpg') for n in 'abcde')
  followers = merged_followers([[c, b], [b, d], [e]])
  assert followers == [(c, b), (d, b)]  # b leads the merged {b, c, d}; e alone follows nobody
  assert merged_followers([[d, a], [b, c]]) == [(c, b), (d, a)]
  assert merged_followers([]) == []


@pytest.mark.parametrize(
  'flags, message',
  [
    (['--group_regex', '(', '--validation_fraction', '0.1'], 'not a regular expression'),
    (['--group_regex', 'clip', '--validation_fraction', '0.1'], 'no capture group'),
    (['--group_regex', '(clip)'], '--validation_fraction or'),
    (['--near_duplicate_distance', '17'], '0..16 bits'),
    (['--exclude_file', '/nonexistent/list.txt'], 'cannot read --exclude_file'),
  ],
)
def test_duplicate_flags_fail_before_any_work(flags, message):
  with pytest.raises(options.UsageError, match=re.escape(message)):
    options.parse_args(['--input', 'in', '--output', 'out', *flags])


@pytest.mark.slow
def test_report_shows_the_closest_cross_split_pairs_decoded_from_the_shards(
  splits, splits_output, tmp_path
):
  from pipeline import report  # pylint: disable=import-outside-toplevel

  _, planted = splits
  data = report.read_report_data(str(splits_output))
  shown = [{path for _, path in pair.files} for pair in data.duplicate_pairs]
  for pair in planted['leaks'] + planted['near_leaks']:
    assert set(pair) in shown, (pair, shown)
  assert [pair.kind for pair in data.duplicate_pairs][:2] == ['exact', 'exact']  # closest first
  for pair in data.duplicate_pairs:
    assert all(image is not None and image.shape[2] == 3 for image in pair.images)
    if pair.kind == 'exact':
      assert (pair.images[0] == pair.images[1]).all()  # identical files, identical records
  result = report.render(data, str(tmp_path / 'report.png'))
  page = pathlib.Path(result.html).read_text()
  assert 'Closest duplicates across splits' in page
  assert all(path in page for pair in planted['leaks'] for path in pair)
