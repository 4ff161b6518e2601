"""Issue 25: duplicates as groups (transforms/duplicates/near.py, union_find.py, hamming_search.py's
streaming searches), crop hashes (transforms/imaging/perceptual_hash.py) on the real sample photos,
and the group format through a real conversion, verify, report and --exclude_file."""

import json
import random
import shutil

import numpy as np
import pytest

from benchmarks.duplicates import OFF_CENTRE_CORNERS, _cropped, _jpeg, _scaled, _upright
from conftest import convert, sample_files
from pipeline import verify as verify_lib
from pipeline.checks.duplicates_check import line_problem
from pipeline.run import duplicates_line
from transforms.duplicates import hamming_search as hs
from transforms.imaging import image as image_lib
from transforms.output import layout
from transforms.duplicates import union_find
from transforms.duplicates.near import (
  are_near,
  count_lines,
  crop_match_distance,
  find_duplicates,
  near_components,
)
from transforms.imaging.perceptual_hash import hamming_distance, image_hashes, perceptual_hash

SHARDS = ('--train_shards', '2', '--validation_shards', '1')


def _components_by_brute_force(n, edges):
  parent = list(range(n))

  def find(x):
    while parent[x] != x:
      x = parent[x]
    return x

  for a, b in edges:
    ra, rb = find(a), find(b)
    parent[max(ra, rb)] = min(ra, rb)
  return [find(x) for x in range(n)]


# ---------------------------------------------------------------------------------------------
# Union-find and the streaming searches (fast)


@pytest.mark.parametrize(
  'n,edges,chunk', [(1, 0, 1), (50, 30, 7), (2000, 1500, 100), (5000, 9000, 4096)]
)
def test_components_are_the_brute_force_ones_in_any_chunking(n, edges, chunk, monkeypatch):
  monkeypatch.setattr(union_find, 'MIN_BUFFER_EDGES', 3)  # many joins
  rng = np.random.default_rng(n)
  first, second = rng.integers(0, n, edges), rng.integers(0, n, edges)
  components = union_find.Components(n)
  for lo in range(0, edges, chunk):
    components.add(first[lo : lo + chunk], second[lo : lo + chunk])
  expected = _components_by_brute_force(n, zip(first.tolist(), second.tolist()))
  assert components.labels().tolist() == expected


def test_a_long_chain_is_one_component():
  chain = np.arange(200_000)
  components = union_find.Components(200_001)
  components.add(chain[::-1], chain[::-1] + 1)
  assert set(components.labels().tolist()) == {0}


@pytest.mark.parametrize('queries,index,t', [(300, 900, 6), (3000, 9000, 6), (2000, 500, 3)])
def test_iter_matches_finds_every_pair_between_two_sets(queries, index, t):
  rng = np.random.default_rng(queries)
  q = rng.integers(-(2**63), 2**63 - 1, queries, dtype=np.int64)
  x = rng.integers(-(2**63), 2**63 - 1, index, dtype=np.int64)
  for k in range(0, min(queries, index), 3):  # planted neighbours within 0..t+1 bits
    flips = rng.choice(64, rng.integers(0, t + 2), replace=False)
    x[k] = q[k] ^ np.int64(sum(1 << int(b) for b in flips if b < 63))
  found = set()
  for a, b in hs.iter_matches(q, x, t):
    found.update(zip(a.tolist(), b.tolist()))
  distances = np.bitwise_count(q.view(np.uint64)[:, None] ^ x.view(np.uint64)[None, :])
  assert found == set(zip(*map(np.ndarray.tolist, np.nonzero(distances <= t))))
  assert len(found) > min(queries, index) // 6


def test_iter_pairs_streams_chunks_no_larger_than_asked(monkeypatch):
  monkeypatch.setattr(hs, 'CHUNK_CANDIDATES', 5000)
  values = np.full(3000, 7, np.int64)  # 4.5 M pairs of equal hashes
  values[::2] = 8
  sizes = []
  for first, second in hs.iter_pairs(values, 2):
    sizes.append(len(first))
    assert (first < second).all()
  assert max(sizes) <= 5000 + 1500  # a chunk: CHUNK_CANDIDATES candidates and one query's
  assert sum(sizes) >= 3000 * 2999 // 2


