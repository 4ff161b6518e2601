"""The words of a command line: each is a flag, a flag's value or one of the command's arguments.

Every command (`folder2tfrecord run|plan|verify|report`, `python -m pipeline.run|verify|report`)
parses its own flags with argparse's `parse_known_args` and hands what is left to Beam's
`PipelineOptions`, which ignores what it does not know. Left as they are, the two would let a word
do nothing: `--overwrite false` turns --overwrite ON (a switch takes no value, so `false` is left
over and dropped), `--no_upscale false` too, and `stray_word` anywhere is dropped. Here every word
left over by both parsers is an error before any work, and so is a switch written with a value
(`--overwrite=no`), each with a message that says how to write it. Beam's flags are known through
beam_private/option_parser.py.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Iterable, List, Optional, Sequence, Tuple

from beam_private.option_parser import beam_option_parser

END_OF_FLAGS = '--'  # argparse's marker: the words after it are arguments, never flags


class UsageError(ValueError):
  """A flag is wrong; the message says how to fix it."""


def switch_message(flag: str, value: str) -> str:
  """What to say about a switch (a flag without a value, e.g. --overwrite) given `value`."""
  return (
    f'{flag} is a switch and takes no value (got {value!r}): write {flag} to turn it on, '
    'leave it out to keep it off.'
  )


def _switches(parsers: Iterable[argparse.ArgumentParser]) -> List[str]:
  """The long options of the parsers' flags that take no value (store_true, store_false, ...)."""
  return [
    option
    for parser in parsers
    for action in parser._actions  # pylint: disable=protected-access
    if action.nargs == 0
    for option in action.option_strings
    if option.startswith('--')
  ]


def _options(parsers: Iterable[argparse.ArgumentParser]) -> List[str]:
  return [
    option
    for parser in parsers
    for action in parser._actions  # pylint: disable=protected-access
    for option in action.option_strings
  ]


def check_switch_values(argv: Sequence[str], parsers: Sequence[argparse.ArgumentParser]) -> None:
  """Refuses `--switch=value` for the parsers' switches (argparse's own error names no fix).

  Raises:
    UsageError: a switch written with `=value`.
  """
  switches = set(_switches(parsers))
  for word in _flag_words(argv):
    flag, equals, value = word.partition('=')
    if equals and flag in switches:
      raise UsageError(switch_message(flag, value))


def _flag_words(argv: Sequence[str]) -> List[str]:
  """The words of argv before END_OF_FLAGS."""
  argv = list(argv)
  return argv[: argv.index(END_OF_FLAGS)] if END_OF_FLAGS in argv else argv


def check_leftovers(
  leftover: Sequence[str],
  argv: Sequence[str],
  parsers: Sequence[argparse.ArgumentParser],
  command: str,
) -> None:
  """Refuses the words that neither the command's parser nor Beam's used (`leftover`, from Beam's
  parse_known_args); `argv` is the whole command line, for the word before a stray word.

  Raises:
    UsageError: an unknown flag (with the closest known flag as a suggestion), a value after a
    switch
      (`--overwrite false`), or any other word that is no flag, no flag's value and no argument.
  """
  flags = [word for word in leftover if word.startswith('-') and word != END_OF_FLAGS]
  if flags:
    known = _options(parsers)
    hints = []
    for flag in flags:
      close = difflib.get_close_matches(flag.split('=', 1)[0], known, n=1)
      hints.append(flag + (f' (did you mean {close[0]}?)' if close else ''))
    raise UsageError(
      'unknown flag(s): ' + ', '.join(hints) + f'. See {command} --help for its '
      'flags; other flags must be Apache Beam pipeline options.'
    )
  words = [word for word in leftover if word != END_OF_FLAGS]
  if not words:
    return
  switches = set(_switches(parsers))
  argv = list(argv)
  after_switch = [
    (argv[i - 1], word)
    for i, word in enumerate(argv)
    if i and argv[i - 1] in switches and not word.startswith('-')
  ]
  # A left-over word that follows a switch; else a command's argument was taken as a switch's value
  # and the argument after it left over (`verify --s3_disable_ssl no OUTPUT`).
  if after_switch:
    switch, word = min(after_switch, key=lambda pair: pair[1] not in words)
    raise UsageError(switch_message(switch, word))
  raise UsageError(
    f'unexpected word(s) {", ".join(repr(w) for w in words)} on the command line of '
    f"{command}: every word must be a flag (--name VALUE or --name=VALUE), a flag's "
    f'value or one of its arguments (see {command} --help); quote a value that holds '
    'spaces.'
  )


def split_args(
  parser: argparse.ArgumentParser, argv: Sequence[str]
) -> Tuple[argparse.Namespace, List[str]]:
  """The command's own arguments (`parser`) and the Beam pipeline arguments, every word accounted for.

  Raises:
    UsageError: see check_switch_values and check_leftovers; a wrong value of a Beam option.
    SystemExit: --help, or a wrong value of the command's own flags (argparse prints the usage).
  """
  beam_parser = beam_option_parser()
  beam_parser.error = _beam_error  # one line, not Beam's usage of several hundred flags
  parsers = [parser, beam_parser]
  check_switch_values(argv, parsers)
  known, beam_args = parser.parse_known_args(list(argv))
  _, leftover = beam_parser.parse_known_args(beam_args)
  check_leftovers(leftover, argv, parsers, parser.prog)
  return known, [word for word in beam_args if word != END_OF_FLAGS]


def _beam_error(message: str) -> None:
  raise UsageError(f'{message} (an Apache Beam pipeline option).')


def parse_command_line(
  parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> Tuple[argparse.Namespace, List[str]]:
  """split_args for a command's main(): a usage error prints `error: ...` and exits with 2, as
  argparse's own errors do.

  Raises:
    SystemExit: 2 on a usage error; 0 after --help.
  """
  try:
    return split_args(parser, sys.argv[1:] if argv is None else argv)
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    raise SystemExit(2) from None
