"""Fingerprints of the input: per shard (what --resume compares) and of the whole listing
(provenance).

Made from what the listing already knows (each ImageRef's size and modification time), so a resume
reads no input file and sends no request per file. Not noticed: a file rewritten with the same size
within the same microsecond (second on S3); --bbox_dir files (after editing boxes, --overwrite). Per
shard (ShardInputs), over its files in write order (`sharding.order_key`): `names_sha256` (the file
list), `sha256` (name, size, mtime), `labels_sha256` (name, label, class, after a digest of the
class texts: what the records store besides the image) and `listing_sum`. Of the whole input
(InputFingerprint, in provenance.json): files, bytes and `listing_sha256`, the sum modulo 2**256 of
SHA-256(split NUL name NUL size) over the listed files: a multiset hash, independent of the order
shards are added up, of the shard flags and of modification times.

DO NOT change a line format below: every sidecar written so far would count as changed, and --resume
would rewrite every shard once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Dict, Iterable, Mapping, Optional

from transforms.split.sharding import ImageRef

_MODULUS = 1 << 256


def _name(ref: ImageRef) -> str:
  return f'{ref.split}/{ref.key}'


def _listing_item(ref: ImageRef) -> int:
  line = f'{_name(ref)}\x00{ref.size}'.encode('utf-8')
  return int.from_bytes(hashlib.sha256(line).digest(), 'big')


@dataclasses.dataclass(frozen=True)
class ShardInputs:
  """The files one shard was (or would be) written from.

  Attributes:
    files: number of files assigned to the shard.
    bytes: their total size in bytes.
    names_sha256: hex SHA-256 of their names (`split/key`, one per line) in write order.
    sha256: hex SHA-256 of `name NUL size NUL mtime_us` lines in write order: the fingerprint.
    labels_sha256: hex SHA-256 of the class texts' digest, then `name NUL label NUL synset` lines.
    listing_sum: hex of the shard's sum of per-file listing hashes (module docstring).
  """

  files: int
  bytes: int
  names_sha256: str
  sha256: str
  labels_sha256: str
  listing_sum: str

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, value: Mapping[str, Any]) -> 'ShardInputs':
    """Raises KeyError when a field is missing."""
    return cls(**{field.name: value[field.name] for field in dataclasses.fields(cls)})


def class_texts_digest(class_texts: Optional[Mapping[str, str]]) -> str:
  """Hex SHA-256 of {synset: text} (--class_text_file), '' without class texts."""
  if not class_texts:
    return ''
  text = json.dumps(dict(class_texts), sort_keys=True, ensure_ascii=False)
  return hashlib.sha256(text.encode('utf-8')).hexdigest()


def shard_inputs(refs: Iterable[ImageRef], class_texts: str = '') -> ShardInputs:
  """The ShardInputs of a shard's refs, given in write order (sorted by `sharding.order_key`).

  Args:
    class_texts: `class_texts_digest` of the run's class texts.
  """
  names, stamps, labels = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
  labels.update(f'{class_texts}\n'.encode('utf-8'))
  files = total = listing = 0
  for ref in refs:
    name = _name(ref)
    names.update(f'{name}\n'.encode('utf-8'))
    stamps.update(f'{name}\x00{ref.size}\x00{ref.mtime_us}\n'.encode('utf-8'))
    labels.update(f'{name}\x00{ref.label}\x00{ref.synset}\n'.encode('utf-8'))
    files += 1
    total += ref.size
    listing = (listing + _listing_item(ref)) % _MODULUS
  return ShardInputs(
    files, total, names.hexdigest(), stamps.hexdigest(), labels.hexdigest(), f'{listing:064x}'
  )


@dataclasses.dataclass(frozen=True)
class InputFingerprint:
  """What was converted, for provenance.json.

  Attributes:
    files: image files listed for conversion.
    bytes: their total size in bytes.
    listing_sha256: the listing hash (module docstring), 64 hex digits.
  """

  files: int = 0
  bytes: int = 0
  listing_sha256: str = '0' * 64

  def add(self, inputs: 'ShardInputs | InputFingerprint') -> 'InputFingerprint':
    other = inputs.listing_sum if isinstance(inputs, ShardInputs) else inputs.listing_sha256
    listing = (int(self.listing_sha256, 16) + int(other, 16)) % _MODULUS
    return InputFingerprint(self.files + inputs.files, self.bytes + inputs.bytes, f'{listing:064x}')

  def to_json(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)
