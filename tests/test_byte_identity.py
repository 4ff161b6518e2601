"""The sample conversion's bytes held by SHA-256: the guard of refactors meant to keep output.

Every top-level output file is held but those whose bytes depend on time, machine or absolute
paths: provenance.json (times, run id, package versions, commit), _SUCCESS (lists rejects.jsonl's
digest, which depends on the input's path) and _work/ (resume state: that path, codec versions).
rejects.jsonl and model_garden.yaml hold absolute paths: they are digested with the input and output
folders replaced by `{input}` and `{output}`. The digests hold for the package versions in
constraints.txt (JPEG bytes depend on libjpeg-turbo's version).

When a change is MEANT to alter bytes, regenerate the literals below and say why in the commit:
  PYTHONPATH=. python tests/test_byte_identity.py   # prints EXPECTED as a Python literal
"""

from __future__ import annotations

import hashlib
import pathlib
import tempfile
from typing import Dict, Sequence

import pytest

from conftest import SAMPLE_DIR, convert

NOT_HELD = frozenset({'provenance.json', '_SUCCESS'})
WITH_PATHS = frozenset({'rejects.jsonl', 'model_garden.yaml'})
FLAG_SETS: Dict[str, Sequence[str]] = {
  'default': (),
  'fractions': ('--validation_fraction', '0.2', '--test_fraction', '0.1'),
}

# SHA-256 of each held output file of the sample conversion, per flag set (computed at 0e9fa8d).
EXPECTED: Dict[str, Dict[str, str]] = {
  'default': {
    'dataset_info.json': '53465b56eb99f7934a81545e62d9b76c6ffbd961c5ebae245834832f36fd212c',
    'duplicates.jsonl': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'features.json': '846d900ef9c32d9a85797f61f8296d39007a98179f88e218424fb033dd3f10e1',
    'image-class-label.labels.txt': '5da582b1b178ce7dc4008c83b42bdccc287c304f3d324f7968201ac97a807f61',
    'labels.txt': '5da582b1b178ce7dc4008c83b42bdccc287c304f3d324f7968201ac97a807f61',
    'manifest.json': '742077a07c26d634242a98ed6ea332ad3fca1845fcee5a74ab45d344aad74d98',
    'model_garden.yaml': '2c539131f78c2ad67c4c89ff3456629fae1588d76b7cd3a81c84fe9136dc3d84',
    'rejects.jsonl': '9bbf10fd7447ba33d585afada5866af029e2be2985fbc5442afd93a3f2e9c541',
    'stats.json': '5457c5380e25a051f7d52f69ef79ef80f94a9ed1b929694257ca81e5e8865c44',
    'train-00000-of-00001': 'd2757a6f6490cdc4ea07756904d100c002bc3f9567d6c3247a930ef557f2a45e',
  },
  'fractions': {
    'dataset_info.json': 'c670e2ee217f9aafe6e424d4fcb52be7e4791447e4338c1412454f231d01066a',
    'duplicates.jsonl': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'features.json': '846d900ef9c32d9a85797f61f8296d39007a98179f88e218424fb033dd3f10e1',
    'image-class-label.labels.txt': '5da582b1b178ce7dc4008c83b42bdccc287c304f3d324f7968201ac97a807f61',
    'labels.txt': '5da582b1b178ce7dc4008c83b42bdccc287c304f3d324f7968201ac97a807f61',
    'manifest.json': '9309bd52097d1c27724867315bb5647d395c53450d33c3f7268206c1e9d773ef',
    'model_garden.yaml': '93d9d51c8cd1cb1c331a39e467a6447ad99310b43a193458150fda7ea21eca69',
    'rejects.jsonl': '9bbf10fd7447ba33d585afada5866af029e2be2985fbc5442afd93a3f2e9c541',
    'stats.json': '9766bf75d9e4e2c8f440da6be1875fc665a693239635884631fe9ef55911bcda',
    'test-00000-of-00001': '67ea526889fb3c5074b358e951907476832a98821962184025206dccaa2b023b',
    'train-00000-of-00001': '07f97c3889556f6c8b4243a7912e63b40b02401673da732489aea7dee12d7873',
    'validation-00000-of-00001': 'af4a48df76805f0d56e0ad82e62c07a5132f52b1e0db450312a086b5cabeca6c',
  },
}


def format_expected(digests: Dict[str, Dict[str, str]]) -> str:
  """`digests` as the EXPECTED literal above, lines within 100 columns."""
  lines = ['EXPECTED: Dict[str, Dict[str, str]] = {']
  for flag_set, files in digests.items():
    lines.append(f'    {flag_set!r}: {{')
    for name, digest in files.items():
      line = f'        {name!r}: {digest!r},'
      lines += [line] if len(line) <= 100 else [f'        {name!r}:', f'            {digest!r},']
    lines.append('    },')
  return '\n'.join(lines + ['}'])


def output_digests(input_dir: pathlib.Path, output_dir: pathlib.Path) -> Dict[str, str]:
  """SHA-256 (hex) of each held top-level file of a finished output, by file name."""
  digests = {}
  for path in sorted(output_dir.iterdir()):
    if not path.is_file() or path.name in NOT_HELD:
      continue
    data = path.read_bytes()
    if path.name in WITH_PATHS:
      data = data.replace(str(input_dir).encode(), b'{input}')
      data = data.replace(str(output_dir).encode(), b'{output}')
    digests[path.name] = hashlib.sha256(data).hexdigest()
  return digests


def convert_sample(output_dir: pathlib.Path, flags: Sequence[str]) -> Dict[str, str]:
  assert convert(SAMPLE_DIR, output_dir, *flags) == 0
  return output_digests(SAMPLE_DIR, output_dir)


@pytest.mark.slow
@pytest.mark.parametrize('flag_set', sorted(FLAG_SETS))
def test_sample_conversion_is_byte_identical(flag_set, tmp_path):
  digests = convert_sample(tmp_path / 'out', FLAG_SETS[flag_set])
  assert digests == EXPECTED[flag_set], (
    f'Output bytes changed for flags {FLAG_SETS[flag_set]}. If meant, regenerate EXPECTED '
    f'(see the module docstring); the digests now:\n{format_expected({flag_set: digests})}'
  )


if __name__ == '__main__':
  with tempfile.TemporaryDirectory() as work:
    print(
      format_expected(
        {
          name: convert_sample(pathlib.Path(work) / name, flags)
          for name, flags in FLAG_SETS.items()
        }
      )
    )
