"""--shard_name_template end to end: refused before any work when unsafe, recorded in manifest.json,
and followed by --overwrite, --resume, verify, read and the TFDS metadata."""

import json
import logging
import shutil

import pytest

from clusters.outputs import assert_same_dataset, read_dataset
from conftest import FRACTIONS_FLAGS, SAMPLE_DIR, TFDS_TEMPLATE, convert
from pipeline import read, verify

SLIM_TEMPLATE = 'flowers_{split}_{index:05d}-of-{num_shards:05d}.tfrecord'


@pytest.mark.parametrize(
  'template, message',
  [
    (
      'data-{index:05d}-of-{num_shards:05d}',
      "gives splits 'train' and 'validation' the same file names",
    ),
    ('../{split}-{index}-of-{num_shards}', "makes names with '/'"),
    ('_{split}-{index}-of-{num_shards}', 'starting with "_"'),
    ('{split}-{index}', 'must use {index} and {num_shards}'),
  ],
)
def test_unsafe_templates_fail_before_any_work(tmp_path, capsys, template, message):
  code = convert(
    SAMPLE_DIR, tmp_path / 'out', '--validation_fraction', '0.2', '--shard_name_template', template
  )
  assert code == 2
  err = capsys.readouterr().err
  assert '--shard_name_template' in err and message in err
  assert not (tmp_path / 'out').exists()


def test_one_split_needs_no_split_field_and_tfds_reads_it(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  output = tmp_path / 'out'
  assert (
    convert(
      SAMPLE_DIR,
      output,
      '--train_shards',
      '2',
      '--shard_name_template',
      'data-{index:05d}-of-{num_shards:05d}.tfrecord',
    )
    == 0
  )
  assert sorted(p.name for p in output.glob('data-*')) == [
    'data-00000-of-00002.tfrecord',
    'data-00001-of-00002.tfrecord',
  ]
  assert verify.verify(str(output)).ok
  train = tfds.builder_from_directory(str(output)).as_dataset(split='train')
  assert sum(1 for _ in train) == 54


def test_names_tfds_cannot_express_skip_its_metadata_with_a_warning(tmp_path, caplog):
  output = tmp_path / 'out'
  with caplog.at_level(logging.WARNING):
    assert (
      convert(
        SAMPLE_DIR,
        output,
        '--validation_fraction',
        '0.2',
        '--shard_name_template',
        '{split}-{index}-of-{num_shards}.rec',
      )
      == 0
    )
  assert 'Not writing TFDS metadata' in caplog.text and '5 digits' in caplog.text
  assert not (output / 'dataset_info.json').exists()
  assert (output / 'train-0-of-1.rec').exists()
  assert verify.verify(str(output)).ok
  assert read.shard_files(str(output), 'validation') == [str(output / 'validation-0-of-1.rec')]


def test_overwrite_with_new_names_leaves_no_old_shard(fractions_output, tmp_path):
  output = tmp_path / 'out'
  shutil.copytree(fractions_output, output)
  assert (
    convert(
      SAMPLE_DIR,
      output,
      '--overwrite',
      '--validation_fraction',
      '0.2',
      '--shard_name_template',
      SLIM_TEMPLATE,
    )
    == 0
  )
  assert not list(output.glob('name-*'))  # fractions_output's shards (TFDS_TEMPLATE) are gone
  assert sorted(p.name for p in output.glob('flowers_*')) == [
    'flowers_train_00000-of-00001.tfrecord',
    'flowers_validation_00000-of-00001.tfrecord',
  ]
  assert verify.verify(str(output)).ok


def test_resume_follows_the_recorded_names(fractions_output, tmp_path, capsys):
  output = tmp_path / 'out'
  shutil.copytree(fractions_output, output)
  manifest = json.loads((output / 'manifest.json').read_text())
  missing = manifest['splits']['test']['shards'][0]['file']
  (output / missing).unlink()  # An interrupted run: a shard missing, no _SUCCESS.
  (output / '_SUCCESS').unlink()
  renamed = [SLIM_TEMPLATE if flag == TFDS_TEMPLATE else flag for flag in FRACTIONS_FLAGS]
  assert convert(SAMPLE_DIR, output, *renamed, '--resume') == 2
  err = capsys.readouterr().err
  assert 'these flags differ from it' in err and '--shard_name_template was ' in err, err
  assert convert(SAMPLE_DIR, output, *FRACTIONS_FLAGS, '--resume') == 0
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(fractions_output)))
