"""The plan (`folder2tfrecord plan`, `--plan`) against real runs on the sample photos, the driver's
sample, and shards sized in bytes (--target_shard_mb and the automatic default)."""

import json
import os
import shutil

import pytest

from clusters.outputs import assert_same_dataset, read_dataset
from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert, files_by_class
from pipeline import verify as verify_lib
from pipeline.graph import plan_dataset
from pipeline.options import parse_args
from pipeline.plan import conversion_seconds, make_plan, predict
from transforms.output import layout
from transforms.split.sample import allocate, draw, list_folders, folders_of
from transforms.split.shard_count import MB, shards_for_bytes
from transforms.split.sharding import TRAIN, VALIDATION, num_shards_of, split_class


def output_bytes(output) -> dict:
  """{'shards': {split: bytes}, 'metadata': bytes, 'total': bytes} of a finished output (`_work/`,
  the scratch folder of the run, left out)."""
  manifest = json.loads((output / layout.MANIFEST_FILE).read_text())
  shards = {
    split: sum((output / s['file']).stat().st_size for s in entry['shards'])
    for split, entry in manifest['splits'].items()
  }
  metadata = sum(p.stat().st_size for p in output.iterdir() if p.name in layout.METADATA_FILES)
  return {'shards': shards, 'metadata': metadata, 'total': sum(shards.values()) + metadata}


def plan_of(output, *flags):
  opts, _ = parse_args(['--input', str(SAMPLE_DIR), '--output', str(output), *map(str, flags)])
  return make_plan(opts, plan_dataset(opts))


# ---------------------------------------------------------------------------------------------
# The printout and what the plan writes (nothing).


def test_plan_prints_every_field_and_writes_nothing(tmp_path, capsys):
  empty = tmp_path / 'empty_output'
  empty.mkdir()
  for output in (tmp_path / 'new_output', empty):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*'))
    assert (
      convert(
        SAMPLE_DIR,
        output,
        '--validation_fraction',
        '0.2',
        '--plan',
        '--plan_sample',
        '16',
        '--num_workers',
        '32',
      )
      == 0
    )
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob('*')) == before  # not even _work/
  printed = capsys.readouterr().out
  for field in (
    'nothing was written',
    'Listing: 5 classes, 5 folders, 54 files',
    'Sample: 16 files (--plan_sample 16) from 5 of 5 class folders',
    '0 rejected (0.0%)',
    'examples',
    'rejected',
    '95% interval',
    'bytes/example',
    'shards',
    'MB/shard',
    'metadata',
    'total',
    'automatic: 43 files x',
    "the run's own 32-file sample",
    'warning: train: 1 shard, fewer than 10 x --num_readers 8 = 80',
    'below 10 MB',
    'ms of CPU an image measured here',
    'W = 32',
    '--num_workers',
    "this machine's cores",
  ):
    assert field in printed, field
  for klass, files in files_by_class().items():  # files per class and split, from the full listing
    assert any(
      line.split()[0] == klass and sum(map(int, line.split()[1:])) == len(files)
      for line in printed.splitlines()
      if line.split()
    ), klass


def test_plan_subcommand_and_config_file(tmp_path, capsys):
  from pipeline import cli  # pylint: disable=import-outside-toplevel

  config = tmp_path / 'plan.yaml'
  config.write_text(
    f'input: {SAMPLE_DIR}\noutput: out\nplan_sample: 8\nnum_readers: 2\n'
    'num_workers: 4\ntarget_shard_mb: 0.3\nvalidation_fraction: 0.2\n'
  )
  with pytest.raises(SystemExit) as exit_info:
    cli.main(['plan', '--config', str(config)])
  assert exit_info.value.code == 0
  printed = capsys.readouterr().out
  assert 'Sample: 8 files (--plan_sample 8)' in printed and 'x --num_readers 2 = 20' in printed
  assert 'W = 4' in printed and 'at --target_shard_mb 0.3' in printed
  assert not (tmp_path / 'out').exists()


