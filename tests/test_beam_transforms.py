"""WriteShards, the exact and near duplicate transforms, Followers and the Hamming search, alone.

In the style of Beam's apache_beam/examples/complete/autocomplete_test.py: inputs made with
`beam.Create`, one transform under `TestPipeline`, its output checked with `assert_that`. The
inputs are real sample photos (data/sample_images) with planted byte copies, re-encoded copies and
files that share a size (and a head) with a photo without being a copy: every answer is known.
Whole conversions are tested elsewhere (tests/test_pipeline.py, test_duplicates.py).
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pathlib
from typing import Dict, List, NamedTuple, Tuple

import apache_beam as beam
import numpy as np
import pytest
from PIL import Image, ImageOps
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from benchmarks.duplicates import near_copies
from conftest import SAMPLE_DIR
from transforms.duplicates import hamming_search
from transforms.output import layout, resume
from transforms.imaging import image as image_lib
from transforms.duplicates.exact import (
  DropDuplicates,
  DuplicateGroup,
  FindExactDuplicates,
  HEAD_BYTES,
)
from transforms.split.groups import Followers
from transforms.duplicates.near import FindDuplicates
from transforms.metadata.reject_reasons import reason_category
from transforms.output.shard_writer import WriteShards
from transforms.imaging.convert import RecordRecipe
from transforms.split.sharding import TRAIN, UNSPLIT, VALIDATION, ImageRef, order_key
from transforms.records import Reject, ShardSummary

SEED = 0
SPEC = image_lib.ImageSpec()
CLASSES = ('animal', 'flower', 'object')  # labels 0, 1, 2
TRAIN_PHOTOS = {
  'animal': ('gc_cat.JPEG', 'gc_owl.JPEG', 'sk_chelsea.png'),
  'flower': ('mate_garden.JPEG', 'skl_flower.jpg'),
  'object': ('gc_cup.JPEG', 'lomiri_fig.JPEG', 'sk_coffee.png'),
}
VALIDATION_PHOTOS = {
  'animal': ('gc_koala.JPEG',),
  'flower': ('mate_raindrops.JPEG',),
  'object': ('gc_chair.JPEG',),
}


class Corpus(NamedTuple):
  """A split-folder input (`train/<class>/...`, `validation/<class>/...`) and its ImageRefs.

  Attributes:
    split_roots: {split: root folder}, as transforms/inputs/listing.py Layout.split_roots.
    refs: {input-relative path (`train/animal/gc_cat.JPEG`): ImageRef} of every file.
  """

  split_roots: Dict[str, str]
  refs: Dict[str, ImageRef]


def _put(
  root: pathlib.Path, split: str, synset: str, name: str, data: bytes, refs: Dict[str, ImageRef]
) -> None:
  path = root / split / synset / name
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
  refs[f'{split}/{synset}/{name}'] = ImageRef(
    split, CLASSES.index(synset), synset, f'{synset}/{name}', len(data)
  )


def _sample(name: str) -> bytes:
  return next(SAMPLE_DIR.glob(f'*/{name}')).read_bytes()


def _flipped(data: bytes, offset: int) -> bytes:
  return data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


@pytest.fixture(scope='module')
def corpus(tmp_path_factory) -> Corpus:
  """The photos above, plus planted files:

  exact copies: train/animal/copy_gc_cat.JPEG and validation/animal/leak_gc_cat.JPEG of
    train/animal/gc_cat.JPEG; train/object/copy_gc_cup.JPEG of train/object/gc_cup.JPEG.
  not copies: train/flower/q60_mate_garden.JPEG (re-encoded at quality 60), and two files of
    mate_garden's size, one with its first 16 KiB (head_same_...) and one with another first byte
    (head_other_...); train/object/broken.jpg (the first half of gc_cup.JPEG: a reject).
  """
  root = tmp_path_factory.mktemp('beam_transforms')
  refs: Dict[str, ImageRef] = {}
  for split, photos in ((TRAIN, TRAIN_PHOTOS), (VALIDATION, VALIDATION_PHOTOS)):
    for synset, names in photos.items():
      for name in names:
        _put(root, split, synset, name, _sample(name), refs)
  cat, cup, garden = _sample('gc_cat.JPEG'), _sample('gc_cup.JPEG'), _sample('mate_garden.JPEG')
  assert len(garden) > HEAD_BYTES + 1
  _put(root, TRAIN, 'animal', 'copy_gc_cat.JPEG', cat, refs)
  _put(root, VALIDATION, 'animal', 'leak_gc_cat.JPEG', cat, refs)
  _put(root, TRAIN, 'object', 'copy_gc_cup.JPEG', cup, refs)
  _put(root, TRAIN, 'flower', 'q60_mate_garden.JPEG', near_copies(garden, ())['q60'], refs)
  _put(root, TRAIN, 'flower', 'head_same_mate_garden.JPEG', _flipped(garden, len(garden) - 3), refs)
  _put(root, TRAIN, 'flower', 'head_other_mate_garden.JPEG', _flipped(garden, 0), refs)
  _put(root, TRAIN, 'object', 'broken.jpg', cup[: len(cup) // 2], refs)
  return Corpus({split: str(root / split) for split in (TRAIN, VALIDATION)}, refs)


def _path(corpus: Corpus, relative: str) -> str:
  split, rest = relative.split('/', 1)
  return os.path.join(corpus.split_roots[split], rest)


# ---------------------------------------------------------------------------------------------
# WriteShards


def _assignment(corpus: Corpus) -> Dict[Tuple[str, int, int], List[str]]:
  """{shard key: input-relative paths}: train round-robin over 2 shards, validation in 1."""
  train = sorted(p for p in corpus.refs if p.startswith('train/') and 'head_' not in p)
  validation = sorted(p for p in corpus.refs if p.startswith('validation/'))
  shards = {(TRAIN, i, 2): train[i::2] for i in range(2)}
  shards[(VALIDATION, 0, 1)] = validation
  return shards


def _sha256(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_shard(path: pathlib.Path) -> List[dict]:
  """The records of a TFRecord shard, read by TensorFlow, as {feature key: first value}."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  records = []
  for serialized in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
    feature = tf.train.Example.FromString(serialized).features.feature
    records.append(
      {key: (value.bytes_list.value or value.int64_list.value)[0] for key, value in feature.items()}
    )
  return records


