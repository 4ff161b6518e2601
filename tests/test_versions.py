"""--base: a version of a finished output after additions (a new class), removals and a replaced
file, made from the sample photos and read back with TensorFlow and TFDS
(transforms/output/versions.py).
"""

import hashlib
import json
import os
import pathlib
import re
import shutil

import numpy as np
import pytest

from conftest import SAMPLE_DIR, convert
from pipeline import verify
from transforms.output import versions
from transforms.split.sharding import TRAIN, UNSPLIT, VALIDATION, ImageRef

FLAGS = ('--validation_fraction', '0.2', '--target_shard_mb', '0.05')  # ~2 photos a shard
NEW_CLASS = 'animal'  # sorts first: a fresh run gives it id 0, the version the next id
REMOVED = ('landscape/es_dmottl3.JPEG', 'object/' + sorted(os.listdir(SAMPLE_DIR / 'object'))[0])
HELD_BACK = 'flower/mate_garden.JPEG'  # added in the version
REPLACED = 'flower/skl_flower.jpg'  # its bytes replaced by another photo's


def _hashes(root: pathlib.Path) -> dict:
  return {
    str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
    for p in sorted(root.rglob('*'))
    if p.is_file()
  }


def _records(output: pathlib.Path) -> dict:
  """{image/filename: (split, label, synset, decoded uint8 HxWx3 image, shard)} of every record
  (exact libjpeg decoding, ISLOW, as tests/test_pipeline.py reads them)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  manifest = json.loads((output / 'manifest.json').read_text())
  records = {}
  for split, entry in manifest['splits'].items():
    for shard in entry['shards']:
      for raw in tf.data.TFRecordDataset(str(output / shard['file'])):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature
        name = feature['image/filename'].bytes_list.value[0].decode()
        assert name not in records, name
        records[name] = (
          split,
          feature['image/class/label'].int64_list.value[0],
          feature['image/class/synset'].bytes_list.value[0].decode(),
          tf.io.decode_jpeg(
            feature['image/encoded'].bytes_list.value[0], dct_method='INTEGER_ACCURATE'
          ).numpy(),
          shard['file'],
        )
  return records


@pytest.fixture(scope='module')
def made(tmp_path_factory):
  """A base of the sample photos without NEW_CLASS and HELD_BACK, then the input of its version:
  NEW_CLASS and HELD_BACK added, REMOVED deleted, REPLACED rewritten, and a copy of a base
  validation photo added under a new name; returns the folders and the base's file hashes before
  the version."""
  work = tmp_path_factory.mktemp('versions')
  base_input = work / 'base_input'
  for path in SAMPLE_DIR.glob('*/*'):
    key = f'{path.parent.name}/{path.name}'
    if path.parent.name != NEW_CLASS and key != HELD_BACK:
      (base_input / path.parent.name).mkdir(parents=True, exist_ok=True)
      shutil.copy2(path, base_input / key)
  assert convert(base_input, work / 'base', *FLAGS) == 0
  before = _hashes(work / 'base')
  base_records = _records(work / 'base')
  version_input = work / 'input'
  shutil.copytree(base_input, version_input)  # copy2: the same modification times
  shutil.copytree(SAMPLE_DIR / NEW_CLASS, version_input / NEW_CLASS)
  shutil.copy2(SAMPLE_DIR / HELD_BACK, version_input / HELD_BACK)
  for key in REMOVED:
    (version_input / key).unlink()
  (version_input / REPLACED).write_bytes((SAMPLE_DIR / 'landscape/es_dmottl3.JPEG').read_bytes())
  leaked = sorted(k for k, v in base_records.items() if v[0] == VALIDATION and k not in REMOVED)[0]
  copy = leaked.replace('/', '/copy_of_', 1)
  shutil.copy(version_input / leaked, version_input / copy)
  assert convert(version_input, work / 'version', '--base', work / 'base', *FLAGS) == 0
  return {
    'work': work,
    'base': work / 'base',
    'version': work / 'version',
    'input': version_input,
    'before': before,
    'base_records': base_records,
    'leak': (leaked, copy),
  }


@pytest.mark.slow
def test_version_holds_exactly_the_input_with_the_base_label_ids(made):
  base_names = (made['base'] / 'labels.txt').read_text().splitlines()
  names = (made['version'] / 'labels.txt').read_text().splitlines()
  assert names == base_names + [NEW_CLASS] and NEW_CLASS not in base_names
  records = _records(made['version'])
  listed = {f'{p.parent.name}/{p.name}' for p in made['input'].glob('*/*')}
  assert set(records) == listed
  for name, (_, label, synset, _, _) in records.items():
    assert synset == name.split('/')[0] and names[label] == synset
  for name, (split, *_) in made['base_records'].items():  # base files keep their base split
    if name in records:
      assert records[name][0] == split, name
  stored = records[REPLACED][3]  # the replaced file's new content, not the base's record
  assert not np.array_equal(stored, made['base_records'][REPLACED][3])


@pytest.mark.slow
def test_untouched_base_shards_are_placed_byte_for_byte_and_the_base_is_unchanged(made):
  assert _hashes(made['base']) == made['before']
  base = json.loads((made['base'] / 'manifest.json').read_text())
  manifest = json.loads((made['version'] / 'manifest.json').read_text())
  base_shas = {s['sha256']: s['file'] for e in base['splits'].values() for s in e['shards']}
  shards = [s for e in manifest['splits'].values() for s in e['shards']]
  reused = [s for s in shards if s['sha256'] in base_shas]
  changes = manifest['version']['changes']
  touched = {made['base_records'][key][4] for key in (*REMOVED, REPLACED)}
  assert changes == {
    'files_added': len(os.listdir(SAMPLE_DIR / NEW_CLASS)) + 2,
    'files_removed': 2,
    'files_changed': 1,
    'shards_reused': len(reused),
    'shards_rewritten': len(touched),
    'shards_new': len(shards) - len(reused) - len(touched),
  }
  assert len(reused) == len(base_shas) - len(touched)
  assert len(reused) >= 5
  for shard in reused:  # a hard link: the base's own bytes, the base's sums
    path = made['version'] / shard['file']
    sidecar = json.loads((made['version'] / '_work' / (shard['file'] + '.json')).read_text())
    base_sidecar = json.loads(
      (made['base'] / '_work' / (base_shas[shard['sha256']] + '.json')).read_text()
    )
    assert {**sidecar, 'shard': None, 'recipe': None} == {
      **base_sidecar,
      'shard': None,
      'recipe': None,
    }
    assert hashlib.sha256(path.read_bytes()).hexdigest() == shard['sha256']
    assert os.stat(path).st_ino == os.stat(made['base'] / base_shas[shard['sha256']]).st_ino
  base_sha = hashlib.sha256((made['base'] / 'manifest.json').read_bytes()).hexdigest()
  assert manifest['version']['base'] == {'path': str(made['base']), 'manifest_sha256': base_sha}
  provenance = json.loads((made['version'] / 'provenance.json').read_text())
  assert provenance['version'] == manifest['version']
  for split, entry in manifest['splits'].items():  # numbered as one set
    assert [s['file'] for s in entry['shards']] == [
      f'{split}-{i:05d}-of-{len(entry["shards"]):05d}' for i in range(len(entry['shards']))
    ]


@pytest.mark.slow
def test_statistics_are_those_of_the_records(made):
  """Counts exactly; mean and std within JPEG's rounding of the decoded records (stats.json sums the
  pixels handed to the encoder: tests/test_pipeline.py); verify checks them exactly against the
  sidecars' integer sums (test_verify_and_tfds_read_the_version)."""
  stats = json.loads((made['version'] / 'stats.json').read_text())
  records = _records(made['version'])
  for split in (TRAIN, VALIDATION):
    images = [r[3].reshape(-1, 3).astype(np.int64) for r in records.values() if r[0] == split]
    pixels = np.concatenate(images)
    assert stats[split]['num_examples'] == len(images)
    counts = {}
    for _, _, synset, _, _ in (r for r in records.values() if r[0] == split):
      counts[synset] = counts.get(synset, 0) + 1
    assert stats[split]['class_counts'] == counts
    np.testing.assert_allclose(stats[split]['mean_rgb'], pixels.mean(axis=0), atol=0.25)
    np.testing.assert_allclose(stats[split]['std_rgb'], pixels.std(axis=0), atol=0.25)