def test_plan_is_deterministic_and_its_sample_covers_every_class(tmp_path):
  first, second = (
    plan_of(tmp_path / 'out', '--validation_fraction', '0.2', '--plan_sample', '7')
    for _ in range(2)
  )
  assert [(f.ref, f.record_bytes, f.reason) for f in first.sample.files] == [
    (f.ref, f.record_bytes, f.reason) for f in second.sample.files
  ]
  assert first.splits == second.splits and first.total_bytes == second.total_bytes
  assert first.metadata_bytes == second.metadata_bytes
  assert first.run_sample.file_bytes() == second.run_sample.file_bytes()
  # 7 files over 5 classes of 13, 10, 12, 10, 9: one each, then the largest remainders.
  assert sorted({f.ref.synset for f in first.sample.files}) == sorted(files_by_class())
  assert len(first.sample.files) == 7


# ---------------------------------------------------------------------------------------------
# Predictions against real runs.


@pytest.mark.parametrize('plan_sample', [16, 32, 256])
def test_plan_predicts_the_real_runs_bytes_within_10_percent(sample_output, tmp_path, plan_sample):
  """The session's sample conversion (SAMPLE_FLAGS) against its plan; 256 samples every photo."""
  plan = plan_of(tmp_path / 'out', *SAMPLE_FLAGS, '--plan_sample', plan_sample)
  actual = output_bytes(sample_output)
  total = plan.total_bytes
  print(
    f'\nplan_sample {plan_sample}: predicted {total.value:,.0f} bytes '
    f'(95% {total.low:,.0f}-{total.high:,.0f}), actual {actual["total"]:,} '
    f'({total.value / actual["total"] - 1:+.1%}); metadata {plan.metadata_bytes:,} vs '
    f'{actual["metadata"]:,}'
  )
  assert abs(total.value / actual['total'] - 1) < 0.10
  # the part the 95% interval is about (true here, not a law)
  shards = actual['total'] - actual['metadata']
  assert total.low - plan.metadata_bytes <= shards <= total.high - plan.metadata_bytes
  assert [s.num_shards for s in plan.splits] == [3, 2]
  assert abs(plan.metadata_bytes / actual['metadata'] - 1) < 0.05
  if plan_sample >= 54:  # Every file sampled: the shards' bytes are known exactly.
    assert [round(s.num_bytes.value) for s in plan.splits] == [
      actual['shards'][TRAIN],
      actual['shards'][VALIDATION],
    ]


# 0.2 MB shards of the sample photos: 43 train files of ~18 KB make 3.8 ideal shards.
AUTO_FLAGS = ('--validation_fraction', '0.2', '--target_shard_mb', '0.2')


@pytest.fixture(scope='module')
def auto_output(tmp_path_factory):
  """The sample photos converted with AUTO_FLAGS (automatic counts; read-only for tests)."""
  output = tmp_path_factory.mktemp('auto') / 'out'
  assert convert(SAMPLE_DIR, output, *AUTO_FLAGS) == 0
  return output


