"""The input folder as users hand it over: what tools leave behind, empty classes, loose files, links,
special files, oversized files and names that are not UTF-8; whole runs on copies of the sample
photos, and the safe reader (transforms/inputs/input_file.py) alone."""

import hashlib
import json
import os
import shutil
import stat
import threading

import pytest

from conftest import SAMPLE_DIR, convert
from transforms.inputs import input_file
from transforms.inputs.input_file import InputFileError, read_input
from transforms.inputs.survey import check_class_name, left_behind_line
from transforms.inputs.listing import InputError, is_left_behind, left_behind_kind

PHOTOS = {
  'animal': ['gc_cat.JPEG', 'gc_owl.JPEG'],
  'flower': ['skl_flower.jpg', 'mate_garden.JPEG'],
}
MAX_BYTES = 1_000_000  # --max_file_bytes of the runs: above every photo used, below the sparse file
SPARSE_BYTES = 64 << 20
NOT_UTF8 = b'caf\xe9.jpg'  # Latin-1 'café.jpg'
# What the hostile folder leaves behind, counted as the run prints it.
LEFT_BEHIND = {
  '.DS_Store': 3,
  '.ipynb_checkpoints': 2,
  '__MACOSX': 1,
  '_work': 1,
  'Thumbs.db': 1,
  'desktop.ini': 1,
}


def photos(root, classes=PHOTOS):
  for synset, names in classes.items():
    (root / synset).mkdir(parents=True, exist_ok=True)
    for name in names:
      shutil.copy(SAMPLE_DIR / synset / name, root / synset / name)


def hostile_folder(root):
  """Two classes of real photos plus every kind of litter and unreadable entry; returns {name in
  rejects.jsonl: expected reason}."""
  photos(root)
  (root / 'empty').mkdir()
  (root / 'empty' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / '__MACOSX' / 'animal').mkdir(parents=True)
  (root / '__MACOSX' / 'animal' / '._gc_cat.JPEG').write_bytes(b'\0\5\26\7' + b'\0' * 80)
  (root / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / 'animal' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / 'animal' / 'Thumbs.db').write_bytes(b'\xd0\xcf\x11\xe0')
  (root / 'flower' / 'desktop.ini').write_text('[.ShellClassInfo]\n')
  (root / '_work').mkdir()
  (root / '_work' / 'run.json').write_text('{}')
  (root / '.ipynb_checkpoints').mkdir()
  (root / 'animal' / '.ipynb_checkpoints').mkdir()
  shutil.copy(SAMPLE_DIR / 'flower' / 'mate_ladybird.JPEG', root / 'loose.jpg')
  os.symlink(root / 'animal' / 'missing.jpg', root / 'animal' / 'dangling.jpg')
  os.symlink('loop.jpg', root / 'animal' / 'loop.jpg')
  (root / 'animal' / 'photo.jpg').mkdir()
  os.mkfifo(root / 'animal' / 'pipe.jpg')
  os.symlink('/dev/zero', root / 'flower' / 'zero.jpg')
  with open(root / 'flower' / 'sparse.jpg', 'wb') as f:
    f.truncate(SPARSE_BYTES)
  shutil.copy(
    SAMPLE_DIR / 'flower' / 'kde_fallenleaf.JPEG', os.fsencode(root / 'flower') + b'/' + NOT_UTF8
  )
  return {
    'loose.jpg': 'not in a class folder',
    'animal/dangling.jpg': 'broken symbolic link (its target does not exist)',
    'animal/loop.jpg': 'symbolic link loop (too many levels of symbolic links)',
    'animal/photo.jpg': 'nested folder: only root/<class>/<image> is read',
    'animal/pipe.jpg': 'not a regular file (FIFO)',
    'flower/zero.jpg': 'not a regular file (character device, through a symbolic link)',
    'flower/sparse.jpg': f'file larger than --max_file_bytes ({SPARSE_BYTES} bytes > {MAX_BYTES})',
    'flower/caf\\xe9.jpg': 'file name is not valid UTF-8 (shown with \\x escapes)',
  }


def snapshot(root):
  """{relative path (bytes): (type, size, mtime_ns, sha256 of a regular file or a link's target)},
  links not followed, special files never opened."""
  tree = {}
  for folder, dirs, files in os.walk(os.fsencode(root)):
    for name in dirs + files:
      path = os.path.join(folder, name)
      info = os.lstat(path)
      content = None
      if stat.S_ISREG(info.st_mode):
        with open(path, 'rb') as f:
          content = hashlib.file_digest(f, 'sha256').hexdigest()
      elif stat.S_ISLNK(info.st_mode):
        content = os.readlink(path)
      tree[os.path.relpath(path, os.fsencode(root))] = (
        stat.S_IFMT(info.st_mode),
        info.st_size,
        info.st_mtime_ns,
        content,
      )
  return tree


def read_rejects(output):
  return [json.loads(line) for line in (output / 'rejects.jsonl').read_text('utf-8').splitlines()]


