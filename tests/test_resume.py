"""--resume after the input changed: kept only what is unchanged, rewrote the rest, said so, and ended
byte-identical to a fresh run on the current input (transforms/output/resume.py,
transforms/inputs/fingerprint.py)."""

import dataclasses
import json
import os
import shutil

import pytest

from clusters.outputs import assert_same_dataset, read_dataset
from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from transforms.output import layout, resume
from transforms.inputs.fingerprint import InputFingerprint, class_texts_digest, shard_inputs
from transforms.split.sharding import ImageRef
from transforms.records import ShardSummary

REFS = [ImageRef('', 0, 'a', f'a/{i}.jpg', 1000 + i, 1_700_000_000_000_000 + i) for i in range(6)]


def test_shard_fingerprint_tells_a_modified_file_from_another_file_list():
  base = shard_inputs(REFS)
  touched = shard_inputs([REFS[0]._replace(mtime_us=REFS[0].mtime_us + 1), *REFS[1:]])
  assert touched.names_sha256 == base.names_sha256 and touched.sha256 != base.sha256
  resized = shard_inputs([REFS[0]._replace(size=1), *REFS[1:]])
  assert resized.names_sha256 == base.names_sha256 and resized.sha256 != base.sha256
  assert shard_inputs(REFS[1:]).names_sha256 != base.names_sha256
  assert (base.files, base.bytes) == (6, sum(r.size for r in REFS))


def test_labels_and_class_texts_count_apart_from_the_files():
  base = shard_inputs(REFS)
  for other in (
    shard_inputs([REFS[0]._replace(label=9), *REFS[1:]]),
    shard_inputs([REFS[0]._replace(synset='b'), *REFS[1:]]),
    shard_inputs(REFS, class_texts_digest({'a': 'an a'})),
  ):
    assert (other.names_sha256, other.sha256) == (base.names_sha256, base.sha256)
    assert other.labels_sha256 != base.labels_sha256
  assert class_texts_digest({}) == class_texts_digest(None) == ''


def test_listing_hash_ignores_grouping_order_and_mtimes():
  whole = InputFingerprint().add(shard_inputs(REFS))
  parts = (
    InputFingerprint()
    .add(shard_inputs(REFS[4:]))
    .add(InputFingerprint().add(shard_inputs(REFS[:2])).add(shard_inputs(REFS[2:4])))
  )
  assert parts == whole
  copied = InputFingerprint().add(shard_inputs([r._replace(mtime_us=0) for r in REFS]))
  assert copied == whole  # A copy of the folder (new mtimes) has the same listing hash.
  assert InputFingerprint().add(shard_inputs(REFS[:5])).listing_sha256 != whole.listing_sha256


def _finished(inputs, codecs=None, file_bytes=100, phashes=()):
  return ShardSummary(
    'train-00000-of-00001',
    'train',
    inputs=inputs,
    file_bytes=file_bytes,
    file_sha256='0' * 64,
    codecs=codecs,
    phashes=phashes,
  )


@pytest.mark.parametrize(
  'finished, shard_bytes, now, outcome',
  [
    (None, None, REFS, resume.WRITTEN),
    (_finished(shard_inputs(REFS)), None, REFS, resume.WRITTEN),
    (_finished(shard_inputs(REFS)), 100, REFS, resume.KEPT),
    (_finished(shard_inputs(REFS)), 99, REFS, resume.SHARD_CHANGED),
    (_finished(shard_inputs(REFS)), 100, REFS[:-1], resume.OTHER_FILES),
    (
      _finished(shard_inputs(REFS)),
      100,
      [REFS[0]._replace(size=7), *REFS[1:]],
      resume.FILES_MODIFIED,
    ),
    (
      _finished(shard_inputs(REFS)),
      100,
      [REFS[0]._replace(label=3), *REFS[1:]],
      resume.LABELS_CHANGED,
    ),
    (_finished(shard_inputs(REFS), codecs={'pillow': '12.1.1'}), 100, REFS, resume.OTHER_CODECS),
    (ShardSummary('train-00000-of-00001', 'train'), 100, REFS, resume.NO_FINGERPRINT),
    (_finished(shard_inputs(REFS), phashes=None), 100, REFS, resume.NO_PHASHES),
  ],
)
def test_resume_decisions(finished, shard_bytes, now, outcome):
  codecs = {'pillow': '12.3.0'} if finished and finished.codecs else None
  assert resume.decide(finished, shard_bytes, shard_inputs(now), codecs) == outcome


