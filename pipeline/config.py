"""`--config FILE` and `--print_config`: the flags of a run kept in a YAML or JSON file.

A config file is one mapping of flag names (`train_shards` or `train-shards`) to values, for the
converter's flags and Beam's pipeline options alike: one scalar per flag, `true` / `false` for
switches, a list for a Beam flag that repeats (`experiments`), `null` for the default. Its flags go
before the command line's, and argparse and Beam keep a flag's last value, so the command line wins.
An unknown key or a value the flag does not take is an error before any work that names the file,
the key and the closest flag. The converter's path flags (`input`, `output`, `labels_file`, ...) in
a config are relative to its folder; Beam options are passed on untouched. A manifest.json is a
config file too: its `options` repeat a run (`--config OLD/manifest.json --input DIR --output NEW`).
`--print_config` prints a run's effective configuration in this format (every converter flag, the
Beam options that differ from Beam's defaults) and exits. Example: docs/usage.md#config-files.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
from typing import Any, Dict, Iterable, List, Sequence

import yaml

from transforms.output import layout
from transforms.paths import is_remote

NOT_IN_FILES = ('config', 'print_config', 'help')  # flags that make no sense inside a config file
TYPE_NAMES = {'int': 'an integer', 'float': 'a number', 'str': 'text'}  # argparse types, in errors


def read_config(path: str, path_keys: Sequence[str]) -> Dict[str, Any]:
  """The flags of a config file (or of a manifest.json), keys with `-` written as `_`, the converter's
  relative paths (`path_keys`) resolved against the file's folder.

  Raises:
    ValueError: unreadable file, not YAML/JSON, not a mapping, or a key given twice.
  """
  try:
    text = layout.read_text(path)
    document = json.loads(text) if path.lower().endswith('.json') else yaml.safe_load(text)
  except (OSError, ValueError, yaml.YAMLError) as e:
    raise ValueError(f'cannot read --config {path}: {e}') from None
  if isinstance(document, dict) and 'format_version' in document and 'options' in document:
    document = dict(document['options'])  # a converter manifest: the flags it records
    if str(document.get('labels_file') or '').startswith('sha256:'):
      document['labels_file'] = layout.LABELS_FILE  # The label map it records by digest, beside it.
  if not isinstance(document, dict):
    raise ValueError(
      f'--config {path} must hold one mapping of flag names to values, e.g. "train_shards: 8".'
    )
  values = {}
  for key, value in document.items():
    name = str(key).replace('-', '_')
    if name in values:
      raise ValueError(f'--config {path} gives {name!r} twice (as {key!r} and with "_").')
    values[name] = value
  base = os.path.dirname(os.path.abspath(path)) if not is_remote(path) else path.rsplit('/', 1)[0]
  for key in path_keys:
    value = values.get(key)
    if (
      isinstance(value, str)
      and not is_remote(value)
      and not os.path.isabs(os.path.expanduser(value))
    ):
      values[key] = layout.join(base, value)
  return values


def config_argv(
  values: Dict[str, Any], parsers: Iterable[argparse.ArgumentParser], path: str
) -> List[str]:
  """Command-line arguments that give the flags of a config file, for the converter's and Beam's
  parsers (`parsers`); `path` names the file in errors.

  Raises:
    ValueError: a key that no parser knows (with a suggestion), a flag that has no place in a file,
      or a value of the wrong shape (a list for a one-value flag, a mapping, a non-boolean switch)
      or type (see _check_value); the message names the file and the key.
  """
  actions = _actions_by_name(parsers)
  argv = []
  for key, value in values.items():
    if key in NOT_IN_FILES:
      raise ValueError(f'--config {path}: {key!r} cannot be set in a config file.')
    if key not in actions:
      close = difflib.get_close_matches(key, list(actions), n=1)
      raise ValueError(
        f'--config {path}: unknown key {key!r}'
        + (f' (did you mean {close[0]!r}?)' if close else '')
        + ". Keys are the converter's flags (see --help) or Beam pipeline options."
      )
    argv += _flag_args(key, value, actions[key], path)
  return argv


def _actions_by_name(
  parsers: Iterable[argparse.ArgumentParser],
) -> Dict[str, List[argparse.Action]]:
  """{flag name with `_` (its long option, or its dest): the parsers' actions of that name}."""
  by_name = {}
  for parser in parsers:
    for action in parser._actions:  # pylint: disable=protected-access
      names = {o[2:].replace('-', '_') for o in action.option_strings if o.startswith('--')}
      for name in names | ({action.dest} if action.option_strings else set()):
        by_name.setdefault(name, []).append(action)
  return by_name


def _flag_args(key: str, value: Any, actions: List[argparse.Action], path: str) -> List[str]:
  """The arguments that set flag `key` to `value` (a config file's value)."""
  if value is None:
    return []  # the default
  if isinstance(value, dict):
    raise ValueError(f'--config {path}: {key!r} takes a value, not a mapping.')
  switches = [a for a in actions if a.nargs == 0]
  if switches:
    if not isinstance(value, bool):
      raise ValueError(f'--config {path}: {key!r} is a switch; give true or false, not {value!r}.')
    chosen = [a for a in switches if a.const is value]
    return [_option(key, chosen[0])] if chosen else []  # false for a store_true flag: its default
  action = actions[0]
  if not isinstance(value, list):
    _check_value(key, value, action, path)
    return [f'{_option(key, action)}={value}']
  if not any(kind in type(action).__name__ for kind in ('Append', 'List')):
    raise ValueError(f'--config {path}: {key!r} takes one value, not a list.')
  for item in value:
    _check_value(key, item, action, path)
  return [f'{_option(key, action)}={item}' for item in value]  # a flag that repeats (experiments)


def _check_value(key: str, value: Any, action: argparse.Action, path: str) -> None:
  """Refuses a config file's value that the flag's parser would refuse, naming the file and the key
  (argparse's own error would name only the flag).

  Raises:
    ValueError: a value of the wrong type (`train_shards: many`, `seed: true`) or not among the
      flag's choices.
  """
  if isinstance(value, bool) and action.type in (int, float):
    raise ValueError(f'--config {path}: {key!r} takes a number, not {json.dumps(value)}.')
  parsed = str(value)
  if callable(action.type):
    try:
      parsed = action.type(parsed)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
      kind = getattr(action.type, '__name__', 'value')
      raise ValueError(
        f'--config {path}: {key!r} takes {TYPE_NAMES.get(kind, kind)}, not {value!r}.'
      ) from None
  if action.choices is not None and parsed not in action.choices:
    raise ValueError(
      f'--config {path}: {key!r} must be one of '
      f'{", ".join(str(c) for c in action.choices)}, not {value!r}.'
    )


def _option(key: str, action: argparse.Action) -> str:
  """The action's long option named like `key` (or its first long option)."""
  options = [o for o in action.option_strings if o.startswith('--')]
  return next((o for o in options if o[2:].replace('-', '_') == key), options[0])


def dump_config(values: Dict[str, Any]) -> str:
  """A config file (YAML) holding `values` in the given order, with a header saying how to use it."""
  return (
    '# folder2tfrecord configuration: folder2tfrecord run --config THIS_FILE '
    '(flags given on the command line win)\n'
    + yaml.safe_dump(values, sort_keys=False, default_flow_style=False, allow_unicode=True)
  )
