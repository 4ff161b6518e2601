"""The converter's graph translates into a Dataflow job offline (--dry_run=True, a fake project).

The DataflowRunner builds the Runner v2 job (the portable pipeline proto plus the job request)
without contacting Google: NO_GCE_CHECK and a closed loopback metadata port stop the auth probes
from hanging (docs/running_at_scale.md). The graph is built the way pipeline/run.py builds it
(parse_args -> plan_dataset -> ConvertImageFolder); run() itself is not called because it prepares
--output and reads stats.json after the run, which a dry run never writes.
"""

import pytest

import sys

from clusters.processes import free_port
from conftest import REPO, SAMPLE_DIR, SAMPLE_FLAGS

sys.path.insert(0, str(REPO / 'scripts'))
from worker_requirements import worker_requirements  # pylint: disable=wrong-import-position

DRY_RUN_FLAGS = (
  '--runner=DataflowRunner',
  '--dry_run=True',
  '--project=fake-project',
  '--region=us-central1',
  '--temp_location=gs://fake-bucket/tmp',
)
# The converter's named steps (pipeline/graph.py and the composites of transforms/).
EXPECTED_STEPS = (
  'ConvertImageFolder/ListImages',
  'ConvertImageFolder/ListImages/ListClassFolder',
  'ConvertImageFolder/AssignSplitShard',
  'ConvertImageFolder/WriteShards',
  'ConvertImageFolder/WriteShards/GroupPathsByShard',
  'ConvertImageFolder/WriteShards/WriteShard',
  'ConvertImageFolder/ChannelStats',
  'ConvertImageFolder/ShardRejects',
  'ConvertImageFolder/AllRejects',
  'ConvertImageFolder/WriteMetadata',
)


@pytest.fixture(name='offline_gcp')
def fixture_offline_gcp(monkeypatch):
  """Google auth probes fail at once: no GCE check, metadata server on a closed loopback port."""
  monkeypatch.setenv('NO_GCE_CHECK', 'True')
  monkeypatch.setenv('GCE_METADATA_HOST', f'127.0.0.1:{free_port()}')
  monkeypatch.setenv('GCE_METADATA_IP', f'127.0.0.1:{free_port()}')


def _dry_run_job(output, *extra):
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  from pipeline.graph import ConvertImageFolder, plan_dataset  # pylint: disable=import-outside-toplevel
  from pipeline.options import parse_args  # pylint: disable=import-outside-toplevel
  from pipeline.run import pipeline_options  # pylint: disable=import-outside-toplevel

  opts, beam_args = parse_args(
    ['--input', str(SAMPLE_DIR), '--output', str(output), *SAMPLE_FLAGS, *DRY_RUN_FLAGS, *extra]
  )
  pipeline = beam.Pipeline(options=pipeline_options(beam_args))
  _ = pipeline | 'ConvertImageFolder' >> ConvertImageFolder(opts, plan_dataset(opts))
  return pipeline.run().job


@pytest.mark.slow  # Builds the whole Dataflow job offline: ~3 s, the slowest of the quick set.
@pytest.mark.timeout(300)
def test_dataflow_job_has_the_converter_steps_and_user_code_pickles(tmp_path, offline_gcp):
  from apache_beam.internal import pickler  # pylint: disable=import-outside-toplevel
  from apache_beam.portability import common_urns, python_urns  # pylint: disable=import-outside-toplevel
  from apache_beam.portability.api import beam_runner_api_pb2  # pylint: disable=import-outside-toplevel

  requirements = tmp_path / 'worker-requirements.txt'
  requirements.write_text(worker_requirements())
  job = _dry_run_job(
    tmp_path / 'out',
    f'--setup_file={REPO / "setup.py"}',
    f'--requirements_file={requirements}',
    '--requirements_cache=skip',
  )
  assert job.proto.name.startswith('beamapp-')
  transforms = job.proto_pipeline.components.transforms.values()
  names = {t.unique_name for t in transforms}
  assert set(EXPECTED_STEPS) <= names, sorted(set(EXPECTED_STEPS) - names)

  do_fns = [
    beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).do_fn
    for t in transforms
    if t.spec.urn == common_urns.primitives.PAR_DO.urn
  ]
  # Beam's own KeyWithVoid (CombineGlobally) is a known URN without a pickled DoFn.
  do_fns = [do_fn for do_fn in do_fns if do_fn.urn == python_urns.PICKLED_DOFN_INFO]
  assert len(do_fns) >= len(EXPECTED_STEPS) // 2
  for do_fn in do_fns:  # What the workers will unpickle.
    assert pickler.loads(do_fn.payload) is not None

  # --setup_file: the project is packaged (sdist) and staged for the workers to pip-install.
  staged = [
    beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(d.role_payload).staged_name
    for env in job.proto_pipeline.components.environments.values()
    for d in env.dependencies
  ]
  assert 'workflow.tar.gz' in staged, staged
  # --requirements_file (run_dataflow.sh): the workers install the driver's codec versions.
  assert 'requirements.txt' in staged, staged
  assert not (tmp_path / 'out').exists(), 'a dry run must not write the output'


@pytest.mark.parametrize(
  'args, message',
  [
    ((), 'expected PROJECT REGION gs://BUCKET/path, got 0'),
    (('my-project', 'us-central1'), 'got 2 argument(s)'),
    (('my-project', 'us-central1', '/local/folder'), 'must be gs://BUCKET/path'),
    (('my-project', 'gs://bucket/x', 'gs://bucket/path'), 'REGION must be a Dataflow region'),
  ],
)
def test_run_dataflow_sh_prints_usage_on_wrong_arguments(args, message):
  import subprocess  # pylint: disable=import-outside-toplevel

  done = subprocess.run(
    ['bash', str(REPO / 'run_dataflow.sh'), *args],
    capture_output=True,
    text=True,
    timeout=60,
    check=False,
  )
  assert done.returncode == 2
  assert message in done.stderr
  assert './run_dataflow.sh PROJECT REGION gs://BUCKET/path' in done.stderr
