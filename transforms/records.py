"""The typed records passed between the converter's steps, in one module.

`ImageRef` (one listed file, on Beam's compiled tuple coder) and `ShardId` go from the listing to
the shard writer (transforms/split/sharding.py keeps them beside their coder and the split rule); a
`DuplicateGroup` from the exact-duplicate search to the split rule and --drop_duplicates; a `Reject`
from the listing, the duplicate filters and the shard writer to rejects.jsonl; a `ShardSummary` from
the shard writer, with the shard's outcome (one of transforms/output/resume.py OUTCOMES) on the
writer's `outcomes` output, to the statistics, the metadata and its sidecar `_work/<shard>.json`,
which --resume reads back. All are immutable and picklable, as every runner needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from transforms.inputs.fingerprint import ShardInputs
from transforms.inputs.input_file import escaped
from transforms.split.sharding import TRAIN, UNSPLIT, ImageRef, ImageRefCoder, ShardId

__all__ = ['DuplicateGroup', 'ImageRef', 'ImageRefCoder', 'Reject', 'ShardId', 'ShardSummary']

Triple = Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Reject:
  """A file that was not converted: one line of rejects.jsonl.

  Attributes:
    path: the file's path or URL, each byte that is not UTF-8 written as `\\xNN`.
    reason: why, in words (transforms/metadata/reject_reasons.py groups reasons into categories).
    split: the split it was listed in or assigned to; None when it was rejected before any split
      was chosen (files beside the class folders, classes missing from --labels_file, ...).
  """

  path: str
  reason: str
  split: Optional[str] = None

  @classmethod
  def of(cls, path: str, split: Optional[str], reason: str) -> 'Reject':
    """The reject of the file at `path` (a raw path: its non-UTF-8 bytes are escaped here); an
    empty `split` (transforms/split/sharding.py UNSPLIT) is None."""
    return cls(escaped(path), reason, split or None)

  def to_json(self) -> Dict[str, Optional[str]]:
    """Its rejects.jsonl object: {"path", "reason", "split"}, in that order."""
    return {'path': self.path, 'reason': self.reason, 'split': self.split}

  @classmethod
  def from_json(cls, value: Mapping[str, Any]) -> 'Reject':
    """Reads a rejects.jsonl object (or a sidecar's).

    Raises:
      KeyError: "path" or "reason" is missing.
    """
    return cls(value['path'], value['reason'], value.get('split'))


@dataclasses.dataclass(frozen=True)
class DuplicateGroup:
  """Listed files with identical bytes.

  Attributes:
    digest: hex SHA-256 of the bytes.
    members: two or more ImageRefs in the order copies are kept (transforms/duplicates/exact.py
      `member_order`): the first is the copy that is kept.
  """

  digest: str
  members: Tuple[ImageRef, ...]

  def dropped(self) -> List[ImageRef]:
    """The members --drop_duplicates drops: every train (or unsplit) member but the first member."""
    return [ref for ref in self.members[1:] if ref.split in (TRAIN, UNSPLIT)]

  def followers(self) -> List[Tuple[ImageRef, ImageRef]]:
    """(member, first member) for every member but the first: the split the first one gets is
    theirs (inputs without split folders only)."""
    return [(ref, self.members[0]) for ref in self.members[1:] if ref.split == UNSPLIT]


@dataclasses.dataclass(frozen=True)
class ShardSummary:
  """What one shard holds and what its files contribute to the statistics.

  Attributes:
    shard: the shard's file name (`train-00003-of-00128`).
    split: 'train', 'validation', ...
    num_examples: records written.
    num_bytes: bytes of `image/encoded` (the stored JPEGs), summed over the records.
    num_passthrough: records whose `image/encoded` is the input file's own bytes.
    class_counts: {class name (synset): records}.
    num_pixels: stored pixels, height x width summed over the records (per channel).
    channel_sums: exact (R, G, B) sums of the stored pixel values, 0-255 units.
    channel_squares: exact (R, G, B) sums of the squared pixel values.
    rejects: the shard's files that were not stored.
    inputs: the fingerprint of the files the shard was written from
    (transforms/inputs/fingerprint.py).
    file_bytes: size of the shard file in bytes, as stored (after compression).
    file_sha256: hex SHA-256 of the shard file as stored.
    codecs: {codec: version} of the builds that wrote it (transforms/imaging/codec_versions.py).
    phashes: (path relative to --input, image/phash) of each record in write order, what the
      near-duplicate search reads (transforms/duplicates/near.py); None in a sidecar written before
      records had image/phash.
    recipe: {flag: value} of the flags that decided the shard's bytes and the input root it was
      written from (transforms/output/resume.py RECIPE_FLAGS); None in a sidecar written before
      recipes.
    crop_phashes: the crop hashes (transforms/imaging/perceptual_hash.py `image_hashes`) of each
    record,
      in the order of `phashes`; None in a sidecar written before them.
  """

  shard: str
  split: str
  num_examples: int = 0
  num_bytes: int = 0
  num_passthrough: int = 0
  class_counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
  num_pixels: int = 0
  channel_sums: Triple = (0, 0, 0)
  channel_squares: Triple = (0, 0, 0)
  rejects: Tuple[Reject, ...] = ()
  inputs: Optional[ShardInputs] = None
  file_bytes: Optional[int] = None
  file_sha256: Optional[str] = None
  codecs: Optional[Mapping[str, str]] = None
  phashes: Optional[Tuple[Tuple[str, int], ...]] = None
  recipe: Optional[Mapping[str, Any]] = None
  crop_phashes: Optional[Tuple[Tuple[int, ...], ...]] = None

  @property
  def num_rejected(self) -> int:
    return len(self.rejects)

  def to_json(self) -> Dict[str, Any]:
    """The sidecar's JSON object."""
    # Field by field, not dataclasses.asdict: asdict deep-copies `inputs` and `phashes` (one entry a
    # file) only for them to be replaced below (~30 us a file in the shard writer).
    values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
    values['class_counts'] = dict(sorted(self.class_counts.items()))
    values['channel_sums'] = list(self.channel_sums)
    values['channel_squares'] = list(self.channel_squares)
    values['rejects'] = [reject.to_json() for reject in self.rejects]
    values['inputs'] = self.inputs.to_json() if self.inputs else None
    values['codecs'] = dict(sorted(self.codecs.items())) if self.codecs is not None else None
    values['phashes'] = [list(item) for item in self.phashes] if self.phashes is not None else None
    values['recipe'] = dict(sorted(self.recipe.items())) if self.recipe is not None else None
    values['crop_phashes'] = (
      [list(item) for item in self.crop_phashes] if self.crop_phashes is not None else None
    )
    return values

  @classmethod
  def from_json(cls, value: Mapping[str, Any]) -> 'ShardSummary':
    """Reads a sidecar, also one written by an earlier version (see `_pixel_sums`); keys this
    version does not know are ignored.

    Raises:
      KeyError: a key every version wrote is missing (not a sidecar).
    """
    num_pixels, sums, squares = _pixel_sums(value)
    inputs, codecs, phashes = value.get('inputs'), value.get('codecs'), value.get('phashes')
    recipe = value.get('recipe')
    crop_phashes = value.get('crop_phashes')
    return cls(
      shard=value['shard'],
      split=value['split'],
      num_examples=value['num_examples'],
      num_bytes=value['num_bytes'],
      num_passthrough=value.get('num_passthrough', 0),
      class_counts=dict(value['class_counts']),
      num_pixels=num_pixels,
      channel_sums=tuple(sums),
      channel_squares=tuple(squares),
      rejects=tuple(Reject.from_json(reject) for reject in value['rejects']),
      inputs=ShardInputs.from_json(inputs) if inputs else None,
      file_bytes=value.get('file_bytes'),
      file_sha256=value.get('file_sha256'),
      codecs=dict(codecs) if codecs is not None else None,
      phashes=(tuple((path, value) for path, value in phashes) if phashes is not None else None),
      recipe=dict(recipe) if recipe is not None else None,
      crop_phashes=(
        tuple(tuple(item) for item in crop_phashes) if crop_phashes is not None else None
      ),
    )


def _pixel_sums(value: Mapping[str, Any]) -> Tuple[int, Sequence[int], Sequence[int]]:
  """(num_pixels, sums, squares) of a sidecar; sidecars of earlier versions hold a 768-bin
  histogram (256 counts per channel) instead, which gives the same numbers."""
  if 'histogram' not in value:
    return value['num_pixels'], value['channel_sums'], value['channel_squares']
  counts = [value['histogram'][c * 256 : (c + 1) * 256] for c in range(3)]
  return (
    sum(counts[0]),
    [sum(v * k for v, k in enumerate(c)) for c in counts],
    [sum(v * v * k for v, k in enumerate(c)) for c in counts],
  )