def test_sidecars_round_trip_and_old_ones_read_without_a_fingerprint():
  summary = dataclasses.replace(_finished(shard_inputs(REFS), {'pillow': '12.3.0'}), num_examples=6)
  value = json.loads(layout.to_json(summary.to_json()))
  assert ShardSummary.from_json(value) == summary
  old = {
    k: v for k, v in value.items() if k not in ('inputs', 'file_bytes', 'file_sha256', 'codecs')
  }
  assert ShardSummary.from_json(old).inputs is None
  old_summary = ShardSummary.from_json(old)
  assert resume.decide(old_summary, 100, shard_inputs(REFS), None) == resume.NO_FINGERPRINT


def test_resume_message_names_every_reason():
  assert resume.resume_message({'kept': 14, resume.FILES_MODIFIED: 2, 'written': 3}) == (
    'resumed: 14 shards kept, 2 rewritten because their input changed (2 with files replaced or '
    'modified in place), 3 missing'
  )
  line = resume.resume_message(
    {
      'kept': 1,
      resume.OTHER_FILES: 20,
      resume.NO_FINGERPRINT: 2,
      resume.OTHER_CODECS: 3,
      resume.SHARD_CHANGED: 1,
      resume.LABELS_CHANGED: 4,
    },
    deleted=2,
  )
  assert line.startswith(
    'resumed: 1 shard kept, 20 rewritten because their input changed (20 with '
    'other files: a file added or removed (or another class order) moves '
    'every later file'
  )
  for part in (
    '4 rewritten because their labels, classes or class texts changed',
    '1 rewritten because the shard file no longer had the size',
    '3 rewritten because other codec versions wrote them',
    '2 rewritten because an earlier version wrote them',
    '0 missing',
    '; 2 shards of an earlier shard count deleted',
  ):
    assert part in line, line


# ------------------------------------------------------------------------------------------------
# End to end: an interrupted run, then the input changes, then --resume.


def _input(tmp_path):
  source = tmp_path / 'input'
  shutil.copytree(SAMPLE_DIR, source)
  (source / 'ATTRIBUTION.md').unlink()
  return source


def _interrupt(output, *shards):
  """What a killed run leaves: some shards never renamed into place, no _SUCCESS."""
  for name in shards:
    (output / name).unlink()
  (output / layout.SUCCESS_FILE).unlink()


def _shard_of(output, filename):
  """The shard holding the record of `filename` (relative to the split root)."""
  from transforms.imaging.example import parse_example  # pylint: disable=import-outside-toplevel
  from transforms.output.file_format import read_tfrecords  # pylint: disable=import-outside-toplevel

  for shard in sorted(output.glob('*-of-*')):
    with open(shard, 'rb') as f:
      for record in read_tfrecords(f):
        if parse_example(record.data).filename == filename:
          return shard.name
  raise AssertionError(f'{filename} is in no shard')


def _resume_line(capsys):
  return next(line for line in capsys.readouterr().out.splitlines() if line.startswith('resumed:'))


def _assert_like_a_fresh_run(source, output, tmp_path, *flags):
  fresh = tmp_path / f'fresh-{len(list(tmp_path.iterdir()))}'
  assert convert(source, fresh, *flags) == 0
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(fresh)))


