"""Local paths and object-store URLs (gs://, s3://, ...): the one rule that tells them apart.

A path is remote when it starts with a URL scheme (`scheme://`, the scheme's characters as RFC 3986
and Beam's `FileSystems.get_scheme` read them); anything else is a path of the local file system.
No Beam import: the driver asks before Beam is loaded (pipeline/runtime/logs.py).
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r'[a-zA-Z][-a-zA-Z0-9+.]*://')  # Beam's FileSystems.URI_SCHEMA_PATTERN


def is_remote(path: str) -> bool:
  """Whether `path` is a URL (`gs://bucket/x`, `s3://...`), not a local path (`/data/x`, `x`)."""
  return _SCHEME.match(path) is not None
