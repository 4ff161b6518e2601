"""The label map: class (folder) name -> label id, fixed on the driver before the graph runs.

Three sources, one result (`{class name: id}`, ids >= 0, the stored label is id + --label_offset):
  * no --labels_file: the sorted class folders get ids 0..N-1;
  * --labels_file with one class name per line: line order gives ids 0..N-1 (blank lines and lines
    starting with '#' ignored);
  * --labels_file holding a JSON object, `{"Persian_cat": 0, "pug": 2, ...}` (the label maps of
    the AlexNet/ImageNet preprocessing write-up and of many training scripts): the ids as given.
    They must be distinct integers >= 0.

A JSON map may leave ids out (a subset of a larger label space keeps that space's ids). A missing id
is not an error: `labels.txt` and the TFDS label names get the placeholder name `__unused_<id>__` on
its line, so line i is still the name of label i + offset and `num_classes` is the largest id + 1.
No record ever carries a placeholder's label (no folder is matched to it), and labels.txt fed back
as a --labels_file keeps the same ids.
"""

from __future__ import annotations

import collections
import hashlib
import json
from typing import Dict, List, Sequence, Tuple

from apache_beam.io.filesystems import FileSystems

from transforms.inputs.listing import InputError, is_hidden

PLACEHOLDER = '__unused_{id}__'  # the name of an id a JSON label map leaves out
MAX_LABEL_ID = 999_999  # a larger id would fill labels.txt with a million placeholders


def label_map_of(class_names: Sequence[str]) -> Dict[str, int]:
  """{name: position}: the label map of names in label order (sorted folders, a text labels file)."""
  return {name: i for i, name in enumerate(class_names)}


def label_names(label_map: Dict[str, int]) -> List[str]:
  """Names of ids 0..max id, a PLACEHOLDER for each id the map leaves out (labels.txt's lines)."""
  by_id = {label: name for name, label in label_map.items()}
  return [by_id.get(i, PLACEHOLDER.format(id=i)) for i in range(max(by_id) + 1)]


def read_labels_file(path: str) -> Dict[str, int]:
  """The label map of --labels_file: a JSON object, or one class name per line (module docstring).

  Raises:
    InputError: unreadable file, no classes, a name that cannot be a class folder, a class listed
      twice, or (JSON) an id that is not an integer in [0, MAX_LABEL_ID], an id given twice, or a
      class named like the placeholder of an id the map leaves out.
  """
  try:
    with FileSystems.open(path) as f:
      text = f.read().decode('utf-8-sig')
  except Exception as e:
    raise InputError(f'cannot read --labels_file {path}: {e}') from e
  if text.lstrip().startswith('{'):
    pairs = _json_pairs(path, text)
  else:
    pairs = list(label_map_of(_text_names(path, text)).items())
  if not pairs:
    raise InputError(f'--labels_file {path} lists no classes.')
  names = [name for name, _ in pairs]
  unsafe = [n for n in names if '/' in n or '\\' in n or n in ('.', '..') or is_hidden(n)]
  if unsafe:
    raise InputError(
      f'--labels_file {path} has names that are not class folder names: {unsafe[:5]} '
      '(no slashes, no leading dot).'
    )
  _refuse_repeats(path, 'lists these classes twice', names)
  label_map = dict(pairs)
  missing = set(range(max(label_map.values()) + 1)) - set(label_map.values())
  clashes = sorted(n for n in (PLACEHOLDER.format(id=i) for i in missing) if n in label_map)
  if clashes:
    raise InputError(
      f'--labels_file {path}: {clashes[:3]} is the placeholder name of an id the map '
      'leaves out; rename the class or give every id.'
    )
  return label_map


def _text_names(path: str, text: str) -> List[str]:
  """The class names of a text label map in line order (blank and '#' lines skipped).

  Raises:
    InputError: a class on two lines (its ids would be ambiguous), naming both line numbers.
  """
  first_line = {}
  for number, line in enumerate(text.splitlines(), start=1):
    name = line.strip()
    if not name or name.startswith('#'):
      continue
    if name in first_line:
      raise InputError(
        f'--labels_file {path} names class {name!r} twice, on lines '
        f'{first_line[name]} and {number}; each class must have one line (its label '
        'id is its position among the classes).'
      )
    first_line[name] = number
  return list(first_line)


def _json_pairs(path: str, text: str) -> List[Tuple[str, int]]:
  """(name, id) pairs of a JSON label map, in file order, duplicate keys kept (to refuse them)."""
  try:
    pairs = json.loads(text, object_pairs_hook=lambda items: items)
  except ValueError as e:
    raise InputError(
      f'--labels_file {path} starts with "{{" but is not a JSON object: {e}'
    ) from None
  if not isinstance(pairs, list) or any(not isinstance(name, str) for name, _ in pairs):
    raise InputError(f'--labels_file {path} must be one JSON object {{"class name": id, ...}}.')
  bad = [
    (name, label)
    for name, label in pairs
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= MAX_LABEL_ID
  ]
  if bad:
    raise InputError(
      f'--labels_file {path}: ids must be integers from 0 to {MAX_LABEL_ID}; got '
      + ', '.join(f'{name!r}: {label!r}' for name, label in bad[:5])
    )
  _refuse_repeats(path, 'gives these ids to more than one class', [label for _, label in pairs])
  return pairs


def _refuse_repeats(path: str, what: str, values: Sequence) -> None:
  repeated = sorted(v for v, n in collections.Counter(values).items() if n > 1)
  if repeated:
    raise InputError(f'--labels_file {path} {what}: {repeated[:10]}')


def labels_text(class_names: Sequence[str]) -> str:
  """labels.txt's content: one class name per line, in label order."""
  return ''.join(name + '\n' for name in class_names)


def labels_file_digest(path: str) -> str:
  """`sha256:<hex>` of the label map a --labels_file gives, as labels.txt holds it (the same map in
  another file, place or syntax has the same digest): what manifest.json records instead of a path.

  Raises:
    InputError: see read_labels_file.
  """
  text = labels_text(label_names(read_labels_file(path)))
  return 'sha256:' + hashlib.sha256(text.encode('utf-8')).hexdigest()
