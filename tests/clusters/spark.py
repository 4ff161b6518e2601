"""A local Spark standalone cluster (master + one worker with 2 cores) with Beam's Spark job server and
a Beam worker pool, for running pipelines with `--runner=PortableRunner`.

The engine is pyspark 3.5.3 from PyPI (it ships bin/spark-class and jars/), installed with --no-deps
into the cache dir; Spark 3.5 runs on Java 17. The job server is Beam 2.62.0's SparkJobServerDriver
(see downloads.py for why not 2.77), with Spark's own jars from pyspark (the runner declares Spark
as `provided`). The job server is the Spark driver: it runs Beam's Spark translation and submits to
the standalone master.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from typing import Iterator, List

from .beam_services import PortableCluster, job_server, worker_pool_server
from .downloads import BEAM_JOB_SERVER_VERSION, maven_jars, pip_target
from .processes import LoopbackNamespace, Server, cache_dir, free_port

SPARK_VERSION = '3.5.3'
WORKER_CORES = 2
START_TIMEOUT_SECONDS = 180
# What Spark's launcher adds on Java 17 (org.apache.spark.launcher.JavaModuleOptions).
JAVA17_OPTIONS = ' '.join(
  [
    f'--add-opens=java.base/{package}=ALL-UNNAMED'
    for package in (
      'java.lang',
      'java.lang.invoke',
      'java.lang.reflect',
      'java.io',
      'java.net',
      'java.nio',
      'java.util',
      'java.util.concurrent',
      'java.util.concurrent.atomic',
      'sun.nio.ch',
      'sun.nio.cs',
      'sun.security.action',
      'sun.util.calendar',
    )
  ]
  + ['-Djdk.reflect.useDirectMethodHandle=false']
)


def install_spark() -> pathlib.Path:
  """SPARK_HOME (the `pyspark` folder holding bin/ and jars/), installed when missing."""
  return (
    pip_target(cache_dir('spark') / f'pyspark-{SPARK_VERSION}', [f'pyspark=={SPARK_VERSION}'])
    / 'pyspark'
  )


def install_spark_job_server() -> pathlib.Path:
  """Folder of the jars of Beam's Spark job server, without Spark itself."""
  return maven_jars(
    cache_dir('jars') / f'beam-spark-3-job-server-{BEAM_JOB_SERVER_VERSION}',
    [
      f'org.apache.beam:beam-runners-spark-3:{BEAM_JOB_SERVER_VERSION}',
      f'org.apache.beam:beam-runners-java-job-service:{BEAM_JOB_SERVER_VERSION}',
    ],
  )


@dataclasses.dataclass
class SparkCluster(PortableCluster):
  master_url: str = ''


def _logging_jars(spark_home: pathlib.Path) -> List[pathlib.Path]:
  """Spark's SLF4J 2 API and Log4j 2 binding, put first so the job server logs its errors (Beam's
  class path alone has the SLF4J 1 API without a binding, which logs nothing)."""
  return sorted(spark_home.glob('jars/slf4j-api-*.jar')) + sorted(
    spark_home.glob('jars/log4j-*.jar')
  )


@contextlib.contextmanager
def spark_cluster(work_dir: pathlib.Path, pythonpath: pathlib.Path) -> Iterator[SparkCluster]:
  """Starts master, worker, job server and worker pool; stops all of them on exit."""
  spark_home = install_spark()
  jars = install_spark_job_server()
  log_dir = work_dir / 'logs'
  log_dir.mkdir(parents=True, exist_ok=True)
  master_port, master_ui, worker_ui, job_port, pool_port = (free_port() for _ in range(5))
  env = {
    'SPARK_HOME': str(spark_home),
    'SPARK_LOCAL_IP': '127.0.0.1',
    'SPARK_LOCAL_DIRS': str(work_dir / 'local'),
    'SPARK_WORKER_DIR': str(work_dir / 'work'),
    'SPARK_LOG_DIR': str(log_dir),
    'SPARK_NO_DAEMONIZE': '1',
  }
  spark_class = str(spark_home / 'bin' / 'spark-class')
  master_url = f'spark://127.0.0.1:{master_port}'
  with contextlib.ExitStack() as stack:
    ns = stack.enter_context(LoopbackNamespace())
    cluster = SparkCluster(
      ns, f'127.0.0.1:{job_port}', f'127.0.0.1:{pool_port}', log_dir, master_url=master_url
    )
    master = stack.enter_context(
      Server(
        'spark-master',
        [
          spark_class,
          'org.apache.spark.deploy.master.Master',
          '--host',
          '127.0.0.1',
          '--port',
          str(master_port),
          '--webui-port',
          str(master_ui),
        ],
        log_dir,
        ns,
        env=env,
      )
    )
    master.wait_until(lambda: ns.can_connect(master_port), START_TIMEOUT_SECONDS, 'master port')
    worker = stack.enter_context(
      Server(
        'spark-worker',
        [
          spark_class,
          'org.apache.spark.deploy.worker.Worker',
          '--host',
          '127.0.0.1',
          '--cores',
          str(WORKER_CORES),
          '--memory',
          '4G',
          '--webui-port',
          str(worker_ui),
          master_url,
        ],
        log_dir,
        ns,
        env=env,
      )
    )
    beam_job_server = stack.enter_context(
      job_server(
        'spark-job-server',
        [*_logging_jars(spark_home), jars, spark_home / 'jars'],
        'org.apache.beam.runners.spark.SparkJobServerDriver',
        [f'--spark-master-url={master_url}'],
        ns,
        log_dir,
        job_port,
        java_opts=JAVA17_OPTIONS,
      )
    )
    pool = stack.enter_context(worker_pool_server(ns, log_dir, pool_port, pythonpath))
    worker.wait_until(
      lambda: 'Successfully registered with master' in worker.log.read_text(),
      START_TIMEOUT_SECONDS,
      'registration with the master',
    )
    beam_job_server.wait_until(
      lambda: ns.can_connect(job_port), START_TIMEOUT_SECONDS, 'job service port'
    )
    pool.wait_until(lambda: ns.can_connect(pool_port), 60, 'worker pool port')
    yield cluster
