"""The private Beam APIs the converter relies on (beam_private/): each still works with the installed
Beam. A failure here after a Beam upgrade names the module to fix; nothing else in the tree touches
these APIs."""

import argparse
import inspect
import io
import pathlib

import apache_beam as beam
import google_crc32c
import pytest

from beam_private import coders, option_parser, runners, s3, tfrecord, worker_threads


def _explain(module, error):
  return (
    f'Beam {beam.__version__} moved or changed a private API that {module.__name__} wraps '
    f'({type(error).__name__}: {error}); update {module.__file__}.'
  )


def test_tfrecord_framing_is_tensorflows():
  try:
    buffer = io.BytesIO()
    tfrecord.write_record(buffer, b'payload')
    crc = tfrecord.masked_crc32c(b'payload')
  except Exception as e:  # pylint: disable=broad-except
    pytest.fail(_explain(tfrecord, e))
  framed = buffer.getvalue()
  assert len(framed) == 12 + 7 + 4 and framed[12:19] == b'payload'
  assert int.from_bytes(framed[-4:], 'little') == crc
  raw = google_crc32c.value(b'payload')  # TFRecord's mask: rotate right by 15, add 0xa282ead8.
  assert crc == (((raw >> 15) | (raw << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_named_tuple_coder_encodes_as_tuple_coder_and_decodes_the_type():
  from transforms.split.sharding import ImageRef  # pylint: disable=import-outside-toplevel

  fields = [
    beam.coders.StrUtf8Coder(),
    beam.coders.VarIntCoder(),
    beam.coders.StrUtf8Coder(),
    beam.coders.StrUtf8Coder(),
    beam.coders.VarIntCoder(),
    beam.coders.VarIntCoder(),
  ]
  ref = ImageRef('train', 7, 'n01440764', 'n01440764/é x.JPEG', 123_456, -1)
  try:
    impl = coders.named_tuple_coder_impl(ImageRef, fields)
    encoded = impl.encode(ref)
    decoded = impl.decode(encoded)
    nested = impl.decode_nested(impl.encode_nested(ref) + b'next')  # As inside a KV or a list.
    size = impl.estimate_size(ref)
  except Exception as e:  # pylint: disable=broad-except
    pytest.fail(_explain(coders, e))
  assert encoded == beam.coders.TupleCoder(fields).encode(tuple(ref)) and size == len(encoded)
  assert type(decoded) is ImageRef and decoded == ref  # pylint: disable=unidiomatic-typecheck
  assert nested == ref

  class RefCoder(coders.NamedTupleCoder):
    TUPLE_TYPE, FIELDS = ImageRef, tuple(fields)

  try:
    coder = RefCoder()
    round_trip = coder.decode(coder.encode(ref))
  except Exception as e:  # pylint: disable=broad-except
    pytest.fail(_explain(coders, e))
  assert round_trip == ref and coder.is_deterministic() and coder.to_type_hint() is ImageRef
  assert coder.encode(ref) == encoded


def test_option_parser_knows_beams_flags():
  try:
    parser = option_parser.beam_option_parser()
  except Exception as e:  # pylint: disable=broad-except
    pytest.fail(_explain(option_parser, e))
  assert isinstance(parser, argparse.ArgumentParser)
  known, unknown = parser.parse_known_args(
    ['--runner=X', '--direct_num_workers=2', '--s3_endpoint_url=http://x', '--train_shard=3']
  )
  assert known.runner == 'X' and known.direct_num_workers == 2
  assert unknown == ['--train_shard=3']


def test_fn_api_runner_path_resolves():
  module, _, name = runners.FN_API_RUNNER.rpartition('.')
  try:
    cls = getattr(__import__(module, fromlist=[name]), name)
  except Exception as e:  # pylint: disable=broad-except
    pytest.fail(_explain(runners, e))
  assert issubclass(cls, beam.runners.runner.PipelineRunner)
  dag = (pathlib.Path(__file__).parent.parent / 'dags' / 'imagefolder_to_tfrecord.py').read_text()
  assert f"DIRECT_RUNNER = '{runners.FN_API_RUNNER}'" in dag


def test_s3_empty_upload_fix_applies_and_is_idempotent():
  pytest.importorskip('boto3')
  from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel

  try:
    assert s3.apply_empty_upload_fix() and s3.apply_empty_upload_fix()
  except Exception as e:  # pylint: disable=broad-except
    pytest.fail(_explain(s3, e))
  assert s3io.S3Uploader.finish.uploads_empty_files
  for attribute in ('parts', 'buffer', '_write_to_s3'):  # What the fix reads from the uploader.
    assert attribute in s3io.S3Uploader.__init__.__code__.co_names or hasattr(
      s3io.S3Uploader, attribute
    ), _explain(s3, AttributeError(attribute))


def test_a_dead_local_worker_is_still_reported_the_way_worker_threads_reads_it():
  # pylint: disable=import-outside-toplevel
  from apache_beam.runners.portability import local_job_service
  from apache_beam.runners.portability.fn_api_runner import worker_handlers

  start = inspect.getsource(worker_handlers.SubprocessSdkWorkerHandler.start_worker)
  run = inspect.getsource(local_job_service.SubprocessSdkWorker.run)
  assert f"name='{worker_threads.WORKER_THREAD_NAME}'" in start, _explain(
    worker_threads, LookupError('the worker thread name')
  )
  assert "'Worker subprocess exited with return code %s'" in run, _explain(
    worker_threads, LookupError('the worker exit message')
  )

  class Args:  # threading.ExceptHookArgs
    exc_type, exc_value = (
      RuntimeError,
      RuntimeError('Worker subprocess exited with return code 137'),
    )
    thread = type('Thread', (), {'name': worker_threads.WORKER_THREAD_NAME})()

  assert worker_threads.worker_exit_code(Args) == 137
  Args.thread = type('Thread', (), {'name': 'other'})()
  assert worker_threads.worker_exit_code(Args) is None
