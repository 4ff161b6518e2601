"""Text of the report (pipeline/report.py) in any script: fonts that draw it, else escapes.

Class names and file names can be Chinese, Japanese, Cyrillic or emoji. matplotlib draws a character
its fonts lack as an empty box (and warns "Glyph ... missing from font(s)"). So, before drawing, the
characters of every text are looked up in the default font's character map; for those it lacks, the
other fonts matplotlib found on this machine (its font list: system fonts such as Debian's
fonts-noto-cjk or fonts-wqy-microhei, and its own) are searched, and those that hold some of them
become fallbacks (matplotlib >= 3.6 falls back along `font.family` glyph by glyph). A character no
font holds is drawn as its Python escape (`\\u4e2d`), never as a box. Colour emoji fonts are skipped:
their glyphs are bitmaps that Agg does not draw.
"""

from __future__ import annotations

from typing import Iterable, List, Set


def _charmap(path: str) -> Set[int]:
  from matplotlib.ft2font import FT2Font  # pylint: disable=import-outside-toplevel
  return set(FT2Font(path).get_charmap())


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
    for entry in sorted(font_manager.fontManager.ttflist, key=lambda e: (e.name, e.fname)):
      if not missing:
        break
      if entry.name in self.families or 'emoji' in entry.name.lower():
        continue
      try:
        found = {char for char in missing if ord(char) in _charmap(entry.fname)}
      except (OSError, RuntimeError):  # A font file FreeType cannot open.
        continue
      if found:
        self.families.append(entry.name)
        missing -= found
    self.missing: Set[str] = missing

  def __call__(self, text: str) -> str:
    """`text` with every character no font holds written as its Python escape."""
    if not self.missing or not any(char in self.missing for char in text):
      return text
    return ''.join(char.encode('unicode_escape').decode('ascii') if char in self.missing else char
                   for char in text)