@pytest.mark.slow
def test_verify_and_tfds_read_the_version(made):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  assert verify.main([str(made['version'])]) == 0
  manifest = json.loads((made['version'] / 'manifest.json').read_text())
  builder = tfds.builder_from_directory(str(made['version']))
  assert builder.info.features['image']['class']['label'].names[-1] == NEW_CLASS
  for split, entry in manifest['splits'].items():
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    assert len(examples) == entry['num_examples']


@pytest.mark.slow
def test_a_new_copy_of_a_base_validation_photo_follows_it_and_is_reported(made):
  leaked, copy = made['leak']
  groups = [
    json.loads(line) for line in (made['version'] / 'duplicates.jsonl').read_text().splitlines()
  ]
  files = [{member['path'] for member in group['files']} for group in groups]
  assert any({leaked, copy} <= members for members in files), groups
  records = _records(made['version'])
  stats = json.loads((made['version'] / 'stats.json').read_text())
  assert records[leaked][0] == records[copy][0] == VALIDATION  # no leak into train
  assert stats['duplicates']['files_across_splits'] == 0


@pytest.mark.slow
def test_the_plans_version_split_is_the_runs(made):
  """versions.version_split (the plan's) gives every file the split and the base shard the version
  run gave it, copies of base files included."""
  from pipeline.graph import plan_dataset  # pylint: disable=import-outside-toplevel
  from pipeline.options import parse_args  # pylint: disable=import-outside-toplevel
  from transforms.duplicates.exact import exact_duplicate_groups  # pylint: disable=import-outside-toplevel
  from transforms.split.sample import folders_of, list_folders  # pylint: disable=import-outside-toplevel

  opts, _ = parse_args(
    [
      '--input',
      str(made['input']),
      '--output',
      str(made['work'] / 'x'),
      '--base',
      str(made['base']),
    ]
    + [str(flag) for flag in FLAGS]
  )
  dataset = plan_dataset(opts)
  roots = dataset.layout.split_roots
  refs = [
    ref
    for listing in list_folders(
      folders_of(roots, dataset.class_dirs), dataset.label_map, 0, dataset.ground_truth
    )
    for ref in listing.refs
  ]
  base = dataset.base
  split = versions.version_split(
    base,
    versions.base_file_members(base),
    refs,
    roots,
    opts.seed,
    opts.validation_fraction,
    opts.test_fraction,
    exact_duplicate_groups(refs, roots),
  )
  planned = {ref.key: name for (name, _), members in split.per_class.items() for ref in members}
  records = _records(made['version'])
  assert planned == {name: record[0] for name, record in records.items()}
  reused = {shard['file'] for shard in _reused_entries(made)}
  for shard, members in split.kept.items():  # a reused base shard holds exactly its kept files
    if shard in reused:
      assert {records[ref.key][4] for ref in members} == {shard}, shard
  assert split.changes == {
    key: value
    for key, value in json.loads((made['version'] / 'manifest.json').read_text())['version'][
      'changes'
    ].items()
    if key.startswith('files_')
  }