@pytest.mark.slow
def test_write_shards_writes_each_assigned_file_in_hash_order_and_resume_keeps_the_shards(
  corpus, tmp_path
):
  output = tmp_path / 'out'
  out_layout = layout.OutputLayout(str(output))
  assignment = _assignment(corpus)
  names = {
    (TRAIN, 0, 2): 'train-00000-of-00002',
    (TRAIN, 1, 2): 'train-00001-of-00002',
    (VALIDATION, 0, 1): 'validation-00000-of-00001',
  }
  broken = 'train/object/broken.jpg'
  assert broken in assignment[(TRAIN, 1, 2)]  # the test's own premise
  # What each shard must hold: its files but the broken one, in the writer's documented order.
  stored = {
    key: sorted((p for p in paths if p != broken), key=lambda p: order_key(SEED, corpus.refs[p]))
    for key, paths in assignment.items()
  }
  assigned = [(key, corpus.refs[path]) for key, paths in assignment.items() for path in paths]
  with test_pipeline.TestPipeline() as p:
    written = (
      p
      | beam.Create(assigned)
      | WriteShards(out_layout, RecordRecipe(corpus.split_roots, SPEC), SEED, False)
    )
    assert_that(
      written.summaries
      | beam.Map(
        lambda s: (
          s.shard,
          s.split,
          s.num_examples,
          dict(s.class_counts),
          [(r.path, reason_category(r.reason), r.split) for r in s.rejects],
        )
      ),
      equal_to(
        [
          (
            names[key],
            key[0],
            len(paths),
            dict(collections.Counter(corpus.refs[p].synset for p in paths)),
            [(_path(corpus, broken), 'truncated or corrupt JPEG data', TRAIN)]
            if key == (TRAIN, 1, 2)
            else [],
          )
          for key, paths in stored.items()
        ]
      ),
      label='CheckSummaries',
    )
    assert_that(written.outcomes, equal_to([resume.WRITTEN] * 3), label='CheckOutcomes')

  # Only final shard names at the top (no temporary file left), and each shard's sidecar.
  assert sorted(os.listdir(output)) == sorted([*names.values(), layout.WORK_DIR])
  assert all(os.path.exists(out_layout.sidecar_path(name)) for name in names.values())
  for key, paths in stored.items():
    records = _read_shard(output / names[key])
    assert [r['image/filename'].decode() for r in records] == [corpus.refs[p].key for p in paths]
    for record, path in zip(records, paths):
      ref = corpus.refs[path]
      image = image_lib.process_image(pathlib.Path(_path(corpus, path)).read_bytes(), SPEC)
      assert record['image/encoded'] == image.encoded
      assert record['image/phash'] == image.phash
      assert record['image/class/label'] == ref.label
      assert record['image/class/synset'].decode() == ref.synset
      assert (record['image/height'], record['image/width']) == (256, 256)

  # --resume: the same input keeps every shard as it is and reports the same summaries.
  before = {
    name: (_sha256(output / name), os.stat(output / name).st_mtime_ns) for name in names.values()
  }
  with test_pipeline.TestPipeline() as p:
    written = (
      p
      | beam.Create(assigned)
      | WriteShards(out_layout, RecordRecipe(corpus.split_roots, SPEC), SEED, True)
    )
    assert_that(
      written.summaries | beam.Map(lambda s: (s.shard, s.num_examples, s.file_sha256)),
      equal_to([(name, len(stored[key]), before[name][0]) for key, name in names.items()]),
      label='CheckKeptSummaries',
    )
    assert_that(written.outcomes, equal_to([resume.KEPT] * 3), label='CheckKeptOutcomes')
  assert before == {
    name: (_sha256(output / name), os.stat(output / name).st_mtime_ns) for name in names.values()
  }


