"""pipeline.verify on real converter output: a clean output passes, every mutation is caught.

Two real conversions of the sample photos are used: the session's shared one (conftest's
`sample_output`, 3 train + 2 validation shards) and a gzip one with --label_offset 1 made here. Each
test copies one to its own tmp_path, damages it the way a crashed job, a bad disk or a hand edit
would, and checks that verify names the file, the record and the problem.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from pipeline import verify as verify_lib
from transforms.output import file_format
from transforms.imaging.example import example_class

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope='module')
def converted(sample_output, tmp_path_factory) -> dict:
  """compression -> a finished converter output (read-only: copy before changing it)."""
  gzipped = tmp_path_factory.mktemp('gzip_output')
  assert (
    convert(
      SAMPLE_DIR,
      gzipped,
      *SAMPLE_FLAGS,
      '--compression',
      'gzip',
      '--label_offset',
      1,
      '--resize_shorter_side',
      64,
      '--center_crop',
      64,
    )
    == 0
  )
  return {'none': sample_output, 'gzip': gzipped}


@pytest.fixture
def output(converted, tmp_path) -> Path:
  """A private copy of the plain (uncompressed) output."""
  return Path(shutil.copytree(converted['none'], tmp_path / 'out'))


def _manifest(output: Path) -> dict:
  return json.loads((output / 'manifest.json').read_text())


def _write_manifest(output: Path, manifest: dict) -> None:
  (output / 'manifest.json').write_text(json.dumps(manifest))


def _shard(output: Path, split: str = 'train', index: int = 0) -> Path:
  return output / _manifest(output)['splits'][split]['shards'][index]['file']


def _open(path: Path, mode: str):
  """The shard's (decompressed) TFRecord stream; gzip is recognised by its magic bytes."""
  is_gzip = path.exists() and path.read_bytes()[:2] == b'\x1f\x8b'
  return gzip.open(path, mode) if is_gzip else open(path, mode)


def _records(path: Path) -> list[file_format.FramedRecord]:
  with _open(path, 'rb') as handle:
    return list(file_format.read_tfrecords(handle))


def _messages(output: Path) -> list[str]:
  report = verify_lib.verify(str(output))
  assert not report.ok
  return [str(p) for p in report.problems]


def _changed(path: Path) -> str:
  """verify's message for a shard whose bytes are no longer those manifest.json records."""
  import hashlib  # pylint: disable=import-outside-toplevel

  entry = next(
    s
    for e in _manifest(path.parent)['splits'].values()
    for s in e['shards']
    if s['file'] == path.name
  )
  data = path.read_bytes()
  return (
    f'{path}: {len(data)} bytes with SHA-256 {hashlib.sha256(data).hexdigest()[:16]}..., but '
    f'manifest.json says {entry["bytes"]} bytes with SHA-256 {entry["sha256"][:16]}...: the '
    'file changed after it was written'
  )


def _rewrite_record(path: Path, index: int, edit) -> None:
  """Re-frame ``path`` with record ``index`` replaced by ``edit(Example)`` (valid crcs)."""
  payloads = [r.data for r in _records(path)]
  example = example_class().FromString(payloads[index])
  edit(example.features.feature)
  payloads[index] = example.SerializeToString(deterministic=True)
  from beam_private.tfrecord import write_record  # pylint: disable=import-outside-toplevel

  with _open(path, 'wb') as handle:
    for payload in payloads:
      write_record(handle, payload)


@pytest.mark.parametrize('compression', ['none', 'gzip'])
def test_clean_output_passes(converted, compression):
  output = converted[compression]
  report = verify_lib.verify(str(output))
  assert report.problems == []
  manifest = _manifest(output)
  assert manifest['compression'] == compression
  assert report.records_read == {s: e['num_examples'] for s, e in manifest['splits'].items()}
  assert set(report.records_read) == {'train', 'validation'}
  assert report.shards_read == 5
  assert verify_lib.main([str(output)]) == 0


def test_gzip_shards_really_are_gzip(converted):
  shard = _shard(converted['gzip'])
  assert shard.read_bytes()[:2] == b'\x1f\x8b'
  with gzip.open(shard, 'rb') as handle:
    assert (
      len(list(file_format.read_tfrecords(handle)))
      == _manifest(converted['gzip'])['splits']['train']['shards'][0]['num_examples']
    )


def test_framing_and_example_match_tensorflow(converted):
  """Our reader and Example descriptor agree with TensorFlow's on the converter's records."""
  tf = pytest.importorskip('tensorflow')
  shard = _shard(converted['none'])
  ours = _records(shard)
  theirs = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
  assert [r.data for r in ours] == theirs and all(r.data_crc_ok for r in ours)
  for payload in theirs:
    expected = tf.train.Example.FromString(payload)
    parsed = example_class().FromString(payload)
    assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(
      deterministic=True
    )
    assert (
      parsed.features.feature['image/class/label'].int64_list.value[0]
      == expected.features.feature['image/class/label'].int64_list.value[0]
    )


