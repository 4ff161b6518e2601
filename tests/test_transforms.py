"""One transform at a time under TestPipeline, as Beam's examples/complete/autocomplete_test.py does.

`AssignSplitShard` runs on synthetic ImageRefs made with beam.Create (no files) and is held to the
promises of transforms/split/sharding.py's docstring; `ListImages` runs on small real folders in
tmp_path. No shard is written: a failure here names the transform that broke its contract.
"""

import collections
import math
import pathlib
import random
import shutil
from typing import Callable, NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from conftest import SAMPLE_DIR
from transforms.inputs.listing import Layout, ListImages, discover_layout, image_path, list_children
from transforms.records import Reject
from transforms.split.shard_count import ShardSizing
from transforms.split.sharding import (
  TEST,
  TRAIN,
  UNSPLIT,
  VALIDATION,
  AssignSplitShard,
  ImageRef,
  assign_shards,
  order_key,
  split_class,
  stable_hash,
)

# ---------------------------------------------------------------------------------------------
# AssignSplitShard on synthetic references.

# {label: number of files}: uneven classes, one class of a single file, classes smaller than the
# shard count, labels that do not start at 0 (as with --label_offset 1).
CLASS_SIZES = {1: 37, 2: 1, 3: 20, 4: 8, 5: 53, 6: 2}
# Automatic counts from 30 bytes a file at 1,000 bytes a shard: the 121 files above make 3.63 ideal
# shards, so 4.
SIZING = ShardSizing(target_shard_bytes=1000, file_bytes=30)


def synthetic_refs(class_sizes=None, split=UNSPLIT):
  """ImageRefs of files that do not exist: `n0000000<label>/n0000000<label>_<i>.JPEG`."""
  refs = []
  for label, size in (class_sizes or CLASS_SIZES).items():
    synset = f'n{label:08d}'
    refs += [ImageRef(split, label, synset, f'{synset}/{synset}_{i}.JPEG') for i in range(size)]
  return refs


def documented_count(num_files, sizing):
  """shard_count.py's documented automatic count, in floating point: the power of two nearest to
  files x bytes / target in ratio (the nearest multiple of 1024 from 1536 on), or, when larger, the
  smallest of those counts >= 10 x readers, halved (or 1024 less) until shards hold 10 MB."""
  total = num_files * sizing.file_bytes
  ideal = total / sizing.target_shard_bytes
  if ideal >= 1536:
    by_size = 1024 * math.floor(ideal / 1024 + 0.5)
  else:
    by_size = 1
    while by_size < 1024 and ideal >= by_size * math.sqrt(2):
      by_size *= 2
  wanted = 10 * sizing.num_readers
  by_readers = (
    1024 * math.ceil(wanted / 1024) if wanted > 1024 else 2 ** math.ceil(math.log2(wanted))
  )
  while by_readers > 1 and total / by_readers < 10**7:
    by_readers = by_readers - 1024 if by_readers > 1024 else by_readers // 2
  return max(by_size, by_readers)


def documented_assignment(refs, seed, fraction, requested, test_fraction=0.0, sizing=SIZING):
  """The assignment that sharding.py's docstrings describe, written from them alone.

  Per class, files in stable_hash(seed, 'order', key) order; for an unsplit input the first floor(n
  * fraction + 0.5) go to validation, the next floor(n * test_fraction + 0.5) to test, the rest to
  train; per split, classes concatenated in label order and file i of that sequence in shard i %
  num_shards (requested, or automatic from the split's planned bytes, at most one a file).
  """
  classes = collections.defaultdict(list)
  for ref in refs:
    classes[ref.split, ref.label].append(ref)
  per_split = collections.defaultdict(list)
  for (split, _), members in sorted(classes.items()):
    members = sorted(members, key=lambda ref: (stable_hash(seed, 'order', ref.key), ref.key))
    if split == UNSPLIT:
      num_validation = math.floor(len(members) * fraction + 0.5)
      num_test = math.floor(len(members) * test_fraction + 0.5)
      per_split[VALIDATION] += members[:num_validation]
      per_split[TEST] += members[num_validation : num_validation + num_test]
      per_split[TRAIN] += members[num_validation + num_test :]
    else:
      per_split[split] += members
  assignment = []
  for split, sequence in per_split.items():
    num_shards = min(requested.get(split) or documented_count(len(sequence), sizing), len(sequence))
    assignment += [((split, i % num_shards, num_shards), ref) for i, ref in enumerate(sequence)]
  return assignment


