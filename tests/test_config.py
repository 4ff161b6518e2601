"""--config FILE (YAML, JSON, a manifest.json) and --print_config."""

import json

import pytest
import yaml
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from clusters.outputs import assert_same_dataset, read_dataset
from conftest import FRACTIONS_FLAGS, SAMPLE_DIR, convert
from pipeline.options import UsageError, parse_args


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


def test_command_line_wins_over_the_file_and_beam_options_pass_through(tmp_path):
  config = _write(
    tmp_path / 'conf' / 'run.yaml',
    f"""
input: {SAMPLE_DIR}
output: out                 # relative to the config file's folder
train-shards: 3             # dashes or underscores
validation_fraction: 0.2
overwrite: true
direct_num_workers: 2       # a Beam option
experiments: [a, b]
labels_file: null           # the default
""",
  )
  opts, beam_args = parse_args(
    ['--config', str(config), '--train_shards', '4', '--direct_num_workers=1']
  )
  assert (opts.train_shards, opts.validation_fraction, opts.overwrite) == (4, 0.2, True)
  assert opts.output == str(tmp_path / 'conf' / 'out') and opts.labels_file is None
  beam = PipelineOptions(beam_args)
  assert beam.view_as(DirectOptions).direct_num_workers == 1
  assert beam.get_all_options()['experiments'] == ['a', 'b']


def test_json_config_and_paths_relative_to_it(tmp_path):
  (tmp_path / 'conf' / 'labels.txt').parent.mkdir(parents=True)
  (tmp_path / 'conf' / 'labels.txt').write_text('space\nanimal\n')
  config = _write(
    tmp_path / 'conf' / 'run.json',
    json.dumps(
      {
        'input': str(SAMPLE_DIR),
        'output': str(tmp_path / 'out'),
        'labels_file': 'labels.txt',
        'label-offset': 1,
      }
    ),
  )
  opts, _ = parse_args(['--config', str(config)])
  assert opts.labels_file == str(tmp_path / 'conf' / 'labels.txt') and opts.label_offset == 1


@pytest.mark.parametrize(
  'text, message',
  [
    ('train_shard: 3', "unknown key 'train_shard' (did you mean 'train_shards'?)"),
    ('direct_num_worker: 2', "(did you mean 'direct_num_workers'?)"),
    ('overwrite: 1', "'overwrite' is a switch; give true or false"),
    ('train_shards: [1, 2]', "'train_shards' takes one value, not a list"),
    ('seed: {a: 1}', "'seed' takes a value, not a mapping"),
    ('config: other.yaml', "'config' cannot be set in a config file"),
    ('train_shards: 3\ntrain-shards: 4', "gives 'train_shards' twice"),
    ('- a list', 'must hold one mapping'),
    ('a: [unclosed', 'cannot read --config'),
  ],
)
def test_a_bad_config_fails_before_any_work(tmp_path, capsys, text, message):
  config = _write(tmp_path / 'run.yaml', text)
  assert convert(SAMPLE_DIR, tmp_path / 'out', '--config', config) == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()
  with pytest.raises(UsageError):
    parse_args(['--config', str(config), '--input', 'x', '--output', 'y'])


def test_print_config_prints_yaml_that_reproduces_the_options(tmp_path, capsys):
  config = _write(
    tmp_path / 'run.yaml', f'input: {SAMPLE_DIR}\ntrain_shards: 3\nrunner: FnApiRunner\n'
  )
  argv = [
    '--config',
    str(config),
    '--output',
    str(tmp_path / 'out'),
    '--test_fraction',
    '0.1',
    '--shard_name_template',
    '{split}.{index:05d}-of-{num_shards:05d}',
    '--s3_disable_ssl',
  ]
  with pytest.raises(SystemExit) as exit_:
    parse_args(argv + ['--print_config'])
  assert exit_.value.code == 0
  printed = capsys.readouterr().out
  assert printed.startswith('# folder2tfrecord configuration')
  values = yaml.safe_load(printed)
  assert values['test_fraction'] == 0.1 and values['runner'] == 'FnApiRunner'
  assert values['s3_disable_ssl'] is True and values['model_garden_batch_size'] == 1024
  assert not (tmp_path / 'out').exists()  # no work
  again = _write(tmp_path / 'printed.yaml', printed)
  assert parse_args(['--config', str(again)])[0] == parse_args(argv)[0]
  assert PipelineOptions(parse_args(['--config', str(again)])[1]).get_all_options(
    drop_default=True
  ) == PipelineOptions(parse_args(argv)[1]).get_all_options(drop_default=True)


def test_manifest_as_config_repeats_the_run_byte_for_byte(fractions_output, tmp_path):
  output = tmp_path / 'again'
  assert convert(SAMPLE_DIR, output, '--config', fractions_output / 'manifest.json') == 0
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(fractions_output)))
  manifest = json.loads((output / 'manifest.json').read_text())
  assert set(FRACTIONS_FLAGS[1::2]) <= {str(v) for v in manifest['options'].values()}
