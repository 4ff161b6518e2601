"""ChannelStats and WriteMetadata alone, under TestPipeline (Beam's autocomplete_test.py style): no
images, no shards written, synthetic shard summaries in, exact totals and metadata files out."""

import dataclasses
import json

import apache_beam as beam
import numpy as np
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.output import layout
from transforms.metadata.write import WriteMetadata
from transforms.metadata.provenance import CollectOutputFacts, OutputFacts, RunInfo
from transforms.metadata.stats import ChannelStats, SplitTotals
from transforms.records import Reject, ShardSummary

RNG = np.random.default_rng(3)
PIXELS = {
  name: RNG.integers(0, 256, (n, 3), dtype=np.int64)
  for name, n in (
    ('train-00000-of-00002', 700),
    ('train-00001-of-00002', 1),
    ('validation-00000-of-00001', 99),
  )
}
REJECT = Reject('/in/a/bad.jpg', 'truncated or corrupt JPEG data (x)', 'train')


def _summary(name, classes, rejects=()):
  pixels = PIXELS[name]
  return ShardSummary(
    name,
    name.split('-')[0],
    len(classes),
    10 * len(classes),
    0,
    {c: classes.count(c) for c in set(classes)},
    len(pixels),
    tuple(pixels.sum(0).tolist()),
    tuple((pixels**2).sum(0).tolist()),
    tuple(rejects),
  )


SUMMARIES = [
  _summary('train-00000-of-00002', ['a', 'b', 'a'], [REJECT]),
  _summary('train-00001-of-00002', ['b']),
  _summary('validation-00000-of-00001', ['a']),
]


def test_channel_stats_adds_shards_per_split_exactly():
  expected_train = np.concatenate([PIXELS['train-00000-of-00002'], PIXELS['train-00001-of-00002']])

  def check(results):
    totals = dict(results)
    assert sorted(totals) == ['train', 'validation']
    train = totals['train']
    assert (train.num_examples, train.num_bytes, train.class_counts) == (4, 40, {'a': 2, 'b': 2})
    assert train.shards == {'train-00000-of-00002': 3, 'train-00001-of-00002': 1}
    assert train.num_pixels == 701 and train.channel_sums == expected_train.sum(0).tolist()
    mean, std = train.mean_std
    np.testing.assert_allclose(mean, expected_train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, expected_train.std(0), rtol=1e-12)
    assert totals['validation'] == SplitTotals.of(SUMMARIES[2])

  with test_pipeline.TestPipeline() as p:
    # Reversed input: the merge order of a runner must not matter.
    result = p | beam.Create(SUMMARIES[::-1]) | ChannelStats()
    assert_that(result, check)


RUN = RunInfo(
  '20261130-120000-abcdef',
  '2026-11-30T12:00:00+00:00',
  'FnApiRunner',
  '/in',
  {'version': '0.1.0', 'commit': None, 'modified': None},
  {'pillow': '12.3.0'},
)


def _with_checksums(summary):
  return dataclasses.replace(summary, file_bytes=5, file_sha256=summary.shard[:1] * 64)


def test_write_metadata_writes_every_file_and_success_last(tmp_path):
  output = layout.OutputLayout(str(tmp_path))
  for name in PIXELS:  # Shards exist when the step runs; TFDS's metadata records their sizes.
    (tmp_path / name).write_bytes(b'x' * 5)
  (tmp_path / 'train-00002-of-00003').write_bytes(b'x')  # Of an earlier shard count: deleted.
  listing_reject = Reject('/in/c/nested', 'nested folder', 'validation')
  with test_pipeline.TestPipeline() as p:
    summaries = p | 'Summaries' >> beam.Create([_with_checksums(s) for s in SUMMARIES])
    stats = summaries | ChannelStats()
    rejects = p | 'Rejects' >> beam.Create([REJECT, listing_reject])
    outcomes = p | 'Outcomes' >> beam.Create(['kept', 'written', 'kept'])
    facts = (summaries, outcomes) | CollectOutputFacts()
    written = (stats, rejects, facts) | WriteMetadata(
      output, ['a', 'b'], 0, 'none', {'seed': 0}, 0.5, run=RUN
    )
    assert_that(
      written | beam.Map(lambda s: (s['num_examples'], s['num_rejected'])), equal_to([(5, 2)])
    )
  stats = layout.read_json(output.path(layout.STATS_FILE))
  assert (stats['num_examples'], stats['num_rejected']) == (5, 2)
  assert (stats['train']['num_rejected'], stats['validation']['num_rejected']) == (1, 1)
  assert stats['train']['num_shards'] == 2 and stats['train']['class_counts'] == {'a': 2, 'b': 2}
  manifest = layout.read_json(output.path(layout.MANIFEST_FILE))
  assert [s['file'] for s in manifest['splits']['train']['shards']] == [
    'train-00000-of-00002',
    'train-00001-of-00002',
  ]
  assert manifest['num_classes'] == 2 and manifest['options'] == {'seed': 0}
  assert layout.read_jsonl(output.path(layout.REJECTS_FILE)) == [  # by path
    REJECT.to_json(),
    listing_reject.to_json(),
  ]
  assert (tmp_path / 'labels.txt').read_text() == 'a\nb\n'
  info = json.loads((tmp_path / layout.DATASET_INFO_FILE).read_text())
  assert [s['shardLengths'] for s in info['splits']] == [['3', '1'], ['1']]
  assert (tmp_path / layout.SUCCESS_FILE).exists()
  assert manifest['splits']['train']['shards'][0] == {
    'file': 'train-00000-of-00002',
    'num_examples': 3,
    'bytes': 5,
    'sha256': 't' * 64,
  }
  provenance = layout.read_json(output.path(layout.PROVENANCE_FILE))
  assert provenance['shards'] == {'kept': 2, 'written': 1}
  assert provenance['deleted_shards'] == ['train-00002-of-00003']
  assert not (tmp_path / 'train-00002-of-00003').exists()
  assert (provenance['run_id'], provenance['runner'], provenance['packages']) == (
    RUN.run_id,
    'FnApiRunner',
    {'pillow': '12.3.0'},
  )


def test_write_metadata_withholds_success_when_too_much_is_rejected(tmp_path):
  output = layout.OutputLayout(str(tmp_path))
  for name in PIXELS:
    (tmp_path / name).write_bytes(b'')
  with test_pipeline.TestPipeline() as p:
    stats = p | 'Summaries' >> beam.Create(SUMMARIES) | ChannelStats()
    rejects = p | 'Rejects' >> beam.Create([REJECT])
    facts = p | 'Facts' >> beam.Create([OutputFacts()])
    _ = (stats, rejects, facts) | WriteMetadata(output, ['a', 'b'], 0, 'none', {}, 0.1)
  assert (tmp_path / layout.REJECTS_FILE).exists() and not (tmp_path / layout.SUCCESS_FILE).exists()
