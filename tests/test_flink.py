"""The converter, and a --base version of its output, on a real local Flink cluster give the
DirectRunner's bytes.

JobManager + TaskManager (2 slots) from PyPI's apache-flink 1.19.0, Beam's Flink job server, and a
Beam worker pool for the Python workers (--environment_type=EXTERNAL), all on loopback inside a
private network namespace (tests/clusters/processes.py). First run downloads ~260 MB of Flink and
~150 MB of job-server jars into ~/.cache/folder2tfrecord/ (about 2-3 minutes); later runs reuse
them.
"""

import logging

import pytest

from clusters.beam_services import timed_conversion
from clusters.flink import TASK_SLOTS, flink_cluster
from clusters.outputs import (
  VERSION_FLAGS,
  assert_matches_direct_runner,
  assert_version_matches_direct_runner,
  version_input,
)
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS

_LOGGER = logging.getLogger(__name__)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_flink_matches_direct_runner(tmp_path):
  common = ['--input', str(SAMPLE_DIR), *SAMPLE_FLAGS]
  with flink_cluster(tmp_path / 'flink-cluster', REPO) as cluster:
    assert cluster.overview()['taskmanagers'] >= 1
    flink_seconds = timed_conversion(
      REPO,
      [*common, '--output', str(tmp_path / 'flink'), *cluster.pipeline_args()],
      tmp_path / 'flink.log',
      prefix=cluster.ns.prefix,
    )
    # A version of that output (--base): reused base shards placed, changed ones written anew.
    new_input = version_input(SAMPLE_DIR, tmp_path / 'version_input')
    timed_conversion(
      REPO,
      [
        *('--input', str(new_input), '--base', str(tmp_path / 'flink')),
        *('--output', str(tmp_path / 'flink_version'), *VERSION_FLAGS, *cluster.pipeline_args()),
      ],
      tmp_path / 'flink_version.log',
      prefix=cluster.ns.prefix,
    )
    finished = cluster.overview()
    assert finished['jobs-finished'] == 2 and finished['jobs-failed'] == 0, finished
  direct_seconds = assert_matches_direct_runner(REPO, common, tmp_path / 'flink', tmp_path)
  assert_version_matches_direct_runner(
    REPO, new_input, tmp_path / 'flink', tmp_path / 'flink_version', tmp_path
  )
  _LOGGER.warning(
    'wall time of the sample conversion: Flink (%d slots) %.1f s, DirectRunner %.1f s',
    TASK_SLOTS,
    flink_seconds,
    direct_seconds,
  )
