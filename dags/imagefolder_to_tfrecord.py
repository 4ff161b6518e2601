"""Airflow 3 DAG ``imagefolder_to_tfrecord``: convert an image folder to TFRecords, then verify it.

Tasks:
  convert        BeamRunPythonPipelineOperator (apache-airflow-providers-apache-beam) runs
                 ``<python> -m pipeline.run --runner=<runner> <beam_options> --input=...
                 --output=... ... --resume --labels=airflow-version=v3-...``; the DirectRunner's engine
                 (FnApiRunner) unless the ``runner`` Param says otherwise. Retried up to 2 times,
                 60 s apart: ``--resume`` makes a retry keep each finished shard whose input files
                 are unchanged and write the others (those the failed attempt did not finish, and
                 those whose files were added, removed or replaced since), so a retry is cheap and
                 gives the bytes of a fresh run on the input as it is now; the task log says
                 ``resumed: N shards kept, M rewritten because their input changed, K missing``.
                 A run claims the output first: a second run on it fails at once, naming the first;
                 the 60 s let the claim of an attempt killed on another machine go stale
                 (pipeline/runtime/claim.py).
  verify_output  ``<python> -m pipeline.verify <output>``: _SUCCESS present, per-split and
                 per-shard counts and each shard's SHA-256 equal manifest.json, every record's
                 crcs, Example and JPEG valid. Fails the run otherwise (no retries: a broken output
                 is not transient).

Per-run settings are Airflow Params (trigger with a conf dict to override): ``input``, ``output``,
the converter flags below, ``runner`` and ``beam_options`` (a dict of extra Beam options, e.g.
``{"flink_master": "localhost:8081", "environment_type": "LOOPBACK"}`` for Flink, or
``{"temp_location": "gs://b/tmp", "setup_file": "/repo/setup.py"}`` for Dataflow).

Deployment settings are Airflow Variables (or ``AIRFLOW_VAR_<NAME>`` environment variables):
  folder2tfrecord_python           interpreter in which the converter is installed
                                   (``pip install .``, so ``pipeline.run`` imports from any
                                   working directory); default ``python3``;
  folder2tfrecord_dataflow_config  JSON for the operator's ``dataflow_config`` (project_id,
                                   location, ...) when runner is DataflowRunner (default ``{}``).

The DAG renders templates as native Python objects, so integer and float Params reach the command
line as numbers and ``beam_options`` stays a dict. See docs/airflow.md.
"""

from __future__ import annotations

import datetime
import subprocess

from airflow.providers.apache.beam.hooks.beam import beam_options_to_args
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.sdk import DAG, Param, task

DAG_ID = 'imagefolder_to_tfrecord'
# The DirectRunner's batch engine, named so that Beam does not first try to download its Prism
# runner binary from GitHub (what --runner=DirectRunner does); the converter's own default too
# (beam_private/runners.py: Airflow parses this file where the converter is not installed, so the
# path is spelled again; tests/test_beam_private.py checks that the two agree).
DIRECT_RUNNER = 'apache_beam.runners.portability.fn_api_runner.fn_runner.FnApiRunner'
PYTHON = "{{ var.value.get('folder2tfrecord_python', 'python3') }}"