@pytest.mark.slow
def test_resume_finishes_an_interrupted_version(made):
  version = made['version']
  manifest = json.loads((version / 'manifest.json').read_text())
  interrupted = made['work'] / 'interrupted'
  shutil.copytree(version, interrupted)
  shards = [s['file'] for e in manifest['splits'].values() for s in e['shards']]
  for name in ('manifest.json', '_SUCCESS', shards[0], shards[-1]):
    (interrupted / name).unlink()
  flags = ('--base', made['base'], *FLAGS, '--resume')
  assert convert(made['input'], interrupted, *flags) == 0
  assert json.loads((interrupted / 'manifest.json').read_text()) == manifest
  assert _hashes(made['base']) == made['before']


def test_label_map_keeps_base_ids_and_gives_new_classes_the_next():
  assert versions.version_label_map(['b', 'd', '__unused_2__', 'c'], ['a', 'c', 'e']) == {
    'b': 0,
    'd': 1,
    'c': 3,
    'a': 4,
    'e': 5,
  }


@pytest.mark.parametrize(
  'base, added, expected',
  [
    ({TRAIN: 8, VALIDATION: 2}, 10, {TRAIN: 8, VALIDATION: 2}),  # 20 files: 4 in validation
    ({TRAIN: 6, VALIDATION: 4}, 5, {TRAIN: 5}),  # the base already holds more than its share
    ({}, 5, {TRAIN: 4, VALIDATION: 1}),
  ],
)
def test_added_files_split_so_each_class_keeps_its_fraction(base, added, expected):
  refs = [ImageRef(UNSPLIT, 0, 'a', f'a/{i}.jpg') for i in range(added)]
  split = versions.split_added(refs, base, 0, 0.2, 0.0)
  assert {s: len(r) for s, r in split.items()} == expected