@pytest.mark.slow
def test_resume_after_files_were_replaced_added_and_removed(tmp_path, capsys):
  source, output = _input(tmp_path), tmp_path / 'out'
  assert convert(source, output, *SAMPLE_FLAGS) == 0
  shards = sorted(p.name for p in output.glob('*-of-*'))

  _interrupt(output, shards[1])
  assert convert(source, output, *SAMPLE_FLAGS, '--resume') == 0
  assert _resume_line(capsys) == (
    'resumed: 4 shards kept, 0 rewritten because their input changed, 1 missing'
  )
  _assert_like_a_fresh_run(source, output, tmp_path, *SAMPLE_FLAGS)

  # The same name, other bytes (same size: the modification time tells).
  owl = source / 'animal' / 'gc_owl.JPEG'
  data = bytearray(owl.read_bytes())
  data[-3] ^= 0x01
  stat = owl.stat()
  owl.write_bytes(bytes(data))
  os.utime(owl, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
  _interrupt(
    output, next(name for name in shards if name != _shard_of(output, 'animal/gc_owl.JPEG'))
  )
  assert convert(source, output, *SAMPLE_FLAGS, '--resume') == 0
  assert _resume_line(capsys) == (
    'resumed: 3 shards kept, 1 rewritten because their input changed (1 '
    'with files replaced or modified in place), 1 missing'
  )
  _assert_like_a_fresh_run(source, output, tmp_path, *SAMPLE_FLAGS)

  # A file added and one removed: the files after them move to other shards.
  shutil.copy(
    source / 'space' / sorted(os.listdir(source / 'space'))[0], source / 'space' / 'new.jpg'
  )
  (source / 'flower' / sorted(os.listdir(source / 'flower'))[0]).unlink()
  _interrupt(output, shards[0])
  assert convert(source, output, *SAMPLE_FLAGS, '--resume') == 0
  line = _resume_line(capsys)
  assert 'rewritten because their input changed' in line, line
  assert (
    'with other files: a file added or removed (or another class order) moves every later file '
    'of its split to another shard'
  ) in line, line
  assert not line.startswith('resumed: 4 shards kept'), line
  _assert_like_a_fresh_run(source, output, tmp_path, *SAMPLE_FLAGS)
  stats = json.loads((output / 'stats.json').read_text())
  assert stats['num_examples'] + stats['num_rejected'] == 54


@pytest.mark.slow
def test_an_automatic_shard_count_that_changes_deletes_the_old_shards(tmp_path, capsys):
  """Twice the files give twice the planned bytes: 8 automatic shards of ~0.25 MB instead of 4."""
  source, output = _input(tmp_path), tmp_path / 'out'
  flags = ('--target_shard_mb', '0.25')
  assert convert(source, output, *flags) == 0
  assert len(list(output.glob('train-*-of-00004'))) == 4
  _interrupt(output, 'train-00002-of-00004')
  for path in sorted(source.glob('*/*')):
    shutil.copy(path, path.parent / f'copy_{path.name}')
  assert convert(source, output, *flags, '--resume') == 0
  line = _resume_line(capsys)
  assert line.startswith(
    'resumed: 0 shards kept, 0 rewritten because their input changed, 8 missing; '
    '3 shards of an earlier shard count deleted'
  ), line  # 1 never finished
  assert sorted(p.name for p in output.glob('train-*')) == [
    f'train-{i:05d}-of-00008' for i in range(8)
  ]
  assert not list((output / '_work').glob('*-of-00004.json'))
  _assert_like_a_fresh_run(source, output, tmp_path, *flags)


def test_shards_of_an_earlier_version_or_other_codecs_are_rewritten(
  sample_output, tmp_path, capsys
):
  output = tmp_path / 'out'
  shutil.copytree(sample_output, output)
  sidecars = sorted((output / '_work').glob('*-of-*.json'))
  old = json.loads(sidecars[0].read_text())
  for key in ('inputs', 'file_bytes', 'file_sha256', 'codecs'):
    old.pop(key)
  sidecars[0].write_text(json.dumps(old))
  other = json.loads(sidecars[1].read_text())
  other['codecs']['pillow'] = '11.0.0'
  sidecars[1].write_text(json.dumps(other))
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--resume') == 0
  line = _resume_line(capsys)
  assert line == (
    'resumed: 3 shards kept, 0 rewritten because their input changed, 1 rewritten '
    'because other codec versions wrote them, 1 rewritten because an earlier version '
    'wrote them without an input fingerprint, 0 missing'
  ), line
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(sample_output)))


