"""The converter on a real local Spark standalone cluster gives the DirectRunner's bytes.

Master + one worker (2 cores) from PyPI's pyspark 3.5.3 (Java 17), Beam's Spark job server as the
Spark driver, and a Beam worker pool for the Python workers (--environment_type=EXTERNAL), all on
loopback inside a private network namespace (tests/clusters/processes.py). First run downloads
~320 MB of pyspark and ~90 MB of job-server jars into ~/.cache/folder2tfrecord/.
"""

import logging

import pytest

from clusters.beam_services import timed_conversion
from clusters.outputs import assert_matches_direct_runner
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
    master_log = (cluster.log_dir / 'spark-master.log').read_text()
    assert 'Registered app BeamApp' in master_log, 'the job did not run on the standalone master'
  direct_seconds = assert_matches_direct_runner(REPO, common, tmp_path / 'spark', tmp_path)
  _LOGGER.warning(
    'wall time of the sample conversion: Spark (%d cores) %.1f s, DirectRunner %.1f s',
    WORKER_CORES,
    spark_seconds,
    direct_seconds,
  )
