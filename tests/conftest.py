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

READERS_FLAGS = (
  '--train_shards',
  '2',
  '--validation_shards',
  '1',
  '--validation_fraction',
  '0.2',
  '--label_offset',
  '1',
)


@pytest.fixture(scope='session')
def readers_offset1_output(tmp_path_factory) -> pathlib.Path:
  """The sample photos plus two unreadable files (a truncated JPEG, a text file named .jpg),
  converted once with READERS_FLAGS (--label_offset 1, as for Model Garden); read-only for tests."""
  import shutil  # pylint: disable=import-outside-toplevel

  work = tmp_path_factory.mktemp('readers_offset1')
  photos = work / 'photos'
  shutil.copytree(SAMPLE_DIR, photos)
  (photos / 'ATTRIBUTION.md').unlink()  # A file beside the class folders would be a third reject.
  cat = (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes()
  (photos / 'animal' / 'zz_truncated.jpg').write_bytes(cat[: len(cat) // 2])
  (photos / 'flower' / 'zz_notes.jpg').write_text('not an image\n')
  output = work / 'output'
  assert convert(photos, output, *READERS_FLAGS) == 0
  return output


# ---------------------------------------------------------------------------------------------
# Splits and shard names (tests/test_splits.py, test_shard_names.py, test_config.py,
# test_model_garden.py, test_model_garden_yaml.py).

# The sample photos split by fractions into train/validation/test, with TFDS's own shard names: the
# same flags as SAMPLE_FLAGS otherwise, so its validation shards are sample_output's, byte for byte.
TFDS_TEMPLATE = 'name-{split}.tfrecord-{index:05d}-of-{num_shards:05d}'
FRACTIONS_FLAGS = (*SAMPLE_FLAGS, '--test_fraction', '0.1', '--shard_name_template', TFDS_TEMPLATE)
SPLIT_FOLDERS_FLAGS = ('--label_offset', '1', '--train_shards', '2')


def arrange_split_folders(root: pathlib.Path) -> pathlib.Path:
  """The sample photos as root/train/, root/val/ and root/test/ (<class>/<image> in each): per class,
  in file name order, the last two files in val/, the one before them in test/, the rest in train/."""
  import shutil  # pylint: disable=import-outside-toplevel

  for klass, files in files_by_class().items():
    for i, path in enumerate(files):
      split = 'val' if i >= len(files) - 2 else 'test' if i == len(files) - 3 else 'train'
      (root / split / klass).mkdir(parents=True, exist_ok=True)
      shutil.copy(path, root / split / klass / path.name)
  return root


def files_by_class():
  """{class: paths of its sample photos, sorted}."""
  by_class = {}
  for klass, path in sample_files():
    by_class.setdefault(klass, []).append(path)
  return by_class


@pytest.fixture(scope='session')
def split_folders_output(tmp_path_factory) -> pathlib.Path:
  """The sample photos arranged in train/ val/ test/ folders, converted once with
  SPLIT_FOLDERS_FLAGS (--label_offset 1, as for Model Garden); read-only for tests."""
  work = tmp_path_factory.mktemp('split_folders')
  output = work / 'output'
  assert convert(arrange_split_folders(work / 'photos'), output, *SPLIT_FOLDERS_FLAGS) == 0
  return output


@pytest.fixture(scope='session')
def fractions_output(tmp_path_factory) -> pathlib.Path:
  """The sample photos split by --validation_fraction 0.2 and --test_fraction 0.1 into shards named
  by TFDS_TEMPLATE (FRACTIONS_FLAGS); read-only for tests."""
  output = tmp_path_factory.mktemp('fractions') / 'output'
  assert convert(SAMPLE_DIR, output, *FRACTIONS_FLAGS) == 0
  return output
