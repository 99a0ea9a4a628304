"""Regular-expression scans of long texts that hand the GIL over (issue 12).

A regular expression holds the GIL for as long as one search runs: ``finditer`` over a
1.7 MB text with no match is one C call that ran 147 ms (the mass fuzz, a folded header
bomb in a body, ``detectors.forms``). The decision and every content step run in threads
of the relay process, so that is 147 ms in which no SMTP session or web page was served.

``finditer_lines`` gives the same matches as ``pattern.finditer(text)`` for a pattern whose
matches never cross a line break, one window of about ``WINDOW`` characters at a time.
Each window ends just after a newline, so a match cannot be cut, and the search of the
next window starts in Python: where the GIL can be handed over.

What the pattern must satisfy (each caller's test checks its pattern against the plain
``finditer`` with hypothesis): no match and no lookaround reaches past a ``\\n`` (a match
may end with one); ``$`` only with ``re.MULTILINE``; no ``\\Z``. ``^``, ``\\A``, ``\\b`` and
lookbehinds are fine: a search from ``pos`` sees the text before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

WINDOW = 64 * 1024  # characters a search covers at most (plus the rest of its last line)


def finditer_lines(
    pattern: re.Pattern[str], text: str, window: int = WINDOW
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, searched in windows that end after a newline."""
    n = len(text)
    pos = 0
    while True:
        nl = text.find("\n", min(pos + window, n))
        end = n if nl < 0 else nl + 1
        for m in pattern.finditer(text, pos, end):
            if m.start() == end and end < n:
                break  # an empty match at the window's end: the next window finds it
            yield m
        if end >= n:
            return
        pos = end