# ---------------------------------------------------------------------------------------------
# Groups (fast)


def test_groups_are_components_with_distances_to_the_first_member():
  stored = [
    ('a/1.jpg', 'train', 0b0),
    ('a/2.jpg', 'train', 0b11),
    ('a/3.jpg', 'train', 0b1111),
    ('v/4.jpg', 'validation', 0b111111),
    ('b/5.jpg', 'train', -1),
  ]
  found = find_duplicates(stored, [], 2)
  lines = list(found.lines)
  assert len(lines) == 1  # a chain of links within 2 bits: one group, not four pairs
  assert [(f['path'], f['distance']) for f in lines[0]['files']] == [
    ('v/4.jpg', 0),
    ('a/1.jpg', 6),
    ('a/2.jpg', 4),
    ('a/3.jpg', 2),
  ]
  assert lines[0]['kind'] == 'near' and all(line_problem(line) is None for line in lines)
  assert (
    found.counts
    == count_lines(lines)
    == {
      'exact_within_split': 0,
      'exact_across_splits': 0,
      'near_within_split': 0,
      'near_across_splits': 1,
      'files_across_splits': 3,
    }
  )
  assert duplicates_line(found.counts, 2) == (
    'duplicates: 1 group (0 exact, 1 near within 2 bits), 3 files across splits (see '
    'duplicates.jsonl)'
  )


def test_output_does_not_depend_on_input_order():
  rng = random.Random(3)
  stored = [
    (
      f'c/{i:04d}.jpg',
      rng.choice(['train', 'validation']),
      rng.choice([0, 1, 3, 7, 2**40, -5]),
      tuple(rng.getrandbits(63) for _ in range(5)),
    )
    for i in range(300)
  ]
  exact = [('d1', [('c/0001.jpg', None), ('c/0002.jpg', None), ('x/gone.jpg', 'train')])]
  expected = find_duplicates(stored, exact, 4)
  for _ in range(3):
    rng.shuffle(stored)
    assert find_duplicates(stored, exact, 4) == expected


def test_a_crop_match_joins_through_crop_hashes_only_within_the_tighter_limit():
  original = ('v/photo.jpg', 'validation', 0, (2**20 - 1, -1, -2, -3, -4))  # centre: 20 bits set
  copy = ('t/crop.jpg', 'train', (2**20 - 1) ^ 0b11111, (-1, -2, -3, -4, -5))  # 5 bits from it
  assert crop_match_distance(8) == 6 and hamming_distance(original[2], copy[2]) == 15
  assert are_near(*original[2:], *copy[2:], 8) and not are_near(*original[2:], *copy[2:], 6)
  lines = list(find_duplicates([original, copy], [], 8).lines)
  assert [f['path'] for f in lines[0]['files']] == ['v/photo.jpg', 't/crop.jpg']
  assert lines[0]['files'][1]['distance'] == 15  # image/phash bits, whatever the link was
  assert not list(find_duplicates([original, copy], [], 6).lines)  # 5 bits > 6 - 2
  assert not list(find_duplicates([original[:3], copy[:3]], [], 6).lines)  # no crop hashes


def test_identical_hashes_collapse_into_one_line():
  stored = [(f'c/{i:06d}.jpg', 'train', 12345, (1, 2, 3, 4, 5)) for i in range(200_000)]
  found = find_duplicates(stored, [], 8)
  assert found.text.count('\n') == 1
  assert len(found.text) / len(stored) < 300  # bytes an image
  assert found.counts['near_within_split'] == 1


