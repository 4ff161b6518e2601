"""Shared fixtures: the embedded sample photos and one converted sample dataset per test session."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / 'data' / 'sample_images'
# Flags of the shared sample conversion; tests that need other flags run their own.
SAMPLE_FLAGS = ('--train_shards', '3', '--validation_shards', '2', '--validation_fraction', '0.2')


def convert(input_dir, output_dir, *flags) -> int:
  """Runs the converter in-process (FnApiRunner, in_memory unless flags say otherwise)."""
  from pipeline.run import run  # pylint: disable=import-outside-toplevel
  return run(['--input', str(input_dir), '--output', str(output_dir), *map(str, flags)])


@pytest.fixture(scope='session')
def sample_output(tmp_path_factory) -> pathlib.Path:
  """The sample photos converted once with SAMPLE_FLAGS (read-only for tests)."""
  output = tmp_path_factory.mktemp('sample_output')
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS) == 0
  return output


def assert_same_output(actual: pathlib.Path, expected: pathlib.Path) -> None:
  """The same top-level files with the same bytes, but provenance.json (times, run id, runner)."""
  from transforms.layout import PROVENANCE_FILE  # pylint: disable=import-outside-toplevel
  names = sorted(p.name for p in expected.iterdir() if p.is_file() and p.name != PROVENANCE_FILE)
  assert names == sorted(p.name for p in actual.iterdir()
                         if p.is_file() and p.name != PROVENANCE_FILE)
  for name in names:
    assert (actual / name).read_bytes() == (expected / name).read_bytes(), name


def copies_of_samples(root: pathlib.Path, copies: int) -> pathlib.Path:
  """An input of `copies` x the sample photos (`<class>/<i>_<name>`) under root; returns root."""
  import shutil  # pylint: disable=import-outside-toplevel
  for i in range(copies):
    for path in SAMPLE_DIR.glob('*/*'):
      target = root / path.parent.name / f'{i}_{path.name}'
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copy(path, target)
  return root


def sample_files():
  """(class, path) of every sample photo, sorted."""
  return sorted((p.parent.name, p) for p in SAMPLE_DIR.glob('*/*') if p.is_file())


os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


# ---------------------------------------------------------------------------------------------
# Readers' fixtures (tests/test_read.py, test_report.py, test_tfds.py, test_model_garden.py).

READERS_FLAGS = ('--train_shards', '2', '--validation_shards', '1', '--validation_fraction', '0.2',
                 '--label_offset', '1')


@pytest.fixture(scope='session')
def readers_offset1_output(tmp_path_factory) -> pathlib.Path:
  """The sample photos plus two unreadable files (a truncated JPEG, a text file named .jpg),
  converted once with READERS_FLAGS (--label_offset 1, as for Model Garden); read-only for tests."""
  import shutil  # pylint: disable=import-outside-toplevel
  work = tmp_path_factory.mktemp('readers_offset1')
  photos = work / 'photos'
  shutil.copytree(SAMPLE_DIR, photos)
  cat = (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes()
  (photos / 'animal' / 'zz_truncated.jpg').write_bytes(cat[:len(cat) // 2])
  (photos / 'flower' / 'zz_notes.jpg').write_text('not an image\n')
  output = work / 'output'
  assert convert(photos, output, *READERS_FLAGS) == 0
  return output
