"""The documentation holds together: every relative link in README.md, docs/*.md and
benchmarks/RESULTS.md reaches a file and, with an #anchor, a heading of it (GitHub's heading slugs);
docs/flags.md is what scripts/flags_doc.py makes from the argument parsers today; README keeps the
two commands."""

import re
import subprocess
import sys
from pathlib import Path
from typing import List, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [
  REPO / 'README.md',
  *sorted((REPO / 'docs').glob('*.md')),
  REPO / 'benchmarks' / 'RESULTS.md',
]
FENCE = re.compile(r'^(```|~~~).*?^\1', re.M | re.S)
INLINE_CODE = re.compile(r'`[^`\n]*`')
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
HEADING = re.compile(r'^#{1,6}\s+(.+?)\s*#*\s*$', re.M)


def _prose(text: str) -> str:
  """The text without fenced code blocks (a `# comment` there is no heading, `[x](y)` no link)."""
  return FENCE.sub('', text)


def slug(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, markup and punctuation but `-` and `_` dropped,
  spaces as `-` (github-slugger, which GitHub and most renderers follow)."""
  text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # a link's text only
  text = re.sub(r'<[^>]+>', '', text).replace('`', '').lower()
  return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def anchors(path: Path) -> Set[str]:
  """Every heading's anchor in path, repeated headings numbered -1, -2 ... as GitHub does."""
  seen: dict = {}
  found = set()
  for heading in HEADING.findall(_prose(path.read_text(encoding='utf-8'))):
    base = slug(heading)
    count = seen.get(base, 0)
    found.add(base if count == 0 else f'{base}-{count}')
    seen[base] = count + 1
  return found


def links(path: Path) -> List[str]:
  """Relative link targets in path's prose (code spans and blocks left out)."""
  text = INLINE_CODE.sub('', _prose(path.read_text(encoding='utf-8')))
  return [
    target for target in LINK.findall(text) if not re.match(r'[a-z][a-z0-9+.-]*:', target)
  ]  # http:, https:, mailto:


def broken_links(pages: List[Path]) -> List[Tuple[str, str, str]]:
  """(page, link, why) for every relative link whose file or #anchor does not exist."""
  broken = []
  for page in pages:
    for target in links(page):
      file_part, _, anchor = target.partition('#')
      dest = (page.parent / file_part).resolve() if file_part else page
      where = str(page.relative_to(REPO))
      if not dest.exists():
        broken.append((where, target, 'no such file'))
      elif anchor and dest.suffix == '.md' and anchor not in anchors(dest):
        broken.append((where, target, f'no heading #{anchor} in {dest.relative_to(REPO)}'))
  return broken


def test_slugs_follow_github():
  assert slug('Shards sized in bytes') == 'shards-sized-in-bytes'
  assert slug('Splits: train, validation, test') == 'splits-train-validation-test'
  assert slug('`duplicates.jsonl`: groups') == 'duplicatesjsonl-groups'
  assert slug('Resume, claims and provenance') == 'resume-claims-and-provenance'


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
  page = tmp_path / 'page.md'
  (tmp_path / 'other.md').write_text('# Other\n\n## Exit codes\n```\n# not a heading\n```\n')
  page.write_text(
    '[a](other.md#exit-codes) [b](other.md#not-a-heading) [c](gone.md) '
    '[d](https://example.com/x.md) `[e](code.md)` [f](#here)\n\n# Here\n'
  )
  global REPO  # pylint: disable=global-statement
  saved, REPO = REPO, tmp_path
  try:
    found = broken_links([page])
  finally:
    REPO = saved
  assert found == [
    ('page.md', 'other.md#not-a-heading', 'no heading #not-a-heading in other.md'),
    ('page.md', 'gone.md', 'no such file'),
  ]


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
  assert broken_links([page]) == []


def test_flags_md_is_what_the_parsers_say():
  """Fails when a flag or its help changed and docs/flags.md was not regenerated."""
  result = subprocess.run(
    [sys.executable, str(REPO / 'scripts' / 'flags_doc.py'), '--check'],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]


def test_flags_md_lists_every_flag_of_every_command():
  sys.path.insert(0, str(REPO / 'scripts'))
  try:
    import flags_doc  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.pop(0)
  text = (REPO / 'docs' / 'flags.md').read_text(encoding='utf-8')
  for parser in flags_doc.parsers():
    for action in parser._actions:  # pylint: disable=protected-access
      for name in action.option_strings:
        if name not in ('-h', '--help'):
          assert f'`{name}`' in text, name
  assert '| `--log_level` (' in text and '| `--verbose` |' in text
  assert '| `--against` |' in text and '| `--max_records` |' in text


def test_readme_keeps_the_two_commands_and_stays_short():
  readme = (REPO / 'README.md').read_text(encoding='utf-8')
  assert '## Two commands' in readme
  assert re.search(r'^\./run_local\.sh\s', readme, re.M)
  assert re.search(r'^\./run_tests\.sh\s', readme, re.M)
  assert len(readme.splitlines()) <= 220