@pytest.mark.slow
def test_target_shard_mb_sizes_the_shards_of_real_photos(auto_output, tmp_path):
  """The plan's counts are the run's, the shards near the target and balanced, the output verifies,
  --resume keeps the count, and an explicit count still wins."""
  plan = plan_of(tmp_path / 'unused', *AUTO_FLAGS)
  file_bytes = plan.run_sample.file_bytes()
  manifest = json.loads((auto_output / layout.MANIFEST_FILE).read_text())
  assert manifest['options']['target_shard_mb'] == 0.2  # recorded: it decides the output
  actual = output_bytes(auto_output)
  for split in plan.splits:
    entry = manifest['splits'][split.split]
    assert (
      entry['num_shards'] == split.num_shards == shards_for_bytes(split.files * file_bytes, 200_000)
    )
    counts = [s['num_examples'] for s in entry['shards']]
    assert max(counts) - min(counts) <= 1
    mean_shard = actual['shards'][split.split] / entry['num_shards']
    print(
      f'{split.split}: {entry["num_shards"]} shards, {mean_shard / MB:.3f} MB each on average '
      f'(predicted {split.shard_bytes / MB:.3f})'
    )
    if entry['num_shards'] > 1:  # a split smaller than a shard is one shard
      assert 0.2 * MB / 2**0.5 <= mean_shard <= 0.2 * MB * 2**0.5
  assert manifest['splits'][TRAIN]['num_shards'] == 4
  assert verify_lib.verify(str(auto_output)).ok
  # An interrupted run (a shard missing, no _SUCCESS) resumed: the same count, the same bytes.
  resumed = tmp_path / 'resumed'
  shutil.copytree(auto_output, resumed)
  (resumed / 'train-00002-of-00004').unlink()
  (resumed / layout.SUCCESS_FILE).unlink()
  assert convert(SAMPLE_DIR, resumed, *AUTO_FLAGS, '--resume') == 0
  assert_same_dataset(read_dataset(str(resumed)), read_dataset(str(auto_output)))
  assert convert(SAMPLE_DIR, tmp_path / 'explicit', *AUTO_FLAGS, '--train_shards', '3') == 0
  manifest = json.loads((tmp_path / 'explicit' / layout.MANIFEST_FILE).read_text())
  assert (
    manifest['splits'][TRAIN]['num_shards'],
    manifest['splits'][VALIDATION]['num_shards'],
  ) == (3, 1)


@pytest.mark.slow
def test_automatic_counts_are_the_same_with_multi_processing_workers(auto_output, tmp_path):
  assert (
    convert(
      SAMPLE_DIR,
      tmp_path / 'out',
      *AUTO_FLAGS,
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    )
    == 0
  )
  assert_same_dataset(read_dataset(str(tmp_path / 'out')), read_dataset(str(auto_output)))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_plan_and_automatic_counts_from_and_to_s3(auto_output, tmp_path):
  """On moto's S3 server: the plan reads its sample from s3:// and writes no object; the run's
  automatic counts and bytes are the local run's."""
  from clusters.beam_services import run_converter  # pylint: disable=import-outside-toplevel
  from clusters.s3 import moto_s3  # pylint: disable=import-outside-toplevel
  from conftest import REPO  # pylint: disable=import-outside-toplevel

  with moto_s3() as s3:
    client = s3.client()
    client.create_bucket(Bucket='photos')
    s3.upload_tree('photos', 'in/', SAMPLE_DIR)
    args = [
      '--input',
      's3://photos/in/',
      '--output',
      's3://photos/out/',
      *AUTO_FLAGS,
      *s3.beam_args(),
    ]
    assert run_converter(REPO, [*args, '--plan'], tmp_path / 'plan.log') == 0
    printed = (tmp_path / 'plan.log').read_text()
    assert (
      'Plan of a run from s3://photos/in/' in printed
      and '  train            4  automatic' in printed
    )
    assert client.list_objects_v2(Bucket='photos', Prefix='out/')['KeyCount'] == 0
    assert run_converter(REPO, args, tmp_path / 'run.log') == 0, (tmp_path / 'run.log').read_text()
    stored = {
      item['Key'][len('out/') :]: client.get_object(Bucket='photos', Key=item['Key'])['Body'].read()
      for item in client.list_objects_v2(Bucket='photos', Prefix='out/')['Contents']
      if '/' not in item['Key'][len('out/') :] and not item['Key'].endswith(layout.PROVENANCE_FILE)
    }
  assert_same_dataset(stored, read_dataset(str(auto_output)))


@pytest.mark.slow
@pytest.mark.parametrize('flags', [('--file_format', 'array_record'), ('--compression', 'gzip')])
def test_plan_predicts_array_record_and_gzip_outputs(tmp_path, flags):
  flags = (
    '--validation_fraction',
    '0.2',
    '--target_shard_mb',
    '0.2',
    '--plan_sample',
    '24',
    *flags,
  )
  plan = plan_of(tmp_path / 'out', *flags)
  assert convert(SAMPLE_DIR, tmp_path / 'out', *flags) == 0
  actual = output_bytes(tmp_path / 'out')
  print(f'{flags[-1]}: predicted {plan.total_bytes.value:,.0f}, actual {actual["total"]:,}')
  assert abs(plan.total_bytes.value / actual['total'] - 1) < 0.10