def test_corrupt_payload_byte_names_record(output):
  shard = _shard(output)
  target = _records(shard)[1]
  data = bytearray(shard.read_bytes())
  data[target.offset + 12 + len(target.data) // 2] ^= 0xFF
  shard.write_bytes(bytes(data))
  assert _messages(output) == [
    f'{shard}: record 1 (byte {target.offset}): data crc mismatch (corrupt record payload)',
    _changed(shard),
  ]


def test_corrupt_length_byte_stops_at_record(output):
  shard = _shard(output)
  target = _records(shard)[2]
  data = bytearray(shard.read_bytes())
  data[target.offset + 1] ^= 0x01
  shard.write_bytes(bytes(data))
  expected = _manifest(output)['splits']['train']['shards'][0]['num_examples']
  messages = _messages(output)
  assert (
    f'{shard}: record 2 (byte {target.offset}): length crc mismatch (corrupt record header)'
    in messages
  )
  assert f'{shard}: 2 records, manifest.json says {expected}' in messages


def test_truncated_shard(output):
  shard = _shard(output)
  last = _records(shard)[-1]
  shard.write_bytes(shard.read_bytes()[:-10])
  expected = _manifest(output)['splits']['train']['shards'][0]['num_examples']
  messages = _messages(output)
  assert (
    f'{shard}: record {last.index} (byte {last.offset}): truncated record: '
    f'{len(last.data) - 6} of {len(last.data) + 4} bytes after the header'
  ) in messages
  assert f'{shard}: {expected - 1} records, manifest.json says {expected}' in messages


@pytest.fixture
def gzip_output(converted, tmp_path) -> Path:
  """A private copy of the gzip output."""
  return Path(shutil.copytree(converted['gzip'], tmp_path / 'out'))


def test_truncated_gzip_shard(gzip_output):
  shard = _shard(gzip_output)
  expected = len(_records(shard))
  shard.write_bytes(shard.read_bytes()[:-100])
  messages = _messages(gzip_output)
  # The records before the cut are still read and checked; the problem is placed after them.
  read = int(messages[0].split(': record ')[1].split(':')[0])
  assert 0 < read < expected
  assert messages == [
    f'{shard}: record {read}: read failed after {read} records: EOFError: Compressed file '
    'ended before the end-of-stream marker was reached',
    _changed(shard),
    f'{shard}: {read} records, manifest.json says {expected}',
    f"{gzip_output / 'manifest.json'}: split 'train': read "
    f'{_manifest(gzip_output)["splits"]["train"]["num_examples"] - expected + read} records, '
    f'manifest says {_manifest(gzip_output)["splits"]["train"]["num_examples"]}',
  ]


def test_corrupt_byte_inside_gzip_shard(gzip_output):
  shard = _shard(gzip_output)
  data = bytearray(shard.read_bytes())
  data[len(data) // 2] ^= 0xFF
  shard.write_bytes(bytes(data))
  messages = _messages(gzip_output)
  # Where inflate notices depends on the deflate stream; it must be named at a record of this shard.
  assert messages and all(m.startswith(f'{shard}: record ') for m in messages[:1]), messages
  assert any('crc' in m or 'read failed' in m for m in messages), messages


def test_deleted_shard(output):
  manifest = _manifest(output)
  entry = manifest['splits']['validation']['shards'][1]
  (output / entry['file']).unlink()
  total = manifest['splits']['validation']['num_examples']
  assert _messages(output) == [
    f'{output / entry["file"]}: missing: listed in manifest.json',
    f"{output / 'manifest.json'}: split 'validation': read {total - entry['num_examples']} "
    f'records, manifest says {total}',
  ]


def test_extra_shard_file(output):
  extra = output / 'train-00003-of-00004'
  shutil.copy(_shard(output), extra)
  assert _messages(output) == [f'{extra}: extra shard file not listed in manifest.json']


def test_missing_success_marker(output):
  (output / '_SUCCESS').unlink()
  assert _messages(output) == [f'{output / "_SUCCESS"}: missing: the conversion did not finish']


def test_edited_shard_count_in_manifest(output):
  manifest = _manifest(output)
  shard = manifest['splits']['train']['shards'][0]
  real = shard['num_examples']
  shard['num_examples'] = real + 1
  _write_manifest(output, manifest)
  total = manifest['splits']['train']['num_examples']
  assert _messages(output) == [
    f"{output / 'manifest.json'}: split 'train': num_examples {total} but its shards add up "
    f'to {total + 1}',
    f'{output / shard["file"]}: {real} records, manifest.json says {real + 1}',
    _edited_manifest(output),
  ]


def test_edited_split_count_in_manifest(output):
  manifest = _manifest(output)
  total = manifest['splits']['train']['num_examples']
  manifest['splits']['train']['num_examples'] = total - 1
  _write_manifest(output, manifest)
  assert _messages(output) == [
    f"{output / 'manifest.json'}: split 'train': num_examples {total - 1} but its shards add up "
    f'to {total}',
    f"{output / 'manifest.json'}: split 'train': read {total} records, manifest says {total - 1}",
    _edited_manifest(output),
    f"{output / 'stats.json'}: split 'train': num_examples {total}, manifest.json says {total - 1}",
  ]


def _edited_manifest(output: Path) -> str:
  """verify's line for a manifest.json edited after the run (_SUCCESS lists its SHA-256)."""
  listed = dict(line.split('  ')[::-1] for line in (output / '_SUCCESS').read_text().splitlines())
  actual = hashlib.sha256((output / 'manifest.json').read_bytes()).hexdigest()
  return (
    f'{output / "manifest.json"}: changed since the run: SHA-256 {actual[:16]}..., but '
    f'_SUCCESS says {listed["manifest.json"][:16]}...'
  )


@pytest.mark.parametrize('compression', ['none', 'gzip'])
def test_label_out_of_range(converted, compression, tmp_path):
  output = Path(shutil.copytree(converted[compression], tmp_path / 'out'))
  manifest = _manifest(output)
  shard = _shard(output)
  start = manifest['label_offset']
  stop = start + manifest['num_classes']
  assert manifest['num_classes'] == 5 and start == {'none': 0, 'gzip': 1}[compression]

  def set_label(feature):
    feature['image/class/label'].int64_list.value[0] = stop  # one past the last class

  _rewrite_record(shard, 3, set_label)
  offset = _records(shard)[3].offset
  assert _messages(output) == [
    f'{shard}: record 3 (byte {offset}): label {stop} outside [{start}, {stop})',
    _changed(shard),
  ]


def test_png_payload_is_not_jpeg(output):
  shard = _shard(output, 'validation')
  png = next(SAMPLE_DIR.glob('*/*.png'))
  from PIL import Image  # pylint: disable=import-outside-toplevel

  with Image.open(png) as image:
    size = image.size

  def put_png(feature):
    feature['image/encoded'].bytes_list.value[0] = png.read_bytes()
    feature['image/width'].int64_list.value[0], feature['image/height'].int64_list.value[0] = size

  _rewrite_record(shard, 0, put_png)
  assert _messages(output) == [
    f'{shard}: record 0 (byte 0): image/encoded is PNG, not JPEG',
    _changed(shard),
  ]


def test_truncated_jpeg_payload(output):
  shard = _shard(output)

  def truncate(feature):
    encoded = feature['image/encoded'].bytes_list.value[0]
    feature['image/encoded'].bytes_list.value[0] = encoded[: len(encoded) // 2]

  _rewrite_record(shard, 0, truncate)
  messages = _messages(output)
  assert len(messages) == 2 and messages[1] == _changed(shard)
  assert messages[0].startswith(
    f'{shard}: record 0 (byte 0): image/encoded does not decode as JPEG: '
  )


def test_main_exit_code_and_output(output, capsys):
  shard = _shard(output, 'train', 2)
  shard.write_bytes(b'not a tfrecord at all')
  assert verify_lib.main([str(output)]) == 1
  err = capsys.readouterr().err
  assert f'PROBLEM {shard}: record 0 (byte 0): length crc mismatch' in err
  assert 'FAILED' in err


def test_missing_output_dir(tmp_path):
  messages = _messages(tmp_path / 'nothing-here')
  assert messages[0].endswith('_SUCCESS: missing: the conversion did not finish')
  assert 'manifest.json: cannot use manifest' in messages[1]


@pytest.mark.parametrize(
  'edit, expected',
  [
    (lambda m: m.pop('splits'), "KeyError: 'splits'"),
    (lambda m: m.update(format_version=2), 'ValueError: format_version 2, expected 1'),
    (lambda m: m['splits']['train'].pop('num_shards'), "KeyError: 'num_shards'"),
  ],
  ids=['no_splits', 'format_version', 'no_num_shards'],
)
def test_unusable_manifest(output, edit, expected):
  manifest = _manifest(output)
  edit(manifest)
  _write_manifest(output, manifest)
  assert _messages(output) == [f'{output / "manifest.json"}: cannot use manifest: {expected}']


def test_changed_bytes_that_still_parse_are_named_by_the_checksum(output):
  """A record rewritten with valid crcs and a valid Example (as a copy tool that changed bytes in
  place, or a hand edit, would leave it): only the checksum sees it."""
  shard = _shard(output, 'validation', 1)

  def rename(feature):
    feature['image/filename'].bytes_list.value[0] = b'flower/renamed.jpg'

  _rewrite_record(shard, 0, rename)
  assert _messages(output) == [_changed(shard)]