class Case(NamedTuple):
  """One AssignSplitShard application: its configuration, its input and what its output must match
  (None: exactly the documented assignment)."""

  name: str
  refs: list
  seed: int = 0
  fraction: float = 0.0
  requested: dict = {}
  matcher: Optional[Callable] = None
  test_fraction: float = 0.0
  sizing: Optional[ShardSizing] = SIZING


def check_assignments(*cases, options=None):
  """Runs AssignSplitShard on beam.Create(case.refs) for every case, as labelled branches of one
  TestPipeline (one pipeline start-up instead of one per case), and asserts each case's matcher."""
  with test_pipeline.TestPipeline(options=options) as p:
    for case in cases:
      assigned = (
        p
        | f'Create{case.name}' >> beam.Create(case.refs)
        | f'Assign{case.name}'
        >> AssignSplitShard(
          case.seed, case.fraction, case.requested, case.test_fraction, case.sizing
        )
      )
      matcher = case.matcher or equal_to(
        documented_assignment(
          case.refs, case.seed, case.fraction, case.requested, case.test_fraction, case.sizing
        )
      )
      assert_that(assigned, matcher, label=f'Check{case.name}')


def shards_of(assigned):
  """{(split, num_shards): {shard index: [ImageRef]}} with every index of range(num_shards), empty
  shards included (the transform emits nothing for a shard that gets no file)."""
  shards = {}
  for (split, index, num_shards), ref in assigned:
    if not 0 <= index < num_shards:
      raise BeamAssertException(f'shard index {index} outside 0..{num_shards - 1} for {ref}')
    per_index = shards.setdefault((split, num_shards), {i: [] for i in range(num_shards)})
    per_index[index].append(ref)
  if len({split for split, _ in shards}) != len(shards):
    raise BeamAssertException(f'a split has several shard counts: {sorted(shards)}')
  return shards


def balanced_shards(expected_sizes):
  """Matcher: per split, shard sizes differ by at most one; {split: number of files} as expected."""

  def check(assigned):
    shards = shards_of(list(assigned))
    sizes = {
      split: [len(refs) for refs in per_index.values()] for (split, _), per_index in shards.items()
    }
    if {split: sum(s) for split, s in sizes.items()} != expected_sizes:
      raise BeamAssertException(f'files per split {sizes}, expected {expected_sizes}')
    for split, split_sizes in sizes.items():
      if max(split_sizes) - min(split_sizes) > 1:
        raise BeamAssertException(f'{split} shard sizes {split_sizes} differ by more than one')

  return check


