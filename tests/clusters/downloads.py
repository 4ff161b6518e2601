"""Engines and job-server jars for the runner tests, fetched once into the cache dir.

Each download lands in `<dest>.partial` and is renamed to `<dest>` when complete, so an interrupted
download is redone from scratch instead of being taken for a finished one.

Why the Flink/Spark job servers are Beam 2.62.0 class paths and not the 2.77.0 shaded jars: the
Maven repository this machine kind reaches serves no `beam-runners-flink-*-job-server` or
`beam-runners-spark-3-job-server` artifact at any version, and the newest Beam release whose runner
and job-service modules resolve completely is 2.62.0 (2.70.0 lacks beam-runners-java-job-service).
So the job server runs from the unshaded modules (`FlinkJobServerDriver` / `SparkJobServerDriver`)
on a class path that `mvn dependency:copy-dependencies` builds. A 2.62 job server runs pipelines of
the 2.77 Python SDK through the portable protocol, with 2.77 Python workers.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
from typing import Sequence

from .processes import tail

BEAM_JOB_SERVER_VERSION = '2.62.0'
DOWNLOAD_TIMEOUT_SECONDS = 900

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>folder2tfrecord.tests</groupId><artifactId>job-server-classpath</artifactId>
  <version>1</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
_DEPENDENCY = (
  '    <dependency><groupId>{0}</groupId><artifactId>{1}</artifactId>'
  '<version>{2}</version></dependency>'
)


def _fresh(dest: pathlib.Path) -> pathlib.Path:
  partial = dest.with_name(dest.name + '.partial')
  shutil.rmtree(partial, ignore_errors=True)
  partial.mkdir(parents=True)
  return partial


def _run(argv: Sequence[str], log: pathlib.Path, cwd: pathlib.Path) -> None:
  with open(log, 'wb') as out:
    done = subprocess.run(
      list(argv),
      stdout=out,
      stderr=subprocess.STDOUT,
      cwd=cwd,
      check=False,
      timeout=DOWNLOAD_TIMEOUT_SECONDS,
    )
  if done.returncode:
    raise RuntimeError(f'{" ".join(argv)} failed ({done.returncode}):\n{tail(log)}')


def pip_target(dest: pathlib.Path, requirements: Sequence[str]) -> pathlib.Path:
  """`pip install --no-deps --target dest requirements` once; returns dest.

  --no-deps and a separate target keep the engines' Python pins (apache-flink wants
  apache-beam<=2.61) out of the project's environment: only their scripts and jars are used.
  """
  if dest.is_dir():
    return dest
  partial = _fresh(dest)
  _run(
    [
      sys.executable,
      '-m',
      'pip',
      'install',
      '--quiet',
      '--no-deps',
      '--no-compile',
      '--disable-pip-version-check',
      '--target',
      str(partial),
      *requirements,
    ],
    partial.parent / f'{dest.name}.pip.log',
    partial.parent,
  )
  partial.rename(dest)
  return dest


def maven_jars(dest: pathlib.Path, artifacts: Sequence[str]) -> pathlib.Path:
  """Copies `group:artifact:version` artifacts and their runtime dependencies into dest once.

  Dependencies of scope `provided` (Spark's own jars for the Spark runner) are not copied; the
  engine's distribution supplies them.
  """
  if dest.is_dir():
    return dest
  if not shutil.which('mvn'):
    raise RuntimeError('mvn (Maven) is needed to fetch Beam job-server jars')
  partial = _fresh(dest)
  work = partial.parent / f'{dest.name}.mvn'
  shutil.rmtree(work, ignore_errors=True)
  work.mkdir()
  deps = '\n'.join(_DEPENDENCY.format(*a.split(':')) for a in artifacts)
  (work / 'pom.xml').write_text(_POM.format(dependencies=deps))
  _run(
    [
      'mvn',
      '-B',
      '-q',
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      f'-DoutputDirectory={partial}',
    ],
    work / 'mvn.log',
    work,
  )
  partial.rename(dest)
  return dest