def test_identical_files_not_stored_are_listed_with_their_group():
  stored = [('a/1.jpg', 'validation', 5), ('a/2.jpg', 'train', 5 ^ 0b11)]
  exact = [
    ('d', [('a/1.jpg', None), ('a/dropped.jpg', 'train')]),
    ('e', [('b/x.jpg', 'train'), ('b/y.jpg', 'train')]),
  ]
  lines = list(find_duplicates(stored, exact, 2).lines)
  assert [
    (line['kind'], [(f['path'], f['stored'], f['distance']) for f in line['files']])
    for line in lines
  ] == [
    ('exact', [('b/x.jpg', False, 0), ('b/y.jpg', False, 0)]),
    ('near', [('a/1.jpg', True, 0), ('a/2.jpg', True, 2), ('a/dropped.jpg', False, 0)]),
  ]
  assert lines[0]['sha256'] == 'e'


@pytest.mark.parametrize(
  'line, problem',
  [
    ({'kind': 'near', 'files': []}, 'two or more'),
    ({'kind': 'pair', 'files': []}, '"kind"'),
    ({'kind': 'exact', 'files': []}, 'sha256'),
    (
      {
        'kind': 'near',
        'files': [
          {'path': 'a', 'split': 'train', 'stored': True, 'distance': 0},
          {'path': 'b', 'split': 'train', 'stored': 'yes', 'distance': 1},
        ],
      },
      '"stored"',
    ),
    (
      {
        'kind': 'near',
        'files': [
          {'path': 'a', 'split': 'train', 'stored': True},
          {'path': 'b', 'split': 'train', 'stored': True, 'distance': 1},
        ],
      },
      'keys',
    ),
    ([], 'not a JSON object'),
  ],
)
def test_line_schema_problems(line, problem):
  assert problem in line_problem(line)


# ---------------------------------------------------------------------------------------------
# Crop hashes on the real sample photos


def _stored_hashes(data):
  stored = image_lib.process_image(data, image_lib.ImageSpec())
  return stored.phash, stored.crop_phashes


def test_image_hashes_keep_image_phash_and_add_five_crop_hashes():
  for _, path in sample_files()[:10]:
    pixels = image_lib.decode_stored_jpeg(
      image_lib.process_image(path.read_bytes(), image_lib.ImageSpec()).encoded
    )
    full, crops = image_hashes(pixels)
    assert full == perceptual_hash(pixels) and len(crops) == 5
    assert len(set(crops)) > 1


@pytest.mark.slow
def test_cropped_copies_of_the_sample_photos_are_found_and_distinct_photos_are_not():
  centre, off_centre, originals = [], [], []
  for _, path in sample_files():
    data = path.read_bytes()
    try:
      original = _stored_hashes(data)
    except image_lib.ImageRejected:
      continue
    originals.append(original)
    image = _upright(data)
    centre.append(are_near(*original, *_stored_hashes(_jpeg(_cropped(image, 5, (1, 1, 1, 1)))), 8))
    for sides in OFF_CENTRE_CORNERS.values():
      copy = _jpeg(_scaled(_cropped(image, 8, sides), 0.8), 75)
      off_centre.append(are_near(*original, *_stored_hashes(copy), 8))
  assert len(originals) >= 50
  assert np.mean(centre) >= 0.95, np.mean(centre)
  assert np.mean(off_centre) >= 0.75, np.mean(off_centre)
  false_pairs = sum(
    are_near(*a, *b, 8) for i, a in enumerate(originals) for b in originals[i + 1 :]
  )
  assert false_pairs <= 1
  # image/phash alone finds few of them (the reason for crop hashes)
  assert (
    np.mean(
      [
        hamming_distance(a[0], b[0]) <= 8
        for a, b in zip(
          originals,
          (
            _stored_hashes(_jpeg(_cropped(_upright(p.read_bytes()), 5, (1, 1, 1, 1))))
            for _, p in sample_files()
          ),
        )
      ]
    )
    < 0.5
  )


# ---------------------------------------------------------------------------------------------
# Through a real conversion


