"""Local paths and object-store URLs (gs://, s3://, ...): the one rule that tells them apart.

A path is remote when it starts with a URL scheme (`scheme://`, the scheme's characters as RFC 3986
and Beam's `FileSystems.get_scheme` read them); anything else is a path of the local file system.
No Beam import: the driver asks before Beam is loaded (pipeline/runtime/logs.py).
"""

from __future__ import annotations

import os
import posixpath
import re

_SCHEME = re.compile(r'[a-zA-Z][-a-zA-Z0-9+.]*://')  # Beam's FileSystems.URI_SCHEMA_PATTERN


def is_remote(path: str) -> bool:
  """Whether `path` is a URL (`gs://bucket/x`, `s3://...`), not a local path (`/data/x`, `x`)."""
  return _SCHEME.match(path) is not None


def comparable(path: str) -> str:
  """`path` as compared for nesting: the real path of a local one (links and `..` resolved), a
  normalised URL (scheme in lower case, `//` and `..` folded)."""
  if is_remote(path):
    scheme, rest = path.split('://', 1)
    return f'{scheme.lower()}://' + posixpath.normpath('/' + rest).lstrip('/')
  return os.path.realpath(os.path.expanduser(path))


def inside(child: str, parent: str) -> bool:
  """Whether comparable path `child` is `parent` or below it."""
  sep = '/' if is_remote(parent) else os.sep
  return child == parent or child.startswith(parent.rstrip(sep) + sep)


def nested(first: str, second: str) -> bool:
  """Whether two folders (local paths or URLs) are one, or one is inside the other."""
  a, b = comparable(first), comparable(second)
  return inside(a, b) or inside(b, a)
