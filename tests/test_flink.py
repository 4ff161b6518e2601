"""The converter on a real local Flink cluster gives the DirectRunner's bytes.

JobManager + TaskManager (2 slots) from PyPI's apache-flink 1.19.0, Beam's Flink job server, and a
Beam worker pool for the Python workers (--environment_type=EXTERNAL), all on loopback inside a
private network namespace (tests/clusters/processes.py). First run downloads ~260 MB of Flink and
~150 MB of job-server jars into ~/.cache/folder2tfrecord/ (about 2-3 minutes); later runs reuse them.
"""

import logging
import time

import pytest

from clusters.beam_services import run_converter
from clusters.flink import TASK_SLOTS, flink_cluster
from clusters.outputs import assert_same_dataset, read_dataset, shard_names
from clusters.processes import tail
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS

_LOGGER = logging.getLogger(__name__)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_flink_matches_direct_runner(tmp_path):
  direct_out, flink_out = tmp_path / 'direct', tmp_path / 'flink'
  common = ['--input', str(SAMPLE_DIR), *SAMPLE_FLAGS]
  with flink_cluster(tmp_path / 'flink-cluster', REPO) as cluster:
    assert cluster.overview()['taskmanagers'] >= 1
    start = time.monotonic()
    code = run_converter(REPO, [*common, '--output', str(flink_out), *cluster.pipeline_args()],
                         tmp_path / 'flink.log', prefix=cluster.ns.prefix)
    flink_seconds = time.monotonic() - start
    assert code == 0, tail(tmp_path / 'flink.log', 60)
    finished = cluster.overview()
    assert finished['jobs-finished'] == 1 and finished['jobs-failed'] == 0, finished

  start = time.monotonic()
  code = run_converter(REPO, [*common, '--output', str(direct_out)], tmp_path / 'direct.log')
  direct_seconds = time.monotonic() - start
  assert code == 0, tail(tmp_path / 'direct.log', 60)

  expected = read_dataset(str(direct_out))
  assert shard_names(expected) == ['train-00000-of-00003', 'train-00001-of-00003',
                                   'train-00002-of-00003', 'validation-00000-of-00002',
                                   'validation-00001-of-00002']
  assert_same_dataset(read_dataset(str(flink_out)), expected)
  _LOGGER.warning('wall time of the sample conversion: Flink (%d slots) %.1f s, DirectRunner %.1f s',
                  TASK_SLOTS, flink_seconds, direct_seconds)