@pytest.mark.slow
def test_plan_says_what_the_version_converts_and_reuses(made, capsys):
  from pipeline.run import run  # pylint: disable=import-outside-toplevel

  output = made['work'] / 'planned'
  assert (
    run(
      [
        '--plan',
        '--input',
        str(made['input']),
        '--output',
        str(output),
        '--base',
        str(made['base']),
        *FLAGS,
      ]
    )
    == 0
  )
  assert not output.exists()
  changes = json.loads((made['version'] / 'manifest.json').read_text())['version']['changes']
  printed = capsys.readouterr().out
  files = len(list(made['input'].glob('*/*')))
  converted = files - sum(s['num_examples'] for s in _reused_entries(made))
  assert (
    f'Version of --base {made["base"]}: converts {converted} of {files} files '
    f'({converted / files:.0%}), reuses {changes["shards_reused"]} base shards'
  ) in printed
  assert (
    f'files: {changes["files_added"]} added, {changes["files_removed"]} removed, '
    f'{changes["files_changed"]} changed; base shards rewritten without them: '
    f'{changes["shards_rewritten"]} '
  ) in printed
  # The main table: per split the examples (every sample photo converts) and shards written.
  manifest = json.loads((made['version'] / 'manifest.json').read_text())
  for split, entry in manifest['splits'].items():
    assert re.search(rf'^  {split} +{entry["num_examples"]} +0 ', printed, re.M), printed
    shards = rf'^  {split} +{len(entry["shards"])}  --base: \d+ base shards kept, \d+ new for'
    assert re.search(shards, printed, re.M), printed


def _reused_entries(made) -> list:
  base = json.loads((made['base'] / 'manifest.json').read_text())
  base_shas = {s['sha256'] for e in base['splits'].values() for s in e['shards']}
  manifest = json.loads((made['version'] / 'manifest.json').read_text())
  return [s for e in manifest['splits'].values() for s in e['shards'] if s['sha256'] in base_shas]


def test_a_base_that_is_the_output_or_no_finished_output_is_refused(tmp_path, capsys):
  from pipeline.run import run  # pylint: disable=import-outside-toplevel

  (tmp_path / 'out').mkdir()
  assert (
    run(
      [
        '--input',
        str(SAMPLE_DIR),
        '--output',
        str(tmp_path / 'out' / 'v2'),
        '--base',
        str(tmp_path / 'out'),
        '--overwrite',
      ]
    )
    == 2
  )
  assert 'one is inside the other' in capsys.readouterr().err
  assert (
    run(
      [
        '--input',
        str(SAMPLE_DIR),
        '--output',
        str(tmp_path / 'v2'),
        '--base',
        str(tmp_path / 'out'),
      ]
    )
    == 2
  )
  assert 'is not a finished output' in capsys.readouterr().err
  assert (
    run(
      [
        '--input',
        str(SAMPLE_DIR),
        '--output',
        str(tmp_path / 'v2'),
        '--base',
        str(tmp_path / 'out'),
        '--train_shards',
        '4',
      ]
    )
    == 2
  )
  assert not (tmp_path / 'v2').exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_version_on_s3_copies_base_shards_in_the_store(tmp_path):
  """On an object store the base shards are copied by FileSystems.copy (S3's server-side copy, on
  moto's server); the base's objects stay as they were."""
  from clusters.beam_services import run_converter  # pylint: disable=import-outside-toplevel
  from clusters.processes import tail  # pylint: disable=import-outside-toplevel
  from clusters.s3 import moto_s3  # pylint: disable=import-outside-toplevel
  from conftest import REPO  # pylint: disable=import-outside-toplevel
  from test_object_store import _objects  # pylint: disable=import-outside-toplevel

  photos = tmp_path / 'photos'
  for path in SAMPLE_DIR.glob('*/*'):
    if path.parent.name != NEW_CLASS:
      (photos / path.parent.name).mkdir(parents=True, exist_ok=True)
      shutil.copy2(path, photos / path.parent.name / path.name)
  with moto_s3() as s3:
    client = s3.client()
    client.create_bucket(Bucket='photos')
    s3.upload_tree('photos', 'in/', photos)
    base_args = ['--input', 's3://photos/in/', *FLAGS, *s3.beam_args()]
    code = run_converter(REPO, [*base_args, '--output', 's3://photos/v1/'], tmp_path / 'v1.log')
    assert code == 0
    base = _objects(client, 'photos', 'v1/')
    s3.upload_tree('photos', f'in/{NEW_CLASS}/', SAMPLE_DIR / NEW_CLASS)
    client.delete_object(Bucket='photos', Key=f'in/{REMOVED[0]}')
    code = run_converter(
      REPO,
      [*base_args, '--base', 's3://photos/v1/', '--output', 's3://photos/v2/'],
      tmp_path / 'v2.log',
    )
    assert code == 0, tail(tmp_path / 'v2.log', 40)
    assert verify.main(['s3://photos/v2/', *s3.beam_args()]) == 0
    assert _objects(client, 'photos', 'v1/') == base
    version = _objects(client, 'photos', 'v2/')
  manifest = json.loads(version['manifest.json'])
  changes = manifest['version']['changes']
  assert (changes['files_added'], changes['files_removed'], changes['shards_rewritten']) == (
    len(os.listdir(SAMPLE_DIR / NEW_CLASS)),
    1,
    1,
  )
  base_shards = {
    hashlib.sha256(data).hexdigest()
    for name, data in base.items()
    if '/' not in name and name.startswith(('train-', 'validation-'))
  }
  reused = [
    name
    for name, data in version.items()
    if '/' not in name and hashlib.sha256(data).hexdigest() in base_shards
  ]
  assert len(reused) == changes['shards_reused'] == len(base_shards) - 1