@pytest.fixture(scope='module')
def cropped_leak(tmp_path_factory):
  """Split folders: every 3rd sample photo in validation, the rest in train; of 3 validation photos
  a copy cut 5% a side and of 2 one cut 8% from the left and top (0.8x, quality 75) in train; 3
  copies of one train photo with a JPEG comment each. Returns (root, output, planted groups)."""
  root = tmp_path_factory.mktemp('leak') / 'photos'
  files = sample_files()
  for i, (synset, path) in enumerate(files):
    split = 'validation' if i % 3 == 0 else 'train'
    (root / split / synset).mkdir(parents=True, exist_ok=True)
    shutil.copy(path, root / split / synset / path.name)
  planted = []
  for i, (percent, sides, scale, quality) in zip(
    (0, 3, 6, 9, 12), [(5, (1, 1, 1, 1), 1, 90)] * 3 + [(8, (1, 1, 0, 0), 0.8, 75)] * 2
  ):
    synset, path = files[i]
    copy = _jpeg(_scaled(_cropped(_upright(path.read_bytes()), percent, sides), scale), quality)
    name = f'train/{synset}/crop_{path.stem}.jpg'
    (root / name).write_bytes(copy)
    planted.append({f'validation/{synset}/{path.name}', name})
  synset, path = files[1]
  data = path.read_bytes()
  frames = {f'train/{synset}/{path.name}'}
  for k in range(3):
    comment = f'frame {k}'.encode()
    (root / 'train' / synset / f'frame{k}_{path.stem}.jpg').write_bytes(
      data[:2] + b'\xff\xfe' + (len(comment) + 2).to_bytes(2, 'big') + comment + data[2:]
    )
    frames.add(f'train/{synset}/frame{k}_{path.stem}.jpg')
  planted.append(frames)
  output = tmp_path_factory.mktemp('leak_out') / 'out'
  assert convert(root, output, *SHARDS) == 0
  return root, output, planted


def _groups(output):
  return [line for line in layout.read_jsonl(str(output / layout.DUPLICATES_FILE))]


@pytest.mark.slow
def test_cropped_copies_across_splits_are_groups_and_verify_agrees(cropped_leak):
  _, output, planted = cropped_leak
  groups = _groups(output)
  paths = [{f['path'] for f in line['files']} for line in groups]
  found = sum(any(group <= got for got in paths) for group in planted[:-1])
  assert found >= 4, (planted, paths)  # 5 crop copies: at most one off-centre one missed
  assert planted[-1] in paths  # the frames: one group of 4, not 6 pairs
  assert all(
    line['files'][0]['split'] == 'validation'
    for line in groups
    if len({f['split'] for f in line['files']}) > 1
  )  # the copy to keep is the validation one
  for line in groups:
    assert line_problem(line) is None
    assert line['files'][0]['distance'] == 0
  stats = json.loads((output / layout.STATS_FILE).read_text())
  assert stats['duplicates'] == count_lines(groups)
  assert stats['duplicates']['files_across_splits'] >= 4
  report = verify_lib.verify(str(output))
  assert report.ok, [str(p) for p in report.problems]


@pytest.mark.slow
def test_verify_finds_wrong_distances_bad_lines_and_a_split_group(cropped_leak, tmp_path):
  _, output, _ = cropped_leak
  copy = shutil.copytree(output, tmp_path / 'copy')
  groups = _groups(copy)
  frames = next(i for i, line in enumerate(groups) if len(line['files']) == 4)
  tampered = [dict(line) for line in groups]
  tampered[frames] = dict(groups[frames], files=groups[frames]['files'][:2])
  tampered.append(dict(groups[frames], files=groups[frames]['files'][2:]))
  moved = next(i for i, line in enumerate(tampered) if line['files'][1]['distance'])
  tampered[moved] = dict(
    tampered[moved],
    files=[
      tampered[moved]['files'][0],
      dict(tampered[moved]['files'][1], distance=tampered[moved]['files'][1]['distance'] + 2),
    ],
  )
  text = ''.join(layout.to_json(line, indent=None) + '\n' for line in tampered) + '{"kind": 3}\n'
  (copy / layout.DUPLICATES_FILE).write_text(text)
  problems = [str(p) for p in verify_lib.verify(str(copy)).problems]
  assert any('not in one group' in p for p in problems), problems
  assert any('bits apart' in p for p in problems), problems
  assert any('"kind" is 3' in p for p in problems), problems
  assert any("duplicates.jsonl's lines give" in p for p in problems), problems