def test_a_worker_with_other_codecs_refuses_to_write(tmp_path, monkeypatch, capsys):
  """The driver records its codec versions in the graph; a worker whose own differ stops (here the
  driver's are faked: the in-process worker has the real ones)."""
  from pipeline import graph  # pylint: disable=import-outside-toplevel

  real = graph.codec_versions
  monkeypatch.setattr(graph, 'codec_versions', lambda *args: {**real(*args), 'pillow': '11.0.0'})
  assert convert(SAMPLE_DIR, tmp_path / 'out', *SAMPLE_FLAGS) == 1
  error = capsys.readouterr().err
  assert "this worker's image codecs differ from the driver's" in error, error
  assert 'pillow 12.' in error and '11.0.0 on the driver' in error and 'constraints.txt' in error
  assert not list((tmp_path / 'out').glob('*-of-*'))


@pytest.mark.slow
def test_an_edited_labels_file_or_class_text_file_rewrites_every_shard(tmp_path, capsys):
  """The same files and flags; what the records store besides the images changed."""
  source, output = _input(tmp_path), tmp_path / 'out'
  labels, texts = tmp_path / 'labels.txt', tmp_path / 'texts.txt'
  classes = sorted(p.name for p in source.iterdir())
  labels.write_text('\n'.join(classes) + '\n')
  texts.write_text(''.join(f'{name} a {name}\n' for name in classes))
  flags = (*SAMPLE_FLAGS, '--labels_file', labels, '--class_text_file', texts)
  assert convert(source, output, *flags) == 0
  labels.write_text('\n'.join(reversed(classes)) + '\n')
  _interrupt(output, 'train-00000-of-00003')
  assert convert(source, output, *flags, '--resume') == 0
  # Another label order also moves files to other shards: a split's classes are concatenated by
  # label.
  line = _resume_line(capsys)
  assert line.startswith('resumed: 0 shards kept, ') and line.endswith(', 1 missing'), line
  assert (
    'rewritten because their labels, classes or class texts changed (a class folder added or '
    'removed, or --labels_file, --validation_ground_truth or --class_text_file edited)'
  ) in line
  _assert_like_a_fresh_run(source, output, tmp_path, *flags)
  texts.write_text(''.join(f'{name} the {name}\n' for name in classes))
  (output / layout.SUCCESS_FILE).unlink()
  assert convert(source, output, *flags, '--resume') == 0
  assert _resume_line(capsys).startswith(
    'resumed: 0 shards kept, 0 rewritten because their input '
    'changed, 5 rewritten because their labels'
  )
  _assert_like_a_fresh_run(source, output, tmp_path, *flags)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_resume_after_the_input_changed_on_s3(tmp_path, capsys):
  """The same on the S3 test server: sizes and times from the LIST response (seconds)."""
  from clusters.s3 import moto_bucket  # pylint: disable=import-outside-toplevel
  from pipeline.run import run  # pylint: disable=import-outside-toplevel

  with moto_bucket('resume') as (s3, client):
    s3.upload_tree('resume', 'in/', _input(tmp_path))

    def convert_s3(out, *flags):
      return run(
        ['--input', 's3://resume/in/', '--output', out, *SAMPLE_FLAGS, *s3.beam_args(), *flags]
      )

    assert convert_s3('s3://resume/out/') == 0
    for key in ('out/train-00002-of-00003', 'out/_SUCCESS'):  # An interrupted run.
      client.delete_object(Bucket='resume', Key=key)
    owl = (SAMPLE_DIR / 'animal' / 'gc_owl.JPEG').read_bytes()
    client.put_object(Bucket='resume', Key='in/animal/gc_cat.JPEG', Body=owl)  # replaced
    client.put_object(Bucket='resume', Key='in/space/added.JPEG', Body=owl)  # added
    removed = sorted(os.listdir(SAMPLE_DIR / 'flower'))[0]
    client.delete_object(Bucket='resume', Key=f'in/flower/{removed}')
    capsys.readouterr()
    assert convert_s3('s3://resume/out/', '--resume') == 0
    line = _resume_line(capsys)
    assert 'rewritten because their input changed (' in line and line.endswith(' missing'), line
    print(line)
    assert convert_s3('s3://resume/fresh/') == 0
    assert_same_dataset(read_dataset('s3://resume/out/'), read_dataset('s3://resume/fresh/'))