# ---------------------------------------------------------------------------------------------
# FindExactDuplicates and DropDuplicates

# The planted byte copies, each group's members in the documented order of
# transforms/duplicates/exact.py `member_order`: validation before train, then by key
# (`animal/copy_gc_cat...` sorts first).
CAT_GROUP = (
  'validation/animal/leak_gc_cat.JPEG',
  'train/animal/copy_gc_cat.JPEG',
  'train/animal/gc_cat.JPEG',
)
CUP_GROUP = ('train/object/copy_gc_cup.JPEG', 'train/object/gc_cup.JPEG')


def test_exact_duplicates_are_the_planted_copies_and_drop_keeps_the_first_member(corpus):
  refs = corpus.refs
  digest = {
    name: hashlib.sha256(pathlib.Path(_path(corpus, group[0])).read_bytes()).hexdigest()
    for name, group in (('cat', CAT_GROUP), ('cup', CUP_GROUP))
  }
  expected_groups = [
    DuplicateGroup(digest['cat'], tuple(refs[p] for p in CAT_GROUP)),
    DuplicateGroup(digest['cup'], tuple(refs[p] for p in CUP_GROUP)),
  ]
  # --drop_duplicates drops every train member but the first member of its group.
  dropped = {
    'train/animal/copy_gc_cat.JPEG': CAT_GROUP[0],
    'train/animal/gc_cat.JPEG': CAT_GROUP[0],
    'train/object/gc_cup.JPEG': CUP_GROUP[0],
  }
  with test_pipeline.TestPipeline() as p:
    images = p | beam.Create(sorted(refs.values()))
    groups = images | FindExactDuplicates(corpus.split_roots)
    assert_that(groups, equal_to(expected_groups))
    kept = images | 'Drop' >> DropDuplicates(groups, corpus.split_roots, drop=True)
    assert_that(
      kept.kept, equal_to([ref for p, ref in refs.items() if p not in dropped]), label='CheckKept'
    )
    assert_that(
      kept.dropped,
      equal_to(
        [
          Reject(_path(corpus, p), 'duplicate of ' + _path(corpus, first), TRAIN)
          for p, first in dropped.items()
        ]
      ),
      label='CheckDropped',
    )
    reported = images | 'Report' >> DropDuplicates(groups, corpus.split_roots, drop=False)
    assert_that(reported.kept, equal_to(list(refs.values())), label='CheckAllKept')
    assert_that(reported.dropped, equal_to([]), label='CheckNoneDropped')