# ---------------------------------------------------------------------------------------------
# The pieces: the sample, the estimator, the counts, the time.


def test_allocation_is_proportional_with_one_per_stratum():
  assert allocate([3, 0, 2], 10) == [3, 0, 2]  # all of a population no larger than the sample
  assert allocate([100, 50, 50], 8) == [4, 2, 2]
  assert allocate([1000, 1, 1], 10) == [8, 1, 1]  # at least one from every folder
  assert allocate([5, 5, 5, 5], 2) == [1, 1, 1, 1]  # more folders than the sample size
  assert allocate([10, 10, 10], 4) == [2, 1, 1]  # remainders tie: the earlier folder


def test_the_sample_is_not_the_validation_files():
  opts, _ = parse_args(
    [
      '--input',
      str(SAMPLE_DIR),
      '--output',
      '/tmp/unused',
      '--validation_fraction',
      '0.5',
      '--train_shards',
      '1',
      '--validation_shards',
      '1',
    ]
  )
  dataset = plan_dataset(opts)
  listings = list_folders(
    folders_of(dataset.layout.split_roots, dataset.class_dirs), dataset.label_map, 0
  )
  drawn = [ref for _, ref in draw(listings, 10, seed=0)]
  validation = {
    ref for listing in listings for ref in split_class(listing.refs, 0, 0.5)[VALIDATION]
  }
  assert 0 < sum(ref in validation for ref in drawn) < len(drawn)


def test_prediction_interval_is_exact_for_a_census_and_widens_with_fewer_samples():
  assert predict({0: [1.0, 3.0]}, known=4.0, unsampled={0: 0}, variance=2.0).low == 4.0
  narrow = predict({0: [10.0] * 50}, known=500.0, unsampled={0: 50}, variance=4.0)
  wide = predict({0: [10.0] * 5}, known=50.0, unsampled={0: 95}, variance=4.0)
  assert narrow.value == wide.value == 1000.0
  assert wide.high - wide.low > narrow.high - narrow.low > 0


@pytest.mark.parametrize(
  'ideal, count',
  [
    (0, 1),
    (1.41, 1),
    (1.42, 2),
    (2.83, 4),
    (100, 128),
    (181, 128),
    (182, 256),
    (723, 512),
    (725, 1024),
    (1535, 1024),
    (1536, 2048),
    (2559, 2048),
    (2560, 3072),
    (10_000, 10_240),
  ],
)
def test_shards_by_size_round_to_the_nearest_power_of_two_then_multiples_of_1024(ideal, count):
  """A 1 MB target: the size rule decides (8 readers want no more than 128 shards of 10 MB)."""
  assert shards_for_bytes(round(ideal * MB), MB, num_readers=8) == count


@pytest.mark.parametrize(
  'total_mb, readers, count',
  [
    (19, 8, 1),
    (20, 8, 2),
    (75, 8, 4),
    (1_060, 8, 64),
    (1_280, 8, 128),
    (640, 1, 16),
    (27_200, 8, 256),
    (27_200, 256, 2048),
    (27_200, 100, 1024),
  ],
)
def test_readers_get_10_files_each_while_shards_keep_10_mb(total_mb, readers, count):
  """The default 128 MB target: below 1.28 GB, 8 readers ask for more shards than the size does."""
  assert shards_for_bytes(total_mb * MB, 128 * MB, readers) == count