def classes_in_proportion(seed):
  """Matcher: every class of a split has floor(n / S) or ceil(n / S) of its n files in each of the
  split's S shards; and in the order WriteShard writes a shard (order_key) the classes alternate: a
  shard of 10 or more files changes class between at least a third of its neighbours (a class-major
  order changes only between classes; a random order of these classes ~70% of the time)."""

  def check(assigned):
    for (split, num_shards), per_index in shards_of(list(assigned)).items():
      class_sizes = collections.Counter(ref.label for refs in per_index.values() for ref in refs)
      for index, refs in per_index.items():
        in_shard = collections.Counter(ref.label for ref in refs)
        for label, size in class_sizes.items():
          if in_shard[label] not in (size // num_shards, -(-size // num_shards)):
            raise BeamAssertException(
              f'{split} shard {index}/{num_shards} holds {in_shard[label]} of '
              f'the {size} files of class {label}'
            )
        written = [ref.label for ref in sorted(refs, key=lambda ref: order_key(seed, ref))]
        changes = sum(a != b for a, b in zip(written, written[1:]))
        if len(written) >= 10 and changes < len(written) / 3:
          raise BeamAssertException(f'classes not interleaved in {split} shard {index}: {written}')

  return check


def stratified_split(refs, seed, fraction, test_fraction=0.0):
  """Matcher: per class of n files in hash order (order_key), the first floor(n * fraction + 0.5) in
  validation, the next floor(n * test_fraction + 0.5) in test, the rest in train; each file once."""

  def check(assigned):
    split_of = {}
    for (split, _, _), ref in assigned:
      if ref in split_of:
        raise BeamAssertException(f'{ref} assigned twice')
      split_of[ref] = split
    by_class = collections.defaultdict(list)
    for ref in refs:
      by_class[ref.label].append(ref)
    for label, members in by_class.items():
      num_validation = math.floor(len(members) * fraction + 0.5)
      num_test = math.floor(len(members) * test_fraction + 0.5)
      expected = (
        [VALIDATION] * num_validation
        + [TEST] * num_test
        + [TRAIN] * (len(members) - num_validation - num_test)
      )
      got = [split_of.get(ref) for ref in sorted(members, key=lambda ref: order_key(seed, ref))]
      if got != expected:
        raise BeamAssertException(
          f'class {label}, splits in hash order: {got}, expected {expected}'
        )

  return check


def all_of(*matchers):
  """Matcher: every one of `matchers` on the same output (one pipeline branch instead of several)."""

  def check(assigned):
    assigned = list(assigned)
    for matcher in matchers:
      matcher(assigned)

  return check


def differs_from(other_assignment, min_moved_fraction):
  """Matcher: at least `min_moved_fraction` of the files land in another (split, shard) than in
  `other_assignment`, and the validation files are not the same set."""
  other = {ref: shard for shard, ref in other_assignment}

  def check(assigned):
    assigned = list(assigned)
    moved = sum(other[ref] != shard for shard, ref in assigned)
    if moved < min_moved_fraction * len(assigned):
      raise BeamAssertException(f'only {moved} of {len(assigned)} files moved')

    def validation(pairs):
      return {ref for (split, _, _), ref in pairs if split == VALIDATION}

    if validation(assigned) == validation(other_assignment):
      raise BeamAssertException('the same validation files for another seed')

  return check


def test_assignment_is_the_documented_one_and_what_the_pure_helpers_give():
  refs = synthetic_refs()
  requested = {TRAIN: 5, VALIDATION: 2, TEST: 2}
  check_assignments(
    Case('Split', refs, 0, 0.25, requested, test_fraction=0.1), Case('Pool', refs, 5, 0.0, {})
  )
  # The pure helpers the transform wires together give the same, class by class.
  split = {
    label: split_class([r for r in refs if r.label == label], 0, 0.25, 0.1) for label in CLASS_SIZES
  }
  counts = {
    (s, label): len(members) for label, parts in split.items() for s, members in parts.items()
  }
  composed = [
    pair
    for label, parts in split.items()
    for s, members in parts.items()
    for pair in assign_shards(s, label, members, counts, requested)
  ]
  assert sorted(composed) == sorted(documented_assignment(refs, 0, 0.25, requested, 0.1))


def test_shard_sizes_differ_by_at_most_one():
  refs = synthetic_refs()  # 121 files
  check_assignments(
    Case(
      'Uneven',
      refs,
      0,
      0.2,
      {TRAIN: 7, VALIDATION: 3},
      balanced_shards({TRAIN: 97, VALIDATION: 24}),
    ),
    # More shards requested than files: one file a shard, no empty shard (tests/test_empty_shards.py
    # runs it end to end).
    Case(
      'MoreShardsThanFiles',
      refs,
      0,
      0.5,
      {TRAIN: 60, VALIDATION: 200},
      all_of(
        balanced_shards({TRAIN: 59, VALIDATION: 62}), shard_counts({TRAIN: 59, VALIDATION: 62})
      ),
    ),
  )


def test_every_shard_holds_every_class_in_proportion_interleaved():
  refs = synthetic_refs({1: 120, 2: 61, 3: 33, 4: 7, 5: 90})
  check_assignments(
    *(
      Case(f'Seed{seed}', refs, seed, 0.2, requested, classes_in_proportion(seed))
      for seed, requested in ((0, {TRAIN: 3, VALIDATION: 2}), (7, {TRAIN: 9, VALIDATION: 4}))
    )
  )


def test_stratified_split_is_exact_per_class():
  # floor(n * f + 0.5) per class, halves rounded up (Python's round() would put 18 of the 37-file
  # class in validation at 0.5, not 19): the one-file class goes to validation at 0.5 and stays in
  # train at 0.25; the two-file class puts one file in validation at 0.25. With a test fraction the
  # validation files stay the same and test takes the next ones.
  refs = synthetic_refs()
  requested = {TRAIN: 4, VALIDATION: 2, TEST: 2}
  check_assignments(
    Case('Quarter', refs, 3, 0.25, requested, stratified_split(refs, 3, 0.25)),
    Case('Half', refs, 3, 0.5, requested, stratified_split(refs, 3, 0.5)),
    Case('QuarterAndTest', refs, 3, 0.25, requested, stratified_split(refs, 3, 0.25, 0.3), 0.3),
  )


@pytest.mark.parametrize(
  'options',
  [
    [],
    ['--direct_running_mode=multi_threading', '--direct_num_workers=2'],
    ['--runner=BundleBasedDirectRunner'],
    pytest.param(
      ['--direct_running_mode=multi_processing', '--direct_num_workers=2'], marks=pytest.mark.slow
    ),  # 5-25 s here: two SDK worker processes start
  ],
  ids=['in_memory', 'multi_threading', 'bundle_based', 'multi_processing'],
)
def test_same_assignment_for_any_input_order_and_runner_mode(options):
  refs = synthetic_refs()
  shuffled = refs[:]
  random.Random(0).shuffle(shuffled)
  expected = equal_to(documented_assignment(refs, 0, 0.2, {TRAIN: 3, VALIDATION: 2}))
  check_assignments(
    Case('Reversed', refs[::-1], 0, 0.2, {TRAIN: 3, VALIDATION: 2}, expected),
    Case('Shuffled', shuffled, 0, 0.2, {TRAIN: 3, VALIDATION: 2}, expected),
    options=PipelineOptions(options),
  )


def test_another_seed_gives_another_assignment():
  refs = synthetic_refs()
  requested = {TRAIN: 3, VALIDATION: 2}
  # The seed-1 assignment is exactly the documented one, and it moves most files (1/3 of them keep
  # their shard by chance with 3 shards).
  check_assignments(
    Case(
      'Seed1',
      refs,
      1,
      0.2,
      requested,
      all_of(
        equal_to(documented_assignment(refs, 1, 0.2, requested)),
        differs_from(documented_assignment(refs, 0, 0.2, requested), 0.5),
      ),
    )
  )


def shard_counts(expected):
  """Matcher: {split: num_shards} of the output is `expected`."""

  def check(assigned):
    got = {split: num_shards for (split, num_shards) in shards_of(list(assigned))}
    if got != expected:
      raise BeamAssertException(f'shard counts {got}, expected {expected}')

  return check


def test_requested_and_automatic_shard_counts():
  # 100 bytes a file at 10,000 bytes a shard: 100 files a target shard. Train's 142 files are 1.42
  # ideal shards, just above sqrt(2): 2 shards; validation's 141 just below: 1; test's 600: 8 (6 is
  # nearer to 8 than to 4 in ratio). The counts are computed in integers (shard_count.py).
  sizing = ShardSizing(target_shard_bytes=10_000, file_bytes=100)
  refs = (
    synthetic_refs({1: 134, 2: 8}, split=TRAIN)
    + synthetic_refs({1: 131, 2: 10}, split=VALIDATION)
    + synthetic_refs({1: 300, 2: 300}, split=TEST)
  )
  check_assignments(
    Case('Auto', refs, 0, 0.0, {}, shard_counts({TRAIN: 2, VALIDATION: 1, TEST: 8}), sizing=sizing),
    Case(
      'RequestedAndZero',
      refs,
      0,
      0.0,
      {TRAIN: 4, VALIDATION: 0},  # 0 means automatic
      shard_counts({TRAIN: 4, VALIDATION: 1, TEST: 8}),
      sizing=sizing,
    ),
    Case('AutoIsTheDocumentedAssignment', refs, 0, 0.0, {TRAIN: 3}, sizing=sizing),
    Case(
      'AllRequestedNeedNoSizing',
      refs,
      0,
      0.0,
      {TRAIN: 3, VALIDATION: 1, TEST: 2},
      shard_counts({TRAIN: 3, VALIDATION: 1, TEST: 2}),
      sizing=None,
    ),
  )


def test_an_automatic_count_without_a_size_estimate_is_an_error():
  with pytest.raises(ValueError, match="split 'train' has no shard count and no size estimate"):
    list(assign_shards(TRAIN, 1, synthetic_refs({1: 3}, split=TRAIN), {(TRAIN, 1): 3}, {TRAIN: 0}))


def test_refs_that_carry_a_split_keep_it():
  """Explicit split folders (and a flat validation folder's `file` keys): --validation_fraction does
  not move a file out of the split it was listed from."""
  refs = synthetic_refs({1: 30, 2: 12}, split=TRAIN) + [
    ImageRef(VALIDATION, label, f'n{label:08d}', f'ILSVRC2012_val_{i:08d}.JPEG')
    for i, label in enumerate([1, 2, 2, 1, 1, 2, 1], start=1)
  ]

  def kept(assigned):
    moved = [(split, ref) for (split, _, _), ref in assigned if split != ref.split]
    if moved:
      raise BeamAssertException(f'moved out of their split: {moved}')

  check_assignments(
    Case(
      'Kept',
      refs,
      0,
      0.3,
      {TRAIN: 4},
      all_of(equal_to(documented_assignment(refs, 0, 0.3, {TRAIN: 4})), kept),
    )
  )


# ---------------------------------------------------------------------------------------------
# ListImages on small real folders.

PHOTOS = [
  'animal/gc_cat.JPEG',
  'animal/gc_owl.JPEG',
  'flower/skl_flower.jpg',
  'landscape/kde_path.JPEG',
  'space/' + sorted(p.name for p in (SAMPLE_DIR / 'space').iterdir())[0],
]


def put(path, photo=0):
  """Copies sample photo number `photo` of PHOTOS to `path` (parents created)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  shutil.copy(SAMPLE_DIR / PHOTOS[photo], path)


def _checked_stamp(ref, split_roots):
  """`ref` without its size and mtime when they are its file's (what --resume compares), else a
  tuple that no expected ref equals."""
  stat = pathlib.Path(image_path(split_roots, ref)).stat()
  if (ref.size, ref.mtime_us) != (stat.st_size, stat.st_mtime_ns // 1000):
    return ('wrong size or mtime', ref)
  return ref._replace(size=0, mtime_us=0)


def list_images(layout, class_dirs, label_map, label_offset, images, rejects, ground_truth=None):
  with test_pipeline.TestPipeline() as p:
    listed = p | ListImages(layout, class_dirs, label_map, label_offset, ground_truth)
    assert_that(
      listed.images | beam.Map(_checked_stamp, layout.split_roots), equal_to(images), label='Images'
    )
    assert_that(listed.rejects | beam.Map(Reject.to_json), equal_to(rejects), label='Rejects')


def test_list_images_of_one_pool_with_hidden_nested_and_unlisted(tmp_path):
  root = tmp_path / 'input'
  for name, photo in (('gc_cat.JPEG', 0), ('gc_owl.JPEG', 1), ('café au lait.jpg', 0)):
    put(root / 'animal' / name, photo)
  put(root / 'flower' / 'skl_flower.jpg', 2)
  put(root / 'flower' / 'no_extension', 2)
  (root / 'animal' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / 'animal' / '._gc_cat.JPEG').write_bytes(b'\0\5\26\7')
  put(root / 'animal' / 'nested' / 'deeper.jpg')
  (root / 'empty_class').mkdir()
  put(root / 'unlisted' / 'kde_path.JPEG', 3)
  put(root / 'unlisted' / 'deeper' / 'x.jpg', 3)
  (root / 'unlisted' / '.hidden.jpg').write_bytes(b'x')
  put(root / '.ipynb_checkpoints' / 'gc_cat.JPEG')  # A hidden class folder: never a class.
  put(root / 'loose.jpg')  # A file beside the class folders: neither listed nor rejected.

  layout = discover_layout(str(root))
  assert layout == Layout({UNSPLIT: str(root)})
  class_dirs = {UNSPLIT: list_children(str(root))[0]}
  assert class_dirs == {UNSPLIT: ['animal', 'empty_class', 'flower', 'unlisted']}
  label_map = {'flower': 0, 'animal': 1, 'empty_class': 2}  # Not alphabetical: labels come from it.
  unlisted = "class 'unlisted' is not in --labels_file"
  list_images(
    layout,
    class_dirs,
    label_map,
    1,
    images=[
      ImageRef(UNSPLIT, 2, 'animal', 'animal/gc_cat.JPEG'),
      ImageRef(UNSPLIT, 2, 'animal', 'animal/gc_owl.JPEG'),
      ImageRef(UNSPLIT, 2, 'animal', 'animal/café au lait.jpg'),
      ImageRef(UNSPLIT, 1, 'flower', 'flower/skl_flower.jpg'),
      ImageRef(UNSPLIT, 1, 'flower', 'flower/no_extension'),
    ],
    rejects=[
      {
        'path': str(root / 'animal' / 'nested'),
        'split': None,
        'reason': 'nested folder: only root/<class>/<image> is read',
      },
      {'path': str(root / 'unlisted' / 'kde_path.JPEG'), 'split': None, 'reason': unlisted},
      {'path': str(root / 'unlisted' / 'deeper'), 'split': None, 'reason': unlisted},
    ],
  )


def test_list_images_of_train_folders_and_a_flat_validation_folder(tmp_path):
  root = tmp_path / 'input'
  put(root / 'train' / 'animal' / 'gc_cat.JPEG', 0)
  put(root / 'train' / 'flower' / 'skl_flower.jpg', 2)
  put(root / 'train' / 'flower' / 'nested' / 'x.jpg', 2)
  for i in range(1, 6):
    put(root / 'val' / f'ILSVRC2012_val_{i:08d}.JPEG', i - 1)
  (root / 'val' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  ground_truth = {
    'ILSVRC2012_val_00000001': 'animal',
    'ILSVRC2012_val_00000002': 'flower',
    'ILSVRC2012_val_00000003': 'animal',
    'ILSVRC2012_val_00000004': 'landscape',
  }
  layout = Layout({TRAIN: str(root / 'train'), VALIDATION: str(root / 'val')}, flat_validation=True)
  assert discover_layout(str(root)) == layout
  # A folder that appears in the flat folder after the driver's layout decision (see
  # test_a_stray_folder_in_a_flat_validation_folder_loses_no_file for one present before).
  (root / 'val' / 'extra').mkdir()
  class_dirs = {TRAIN: ['animal', 'flower'], VALIDATION: ['']}  # As plan_dataset gives them.
  list_images(
    layout,
    class_dirs,
    {'animal': 0, 'flower': 1},
    0,
    ground_truth=ground_truth,
    images=[
      ImageRef(TRAIN, 0, 'animal', 'animal/gc_cat.JPEG'),
      ImageRef(TRAIN, 1, 'flower', 'flower/skl_flower.jpg'),
      ImageRef(VALIDATION, 0, 'animal', 'ILSVRC2012_val_00000001.JPEG'),
      ImageRef(VALIDATION, 1, 'flower', 'ILSVRC2012_val_00000002.JPEG'),
      ImageRef(VALIDATION, 0, 'animal', 'ILSVRC2012_val_00000003.JPEG'),
    ],
    rejects=[
      {
        'path': str(root / 'train' / 'flower' / 'nested'),
        'split': TRAIN,
        'reason': 'nested folder: only root/<class>/<image> is read',
      },
      {
        'path': str(root / 'val' / 'ILSVRC2012_val_00000004.JPEG'),
        'split': VALIDATION,
        'reason': "ground-truth class 'landscape' is not in the label map",
      },
      {
        'path': str(root / 'val' / 'ILSVRC2012_val_00000005.JPEG'),
        'split': VALIDATION,
        'reason': 'no ground-truth label for this file in --validation_ground_truth',
      },
      {
        'path': str(root / 'val' / 'extra'),
        'split': VALIDATION,
        'reason': 'folder inside a flat validation folder',
      },
    ],
  )


def test_a_stray_folder_in_a_flat_validation_folder_loses_no_file(tmp_path):
  from pipeline.graph import plan_dataset  # pylint: disable=import-outside-toplevel
  from pipeline.options import parse_args  # pylint: disable=import-outside-toplevel

  root = tmp_path / 'input'
  put(root / 'train' / 'animal' / 'gc_cat.JPEG', 0)
  put(root / 'train' / 'flower' / 'skl_flower.jpg', 2)
  put(root / 'val' / 'ILSVRC2012_val_00000001.JPEG', 1)
  put(root / 'val' / 'ILSVRC2012_val_00000002.JPEG', 2)
  put(root / 'val' / 'extra' / 'x.jpg', 3)
  solution = tmp_path / 'LOC_val_solution.csv'
  solution.write_text(
    'ImageId,PredictionString\nILSVRC2012_val_00000001,animal 1 2 3 4\n'
    'ILSVRC2012_val_00000002,flower 1 2 3 4\n'
  )
  opts, _ = parse_args(
    [
      '--input',
      str(root),
      '--output',
      str(tmp_path / 'out'),
      '--validation_ground_truth',
      str(solution),
    ]
  )
  plan = plan_dataset(opts)
  val_files = {str(path) for path in (root / 'val').iterdir() if path.is_file()}

  def every_val_file_listed(paths):
    missing = val_files - set(paths)
    if missing:
      raise BeamAssertException(f'neither listed nor rejected: {sorted(missing)}')

  with test_pipeline.TestPipeline() as p:
    listed = p | ListImages(plan.layout, plan.class_dirs, plan.label_map, 0, plan.ground_truth)
    paths = (
      listed.images
      | 'ImagePaths' >> beam.Map(lambda ref: image_path(plan.layout.split_roots, ref)),
      listed.rejects | 'RejectPaths' >> beam.Map(lambda reject: reject.path),
    ) | beam.Flatten()
    assert_that(paths, every_val_file_listed)
