"""model_garden.yaml: its values from the manifest, its globs against the real shard files.

(tests/test_model_garden.py trains Model Garden from the file; this file needs no Model Garden.)"""

import glob
import json

import pytest
import yaml

from conftest import SAMPLE_DIR, TFDS_TEMPLATE, convert
from transforms.output.layout import OutputLayout, ShardNameTemplate
from transforms.metadata.model_garden import model_garden_config


def _manifest(train=100, validation=25, test=0, compression='none'):
  counts = {'train': train, 'validation': validation, 'test': test}
  return {
    'num_classes': 10,
    'label_offset': 1,
    'compression': compression,
    'splits': {split: {'num_examples': n} for split, n in counts.items() if n},
  }


def test_steps_and_learning_rate_follow_counts_and_batch():
  config = model_garden_config(OutputLayout('gs://bucket/out'), _manifest(), batch_size=16)
  assert config['task']['model'] == {'num_classes': 11}
  assert config['task']['train_data'] == {
    'input_path': 'gs://bucket/out/train-*-of-*',
    'is_training': True,
    'global_batch_size': 16,
    'dtype': 'float32',
  }
  assert config['task']['validation_data'] == {
    'input_path': 'gs://bucket/out/validation-*-of-*',
    'is_training': False,
    'global_batch_size': 16,
    'dtype': 'float32',
    'drop_remainder': False,
  }
  trainer = config['trainer']
  steps_per_epoch = 100 // 16  # 6
  assert (trainer['train_steps'], trainer['steps_per_loop'], trainer['validation_steps']) == (
    90 * steps_per_epoch,
    steps_per_epoch,
    2,
  )  # ceil(25 / 16): every validation example once
  schedule = trainer['optimizer_config']
  assert schedule['learning_rate']['stepwise'] == {
    'boundaries': [30 * 6, 60 * 6, 80 * 6],
    'values': [0.00625, 0.000625, 6.25e-05, 6.25e-06],
  }
  assert schedule['warmup']['linear'] == {'warmup_steps': 5 * 6}


def test_small_outputs_gzip_and_missing_splits():
  config = model_garden_config(
    OutputLayout('/o', ShardNameTemplate(TFDS_TEMPLATE)),
    _manifest(train=10, validation=0, compression='gzip'),
    1024,
  )
  assert config['trainer']['train_steps'] == 90 and config['trainer']['steps_per_loop'] == 1
  assert config['task']['train_data']['file_type'] == 'tfrecord_compressed'
  assert config['task']['train_data']['input_path'] == '/o/name-train.tfrecord-*-of-*'
  assert 'validation_data' not in config['task'] and 'validation_steps' not in config['trainer']
  assert model_garden_config(OutputLayout('/o'), _manifest(train=0), 1024) is None


@pytest.mark.parametrize('fixture', ['split_folders_output', 'fractions_output'])
def test_the_written_file_globs_exactly_each_splits_shards(request, fixture):
  output = request.getfixturevalue(fixture)
  manifest = json.loads((output / 'manifest.json').read_text())
  text = (output / 'model_garden.yaml').read_text()
  assert f'--config_file={output}/model_garden.yaml' in text
  config = yaml.safe_load(text)
  assert (
    config['task']['model']['num_classes'] == manifest['num_classes'] + manifest['label_offset']
  )
  for split, key in (('train', 'train_data'), ('validation', 'validation_data')):
    matched = sorted(glob.glob(config['task'][key]['input_path']))
    assert matched == sorted(str(output / s['file']) for s in manifest['splits'][split]['shards'])
  test_glob = text.split('Test split (the trainer does not read it): ')[1].split('\n')[0]
  assert sorted(glob.glob(test_glob)) == [
    str(output / s['file']) for s in manifest['splits']['test']['shards']
  ]


def test_batch_size_flag(tmp_path):
  output = tmp_path / 'out'
  assert (
    convert(SAMPLE_DIR, output, '--validation_fraction', '0.2', '--model_garden_batch_size', '8')
    == 0
  )
  config = yaml.safe_load((output / 'model_garden.yaml').read_text())
  train = json.loads((output / 'stats.json').read_text())['train']['num_examples']
  assert config['task']['train_data']['global_batch_size'] == 8
  assert config['trainer']['train_steps'] == 90 * (train // 8)
  assert (
    json.loads((output / 'manifest.json').read_text())['options']['model_garden_batch_size'] == 8
  )
