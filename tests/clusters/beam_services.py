"""Beam's side of a cluster: a job server JVM, a Python worker pool, and running the converter."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
import time
from typing import List, Sequence

from .processes import LoopbackNamespace, Server, free_port, tail

CONVERTER_TIMEOUT_SECONDS = 600
# pipeline/run.py defaults the harness log level to 'WARNING', a name Java's
# SdkHarnessOptions.LogLevel does not have (it has WARN): Beam's Java job servers then fail the job
# at preparation ("Cannot deserialize value of type LogLevel from String WARNING"). 'WARN' is
# understood by both the Java job servers and the Python workers (logging.WARN).
JAVA_SAFE_LOG_LEVEL = ('--default_sdk_harness_log_level=WARN',)


@dataclasses.dataclass
class PortableCluster:
  """A running engine behind a Beam job server, with a Beam worker pool for the Python workers."""

  ns: LoopbackNamespace
  job_endpoint: str
  worker_pool: str
  log_dir: pathlib.Path

  def pipeline_args(self, *extra: str) -> List[str]:
    """Beam options that submit to this cluster with Python workers from the worker pool."""
    return [
      '--runner=PortableRunner',
      f'--job_endpoint={self.job_endpoint}',
      '--environment_type=EXTERNAL',
      f'--environment_config={self.worker_pool}',
      *extra,
      *JAVA_SAFE_LOG_LEVEL,
    ]


def worker_pool_server(
  ns: LoopbackNamespace, log_dir: pathlib.Path, port: int, pythonpath: pathlib.Path
) -> Server:
  """Beam's worker pool: starts one Python SDK harness process per worker the runner asks for.

  The pool runs harnesses as `python -c ...`, found on PATH: the venv's bin goes first. pythonpath
  makes the project's modules importable there without installing it.
  """
  bin_dir = str(pathlib.Path(sys.executable).parent)
  env = {
    'PATH': f'{bin_dir}:/usr/bin:/bin',
    'PYTHONPATH': str(pythonpath),
    'TF_CPP_MIN_LOG_LEVEL': '2',
  }
  return Server(
    'worker-pool',
    [sys.executable, '-m', 'apache_beam.runners.worker.worker_pool_main', f'--service_port={port}'],
    log_dir,
    ns,
    env=env,
    cwd=pythonpath,
  )


def job_server(
  name: str,
  jars: List[pathlib.Path],
  main_class: str,
  args: List[str],
  ns: LoopbackNamespace,
  log_dir: pathlib.Path,
  job_port: int,
  java_opts: str = '',
) -> Server:
  """A Beam job server JVM with the given class path; its ports are chosen free by the caller."""
  classpath = ':'.join(f'{j}/*' if j.is_dir() else str(j) for j in jars)
  return Server(
    name,
    [
      'java',
      *java_opts.split(),
      '-cp',
      classpath,
      main_class,
      '--job-host=127.0.0.1',
      f'--job-port={job_port}',
      f'--artifact-port={free_port()}',
      f'--expansion-port={free_port()}',
      *args,
    ],
    log_dir,
    ns,
  )


def run_converter(
  repo: pathlib.Path,
  args: Sequence[str],
  log: pathlib.Path,
  prefix: Sequence[str] = (),
  timeout: float = CONVERTER_TIMEOUT_SECONDS,
) -> int:
  """`python -m pipeline.run args` as a subprocess, after `prefix` (a namespace's: the driver then
  talks to the job server in there).

  Output goes to `log`; returns the exit code. A run that does not end within `timeout` seconds
  (a worker that cannot start makes Flink wait forever) is killed and raises TimeoutExpired.
  """
  env = {**os.environ, 'PYTHONPATH': str(repo), 'TF_CPP_MIN_LOG_LEVEL': '2'}
  with open(log, 'wb') as out:
    proc = subprocess.Popen(
      [*prefix, sys.executable, '-m', 'pipeline.run', *args],
      cwd=repo,
      env=env,
      stdout=out,
      stderr=subprocess.STDOUT,
      start_new_session=True,
    )
    try:
      return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, 9)
      proc.wait()
      raise


def timed_conversion(
  repo: pathlib.Path, args: Sequence[str], log: pathlib.Path, prefix: Sequence[str] = ()
) -> float:
  """run_converter, asserting success (with the log's tail); returns the wall time in seconds."""
  start = time.monotonic()
  code = run_converter(repo, args, log, prefix)
  assert code == 0, f'the converter exited with {code}:\n{tail(log, 60)}'
  return time.monotonic() - start