@pytest.mark.parametrize(
  'shard_flags', [['--train_shards', '2'], []], ids=['explicit', 'automatic']
)
def test_a_run_skips_litter_keeps_the_empty_class_and_rejects_the_unreadable(
  tmp_path, capsys, shard_flags
):
  root = tmp_path / 'in'
  expected = hostile_folder(root)
  before = snapshot(root)
  output = tmp_path / 'out'
  assert convert(root, output, '--max_file_bytes', MAX_BYTES, *shard_flags) == 0
  out, err = capsys.readouterr()
  assert snapshot(root) == before  # Nothing of the input was modified, read links included.
  assert (output / 'labels.txt').read_text('utf-8') == 'animal\nempty\nflower\n'
  rejects = read_rejects(output)
  assert {os.path.relpath(r['path'], root): r['reason'] for r in rejects} == expected
  assert next(r for r in rejects if r['path'].endswith('loose.jpg'))['split'] is None
  stats = json.loads((output / 'stats.json').read_text())
  assert stats['num_examples'] == 4 and stats['num_rejected'] == len(expected)
  assert err.count('warning:') == 1
  assert (
    f'warning: 1 class folder is empty (only left-behind files or nothing): its label is kept '
    f'in labels.txt, with no examples: {root / "empty"}'
  ) in err.splitlines()
  lines = out.splitlines()
  assert all(len(line) <= 80 for line in lines)
  assert (
    'skipped 9 files and folders that tools leave behind (3 .DS_Store, 2 .ipynb_checkpoints, '
    '1 __MACOSX, 1 _work, 1 desktop.ini, 1 Thumbs.db)'
  ) in ' '.join(out.split())  # wrapped
  assert sum(line.startswith('  rejected      1  not a regular file (') for line in lines) == 2
  for reason, count in (
    ('not in a class folder', 1),
    ('file name is not valid UTF-8', 1),
    ('broken symbolic link', 1),
    ('symbolic link loop', 1),
    ('file larger than --max_file_bytes', 1),
  ):
    assert any(line.startswith(f'  rejected {count:>6}  {reason}') for line in lines), reason
  out.encode('utf-8'), err.encode('utf-8')  # pylint: disable=expression-not-assigned  (no surrogates)


def test_the_plan_counts_the_same_and_writes_nothing(tmp_path, capsys):
  root = tmp_path / 'in'
  hostile_folder(root)
  assert convert(root, tmp_path / 'out', '--max_file_bytes', MAX_BYTES, '--plan') == 0
  out, err = capsys.readouterr()
  assert not (tmp_path / 'out').exists()
  assert f'its label is kept in labels.txt, with no examples: {root / "empty"}' in err
  lines = out.splitlines()
  assert 'Listing: 3 classes, 3 folders, 5 files to convert, 7 rejected by the listing' in lines
  assert '  rejected        1  not in a class folder' in lines
  assert sum(line.startswith('  rejected        1  not a regular file (') for line in lines) == 2
  assert '  ' + left_behind_line(LEFT_BEHIND) in lines
  assert '  rejected        1  file larger than --max_file_bytes' in lines  # in the sample


def test_split_folders_reject_loose_files_with_no_split(tmp_path, capsys):
  root = tmp_path / 'in'
  photos(root / 'train')
  photos(root / 'validation', {'animal': ['gc_panda.JPEG'], 'flower': ['mate_raindrops.JPEG']})
  shutil.copy(SAMPLE_DIR / 'animal' / 'gc_sheep.JPEG', root / 'train' / 'stray.JPEG')
  shutil.copy(SAMPLE_DIR / 'animal' / 'gc_moose.JPEG', root / 'top.JPEG')
  (root / 'train' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / '__MACOSX').mkdir()
  output = tmp_path / 'out'
  assert convert(root, output, '--train_shards', 2, '--validation_shards', 1) == 0
  out, _ = capsys.readouterr()
  assert (output / 'labels.txt').read_text() == 'animal\nflower\n'
  assert sorted(
    (os.path.relpath(r['path'], root), r['reason'], r['split']) for r in read_rejects(output)
  ) == [
    ('top.JPEG', 'not in a class folder', None),
    ('train/stray.JPEG', 'not in a class folder', None),
  ]
  assert (
    'skipped 2 files and folders that tools leave behind (1 .DS_Store, 1 __MACOSX)'
    in ' '.join(out.split())
  )
  stats = json.loads((output / 'stats.json').read_text())
  assert (stats['train']['num_examples'], stats['validation']['num_examples']) == (4, 2)


@pytest.mark.parametrize(
  'name, shown, what',
  [
    (b'new\nline', "'new\\nline'", 'a newline'),
    (b'carriage\rreturn', "'carriage\\rreturn'", 'a carriage return'),
    (b'caf\xe9', "b'caf\\xe9'", 'bytes that are not UTF-8'),
  ],
)
def test_a_class_name_that_cannot_be_a_labels_line_stops_before_any_work(
  tmp_path, capsys, name, shown, what
):
  root = tmp_path / 'in'
  photos(root)
  os.mkdir(os.fsencode(root) + b'/' + name)
  shutil.copy(SAMPLE_DIR / 'animal' / 'gc_cat.JPEG', os.fsencode(root) + b'/' + name + b'/cat.jpg')
  assert convert(root, tmp_path / 'out', '--train_shards', 1) == 2
  err = capsys.readouterr().err
  assert err == (
    f'error: the class folder {shown} in {root} has a name that cannot be one line of '
    f'labels.txt ({what}): rename the folder.\n'
  )
  assert not (tmp_path / 'out').exists()