def test_followers_are_the_copies_and_regex_groups_each_led_by_its_first_member():
  """Followers on synthetic refs: which files take another file's split (transforms/split/groups.py)."""
  ref = {
    key: ImageRef(UNSPLIT, 0, key.split('/')[0], key)
    for key in (
      'a/clip1_frame1.jpg',
      'a/clip1_frame2.jpg',
      'b/clip1_frame3.jpg',
      'a/clip2_frame1.jpg',
      'c/dup.jpg',
      'c/other.jpg',
      'c/alone.jpg',
    )
  }
  # Identical files, members in `member_order` as FindExactDuplicates gives them.
  copies = [
    DuplicateGroup('d1', (ref['a/clip1_frame2.jpg'], ref['c/other.jpg'])),
    DuplicateGroup('d2', (ref['a/clip2_frame1.jpg'], ref['c/dup.jpg'])),
  ]

  def pairs(*keys):
    return [(ref[follower], ref[leader]) for follower, leader in keys]

  with test_pipeline.TestPipeline() as p:
    refs, groups = p | 'Refs' >> beam.Create(list(ref.values())), p | beam.Create(copies)
    assert_that(
      (refs, groups) | 'Copies' >> Followers(None, with_copies=True),
      equal_to(pairs(('c/other.jpg', 'a/clip1_frame2.jpg'), ('c/dup.jpg', 'a/clip2_frame1.jpg'))),
      label='CheckCopies',
    )
    # clip1's frames are one group across classes, merged with the copy of its second frame.
    assert_that(
      (refs, groups) | 'Merged' >> Followers(r'^(clip\d+)_', with_copies=True),
      equal_to(
        pairs(
          ('a/clip1_frame2.jpg', 'a/clip1_frame1.jpg'),
          ('b/clip1_frame3.jpg', 'a/clip1_frame1.jpg'),
          ('c/other.jpg', 'a/clip1_frame1.jpg'),
          ('c/dup.jpg', 'a/clip2_frame1.jpg'),
        )
      ),
      label='CheckMerged',
    )
    # --drop_duplicates: the copies are dropped, only the regex groups lead.
    assert_that(
      (refs, groups) | 'RegexOnly' >> Followers(r'^(clip\d+)_', with_copies=False),
      equal_to(
        pairs(
          ('a/clip1_frame2.jpg', 'a/clip1_frame1.jpg'), ('b/clip1_frame3.jpg', 'a/clip1_frame1.jpg')
        )
      ),
      label='CheckRegex',
    )


# ---------------------------------------------------------------------------------------------
# FindDuplicates (near duplicates)

DISTINCT_PHOTOS = (
  'animal/gc_cat.JPEG',
  'animal/gc_owl.JPEG',
  'flower/mate_garden.JPEG',
  'object/gc_cup.JPEG',
  'space/es_nasa0.JPEG',
  'landscape/kde_path.JPEG',
)
# Re-encoded, resized, brightened and cropped copies that the default distance finds on every
# sample photo (benchmarks/duplicates.py; tests/test_duplicates.py NEAR_KINDS); and crop3 (3% cut
# from every side), which the default distance finds only through a crop hash.
NEAR_KINDS = ('q60', 'resize0.7', 'bright10', 'crop1', 'crop3')


