"""Every flag Beam's pipeline options know, through Beam's private option classes' parser hooks.

`PipelineOptions` parses leniently (unknown flags are ignored), so a typo such as `--train_shard`
would silently do nothing. To refuse it, the converter builds a parser that knows every flag of
every `PipelineOptions` subclass as Beam builds its own: `_BeamArgumentParser` and each class's
`_add_argparse_args` (both private).
"""

from __future__ import annotations

import argparse

from apache_beam.options import pipeline_options


def beam_option_parser() -> argparse.ArgumentParser:
  """A parser that knows every flag of every Beam PipelineOptions class (none of the converter's)."""
  parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)  # pylint: disable=protected-access
  for cls in {str(c): c for c in pipeline_options.PipelineOptions.__subclasses__()}.values():
    cls._add_argparse_args(parser)  # pylint: disable=protected-access
  return parser
