"""More shards requested than a split has files: AssignSplitShard leaves the extra shards empty
(tests/test_transforms.py::test_shard_sizes_differ_by_at_most_one), and a run must still end cleanly:
either a valid output (empty shards written, or the count capped) or a usage error before any work."""

import shutil

import pytest

from conftest import SAMPLE_DIR, convert
from pipeline import verify as verify_lib


def test_more_shards_than_files_gives_a_valid_output_or_an_early_usage_error(tmp_path, capsys):
  source = tmp_path / 'input' / 'animal'
  source.mkdir(parents=True)
  for name in ('gc_cat.JPEG', 'gc_owl.JPEG'):
    shutil.copy(SAMPLE_DIR / 'animal' / name, source / name)
  output = tmp_path / 'out'
  code = convert(source.parent, output, '--train_shards', '4')
  if code == 2:
    assert 'shards' in capsys.readouterr().err and not output.exists()
  else:
    assert code == 0
    assert verify_lib.verify(str(output)).ok