def _summary(shard: str, split: str, files: Dict[str, bytes]) -> ShardSummary:
  """The ShardSummary the shard writer would emit for `files` ({input path: file bytes}): the
  image/phash and crop hashes of each stored image, as transforms/imaging/image.py makes them."""
  images = {path: image_lib.process_image(data, SPEC) for path, data in files.items()}
  return ShardSummary(
    shard,
    split,
    len(images),
    phashes=tuple((path, image.phash) for path, image in images.items()),
    crop_phashes=tuple(tuple(image.crop_phashes) for image in images.values()),
  )


def _popcount(a: int, b: int) -> int:
  return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def test_near_duplicates_group_each_photo_with_its_copies_and_nothing_else():
  photos = {path: (SAMPLE_DIR / path).read_bytes() for path in DISTINCT_PHOTOS}
  owl = photos['animal/gc_owl.JPEG']
  copies = {
    f'animal/{kind}_gc_owl.JPEG': data
    for kind, data in near_copies(owl, (1, 3)).items()
    if kind in NEAR_KINDS
  }
  assert len(copies) == len(NEAR_KINDS)
  # A mirror image is another image to pHash (half its bits differ): in no group.
  upright = ImageOps.exif_transpose(Image.open(io.BytesIO(owl))).convert('RGB')
  mirror = io.BytesIO()
  ImageOps.mirror(upright).save(mirror, 'JPEG', quality=90)
  summaries = [
    _summary('train-00000-of-00001', TRAIN, photos),
    _summary(
      'validation-00000-of-00001',
      VALIDATION,
      {**copies, 'animal/mirror_gc_owl.JPEG': mirror.getvalue()},
    ),
  ]
  phash = {path: value for s in summaries for path, value in s.phashes}
  assert _popcount(phash['animal/crop3_gc_owl.JPEG'], phash['animal/gc_owl.JPEG']) > 8  # premise
  # gc_cup.JPEG is stored; its byte copy was dropped (listed, not stored): one exact group.
  cup_digest = hashlib.sha256(photos['object/gc_cup.JPEG']).hexdigest()
  exact = [(cup_digest, [('object/gc_cup.JPEG', TRAIN), ('object/copy_gc_cup.JPEG', TRAIN)])]
  # Lines: exact groups first, files in keep order (validation before train, then by path).
  near_files = sorted(copies) + ['animal/gc_owl.JPEG']
  first = phash[near_files[0]]
  expected_lines = [
    (
      'exact',
      cup_digest,
      [('object/copy_gc_cup.JPEG', TRAIN, False, 0), ('object/gc_cup.JPEG', TRAIN, True, 0)],
    ),
    (
      'near',
      None,
      [
        (path, VALIDATION if path in copies else TRAIN, True, _popcount(phash[path], first))
        for path in near_files
      ],
    ),
  ]
  expected_counts = {
    'exact_within_split': 1,
    'exact_across_splits': 0,
    'near_within_split': 0,
    'near_across_splits': 1,
    'files_across_splits': 1,
  }
  with test_pipeline.TestPipeline() as p:
    found = (
      p | 'Summaries' >> beam.Create(summaries),
      p | 'Exact' >> beam.Create(exact),
    ) | FindDuplicates(max_distance=8)
    assert_that(
      found
      | beam.Map(
        lambda d: [
          (
            line['kind'],
            line.get('sha256'),
            [(f['path'], f['split'], f['stored'], f['distance']) for f in line['files']],
          )
          for line in d.lines
        ]
      ),
      equal_to([expected_lines]),
      label='CheckLines',
    )
    assert_that(
      found | beam.Map(lambda d: d.counts), equal_to([expected_counts]), label='CheckCounts'
    )


# ---------------------------------------------------------------------------------------------
# The Hamming search, streamed