def test_default_count_for_imagenet_sized_splits():
  """The defaults (128 MB, 8 readers) on ImageNet-1k's split sizes at ~21.2 KB a record (256 px, q90,
  the ImageNet-like benchmark set's): 256 train shards of ~106 MB (by size) and 64 validation shards
  of ~17 MB (by readers; 8 by size)."""
  opts, _ = parse_args(['--input', 'in', '--output', 'out'])
  from transforms.split.shard_count import ShardSizing  # pylint: disable=import-outside-toplevel

  sizing = ShardSizing(opts.target_shard_bytes, 21_200, opts.num_readers)
  assert num_shards_of(TRAIN, 1_281_167, {}, sizing) == 256
  assert num_shards_of(VALIDATION, 50_000, {}, sizing) == 64
  assert (
    num_shards_of(VALIDATION, 50_000, {}, ShardSizing(opts.target_shard_bytes, 21_200, 1)) == 16
  )
  assert num_shards_of(TRAIN, 1_281_167, {TRAIN: 1024}, sizing) == 1024  # explicit counts win
  assert num_shards_of(TRAIN, 3, {}, ShardSizing(1, 10**9)) == 3  # capped at the file count


def test_projected_time_spreads_shards_over_workers_longest_first():
  assert conversion_seconds([10, 10, 10], 1.0, workers=2) == 20.0  # a shard is one worker's
  assert conversion_seconds([10, 10, 10, 10], 1.0, workers=2) == 20.0
  assert conversion_seconds([30, 1, 1, 1], 1.0, workers=8) == 30.0
  assert conversion_seconds([4] * 64, 0.5, workers=os.cpu_count() or 1) > 0


def test_plan_flags_are_never_recorded_and_sizing_flags_only_when_set():
  opts, _ = parse_args(
    ['--input', 'in', '--output', 'out', '--plan', '--plan_sample', '9', '--num_workers', '5']
  )
  assert not {'plan', 'plan_sample', 'num_readers', 'num_workers', 'target_shard_mb'} & set(
    opts.to_dict()
  )
  opts, _ = parse_args(
    ['--input', 'in', '--output', 'out', '--target_shard_mb', '64', '--num_readers', '3']
  )
  assert opts.to_dict()['target_shard_mb'] == 64 and opts.target_shard_bytes == 64 * MB
  # they decide automatic counts: recorded, --resume compares
  assert opts.to_dict()['num_readers'] == 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_plan_accuracy_benchmark_compares_plan_and_run(tmp_path, monkeypatch, capsys):
  """benchmarks/plan_accuracy.py on a small ImageNet-like set (a quarter of it sampled): it prints the
  figures, and the predicted total is within 10% of the run's (the 4,000-image figures are in
  benchmarks/RESULTS.md)."""
  from benchmarks import plan_accuracy  # pylint: disable=import-outside-toplevel

  monkeypatch.setenv('FOLDER2TFRECORD_BENCH_CACHE', str(tmp_path / 'cache'))
  flags = '--validation_fraction 0.1 --plan_sample 16 --target_shard_mb 0.3'
  assert (
    plan_accuracy.main(
      [
        '--images',
        '64',
        '--classes',
        '4',
        '--flags',
        flags,
        '--json',
        str(tmp_path / 'figures.json'),
      ]
    )
    == 0
  )
  printed = capsys.readouterr().out
  for field in (
    "set 'imagenet': 64 images, 4 classes",
    'plan of 16 sampled images',
    'predicted MB',
    '95% interval',
    'actual MB',
    'train',
    'validation',
    'total',
    'time on 2 workers',
  ):
    assert field in printed, field
  (result,) = json.loads((tmp_path / 'figures.json').read_text())
  assert abs(result['total']['error']) < 0.10
  assert [(r['predicted_shards'], r['predicted_examples']) for r in result['splits']] == [
    (r['actual_shards'], r['actual_examples']) for r in result['splits']
  ]


def test_the_runs_sample_skips_folders_of_classes_outside_the_label_map(tmp_path):
  """40 class folders, 38 of them not in --labels_file: the run's sample (32 of the 40 folders when it
  picks among all) lists the two listed classes and takes all 4 of their files."""
  photos = [path for paths in files_by_class().values() for path in paths]
  for i in range(40):
    (tmp_path / 'in' / f'c{i:02d}').mkdir(parents=True)
    for photo in photos[i : i + 2]:
      shutil.copy(photo, tmp_path / 'in' / f'c{i:02d}')
  (tmp_path / 'labels.txt').write_text('c07\nc31\n')
  opts, _ = parse_args(
    [
      '--input',
      str(tmp_path / 'in'),
      '--output',
      str(tmp_path / 'out'),
      '--labels_file',
      str(tmp_path / 'labels.txt'),
    ]
  )
  sample = plan_dataset(opts).run_sample
  assert sorted({f.ref.synset for f in sample.files}) == ['c07', 'c31'] and len(sample.files) == 4


