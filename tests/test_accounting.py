"""Reject accounting: stats.json, the run's summary and `report` give the same counts, every reject
counted once (in its split or in the "no split" row), reasons as readable phrases, 80 columns."""

import contextlib
import html
import io
import json
import math
import pathlib
import re
import shutil

import pytest

from conftest import SAMPLE_DIR, convert
from pipeline import report
from pipeline.options import parse_args
from pipeline.run import NO_SPLIT, SUMMARY_COLUMNS, summarize
from transforms.output import layout
from transforms.metadata.write import build_stats
from transforms.records import Reject
from transforms.metadata.reject_reasons import (
  DUPLICATE,
  INTERNAL_ERROR,
  count_reasons,
  reason_category,
)
from transforms.metadata.stats import SplitTotals

LONG_CLASS = 'a class folder whose name is much longer than any column of the summary could hold'


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
  """The sample photos plus planted rejects, converted once into an output path longer than 80
  characters: (output, printed summary, rejects.jsonl lines)."""
  work = tmp_path_factory.mktemp('accounting')
  photos = work / 'photos'
  shutil.copytree(SAMPLE_DIR, photos, ignore=shutil.ignore_patterns('*.md'))
  (photos / 'flower' / 'notes.jpg').write_text('a text file, not a photo\n')  # not an image
  cut = (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes()
  (photos / 'animal' / 'cut.jpg').write_bytes(cut[: len(cut) // 3])  # a truncated JPEG
  (photos / LONG_CLASS).mkdir()
  shutil.copy(SAMPLE_DIR / 'space' / 'sk_rocket.jpg', photos / LONG_CLASS / 'rocket.jpg')
  (photos / LONG_CLASS / 'page.jpg').write_text('<!DOCTYPE html><html></html>')  # text (HTML)
  (photos / 'space' / 'nested').mkdir()  # a listing reject without a split
  shutil.copy(SAMPLE_DIR / 'space' / 'es_nasa0.JPEG', photos / 'space' / 'nested')
  output = work / ('a-rather-deep-output-folder-' * 3) / 'out'
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    assert (
      convert(
        photos,
        output,
        '--validation_fraction',
        '0.2',
        '--train_shards',
        '2',
        '--validation_shards',
        '1',
      )
      == 0
    )
  rejects = layout.read_jsonl(str(output / layout.REJECTS_FILE))
  return output, printed.getvalue(), rejects


def _stats(output: pathlib.Path) -> dict:
  return json.loads((output / layout.STATS_FILE).read_text())


def _table(summary: str) -> dict:
  """{row name: (examples, rejected, shards)} of the summary's table ('-' as None)."""
  rows = {}
  for line in summary.splitlines():
    match = re.match(r'^(train|validation|test|\(no split\))\s+(\S+)\s+(\S+)\s+(\S+)', line)
    if match:
      rows[match.group(1)] = tuple(None if v == '-' else int(v) for v in match.groups()[1:])
  return rows


def _reasons(summary: str) -> dict:
  """{reason: files} of the summary's `rejected N reason` lines, continuation lines joined."""
  reasons, last = {}, None
  for line in summary.splitlines():
    match = re.match(r'^  rejected\s+(\d+)  (.*)$', line)
    if match:
      last = match.group(2)
      reasons[last] = int(match.group(1))
    elif last is not None and line.startswith(' ' * 19) and line.strip():
      count = reasons.pop(last)
      last = f'{last} {line.strip()}'
      reasons[last] = count
    else:
      last = None
  return reasons


def test_every_reject_is_counted_once_in_its_split_or_without_one(planted):
  output, _, rejects = planted
  stats = _stats(output)
  assert len(rejects) == 4 == stats['num_rejected']
  assert sum(r['split'] is None for r in rejects) == 1 == stats['num_rejected_without_split']
  splits = [s for s in ('train', 'validation', 'test') if s in stats]
  for split in splits:
    assert stats[split]['num_rejected'] == sum(r['split'] == split for r in rejects)
  assert (
    sum(stats[s]['num_rejected'] for s in splits) + stats['num_rejected_without_split']
    == stats['num_rejected']
  )
  assert stats['reject_reasons'] == count_reasons(r['reason'] for r in rejects)
  assert sum(stats['reject_reasons'].values()) == stats['num_rejected']


def test_summary_and_stats_agree_and_reasons_are_phrases(planted):
  output, summary, _ = planted
  stats = _stats(output)
  table = _table(summary)
  for split in ('train', 'validation'):
    assert table[split] == (
      stats[split]['num_examples'],
      stats[split]['num_rejected'],
      stats[split]['num_shards'],
    )
  assert table[NO_SPLIT] == (None, stats['num_rejected_without_split'], None)
  assert f'total: {stats["num_examples"]} examples, {stats["num_rejected"]} rejected' in summary
  assert _reasons(summary) == stats['reject_reasons']
  assert {
    'text (HTML/XML/JSON), not an image',
    'not a recognised image format',
    'truncated or corrupt JPEG data',
    'nested folder: only root/<class>/<image> is read',
  } == set(stats['reject_reasons'])


def test_summary_fits_80_columns(planted):
  output, summary, _ = planted
  assert len(str(output)) > SUMMARY_COLUMNS  # the fixture's path must not fit on one line
  lines = summary.splitlines()
  assert lines[0] == 'Output:' and lines[1].startswith('  ') and '...' in lines[1]
  assert all(len(line) <= SUMMARY_COLUMNS for line in lines), max(lines, key=len)


def test_report_shows_the_numbers_of_stats_json(planted):
  output, _, rejects = planted
  stats = _stats(output)
  data = report.read_report_data(str(output), per_class=1, max_records=8)
  assert report.data_reasons(data) == list(stats['reject_reasons'].items())
  lines = report.summary_lines(data)
  for split in ('train', 'validation'):
    assert any(
      line.startswith(f'{split}: {stats[split]["num_examples"]} examples')
      and f'{stats[split]["num_rejected"]} rejected' in line
      for line in lines
    )
  assert any(
    line.startswith(f'no split: {stats["num_rejected_without_split"]} rejected') for line in lines
  )
  page = report.build_html(data, b'')
  for reason, files in stats['reject_reasons'].items():
    assert f'<tr><td>{html.escape(reason)}</td><td>{files}</td></tr>' in page
  assert sum(stats['reject_reasons'].values()) == len(rejects)


@pytest.mark.parametrize(
  'reason, category',
  [
    ('empty file (0 bytes)', 'empty file'),
    ('text (HTML/XML/JSON), not an image', 'text (HTML/XML/JSON), not an image'),
    (
      'not a recognised image (UnidentifiedImageError: cannot identify image file)',
      'not a recognised image',
    ),
    (
      'truncated or corrupt JPEG data (OSError: image file is truncated (60 bytes not processed))',
      'truncated or corrupt JPEG data',
    ),
    (
      'decompression bomb refused from its header: 9000x9000 = 81000000 pixels > '
      '--max_image_pixels 1000',
      'decompression bomb refused from its header',
    ),
    ('image has no pixels (0x5)', 'image has no pixels'),
    ("class 'cats' is not in --labels_file", 'class is not in --labels_file'),
    (
      'nested folder: only root/<class>/<image> is read',
      'nested folder: only root/<class>/<image> is read',
    ),
    (
      'cannot read the file (PermissionError: [Errno 13] Permission denied)',
      'cannot read the file',
    ),
    ('internal error: ValueError: boom', INTERNAL_ERROR),
    ('duplicate of flower/a.jpg', DUPLICATE),
    ('excluded', 'excluded'),
  ],
)
def test_reason_categories_drop_only_per_file_details(reason, category):
  assert reason_category(reason) == category


def test_a_split_with_rejects_only_still_has_its_row():
  rejects = [
    Reject('a', 'empty file (0 bytes)', 'test'),
    Reject('b', 'empty file (0 bytes)', None),
    Reject('c', 'internal error: KeyError: x', 'train'),
  ]
  totals = SplitTotals(
    3, 300, 0, {'cat': 3}, 12, [1200, 1200, 1200], [120000] * 3, {'train-00000-of-00001': 3}
  )
  stats = build_stats({'train': totals}, rejects)
  assert stats['test']['num_examples'] == 0 and stats['test']['num_rejected'] == 1
  assert math.isnan(stats['test']['mean_rgb'][0])
  assert stats['num_rejected_without_split'] == 1 and stats['num_rejected'] == 3
  opts, _ = parse_args(['--input', str(SAMPLE_DIR), '--output', '/tmp/x'])
  summary = summarize(opts, stats, 2.0)
  assert _table(summary) == {'train': (3, 1, 1), 'test': (0, 1, 0), NO_SPLIT: (None, 1, None)}
  assert 'internal error: a bug in folder2tfrecord' in summary
  assert all(len(line) <= SUMMARY_COLUMNS for line in summary.splitlines())
  data = report.ReportData(
    {'splits': {'train': {'num_examples': 3, 'num_shards': 1}}}, stats, [], rejects, {}, {}, {}
  )
  lines = report.summary_lines(data)
  assert [line.split(' rejected')[0] for line in lines] == [
    'train: 3 examples in 1 shard(s), 1',
    'test: 0 examples in 0 shard(s), 1',
    'no split: 1',
  ]