def test_an_empty_base_is_no_base(tmp_path):
  """The Airflow DAG passes its empty `base` Param as `--base=`: a fresh conversion."""
  from pipeline.options import parse_args  # pylint: disable=import-outside-toplevel

  opts, _ = parse_args(['--input', str(SAMPLE_DIR), '--output', str(tmp_path), '--base='])
  assert opts.base is None and 'base' not in opts.to_dict()
  opts, _ = parse_args(
    ['--input', str(SAMPLE_DIR), '--output', str(tmp_path / 'v2'), '--base', str(tmp_path / 'v1')]
  )
  assert opts.base == str(tmp_path / 'v1') and opts.to_dict()['base'] == opts.base


@pytest.mark.slow
def test_portable_runner_writes_the_same_version(made):
  """The version graph translated through Beam's portable protos (what Flink and Spark run) writes
  the same bytes as the FnApiRunner."""
  portable = made['work'] / 'portable'
  assert (
    convert(
      made['input'],
      portable,
      '--base',
      made['base'],
      *FLAGS,
      '--runner',
      'PortableRunner',
      '--job_endpoint',
      'embed',
      '--environment_type',
      'LOOPBACK',
    )
    == 0
  )
  assert verify.main([str(made['version']), '--against', str(portable)]) == 0


@pytest.mark.slow
def test_a_version_of_split_folders_keeps_each_file_in_its_folder_split(tmp_path):
  from conftest import arrange_split_folders  # pylint: disable=import-outside-toplevel

  photos = arrange_split_folders(tmp_path / 'photos')
  for split in ('train', 'test'):
    shutil.rmtree(photos / split / NEW_CLASS)
  held = photos / 'val' / NEW_CLASS
  shutil.move(held, tmp_path / 'held')
  assert convert(photos, tmp_path / 'v1', '--target_shard_mb', '0.05') == 0
  shutil.move(tmp_path / 'held', held)  # a new class, in val/ only
  (photos / 'train' / REMOVED[0]).unlink()
  assert (
    convert(photos, tmp_path / 'v2', '--base', tmp_path / 'v1', '--target_shard_mb', '0.05') == 0
  )
  names = (tmp_path / 'v2' / 'labels.txt').read_text().splitlines()
  assert (
    names[-1] == NEW_CLASS
    and names[:-1] == (tmp_path / 'v1' / 'labels.txt').read_text().splitlines()
  )
  records = _records(tmp_path / 'v2')
  folders = {'train': TRAIN, 'val': VALIDATION, 'test': 'test'}
  listed = {
    f'{p.parent.name}/{p.name}': folders[p.parent.parent.name] for p in photos.glob('*/*/*')
  }
  assert {name: record[0] for name, record in records.items()} == listed
  changes = json.loads((tmp_path / 'v2' / 'manifest.json').read_text())['version']['changes']
  assert (changes['files_added'], changes['files_removed'], changes['shards_rewritten']) == (
    len(os.listdir(held)),
    1,
    1,
  )
  assert verify.main([str(tmp_path / 'v2')]) == 0
