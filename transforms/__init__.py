"""The converter's steps: composite PTransforms, DoFns, the CombineFn and the pure image functions."""

from transforms import s3_compat  # noqa: F401  (Beam 2.77's S3 filesystem cannot write empty files)
