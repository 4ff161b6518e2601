"""What a user types: every word counts, switches take no value, outputs never sit inside inputs.

Each usage error is exit 2 with a message that says how to write it, before any work: nothing is
listed, claimed, created or overwritten.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions

from conftest import REPO, SAMPLE_DIR, convert
from pipeline import cli, report, verify
from pipeline.runtime import output_dir
from pipeline.options import UsageError, parse_args
from transforms.inputs.label_map import read_labels_file
from transforms.inputs.listing import InputError

SWITCH_HINT = (
  '{flag} is a switch and takes no value (got {value!r}): write {flag} to turn it on, '
  'leave it out to keep it off.'
)


def _switch_hint(flag, value):
  return SWITCH_HINT.format(flag=flag, value=value)


def _small_input(root: pathlib.Path) -> pathlib.Path:
  """Two classes of three real photos each, copied from the sample."""
  for name in ('animal', 'flower'):
    (root / name).mkdir(parents=True)
    for photo in sorted((SAMPLE_DIR / name).iterdir())[:3]:
      shutil.copy(photo, root / name / photo.name)
  return root


def _digests(folder: pathlib.Path) -> dict:
  return {
    str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
    for p in sorted(folder.rglob('*'))
    if p.is_file()
  }


def _python(*args, cwd=REPO):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.run(
    [sys.executable, *args],
    capture_output=True,
    text=True,
    cwd=cwd,
    env=env,
    timeout=300,
    check=False,
  )


# ---------------------------------------------------------------------------------------- switches


@pytest.mark.parametrize(
  'words, message',
  [
    (['--overwrite', 'false'], _switch_hint('--overwrite', 'false')),
    (['--overwrite=no'], _switch_hint('--overwrite', 'no')),
    (['--drop_duplicates', '0'], _switch_hint('--drop_duplicates', '0')),
    (['--no_upscale', 'false'], _switch_hint('--no_upscale', 'false')),
    (['--resume=true'], _switch_hint('--resume', 'true')),
    (['--s3_disable_ssl=false'], _switch_hint('--s3_disable_ssl', 'false')),  # a Beam switch
    (['--s3_disable_ssl', 'no'], _switch_hint('--s3_disable_ssl', 'no')),
    (['stray_word'], "unexpected word(s) 'stray_word' on the command line of folder2tfrecord run"),
    # after a Beam flag's value
    (['--runner', 'FnApiRunner', 'stray'], "unexpected word(s) 'stray'"),
    (['--seed', '3', 'four'], "unexpected word(s) 'four'"),
    (['--train_shard', '3'], 'unknown flag(s): --train_shard (did you mean --train_shards?)'),
    (
      ['--direct_num_workers', 'abc'],
      "argument --direct_num_workers: invalid int value: 'abc' (an Apache Beam pipeline option).",
    ),  # not Beam's whole usage
  ],
)
def test_switch_values_and_stray_words_are_usage_errors(tmp_path, words, message):
  for argv in (
    ['--input', str(SAMPLE_DIR), '--output', str(tmp_path / 'out'), *words],
    [*words, '--input', str(SAMPLE_DIR), '--output', str(tmp_path / 'out')],
  ):
    with pytest.raises(UsageError) as error:
      parse_args(argv)
    assert message in str(error.value)


def test_switches_without_values_still_work(tmp_path):
  opts, beam_args = parse_args(
    [
      '--input',
      str(SAMPLE_DIR),
      '--output',
      str(tmp_path / 'out'),
      '--overwrite',
      '--no_upscale',
      '--drop_duplicates',
      '--s3_disable_ssl',
      '--runner=FnApiRunner',
    ]
  )
  assert opts.overwrite and opts.no_upscale and opts.drop_duplicates
  assert beam_args == ['--s3_disable_ssl', '--runner=FnApiRunner']


def test_overwrite_false_leaves_an_existing_dataset_untouched(tmp_path):
  """The words a user typed (the console script's module); the dataset's bytes stay as they were."""
  source = _small_input(tmp_path / 'photos')
  output = tmp_path / 'out'
  assert convert(source, output, '--train_shards', '2') == 0
  before = _digests(output)
  assert any(name.startswith('train-') for name in before) and '_SUCCESS' in before
  result = _python(
    '-m',
    'pipeline.cli',
    '--input',
    str(source),
    '--output',
    str(output),
    '--overwrite',
    'false',
    '--train_shards',
    '1',
  )
  assert result.returncode == 2, result.stderr
  assert result.stderr.strip() == 'error: ' + _switch_hint('--overwrite', 'false')
  assert _digests(output) == before


@pytest.mark.parametrize(
  'command, words, message',
  [
    (['plan'], ['--no_upscale', 'false'], _switch_hint('--no_upscale', 'false')),
    (
      ['plan'],
      ['stray_word'],
      "unexpected word(s) 'stray_word' on the command line of folder2tfrecord plan",
    ),
    (['run'], ['--overwrite=no'], _switch_hint('--overwrite', 'no')),
    ([], ['stray_word'], "unexpected word(s) 'stray_word'"),
  ],
)
def test_every_run_command_refuses_them(tmp_path, monkeypatch, capsys, command, words, message):
  monkeypatch.setattr(sys, 'argv', ['folder2tfrecord'])
  with pytest.raises(SystemExit) as exit_info:
    cli.main([*command, '--input', str(SAMPLE_DIR), '--output', str(tmp_path / 'out'), *words])
  assert exit_info.value.code == 2
  assert f'error: {message}' in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
  'main, words, message',
  [
    (
      verify.main,
      ['OUT', 'extra'],
      "unexpected word(s) 'extra' on the command line of folder2tfrecord verify",
    ),
    (verify.main, ['OUT', '--s3_disable_ssl', 'false'], _switch_hint('--s3_disable_ssl', 'false')),
    (verify.main, ['--s3_disable_ssl', 'no', 'OUT'], _switch_hint('--s3_disable_ssl', 'no')),
    (
      verify.main,
      ['OUT', '--againts', 'x'],
      'unknown flag(s): --againts (did you mean --against?)',
    ),
    (verify.main, ['OUT', '--direct_num_workers=x'], 'argument --direct_num_workers: invalid int'),
    (
      report.main,
      ['OUT', '--output', 'r.png', 'stray'],
      "unexpected word(s) 'stray' on the command line of folder2tfrecord report",
    ),
    (report.main, ['OUT', '--s3_disable_ssl=0'], _switch_hint('--s3_disable_ssl', '0')),
  ],
)
def test_verify_and_report_refuse_them(tmp_path, capsys, main, words, message):
  words = [str(tmp_path) if word == 'OUT' else word for word in words]
  with pytest.raises(SystemExit) as exit_info:
    main(words)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith(f'error: {message}') and err.count('\n') == 1, err


@pytest.mark.parametrize(
  'args, message',
  [
    (
      ['-m', 'pipeline.run', '--input', 'photos', '--output', 'out', 'stray_word'],
      "error: unexpected word(s) 'stray_word' on the command line of folder2tfrecord run",
    ),
    (['-m', 'pipeline.verify', 'out', '--overwrite', 'x'], 'error: unknown flag(s): --overwrite'),
    (['-m', 'pipeline.report', 'out', 'x'], "error: unexpected word(s) 'x'"),
    (
      ['-m', 'pipeline.cli', 'verfy', 'out'],
      "error: unknown command 'verfy' (did you mean 'verify'?)",
    ),
    (
      ['-m', 'pipeline.cli', 'frobnicate', '--input', 'photos', '--output', 'out'],
      "error: unknown command 'frobnicate'",
    ),
  ],
)
def test_python_m_commands_exit_2_before_any_work(tmp_path, args, message):
  _small_input(tmp_path / 'photos')
  result = _python(*args, cwd=tmp_path)
  assert result.returncode == 2, result.stderr
  assert result.stderr.startswith(message), result.stderr
  assert 'Traceback' not in result.stderr
  assert sorted(p.name for p in tmp_path.iterdir()) == ['photos']


# ---------------------------------------------------------------------------------------- help


def test_help_names_the_commands_and_folder2tfrecord(monkeypatch, capsys):
  monkeypatch.setattr(sys, 'argv', ['folder2tfrecord'])
  with pytest.raises(SystemExit) as exit_info:
    cli.main(['--help'])
  assert exit_info.value.code == 0
  text = capsys.readouterr().out
  for command in ('run', 'plan', 'verify', 'report'):
    assert f'\n  {command}  ' in text
  assert 'usage: folder2tfrecord run [-h] --input INPUT --output OUTPUT' in text
  assert '(default: None)' not in text and '(default: False)' not in text
  assert 'Default 256 (0 with' in ' '.join(text.split())  # --resize_shorter_side, --center_crop
  assert '(default: 90)' in text  # --jpeg_quality


@pytest.mark.parametrize(
  'args, usage',
  [
    (['-m', 'pipeline.run', '--help'], 'usage: folder2tfrecord run [-h]'),
    (['-m', 'pipeline.run', '--config'], 'usage: folder2tfrecord run [--config CONFIG]'),
    (
      ['-m', 'pipeline.run', '--input', 'x', '--output', 'y', '--seed', 'z'],
      'usage: folder2tfrecord run [-h]',
    ),
    (['-m', 'pipeline.verify', '--help'], 'usage: folder2tfrecord verify [-h]'),
    (['-m', 'pipeline.cli', 'plan', '--help'], 'usage: folder2tfrecord plan [-h]'),
  ],
)
def test_usage_lines_say_folder2tfrecord(args, usage):
  result = _python(*args)
  text = result.stdout + result.stderr
  assert result.returncode == (0 if '--help' in args else 2), text
  assert text.startswith(usage), text
  assert 'run.py' not in text and 'cli.py' not in text and '__main__.py' not in text


# ---------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
  'line, message',
  [
    ('overwrite: "no"', "'overwrite' is a switch; give true or false, not 'no'"),
    ('overwrite: 0', "'overwrite' is a switch; give true or false, not 0"),
    ('train_shards: many', "'train_shards' takes an integer, not 'many'"),
    ('seed: true', "'seed' takes a number, not true"),
    ('resample: nearest', "'resample' must be one of bicubic, bilinear, lanczos, not 'nearest'"),
    ('direct_num_workers: two', "'direct_num_workers' takes an integer, not 'two'"),  # Beam's
  ],
)
def test_a_bad_config_value_names_the_file_and_the_key(tmp_path, line, message):
  config = tmp_path / 'run.yaml'
  config.write_text(f'input: {SAMPLE_DIR}\noutput: out\n{line}\n')
  with pytest.raises(UsageError) as error:
    parse_args(['--config', str(config)])
  assert str(error.value).startswith(f'--config {config}: {message}')


def test_a_config_value_out_of_range_names_the_file(tmp_path):
  config = tmp_path / 'run.yaml'
  config.write_text(f'input: {SAMPLE_DIR}\noutput: out\nvalidation_fraction: 2\noverwrite: false\n')
  with pytest.raises(UsageError) as error:
    parse_args(['--config', str(config)])
  assert str(error.value) == (
    f'--validation_fraction must be in [0, 1), got 2.0. '
    f'(--validation_fraction from --config {config})'
  )
  # the command line wins
  opts, _ = parse_args(['--config', str(config), '--validation_fraction', '0.5'])
  assert opts.validation_fraction == 0.5 and not opts.overwrite


@pytest.mark.parametrize(
  'template, message',
  [
    ('{split}-{index}', "'{split}-{index}' has no {num_shards}"),
    ('{split}', "'{split}' has no {index} and has no {num_shards}"),
    ('x-{idx}-{num_shards}', 'has no {index} and has {idx}, which is no field'),
    ('{}-{index}-{num_shards}', 'has {}, which is no field'),
    ('{split}-{index}-of-{num_shards}-{date}', 'has {date}, which is no field'),
    ('a{index', "is not a format string: expected '}' before end of string"),
  ],
)
def test_shard_name_template_errors_say_what_is_wrong(tmp_path, template, message):
  with pytest.raises(UsageError) as error:
    parse_args(
      ['--input', str(SAMPLE_DIR), '--output', str(tmp_path), '--shard_name_template', template]
    )
  assert message in str(error.value) and 'unknown fields' not in str(error.value)


# ---------------------------------------------------------------------------------------- outputs


def _nested_cases(root: pathlib.Path):
  photos = _small_input(root / 'photos')
  (root / 'link').symlink_to(photos)
  return [
    ('photos', 'photos/converted', 'is inside --input'),
    ('photos', 'link/converted', 'is inside --input'),  # a symlink cannot hide it
    ('photos', 'photos/animal/../converted', 'is inside --input'),  # nor '..'
    ('photos/animal', 'photos', 'is inside --output'),
    ('link', '.', 'is inside --output'),
    ('photos', 'link', 'are the same folder'),
    ('photos/./animal/..', 'photos', 'are the same folder'),
  ]


def test_output_and_input_never_nest(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  for source, target, problem in _nested_cases(tmp_path):
    before = _digests(tmp_path / 'photos')
    assert convert(source, target, '--overwrite') == 2, (source, target)
    err = capsys.readouterr().err
    assert problem in err and os.path.abspath(source) in err and os.path.abspath(target) in err, err
    assert 'Choose an --output outside --input' in err or 'choose an --output outside' in err
    assert _digests(tmp_path / 'photos') == before  # nothing created in the input
    assert sorted(p.name for p in tmp_path.iterdir()) == ['link', 'photos']


@pytest.mark.parametrize(
  'source, target, problem',
  [
    ('gs://bucket/photos', 'gs://bucket/photos/out', 'is inside --input'),
    ('gs://bucket/photos', 'gs://bucket//photos/x/../out/', 'is inside --input'),
    ('s3://bucket/data/out/photos', 's3://bucket/data/out', 'is inside --output'),
    ('s3://bucket/photos/', 'S3://bucket/photos', 'are the same folder'),
    ('gs://bucket/photos', 'gs://bucket/photos-out', None),  # a prefix of the name only
    ('gs://bucket/photos', 's3://bucket/photos/out', None),
    ('/data/photos', '/data/photos2', None),
  ],
)
def test_object_store_prefixes_are_compared_normalised(source, target, problem):
  found = output_dir.nesting_problem(source, target)
  assert (found is None) if problem is None else (problem in found and source in found)


def test_an_output_that_is_a_file_or_not_writable_is_exit_2(tmp_path, capsys):
  source = _small_input(tmp_path / 'photos')
  (tmp_path / 'afile').write_bytes(b'not a folder')
  for target, message in (
    (tmp_path / 'afile', 'is a file, not a folder'),
    (tmp_path / 'afile' / 'out', f'lies under {tmp_path / "afile"}, which is a file, not a folder'),
    (pathlib.Path('/proc/folder2tfrecord-out'), 'cannot create a file in /proc'),
  ):
    assert convert(source, target, '--overwrite') == 2
    err = capsys.readouterr().err
    assert err.startswith(f'error: --output {target}') and message in err, err
  assert (tmp_path / 'afile').read_bytes() == b'not a folder'
  assert not os.path.exists('/proc/folder2tfrecord-out')


def test_writability_is_tried_not_read_from_modes(tmp_path):
  """A folder whose modes forbid writing still counts as writable when a file can be created there
  (root), and /proc never is."""
  folder = tmp_path / 'readonly'
  folder.mkdir()
  folder.chmod(0o555)
  try:
    opts, _ = parse_args(['--input', str(SAMPLE_DIR), '--output', str(folder / 'out')])
    can_write = True
    try:
      (folder / 'probe').write_bytes(b'')
      (folder / 'probe').unlink()
    except OSError:
      can_write = False
    if can_write:
      output_dir.check_output_location(opts)
    else:
      with pytest.raises(UsageError, match='cannot create a file in'):
        output_dir.check_output_location(opts)
    assert list(folder.iterdir()) == []  # the check leaves nothing behind
  finally:
    folder.chmod(0o755)


# ---------------------------------------------------------------------------------------- label map


def test_a_text_label_map_naming_a_class_twice_is_exit_2_with_both_lines(tmp_path, capsys):
  labels = tmp_path / 'labels.txt'
  labels.write_text('animal\n# a comment\nflower\n\nanimal\n')
  with pytest.raises(InputError, match="names class 'animal' twice, on lines 1 and 5"):
    read_labels_file(str(labels))
  assert convert(SAMPLE_DIR, tmp_path / 'out', '--labels_file', labels) == 2
  assert "names class 'animal' twice, on lines 1 and 5" in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()
  labels.write_text('animal\n# animal\nflower\n')  # a comment is no class
  assert read_labels_file(str(labels)) == {'animal': 0, 'flower': 1}


# ---------------------------------------------------------------------------------------- scripts


def test_run_local_sh_default_command_line_is_valid(tmp_path):
  """run_local.sh's flags when given none (parsed from the script, output moved to tmp_path)."""
  import shlex  # pylint: disable=import-outside-toplevel

  text = (REPO / 'run_local.sh').read_text().replace('\\\n', ' ')
  lines = [line.strip() for line in text.splitlines()]
  defaults = shlex.split(next(line for line in lines if line.startswith('set -- ')))[2:]
  fixed = shlex.split(next(line for line in lines if line.startswith('exec ')))
  fixed = [
    word for word in fixed[fixed.index('pipeline.run') + 1 :] if word != '"$@"' and word != '$@'
  ]
  defaults[defaults.index('--output') + 1] = str(tmp_path / 'out')
  opts, beam_args = parse_args([*fixed, *defaults])
  assert opts.overwrite and opts.train_shards == 4
  assert beam_args == ['--direct_running_mode=multi_processing', '--direct_num_workers=0']


def test_num_workers_reaches_beam_too(tmp_path):
  """run_dataflow.sh's --num_workers is Dataflow's worker count; the plan's flag of that name must not
  swallow it."""
  opts, beam_args = parse_args(
    [
      '--input',
      str(SAMPLE_DIR),
      '--output',
      'gs://bucket/out',
      '--num_workers=4',
      '--max_num_workers=32',
      '--runner=DataflowRunner',
    ]
  )
  assert opts.num_workers == 4
  assert PipelineOptions(beam_args).view_as(WorkerOptions).num_workers == 4
  _, beam_args = parse_args(['--input', str(SAMPLE_DIR), '--output', str(tmp_path / 'out')])
  assert PipelineOptions(beam_args).view_as(WorkerOptions).num_workers is None


def test_print_config_output_is_a_valid_config_and_checks_the_words_first(tmp_path, capsys):
  argv = [
    '--input',
    str(SAMPLE_DIR),
    '--output',
    str(tmp_path / 'out'),
    '--no_upscale',
    '--seed',
    '3',
    '--direct_num_workers=2',
    '--s3_disable_ssl',
    '--print_config',
  ]
  with pytest.raises(UsageError, match='--no_upscale is a switch'):
    parse_args([*argv[:5], 'false', *argv[5:]])
  assert capsys.readouterr().out == ''
  with pytest.raises(SystemExit) as exit_info:
    parse_args(argv)
  assert exit_info.value.code == 0
  config = tmp_path / 'printed.yaml'
  config.write_text(capsys.readouterr().out)
  assert 'overwrite: false' in config.read_text()
  opts, beam_args = parse_args(['--config', str(config)])
  assert opts == parse_args(argv[:-1])[0]
  assert sorted(beam_args) == ['--direct_num_workers=2', '--s3_disable_ssl']