# ---------------------------------------------------------------------------------------------
# An --output that already holds a dataset, and duplicates.jsonl in the metadata bytes.


@pytest.mark.parametrize(
  'flags, expected',
  [
    (
      (),
      'warning: --output {output} already holds a dataset ({files} files, e.g. manifest.json). '
      'The run will refuse to start (exit 2) unless you pass --overwrite',
    ),
    (
      ('--overwrite',),
      'note: --output {output} already holds a dataset ({files} files, e.g. '
      'manifest.json); --overwrite will delete those files',
    ),
    (
      ('--resume',),
      'note: --output {output} already holds a dataset ({files} files, e.g. '
      'manifest.json); --resume will keep its finished shards',
    ),
  ],
)
def test_plan_says_what_the_run_will_do_with_an_existing_dataset(
  sample_output, capsys, flags, expected
):
  before = sorted((p.name, p.stat().st_mtime_ns) for p in sample_output.rglob('*'))
  assert (
    convert(SAMPLE_DIR, sample_output, *SAMPLE_FLAGS, '--plan', '--plan_sample', '8', *flags) == 0
  )
  assert sorted((p.name, p.stat().st_mtime_ns) for p in sample_output.rglob('*')) == before
  files = sum(
    1
    for p in sample_output.iterdir()
    if p.name in layout.METADATA_FILES
    or p.name == layout.SUCCESS_FILE
    or p.name.startswith(('train-', 'validation-'))
  )
  printed = capsys.readouterr().out
  assert expected.format(output=sample_output, files=files) in printed.splitlines()[1]


def test_plan_of_a_new_output_has_no_dataset_warning(tmp_path, capsys):
  assert convert(SAMPLE_DIR, tmp_path / 'new', '--plan', '--plan_sample', '8') == 0
  printed = capsys.readouterr().out
  assert 'already holds a dataset' not in printed and printed.splitlines()[1] == ''


def test_plan_predicts_duplicates_jsonl(tmp_path, capsys):
  """A real run with a near copy (re-encoded at quality 60) of one photo: its metadata bytes, with
  duplicates.jsonl, are the plan's prediction plus the plan's bytes per duplicates.jsonl line."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  photos = tmp_path / 'photos'
  shutil.copytree(SAMPLE_DIR, photos, ignore=shutil.ignore_patterns('*.md'))
  Image.open(SAMPLE_DIR / 'animal' / 'gc_owl.JPEG').save(
    photos / 'animal' / 'owl_q60.jpg', quality=60
  )
  assert convert(photos, tmp_path / 'out', '--plan', '--plan_sample', '8') == 0
  assert f'(with {layout.DUPLICATES_FILE} empty; ' in capsys.readouterr().out
  opts, _ = parse_args(
    ['--input', str(photos), '--output', str(tmp_path / 'out'), '--plan_sample', '256']
  )
  plan = make_plan(opts, plan_dataset(opts))
  assert convert(photos, tmp_path / 'out') == 0
  lines = (tmp_path / 'out' / layout.DUPLICATES_FILE).read_bytes().splitlines(keepends=True)
  assert len(lines) == 1 and b'"near"' in lines[0]
  # The plan's line names two files of the sampled files' mean path length (all 55 sampled).
  mean = round(sum(len(f'{p.parent.name}/{p.name}') for p in photos.glob('*/*')) / 55)
  paths = [f['path'] for f in json.loads(lines[0])['files']]
  assert len(lines[0]) == plan.duplicate_line_bytes - 2 * mean + sum(map(len, paths))
  actual = output_bytes(tmp_path / 'out')['metadata']
  assert abs(actual - len(lines[0]) - plan.metadata_bytes) / actual < 0.05
