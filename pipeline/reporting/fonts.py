"""Text of the report (pipeline/report.py) in any script: fonts that draw it, else escapes.

Class names and file names can be Chinese, Japanese, Cyrillic or emoji. matplotlib draws a character
its fonts lack as an empty box (and warns "Glyph ... missing from font(s)"). So, before drawing, the
characters of every text are looked up in the default font's character map; for those it lacks, the
other fonts matplotlib found on this machine (its font list: system fonts such as Debian's
fonts-noto-cjk or fonts-wqy-microhei, and its own) are searched, and those that hold some of them
become fallbacks (matplotlib >= 3.6 falls back along `font.family` glyph by glyph). A character no
font holds is drawn as its Python escape (`\\u4e2d`), never as a box. Skipped: colour emoji fonts
(bitmaps that Agg does not draw) and Last Resort (a box with the code point for every character).
"""

from __future__ import annotations

import functools
import re
from typing import FrozenSet, Iterable, List, Set


# Fonts whose glyphs are no text: Last Resort draws every character as a box holding its code point
# (matplotlib ships it), colour emoji are bitmaps Agg does not draw.
_SKIPPED = re.compile(r'last ?resort|emoji', re.IGNORECASE)


def _candidate_fonts() -> List[str]:
  """Paths of the fonts on this machine (the system's font folders, as scanned now, and matplotlib's
  font list), sorted, without those _SKIPPED names by file name."""
  from matplotlib import font_manager  # pylint: disable=import-outside-toplevel

  paths = set(font_manager.findSystemFonts()) | {e.fname for e in font_manager.fontManager.ttflist}
  return sorted(p for p in paths if not _SKIPPED.search(p.rsplit('/', 1)[-1]))


@functools.lru_cache(maxsize=4)  # the default font and a few fallbacks; not every font scanned
def _charmap(path: str) -> FrozenSet[int]:
  """The code points the font file at `path` has glyphs for (its first face)."""
  from matplotlib.ft2font import FT2Font  # pylint: disable=import-outside-toplevel

  return frozenset(FT2Font(path).get_charmap())


class Glyphs:
  """The fonts that draw a set of texts, and how each text is written with them.

  Attributes:
    families: `font.family` for matplotlib: the default font's family, then the fallbacks.
    missing: characters no font found here holds (drawn escaped).
  """

  def __init__(self, texts: Iterable[str]):
    from matplotlib import font_manager  # pylint: disable=import-outside-toplevel

    default = font_manager.findfont(font_manager.FontProperties())
    self.families: List[str] = [font_manager.get_font(default).family_name]
    wanted = {char for text in texts for char in text if not char.isspace()}
    missing = {char for char in wanted if ord(char) not in _charmap(default)}
    for path in _candidate_fonts() if missing else []:
      try:
        found = {char for char in missing if ord(char) in _charmap(path)}
        if not found:
          continue
        font_manager.fontManager.addfont(path)  # A font installed after matplotlib's font cache.
        family = font_manager.get_font(path).family_name
      except (OSError, RuntimeError, ValueError):  # A font file FreeType cannot open.
        continue
      if family not in self.families and not _SKIPPED.search(family):
        self.families.append(family)
        missing -= found
      if not missing:
        break
    self.missing: Set[str] = missing

  def __call__(self, text: str) -> str:
    """`text` with every character no font holds written as its Python escape."""
    if not self.missing or not any(char in self.missing for char in text):
      return text
    return ''.join(
      char.encode('unicode_escape').decode('ascii') if char in self.missing else char
      for char in text
    )
