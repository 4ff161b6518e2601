"""A NamedTuple coder on Beam's compiled tuple coder (`apache_beam.coders.coder_impl` and the
`FastCoder._create_impl` hook, both private).

A `beam.coders.Coder` written with `encode`/`decode` runs several Python calls per element at every
stage boundary (CallbackCoderImpl: encode to bytes, then write them length-prefixed; and again to
estimate sizes for Beam's element-size counters). Beam's own `TupleCoderImpl` encodes the fields in
Cython; subclassing it only to rebuild the NamedTuple on decode keeps the fields' standard coders
and costs one Python call per decode.
"""

from __future__ import annotations

from typing import ClassVar, Sequence, Type

import apache_beam as beam
from apache_beam.coders import coder_impl, coders


class NamedTupleCoder(coders.FastCoder):
  """Base of a deterministic coder of the NamedTuple `TUPLE_TYPE` whose field i is encoded with
  `FIELDS[i]`: the bytes of `beam.coders.TupleCoder(FIELDS)` for the plain tuple; decodes to
  `TUPLE_TYPE`. Subclasses set the two class attributes."""

  TUPLE_TYPE: ClassVar[Type[tuple]]
  FIELDS: ClassVar[Sequence[beam.coders.Coder]]

  def _create_impl(self):
    return named_tuple_coder_impl(self.TUPLE_TYPE, self.FIELDS)

  def is_deterministic(self) -> bool:
    return all(field.is_deterministic() for field in self.FIELDS)

  def to_type_hint(self):
    return self.TUPLE_TYPE


def named_tuple_coder_impl(tuple_type: Type[tuple], field_coders: Sequence[beam.coders.Coder]):
  """A CoderImpl of `tuple_type` (a NamedTuple) that encodes field i with `field_coders[i]`, as
  `beam.coders.TupleCoder(field_coders)` encodes the plain tuple, and decodes to `tuple_type`."""

  class _NamedTupleCoderImpl(coder_impl.TupleCoderImpl):
    def _construct_from_components(self, components):
      return tuple_type._make(components)

  return _NamedTupleCoderImpl([coder.get_impl() for coder in field_coders])