@pytest.mark.slow
def test_report_and_exclude_file_follow_the_groups(cropped_leak, tmp_path):
  from pipeline import report  # pylint: disable=import-outside-toplevel

  root, output, planted = cropped_leak
  data = report.read_report_data(str(output))
  shown = [{path for _, path in pair.files} for pair in data.duplicate_pairs]
  assert sum(group in shown for group in planted[:-1]) >= 3
  assert all(pair.files[0][0] == 'validation' for pair in data.duplicate_pairs)
  again = tmp_path / 'excluded'
  assert convert(root, again, *SHARDS, '--exclude_file', output / layout.DUPLICATES_FILE) == 0
  excluded = {
    r['path']
    for r in layout.read_jsonl(str(again / layout.REJECTS_FILE))
    if r['reason'] == 'excluded'
  }
  expected = {str(root / f['path']) for line in _groups(output) for f in line['files'][1:]}
  assert excluded == expected and len(expected) >= 7
  counts = json.loads((again / layout.STATS_FILE).read_text())['duplicates']
  assert counts['files_across_splits'] == 0


def _partition(labels):
  first = {}
  return [first.setdefault(label, i) for i, label in enumerate(np.asarray(labels).tolist())]


@pytest.mark.parametrize('crops', [False, True])
def test_near_components_on_clustered_hashes_are_the_brute_force_ones(crops, monkeypatch):
  """Look-alike hashes (8 bases, 0-9 random flips each; many candidates already joined, which the
  search skips) give exactly the components of comparing every pair."""
  monkeypatch.setattr(hs, 'BRUTE_FORCE_MAX', 10)  # the multi-index search, with its skipping
  monkeypatch.setattr(hs, 'REFRESH_MASKS', 3)
  rng = np.random.default_rng(8)
  bases = rng.integers(0, 2**63, 8, dtype=np.int64).view(np.uint64)

  def flipped(n):
    values = bases[rng.integers(0, 8, n)].copy()
    for i in range(n):
      for bit in rng.choice(64, rng.integers(0, 10), replace=False):
        values[i] ^= np.uint64(1 << int(bit))
    return values

  full = flipped(2500)
  crop = flipped(2500 * 5).reshape(2500, 5) if crops else None
  distances = np.bitwise_count(full[:, None] ^ full[None, :]) <= 8
  if crops:
    for k in range(5):
      near = np.bitwise_count(full[:, None] ^ crop[None, :, k]) <= 6
      distances |= near | near.T
  edges = zip(*map(np.ndarray.tolist, np.nonzero(distances)))
  expected = _partition(_components_by_brute_force(2500, edges))
  got = near_components(full.view(np.int64), crop.view(np.int64) if crops else None, 8)
  assert _partition(got) == expected
  assert len(set(expected)) < 2000  # clustered: large groups


def test_sidecars_keep_crop_hashes_and_read_older_ones_without():
  from transforms.records import ShardSummary  # pylint: disable=import-outside-toplevel

  summary = ShardSummary(
    'train-00000-of-00001',
    'train',
    phashes=(('a/1.jpg', -5),),
    crop_phashes=((1, 2, 3, 4, -(2**63)),),
  )
  again = ShardSummary.from_json(json.loads(json.dumps(summary.to_json())))
  assert again.crop_phashes == summary.crop_phashes and again.phashes == summary.phashes
  older = summary.to_json()
  del older['crop_phashes']
  assert ShardSummary.from_json(older).crop_phashes is None