# Converter flags taken from Params one to one (name: (default, JSON-schema keywords)).
CONVERTER_PARAMS = {
  'resize_shorter_side': (256, {'type': 'integer', 'minimum': 0}),
  'center_crop': (256, {'type': 'integer', 'minimum': 0}),
  'jpeg_quality': (90, {'type': 'integer', 'minimum': 1, 'maximum': 100}),
  'train_shards': (0, {'type': 'integer', 'minimum': 0}),
  'validation_shards': (0, {'type': 'integer', 'minimum': 0}),
  'validation_fraction': (0.0, {'type': 'number', 'minimum': 0.0, 'maximum': 1.0}),
  'test_fraction': (0.0, {'type': 'number', 'minimum': 0.0, 'maximum': 1.0}),
  'test_shards': (0, {'type': 'integer', 'minimum': 0}),
  'no_upscale': (False, {'type': 'boolean'}),
  'target_shard_mb': (128, {'type': 'number', 'exclusiveMinimum': 0}),
  'file_format': ('tfrecord', {'type': 'string', 'enum': ['tfrecord', 'array_record']}),
  'seed': (0, {'type': 'integer'}),
  'label_offset': (0, {'type': 'integer', 'enum': [0, 1]}),
  'compression': ('none', {'type': 'string', 'enum': ['none', 'gzip']}),
  'max_reject_fraction': (1.0, {'type': 'number', 'minimum': 0.0, 'maximum': 1.0}),
  # Labels and splits from a CSV / TSV / JSON-lines file instead of class folders; '': not used.
  **{
    name: ('', {'type': 'string'})
    for name in (
      'manifest',
      'manifest_path_column',
      'manifest_label_column',
      'manifest_split_column',
      'manifest_path_format',
      'manifest_columns',
      'label_separator',
    )
  },
  'base': ('', {'type': 'string'}),  # '': no base (a fresh conversion)
}


class ConvertOperator(BeamRunPythonPipelineOperator):
  """BeamRunPythonPipelineOperator whose ``py_interpreter`` is templated too (from a Variable)."""

  template_fields = (*BeamRunPythonPipelineOperator.template_fields, 'py_interpreter')


@task(task_id='verify_output', retries=0)
def verify_output(python: str, output: str, beam_options: dict) -> str:
  """Run ``python -m pipeline.verify output``; raise (failing the run) if it finds a problem."""
  command = [python, '-m', 'pipeline.verify', output, *beam_options_to_args(beam_options)]
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  print(result.stdout + result.stderr)
  if result.returncode != 0:
    raise RuntimeError(
      f'verify found problems in {output} (exit {result.returncode}):\n{result.stderr[-4000:]}'
    )
  return result.stdout.strip()


with DAG(
  dag_id=DAG_ID,
  description='Image folder -> sharded TFRecords (Apache Beam), then verify the output',
  schedule=None,
  start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
  catchup=False,
  max_active_runs=1,  # two runs on one output: the second would fail on the first's claim
  render_template_as_native_obj=True,
  doc_md=__doc__,
  tags=['folder2tfrecord', 'beam'],
  params={
    'input': Param(
      '',
      type='string',
      minLength=1,
      description='root/<class>/<image> folder: local path, gs:// or s3:// URL',
    ),
    'output': Param(
      '', type='string', minLength=1, description='output directory: local path, gs:// or s3:// URL'
    ),
    **{name: Param(default, **schema) for name, (default, schema) in CONVERTER_PARAMS.items()},
    'runner': Param(
      DIRECT_RUNNER,
      type='string',
      description="Beam runner: the default is the DirectRunner's in-process "
      'engine; FlinkRunner, PortableRunner, DataflowRunner',
    ),
    'beam_options': Param(
      {}, type='object', description='extra Beam pipeline options, {"name": value}'
    ),
  },
) as dag:
  convert = ConvertOperator(
    task_id='convert',
    py_interpreter=PYTHON,
    py_options=['-m'],
    py_file='pipeline.run',
    runner='{{ params.runner }}',
    default_pipeline_options='{{ params.beam_options }}',
    pipeline_options={
      'input': '{{ params.input }}',
      'output': '{{ params.output }}',
      **{name: '{{ params.' + name + ' }}' for name in CONVERTER_PARAMS},
      'resume': True,  # a retry rewrites only the missing shards and those whose input changed
    },
    dataflow_config="{{ var.json.get('folder2tfrecord_dataflow_config', {}) }}",
    retries=2,
    # Longer than pipeline/runtime/claim.py STALE_AFTER_SECONDS: an attempt killed on another
    # machine leaves an object-store claim that is stale by then (a local output's claim is freed
    # at once).
    retry_delay=datetime.timedelta(seconds=60),
  )
  convert >> verify_output(PYTHON, '{{ params.output }}', '{{ params.beam_options }}')
