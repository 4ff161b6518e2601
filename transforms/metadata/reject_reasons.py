"""Reject reasons grouped into categories: what stats.json counts and the summary and report show.

A reject reason (rejects.jsonl's `reason`) is a readable phrase, sometimes followed by a detail that
differs from file to file: a trailing parenthesised group or a `: ...` suffix holding a number or an
exception (`truncated or corrupt JPEG data (OSError: image file is truncated (60 bytes not
processed))`), a quoted class name, or the kept copy of a duplicate. The category is the reason
without those details, so files with the same problem count together, and it stays a phrase a person
reads (`text (HTML/XML/JSON), not an image` and `nested folder: only root/<class>/<image> is read`
keep their explanations: they hold no per-file detail).
"""

from __future__ import annotations

import collections
import re
from typing import Dict, Iterable, Optional

from transforms.duplicates.exact import DUPLICATE_OF

# Reason prefix of a file whose conversion raised something other than ImageRejected: a bug in this
# tool (or a library it calls), reported as a reject so that the run goes on.
INTERNAL_ERROR = 'internal error'
DUPLICATE = 'duplicate of a kept file (see duplicates.jsonl)'
# A detail that differs from file to file: a number, or an exception's 'Type: message'.
_PER_FILE_DETAIL = re.compile(r'\d|\b[A-Z]\w*(Error|Exception|Warning)\b')
_QUOTED = re.compile(r""" ('[^']*'|"[^"]*")""")


def _trailing_group_start(text: str) -> Optional[int]:
  """Index of the ' (' that opens the parenthesised group ending `text`, or None."""
  if not text.endswith(')'):
    return None
  depth = 0
  for i in range(len(text) - 1, -1, -1):
    depth += {')': 1, '(': -1}.get(text[i], 0)
    if depth == 0:
      return i - 1 if i > 0 and text[i - 1] == ' ' else None
  return None


def _top_level_colon(text: str) -> Optional[int]:
  """Index of the first ': ' outside parentheses, or None."""
  depth = 0
  for i, char in enumerate(text):
    depth += {'(': 1, ')': -1}.get(char, 0)
    if depth == 0 and text.startswith(': ', i):
      return i
  return None


def reason_category(reason: str) -> str:
  """The reason without its per-file details (module docstring); also the metric names' suffix."""
  if reason.startswith(DUPLICATE_OF):
    return DUPLICATE
  if reason.startswith(INTERNAL_ERROR):
    return INTERNAL_ERROR
  category = _QUOTED.sub('', reason.strip())
  colon = _top_level_colon(category)
  if colon is not None and _PER_FILE_DETAIL.search(category[colon:]):
    category = category[:colon]
  group = _trailing_group_start(category)
  if group is not None and _PER_FILE_DETAIL.search(category[group:]):
    category = category[:group]
  return category.strip() or reason


def count_reasons(reasons: Iterable[str]) -> Dict[str, int]:
  """{reason category: rejects} of the rejects' reasons, most frequent first (then by category)."""
  counts = collections.Counter(reason_category(reason) for reason in reasons)
  return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
