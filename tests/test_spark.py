"""The converter, and a --base version of its output, on a real local Spark standalone cluster give
the DirectRunner's bytes.

Master + one worker (2 cores) from PyPI's pyspark 3.5.3 (Java 17), Beam's Spark job server as the
Spark driver, and a Beam worker pool for the Python workers (--environment_type=EXTERNAL), all on
loopback inside a private network namespace (tests/clusters/processes.py). First run downloads
~320 MB of pyspark and ~90 MB of job-server jars into ~/.cache/folder2tfrecord/.
"""

import logging

import pytest

from clusters.beam_services import timed_conversion
from clusters.outputs import (
  VERSION_FLAGS,
  assert_matches_direct_runner,
  assert_version_matches_direct_runner,
  version_input,
)
from clusters.spark import WORKER_CORES, spark_cluster
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS

_LOGGER = logging.getLogger(__name__)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_spark_matches_direct_runner(tmp_path):
  common = ['--input', str(SAMPLE_DIR), *SAMPLE_FLAGS]
  with spark_cluster(tmp_path / 'spark-cluster', REPO) as cluster:
    spark_seconds = timed_conversion(
      REPO,
      [*common, '--output', str(tmp_path / 'spark'), *cluster.pipeline_args()],
      tmp_path / 'spark.log',
      prefix=cluster.ns.prefix,
    )
    # A version of that output (--base): reused base shards placed, changed ones written anew.
    new_input = version_input(SAMPLE_DIR, tmp_path / 'version_input')
    timed_conversion(
      REPO,
      [
        *('--input', str(new_input), '--base', str(tmp_path / 'spark')),
        *('--output', str(tmp_path / 'spark_version'), *VERSION_FLAGS, *cluster.pipeline_args()),
      ],
      tmp_path / 'spark_version.log',
      prefix=cluster.ns.prefix,
    )
    master_log = (cluster.log_dir / 'spark-master.log').read_text()
    assert 'Registered app BeamApp' in master_log, 'the job did not run on the standalone master'
  direct_seconds = assert_matches_direct_runner(REPO, common, tmp_path / 'spark', tmp_path)
  assert_version_matches_direct_runner(
    REPO, new_input, tmp_path / 'spark', tmp_path / 'spark_version', tmp_path
  )
  _LOGGER.warning(
    'wall time of the sample conversion: Spark (%d cores) %.1f s, DirectRunner %.1f s',
    WORKER_CORES,
    spark_seconds,
    direct_seconds,
  )
