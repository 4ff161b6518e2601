"""More shards requested than a split has files: AssignSplitShard caps the count at one file a shard
(tests/test_transforms.py::test_shard_sizes_differ_by_at_most_one), so the run writes every shard
its names promise and its output verifies (it once failed in WriteMetadata after all the work)."""

import json
import shutil

from conftest import SAMPLE_DIR, convert
from pipeline import verify as verify_lib


def test_more_shards_than_files_are_capped_and_the_output_verifies(tmp_path):
  source = tmp_path / 'input' / 'animal'
  source.mkdir(parents=True)
  for name in ('gc_cat.JPEG', 'gc_owl.JPEG'):
    shutil.copy(SAMPLE_DIR / 'animal' / name, source / name)
  output = tmp_path / 'out'
  assert convert(source.parent, output, '--train_shards', '4') == 0
  manifest = json.loads((output / 'manifest.json').read_text())
  assert manifest['splits']['train']['num_shards'] == 2
  assert [s['num_examples'] for s in manifest['splits']['train']['shards']] == [1, 1]
  assert verify_lib.verify(str(output)).ok
