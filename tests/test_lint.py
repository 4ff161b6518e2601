"""The linter and the formatter agree with the tree (configuration: ruff.toml at the repository root)."""

import subprocess
import sys

from conftest import REPO


def _ruff(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, '-m', 'ruff', *args], cwd=REPO, capture_output=True, text=True, check=False
  )


def test_ruff_check_is_clean():
  result = _ruff('check', '--no-cache', '--output-format', 'concise', '.')
  assert result.returncode == 0, (
    f'ruff check found problems (fix them or run `ruff check --fix .`):\n'
    f'{result.stdout}{result.stderr}'
  )


def test_ruff_format_leaves_the_tree_unchanged():
  result = _ruff('format', '--no-cache', '--check', '.')
  assert result.returncode == 0, f'run `ruff format .`:\n{result.stdout}{result.stderr}'


def test_the_linter_sees_a_long_line(tmp_path):
  """The configuration is read: a line past the linter's limit is reported."""
  bad = tmp_path / 'bad.py'
  bad.write_text('x = ' + repr('a' * 120) + '\n')
  result = _ruff('check', '--no-cache', '--config', str(REPO / 'ruff.toml'), str(bad))
  assert result.returncode == 1 and 'E501' in result.stdout, result.stdout