def _read_with_deadline(path, max_bytes, seconds=5.0):
  """read_input in a thread: (the exception it raised or its bytes, whether it returned in time)."""
  result = []

  def target():
    try:
      result.append(read_input(str(path), max_bytes))
    except Exception as e:  # pylint: disable=broad-except
      result.append(e)

  thread = threading.Thread(target=target, daemon=True)
  thread.start()
  thread.join(seconds)
  return (result or [None])[0], not thread.is_alive()


def test_the_safe_reader_refuses_special_and_oversized_files_without_reading(tmp_path):
  photo = tmp_path / 'photo.jpg'
  shutil.copy(SAMPLE_DIR / 'animal' / 'gc_cat.JPEG', photo)
  os.mkfifo(tmp_path / 'pipe.jpg')
  os.symlink('/dev/zero', tmp_path / 'zero.jpg')
  os.symlink(tmp_path / 'missing', tmp_path / 'dangling.jpg')
  with open(tmp_path / 'sparse.jpg', 'wb') as f:
    f.truncate(SPARSE_BYTES)
  cases = {
    'pipe.jpg': 'not a regular file (FIFO)',  # open() of a FIFO would wait for a writer
    'zero.jpg': 'not a regular file (character device, through a symbolic link)',
    'dangling.jpg': 'broken symbolic link (its target does not exist)',
    'sparse.jpg': f'file larger than --max_file_bytes ({SPARSE_BYTES} bytes > {MAX_BYTES})',
  }
  for name, reason in cases.items():
    error, in_time = _read_with_deadline(tmp_path / name, MAX_BYTES)
    assert in_time and isinstance(error, InputFileError) and error.reason == reason, name
  assert read_input(str(photo), MAX_BYTES) == photo.read_bytes()
  size = photo.stat().st_size
  assert read_input(str(photo), size) == photo.read_bytes()  # The limit itself is allowed.
  with pytest.raises(InputFileError, match=rf'\({size} bytes > {size - 1}\)'):
    read_input(str(photo), size - 1)


def test_a_file_that_grew_past_the_limit_after_the_listing_is_refused(tmp_path, monkeypatch):
  photo = tmp_path / 'photo.jpg'
  shutil.copy(SAMPLE_DIR / 'animal' / 'gc_cat.JPEG', photo)
  size = photo.stat().st_size
  monkeypatch.setattr(input_file, 'check_input', lambda *args: 100)  # as if stat'ed when smaller
  with pytest.raises(InputFileError, match=f'more than {size - 10} bytes read'):
    read_input(str(photo), size - 10)
  assert read_input(str(photo), size) == photo.read_bytes()  # Grown, still within the limit.


def test_escaped_paths_and_names():
  assert input_file.escaped(os.fsdecode(b'/in/caf\xe9.jpg')) == '/in/caf\\xe9.jpg'
  assert input_file.escaped('/in/überclass ✓/x.jpg') == '/in/überclass ✓/x.jpg'
  assert not input_file.is_utf8(os.fsdecode(b'caf\xe9')) and input_file.is_utf8('café')


def test_max_file_bytes_is_recorded_only_when_set_and_must_be_positive(tmp_path, capsys):
  from pipeline import options  # pylint: disable=import-outside-toplevel

  default, _ = options.parse_args(['--input', 'in', '--output', 'out'])
  assert default.max_file_bytes == 268435456 and 'max_file_bytes' not in default.to_dict()
  small, _ = options.parse_args(['--input', 'in', '--output', 'out', '--max_file_bytes', '1000'])
  assert small.to_dict()['max_file_bytes'] == 1000
  photos(tmp_path / 'in')
  assert convert(tmp_path / 'in', tmp_path / 'out', '--max_file_bytes', 0) == 2
  assert capsys.readouterr().err == 'error: --max_file_bytes must be >= 1 (bytes), got 0.\n'
  assert not (tmp_path / 'out').exists()


def test_a_nul_in_a_class_name_is_refused_and_left_behind_kinds_are_bounded():
  """A NUL cannot be in a local file name; an object store's key can hold one."""
  with pytest.raises(InputError, match=r"class folder 'a\\x00b' in s3://bucket/in .*\(a NUL\)"):
    check_class_name('s3://bucket/in', 'a\0b')
  names = [
    '.DS_Store',
    '._IMG_1.jpg',
    '.Trashes',
    '__MACOSX',
    '_work',
    '_old',
    'THUMBS.DB',
    'Desktop.ini',
    '.ipynb_checkpoints',
  ]
  assert all(is_left_behind(n) for n in names) and not is_left_behind('cat.jpg')
  assert [left_behind_kind(n) for n in names] == [
    '.DS_Store',
    '._*',
    '.*',
    '__MACOSX',
    '_work',
    '_*',
    'Thumbs.db',
    'desktop.ini',
    '.ipynb_checkpoints',
  ]
