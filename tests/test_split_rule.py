"""One split rule for the run and the plan (transforms/split/groups.py `split_files`): the plan's files
per split and class equal a real run's on the sample photos with planted copies (in and across
classes), a near copy, exclusions, dropped copies and --group_regex groups."""

import json
import shutil

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image
import pytest

from conftest import SAMPLE_DIR, convert
from pipeline.graph import plan_dataset
from pipeline.options import parse_args
from pipeline.plan import make_plan
from transforms.output import layout
from transforms.duplicates.exact import FindExactDuplicates, exact_duplicate_groups
from transforms.split.groups import Followers, followers_of
from transforms.split.sharding import (
  TRAIN,
  VALIDATION,
  AssignSplitShard,
  ImageRef,
  assign_splits,
  split_class,
)

COPIES = 12


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
  """The sample photos plus COPIES byte copies of files `split_class` alone puts in validation at
  0.2 (every third one in the next class), one of a train file, and a near copy (resized to 80%,
  re-encoded at quality 60); an exclusion list of two photos. Returns (photos, exclude file)."""
  root = tmp_path_factory.mktemp('planted')
  photos = root / 'photos'
  shutil.copytree(SAMPLE_DIR, photos, ignore=shutil.ignore_patterns('*.md'))
  classes = sorted(p.name for p in photos.iterdir())
  chosen = []
  for label, name in enumerate(classes):
    refs = [
      ImageRef('', label, name, f'{name}/{p.name}') for p in sorted((photos / name).iterdir())
    ]
    alone = split_class(refs, 0, 0.2)
    chosen += [ref.key for ref in alone[VALIDATION]] + [alone[TRAIN][0].key]
  for i, key in enumerate(chosen[:COPIES]):
    source = photos / key
    target = source.parent.name if i % 3 else classes[(classes.index(source.parent.name) + 1) % 5]
    shutil.copy(source, photos / target / f'{source.stem}_copy{source.suffix}')
  owl = Image.open(SAMPLE_DIR / 'animal' / 'gc_owl.JPEG')
  owl.resize((owl.width * 4 // 5, owl.height * 4 // 5)).save(
    photos / 'animal' / 'owl_small.jpg', quality=60
  )
  exclude = root / 'exclude.txt'
  exclude.write_text('flower/mate_garden.JPEG\nspace/es_nasa3.JPEG\n')
  return photos, exclude


def _plan_files(photos, output, flags):
  """{split: {class: files}} of the plan."""
  opts, _ = parse_args(
    ['--input', str(photos), '--output', str(output), '--plan_sample', '8', *map(str, flags)]
  )
  return {s.split: s.class_files for s in make_plan(opts, plan_dataset(opts)).splits}


def _run_files(output):
  """{split: {class: files}} of a finished run (every listed photo decodes: files = examples)."""
  stats = json.loads((output / layout.STATS_FILE).read_text())
  assert stats['num_rejected'] == stats.get('num_rejected_without_split', 0)
  return {
    split: stats[split]['class_counts']
    for split in ('train', 'validation', 'test')
    if split in stats
  }


@pytest.mark.parametrize(
  'flags',
  [
    ('--validation_fraction', '0.2'),
    ('--validation_fraction', '0.2', '--test_fraction', '0.1'),
    ('--validation_fraction', '0.2', '--exclude_file', 'EXCLUDE'),
    ('--validation_fraction', '0.2', '--test_fraction', '0.1', '--drop_duplicates'),
    ('--validation_fraction', '0.2', '--test_fraction', '0.1', '--group_regex', r'^(kde|lomiri)_'),
  ],
  ids=['validation', 'test', 'exclusions', 'drop_duplicates', 'group_regex'],
)
def test_plan_counts_equal_the_runs(planted, tmp_path, flags):
  photos, exclude = planted
  flags = [str(exclude) if flag == 'EXCLUDE' else flag for flag in flags]
  planned = _plan_files(photos, tmp_path / 'out', flags)
  assert convert(photos, tmp_path / 'out', *flags) == 0
  assert planned == _run_files(tmp_path / 'out')
  kinds = [
    json.loads(line)['kind']
    for line in (tmp_path / 'out' / layout.DUPLICATES_FILE).read_text().splitlines()
  ]
  # The near copy is a group; so is each planted copy, unless an excluded photo leaves it alone.
  assert kinds.count('near') == 1 and COPIES - 2 <= kinds.count('exact') <= COPIES


def test_planted_copies_move_files(planted, tmp_path):
  """The planted copies follow their first copy into validation: `split_class` per class alone (the
  plan before the shared rule) gives other counts than the run."""
  photos, _ = planted
  assert convert(photos, tmp_path / 'out', '--validation_fraction', '0.2') == 0
  run = {split: sum(counts.values()) for split, counts in _run_files(tmp_path / 'out').items()}
  classes = sorted(p.name for p in photos.iterdir())
  alone = {TRAIN: 0, VALIDATION: 0}
  for label, name in enumerate(classes):
    refs = [ImageRef('', label, name, f'{name}/{p.name}') for p in (photos / name).iterdir()]
    for split, members in split_class(refs, 0, 0.2).items():
      alone[split] += len(members)
  assert sum(run.values()) == sum(alone.values()) == 55 + COPIES
  assert run[VALIDATION] >= alone[VALIDATION] + 4, (run, alone)


def _refs():
  """Three classes of 10 files each."""
  return [
    ImageRef('', label, f'c{label}', f'c{label}/f{i}.jpg', 100 + i)
    for label in range(3)
    for i in range(10)
  ]


@pytest.mark.parametrize('fractions', [(0.2, 0.0), (0.3, 0.2)])
def test_assign_splits_equals_assign_split_shard(fractions):
  """The one-machine rule and the graph's AssignSplitShard put every file in the same split."""
  refs = _refs()  # Five files of class 1 follow files of class 0, one of class 2 its own class.
  followers = [(refs[10 + i], refs[i]) for i in range(5)] + [(refs[29], refs[20])]
  expected = [
    (split, ref)
    for (split, _), members in assign_splits(refs, followers, 7, *fractions).items()
    for ref in members
  ]
  assert {split for split, _ in expected} >= {TRAIN, VALIDATION}
  with test_pipeline.TestPipeline() as p:
    followers_pc = p | 'Followers' >> beam.Create(followers)
    assigned = (
      p
      | 'Refs' >> beam.Create(refs)
      | AssignSplitShard(
        7, fractions[0], {TRAIN: 1, VALIDATION: 1, 'test': 1}, fractions[1], None, followers_pc
      )
    )
    assert_that(assigned | beam.Map(lambda kv: (kv[0][0], kv[1])), equal_to(expected))


def _listed(photos):
  """ImageRefs of every file under `photos` (an input without split folders), with sizes."""
  classes = sorted(p.name for p in photos.iterdir())
  return [
    ImageRef('', label, name, f'{name}/{p.name}', p.stat().st_size)
    for label, name in enumerate(classes)
    for p in sorted((photos / name).iterdir())
  ]


def test_exact_groups_and_followers_on_one_machine_equal_the_graphs(planted):
  """duplicates.exact_duplicate_groups and groups.followers_of, which the plan calls, give what
  FindExactDuplicates and Followers give under a pipeline."""
  photos, _ = planted
  refs, roots, regex = _listed(photos), {'': str(photos)}, r'^(kde|lomiri)_'
  groups = exact_duplicate_groups(refs, roots)
  assert len(groups) == COPIES and all(len(group.members) == 2 for group in groups)
  followers = followers_of(refs, groups, regex, with_copies=True)
  assert len(followers) > COPIES
  with test_pipeline.TestPipeline() as p:
    listed = p | 'Refs' >> beam.Create(refs)
    found = listed | FindExactDuplicates(roots)
    assert_that(found, equal_to(groups), label='SameGroups')
    assert_that(
      (listed, found) | Followers(regex, with_copies=True),
      equal_to(followers),
      label='SameFollowers',
    )
