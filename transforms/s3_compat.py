"""A fix for Beam 2.77's S3 filesystem: empty files.

``apache_beam.io.aws.s3io.S3Uploader.finish`` completes a multipart upload with zero parts when nothing
was written, and S3 (and moto) answer ``MalformedXML``. The converter writes empty files on purpose
(`_SUCCESS`; `rejects.jsonl` with no rejects; a shard whose every image was rejected), so until Beam
fixes it, an empty file gets one empty part. Applied on import; a no-op without `apache-beam[aws]`.
"""

try:
  from apache_beam.io.aws import s3io
except ImportError:  # boto3 not installed: no s3:// support, nothing to fix.
  s3io = None

if s3io is not None and not getattr(s3io.S3Uploader.finish, 'uploads_empty_files', False):
  _finish = s3io.S3Uploader.finish

  def _finish_empty_too(self):
    if not self.parts and not self.buffer:
      self._write_to_s3(self.buffer)  # pylint: disable=protected-access
    _finish(self)

  _finish_empty_too.uploads_empty_files = True
  s3io.S3Uploader.finish = _finish_empty_too