def _planted_hashes(
  num_random: int, max_flips: int, seed: int
) -> Tuple[np.ndarray, List[Tuple[int, int, int]]]:
  """Random 64-bit hashes (int64, as image/phash) with planted neighbours, and their pairs.

  Hashes: `num_random` random ones; then, for each d in 0..max_flips, hash d with exactly d bits
  flipped; then a cluster of 65 look-alikes (a random hash and its 64 one-bit flips: every two
  within 2 bits).
  Returns:
    (hashes, [(i, j, bits between them)] of every planted pair, i < j); two random 64-bit hashes
    are within 10 bits with p ~ 4e-9, so these are all the pairs within 10 bits.
  """
  rng = np.random.default_rng(seed)
  values = rng.integers(0, 1 << 64, num_random + 1, dtype=np.uint64)
  flipped = [
    values[d] ^ np.uint64(sum(1 << int(bit) for bit in rng.choice(64, d, replace=False)))
    for d in range(max_flips + 1)
  ]
  cluster = [values[-1]] + [values[-1] ^ np.uint64(1 << bit) for bit in range(64)]
  hashes = np.array([*values[:-1], *flipped, *cluster], np.uint64).view(np.int64)
  first = num_random + len(flipped)
  pairs = [(d, num_random + d, d) for d in range(max_flips + 1)]
  pairs += [
    (first + i, first + j, 1 if i == 0 else 2)
    for i in range(len(cluster))
    for j in range(i + 1, len(cluster))
  ]
  return hashes, pairs


def _pairs(chunk) -> List[Tuple[int, int]]:
  return list(zip(chunk[0].tolist(), chunk[1].tolist()))


def test_hamming_search_streams_exactly_the_planted_pairs_in_bounded_chunks(monkeypatch):
  chunk_limit = 64
  monkeypatch.setattr(hamming_search, 'CHUNK_CANDIDATES', chunk_limit)
  max_distance = 8
  num_random = 3 * hamming_search.BRUTE_FORCE_MAX  # the multi-index search, not all pairs
  hashes, planted = _planted_hashes(num_random, max_distance + 2, seed=24)
  expected_pairs = [(i, j) for i, j, bits in planted if bits <= max_distance]
  # Hashes 0..10 as queries, their flipped copies as the index (as crop hashes are searched).
  crop_limit = max_distance - 2
  queries, index = hashes[:num_random], hashes[num_random : num_random + max_distance + 3]
  expected_matches = [(d, d) for d in range(len(index)) if d <= crop_limit]
  with test_pipeline.TestPipeline() as p:
    values = p | beam.Create([hashes])
    chunks = values | 'Pairs' >> beam.FlatMap(hamming_search.iter_pairs, max_distance)
    assert_that(
      chunks | 'PairsOf' >> beam.FlatMap(_pairs) | 'Distinct' >> beam.Distinct(),
      equal_to(expected_pairs),
      label='CheckPairs',
    )
    # Streamed: the cluster's 2,080 pairs arrive in chunks of at most CHUNK_CANDIDATES candidates
    # plus one query's (the cluster's 65 hashes), never all at once.
    assert_that(
      chunks | 'Sizes' >> beam.Map(lambda c: len(c[0])) | beam.combiners.ToList(),
      lambda sizes: _check_streamed(sizes, chunk_limit + 65),
      label='CheckChunks',
    )
    matches = values | 'Matches' >> beam.FlatMap(
      lambda _: hamming_search.iter_matches(queries, index, crop_limit)
    )
    assert_that(
      matches | 'MatchesOf' >> beam.FlatMap(_pairs) | 'DistinctMatches' >> beam.Distinct(),
      equal_to(expected_matches),
      label='CheckMatches',
    )


def _check_streamed(sizes: List[List[int]], max_size: int) -> None:
  [sizes] = sizes
  assert len(sizes) > 1 and max(sizes) <= max_size, sizes
