"""A fix for Beam 2.77's S3 filesystem (private `apache_beam.io.aws.s3io.S3Uploader`): empty files.

`S3Uploader.finish` completes a multipart upload with zero parts when nothing was written, and S3
(and moto) answer `MalformedXML`. The converter writes empty files on purpose (`_SUCCESS`;
`rejects.jsonl` with no rejects; a shard whose every image was rejected), so until Beam fixes it an
empty file gets one empty part. Worth reporting upstream.

`apply_empty_upload_fix()` is called explicitly where files are written: on the driver before the
run, and in each shard writer's `setup()`. It is idempotent, and a no-op without `apache-beam[aws]`.
"""


def apply_empty_upload_fix() -> bool:
  """Patches `S3Uploader.finish` once per process; False when Beam's S3 support is not installed."""
  try:
    from apache_beam.io.aws import s3io  # pylint: disable=import-outside-toplevel
  except ImportError:  # boto3 not installed: no s3:// support, nothing to fix.
    return False
  finish = s3io.S3Uploader.finish
  if getattr(finish, 'uploads_empty_files', False):
    return True

  def finish_empty_too(self):
    if not self.parts and not self.buffer:
      self._write_to_s3(self.buffer)  # pylint: disable=protected-access
    finish(self)

  finish_empty_too.uploads_empty_files = True
  s3io.S3Uploader.finish = finish_empty_too
  return True
