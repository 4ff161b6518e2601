"""Two converter outputs, byte for byte: `python -m pipeline.verify OUTPUT --against OTHER`.

Compared: every top-level file the converter writes (shards and METADATA_FILES) but provenance.json,
which holds times, a run id and the runner by design; each is hashed (SHA-256) through Beam's
FileSystems (local, gs://, s3://), OUTPUT's shards not twice when verify already hashed them.
model_garden.yaml names its own folder: when that is its only difference, it is reported apart and
does not count against byte identity. What made the outputs is compared too (the "recipe":
provenance.json without its per-run entries and manifest.json's flags;
transforms/metadata/provenance.py `recipe_entries`), so the report says e.g. that OTHER was made
with another Pillow or --jpeg_quality; recipe entries that differ are listed even for byte-identical
outputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.output import layout, success
from transforms.output.checksum import file_sha256
from transforms.metadata.provenance import read_provenance, recipe_entries

Checksum = Tuple[int, str]
# Files that name the output's own folder (transforms/metadata/model_garden.py): compared with it
# replaced.
PATH_NAMING_FILES = (layout.MODEL_GARDEN_FILE,)


@dataclasses.dataclass
class Comparison:
  """What differs between two outputs.

  Attributes:
    output, other: the two outputs (as given).
    files: names of the files compared (in both).
    shards: those of them that are shards.
    differing: names of the files in both whose bytes differ, shards first.
    only_in_output, only_in_other: files that one output has and the other does not.
    path_only: files that differ only by the output folder they name (model_garden.yaml).
    recipe: (entry, value in output, value in other) of every recipe entry that differs.
  """

  output: str
  other: str
  files: List[str] = dataclasses.field(default_factory=list)
  shards: List[str] = dataclasses.field(default_factory=list)
  differing: List[str] = dataclasses.field(default_factory=list)
  only_in_output: List[str] = dataclasses.field(default_factory=list)
  only_in_other: List[str] = dataclasses.field(default_factory=list)
  path_only: List[str] = dataclasses.field(default_factory=list)
  recipe: List[Tuple[str, Any, Any]] = dataclasses.field(default_factory=list)

  @property
  def identical(self) -> bool:
    return not (self.differing or self.only_in_output or self.only_in_other)

  def lines(self) -> List[str]:
    """The report: a SAME or DIFFERENT line, then one RECIPE line per differing recipe entry."""
    if self.identical:
      head = (
        f'SAME {self.output} and {self.other}: byte-identical ({len(self.files)} files: '
        f'{len(self.shards)} shards and the metadata; provenance.json not compared'
        + ''.join(f'; {name} differs only by the output folder it names' for name in self.path_only)
        + ')'
      )
    else:
      shards = [f for f in self.differing if f in self.shards]
      parts = []
      if shards:
        parts.append(f'{len(shards)} of {len(self.shards)} shards differ: ' + ', '.join(shards))
      others = [f for f in self.differing if f not in self.shards]
      if others:
        parts.append('files that differ: ' + ', '.join(others))
      if self.only_in_output:
        parts.append(f'only in {self.output}: ' + ', '.join(self.only_in_output))
      if self.only_in_other:
        parts.append(f'only in {self.other}: ' + ', '.join(self.only_in_other))
      head = f'DIFFERENT {self.output} and {self.other}: ' + '; '.join(parts)
    return [head] + [
      f'RECIPE {name}: {_shown(mine)} in {self.output}, {_shown(theirs)} in {self.other}'
      for name, mine, theirs in self.recipe
    ]


def _shown(value: Any) -> str:
  return 'nothing' if value is None else str(value)


def _files(output: layout.OutputLayout) -> List[str]:
  """Names of the converter's top-level files in `output` that are compared."""
  names = {
    m.path.rstrip('/').rsplit('/', 1)[-1]
    for m in FileSystems.match([output.path('*')])[0].metadata_list
  }
  return sorted(
    n
    for n in names
    if n != layout.PROVENANCE_FILE and (output.is_shard(n) or n in layout.METADATA_FILES)
  )


def _checksums(
  output: layout.OutputLayout, names: List[str], known: Mapping[str, Checksum]
) -> Dict[str, Checksum]:
  return {name: known[name] if name in known else file_sha256(output.path(name)) for name in names}


def _without_root(output: layout.OutputLayout, name: str) -> str:
  """The file's text with the output folder it names written as OUTPUT (the folder it was written
  in, which a relative or moved OTHER does not spell)."""
  return success.without_folder(layout.read_text(output.path(name)))


def _layout(root: str) -> Tuple[layout.OutputLayout, Optional[Dict[str, Any]]]:
  """The output's layout (its shard names as its manifest.json records them) and manifest, or the
  default names and None without a readable manifest."""
  root = root.rstrip('/')
  try:
    return layout.read_output(root)
  except (OSError, ValueError):
    return layout.OutputLayout(root), None


def compare_outputs(
  output: str, other: str, known: Optional[Mapping[str, Checksum]] = None
) -> Comparison:
  """Compares two outputs byte for byte, and their recipes.

  Args:
    output, other: local paths or URLs of two converter outputs.
    known: {shard name: (bytes, hex SHA-256)} of `output` already computed (verify's), not re-read.
  Raises:
    IOError (BeamIOError): a file cannot be listed or read.
  """
  (here, my_manifest), (there, their_manifest) = _layout(output), _layout(other)
  mine, theirs = _files(here), _files(there)
  common = sorted(set(mine) & set(theirs), key=lambda name: (not here.is_shard(name), name))
  mine_sums = _checksums(here, common, known or {})
  theirs_sums = _checksums(there, common, {})
  mine_recipe = recipe_entries(read_provenance(here), my_manifest)
  theirs_recipe = recipe_entries(read_provenance(there), their_manifest)
  recipe = [
    (name, mine_recipe.get(name), theirs_recipe.get(name))
    for name in sorted(set(mine_recipe) | set(theirs_recipe))
    if mine_recipe.get(name) != theirs_recipe.get(name)
  ]
  differing = [n for n in common if mine_sums[n] != theirs_sums[n]]
  path_only = [
    n
    for n in differing
    if n in PATH_NAMING_FILES and _without_root(here, n) == _without_root(there, n)
  ]
  return Comparison(
    output,
    other,
    files=common,
    shards=[n for n in common if here.is_shard(n)],
    differing=[n for n in differing if n not in path_only],
    path_only=path_only,
    only_in_output=sorted(set(mine) - set(theirs)),
    only_in_other=sorted(set(theirs) - set(mine)),
    recipe=recipe,
  )
