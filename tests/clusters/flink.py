"""A real local Flink session cluster (JobManager + one TaskManager with 2 slots) with Beam's Flink job
server and a Beam worker pool, for running pipelines with `--runner=PortableRunner`.

The engine is Flink 1.19.0 from PyPI (`apache-flink` ships bin/, `apache-flink-libraries` the jars),
installed with --no-deps into the cache dir. 1.19 is the newest Flink that both Beam 2.77's Python
SDK (PUBLISHED_FLINK_VERSIONS 1.19..2.2) and the newest complete Beam Flink runner on the reachable
Maven repository (2.62.0, see downloads.py) support; the job server's Flink client jars are 1.19.0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
from typing import Iterator, List

from .beam_services import PortableCluster, job_server, worker_pool_server
from .downloads import BEAM_JOB_SERVER_VERSION, maven_jars, pip_target
from .processes import LoopbackNamespace, Server, cache_dir, free_port

FLINK_VERSION = '1.19.0'
FLINK_MINOR = '1.19'
TASK_SLOTS = 2
START_TIMEOUT_SECONDS = 180


def install_flink() -> pathlib.Path:
  """FLINK_HOME (the `pyflink` folder holding bin/, lib/, conf/), installed when missing."""
  target = pip_target(
    cache_dir('flink') / f'apache-flink-{FLINK_VERSION}',
    [f'apache-flink=={FLINK_VERSION}', f'apache-flink-libraries=={FLINK_VERSION}'],
  )
  return target / 'pyflink'


def install_flink_job_server() -> pathlib.Path:
  """Folder of the jars of Beam's Flink job server (FlinkJobServerDriver and dependencies)."""
  return maven_jars(
    cache_dir('jars') / f'beam-flink-{FLINK_MINOR}-job-server-{BEAM_JOB_SERVER_VERSION}',
    [
      f'org.apache.beam:beam-runners-flink-{FLINK_MINOR}:{BEAM_JOB_SERVER_VERSION}',
      f'org.apache.beam:beam-runners-java-job-service:{BEAM_JOB_SERVER_VERSION}',
    ],
  )


def _java_opts(flink_home: pathlib.Path) -> str:
  """The --add-opens/--add-exports line of Flink's own config.yaml (needed on Java 17)."""
  for line in (flink_home / 'conf' / 'config.yaml').read_text().splitlines():
    if line.strip().startswith('all: --add-'):
      return line.split('all:', 1)[1].strip()
  return ''


def write_config(
  conf_dir: pathlib.Path, flink_home: pathlib.Path, rpc_port: int, rest_port: int
) -> None:
  """config.yaml: everything on 127.0.0.1, one TaskManager with TASK_SLOTS slots, small memory."""
  conf_dir.mkdir(parents=True, exist_ok=True)
  for name in ('log4j-console.properties', 'log4j.properties'):
    (conf_dir / name).write_bytes((flink_home / 'conf' / name).read_bytes())
  (conf_dir / 'config.yaml').write_text(f"""\
env:
  java:
    opts:
      all: {_java_opts(flink_home)}
jobmanager:
  bind-host: 127.0.0.1
  rpc: {{address: 127.0.0.1, port: {rpc_port}}}
  memory: {{process: {{size: 1024m}}}}
taskmanager:
  bind-host: 127.0.0.1
  host: 127.0.0.1
  numberOfTaskSlots: {TASK_SLOTS}
  # Network buffers: 20% of the TaskManager's memory instead of Flink's 10%; the converter's graph
  # (listing, duplicates, split, shards, metadata) runs ~20 shuffles and side inputs at once, and
  # 10% of 2 GB (5,079 buffers) left a task 110 buffers short.
  memory: {{process: {{size: 2048m}}, network: {{fraction: 0.2, max: 512m}}}}
parallelism: {{default: {TASK_SLOTS}}}
rest: {{address: 127.0.0.1, bind-address: 127.0.0.1, port: {rest_port}}}
""")


@dataclasses.dataclass
class FlinkCluster(PortableCluster):
  """What a test needs to submit to the running cluster, and Flink's REST address."""

  rest_url: str = ''

  def pipeline_args(self, *extra: str) -> List[str]:
    return super().pipeline_args(f'--parallelism={TASK_SLOTS}', *extra)

  def overview(self) -> dict:
    body = self.ns.http_get(f'{self.rest_url}/overview')
    return json.loads(body) if body else {}


@contextlib.contextmanager
def flink_cluster(work_dir: pathlib.Path, pythonpath: pathlib.Path) -> Iterator[FlinkCluster]:
  """Starts JobManager, TaskManager, job server and worker pool; stops all of them on exit."""
  flink_home = install_flink()
  jars = install_flink_job_server()
  log_dir = work_dir / 'logs'
  log_dir.mkdir(parents=True, exist_ok=True)
  rpc_port, rest_port, job_port, pool_port = (free_port() for _ in range(4))
  write_config(work_dir / 'conf', flink_home, rpc_port, rest_port)
  env = {'FLINK_CONF_DIR': str(work_dir / 'conf'), 'FLINK_LOG_DIR': str(log_dir)}
  with contextlib.ExitStack() as stack:
    ns = stack.enter_context(LoopbackNamespace())
    cluster = FlinkCluster(
      ns,
      f'127.0.0.1:{job_port}',
      f'127.0.0.1:{pool_port}',
      log_dir,
      rest_url=f'http://127.0.0.1:{rest_port}',
    )
    jobmanager = stack.enter_context(
      Server(
        'jobmanager',
        [str(flink_home / 'bin' / 'jobmanager.sh'), 'start-foreground'],
        log_dir,
        ns,
        env=env,
      )
    )
    stack.enter_context(
      Server(
        'taskmanager',
        [str(flink_home / 'bin' / 'taskmanager.sh'), 'start-foreground'],
        log_dir,
        ns,
        env=env,
      )
    )
    beam_job_server = stack.enter_context(
      job_server(
        'flink-job-server',
        [*sorted(flink_home.glob('lib/log4j-*.jar')), jars],
        'org.apache.beam.runners.flink.FlinkJobServerDriver',
        [f'--flink-master=127.0.0.1:{rest_port}'],
        ns,
        log_dir,
        job_port,
      )
    )
    pool = stack.enter_context(worker_pool_server(ns, log_dir, pool_port, pythonpath))
    jobmanager.wait_until(
      lambda: cluster.overview().get('slots-available', 0) >= TASK_SLOTS,
      START_TIMEOUT_SECONDS,
      f'TaskManager with {TASK_SLOTS} free slots',
    )
    beam_job_server.wait_until(
      lambda: ns.can_connect(job_port), START_TIMEOUT_SECONDS, 'job service port'
    )
    pool.wait_until(lambda: ns.can_connect(pool_port), 60, 'worker pool port')
    yield cluster
