"""The lenient reading: anchors, markdown links and bare URLs in every disguise, on the folded
text."""

from __future__ import annotations

import re
from bisect import bisect_right

from moderation.rules.fold import fold

# --- Lenient: today's heuristics on the folded text -------------------------------------------

_L_ANCHOR = re.compile(r"<a\s", re.I)
_L_HREF = re.compile(r"href\s*=", re.I)
_L_VALUE = re.compile(r"\s*[\"']?[^\"'\s>]*")
_L_NON_SPACE = re.compile(r"\S")
# A bare URL: a scheme (and its disguises: hxxp, h t t p, fullwidth once folded) or www.
_L_SCHEME = r"h\s?[tx]\s?[tx]\s?p\s?s?\s?(?::|\[:\])\s?/\s?/"
_L_BARE = re.compile(rf"(?:{_L_SCHEME}|\bwww\s?\.)[^\s<>\"'()\[\]]+", re.I)


class _Next:
    """The next occurrence of a character at or after a position that only grows."""

    def __init__(self, text: str, char: str) -> None:
        self.text, self.char = text, char
        self.found: int | None = -1  # None: there is none any more

    def __call__(self, at: int) -> int:
        if self.found is not None and self.found < at:
            k = self.text.find(self.char, at)
            self.found = k if k >= 0 else None
        return -1 if self.found is None else self.found


def inside(starts: list[int], ends: list[int], at: int) -> bool:
    k = bisect_right(starts, at) - 1
    return k >= 0 and at < ends[k]


def lenient_count(text: str) -> int:
    """HTML anchors (any whitespace after ``<a``), markdown links ``[text](url)`` and bare URLs
    with disguised schemes, on the folded text; the URL of an anchor or a markdown link is not
    counted again as a bare URL."""
    view = fold(text)
    # <a\s[^>]*?href\s*=\s*["']?([^"'\s>]*): an anchor is the first "<a" after the last ">"
    # before an "href=", taken in order; an href before the one an anchor ends at has none.
    a_starts: list[int] = []
    a_ends: list[int] = []
    pos = floor = 0
    for href in _L_HREF.finditer(view):
        at = href.start()
        if at < pos:
            continue
        low = max(pos, floor)
        floor = at + 1
        anchor = _L_ANCHOR.search(view, max(low, view.rfind(">", low, at) + 1), at)
        if anchor is not None:
            a_starts.append(anchor.start())
            pos = _L_VALUE.match(view, href.end()).end()  # type: ignore[union-attr]
            a_ends.append(pos)

    # \[[^\]\n]*\]\(\s*([^)\s]+)[^)]*\): from the first "[", the first "]" or line end decides
    # for every "[" before it.
    m_starts: list[int] = []
    m_ends: list[int] = []
    next_bracket, next_line, next_paren = _Next(view, "]"), _Next(view, "\n"), _Next(view, ")")
    next_text = -1
    pos = 0
    while (start := view.find("[", pos)) >= 0:
        bracket, line = next_bracket(start + 1), next_line(start + 1)
        if bracket < 0:
            break
        if 0 <= line < bracket:
            pos = line + 1
            continue
        pos = bracket + 1
        if not view.startswith("(", bracket + 1):
            continue
        paren = next_paren(bracket + 2)
        if paren < 0:
            break
        if next_text < bracket + 2:
            found = _L_NON_SPACE.search(view, bracket + 2)
            next_text = found.start() if found else len(view)
        if next_text >= paren:
            continue
        pos = paren + 1
        if not inside(a_starts, a_ends, start):
            m_starts.append(start)
            m_ends.append(pos)

    bare = sum(
        1
        for match in _L_BARE.finditer(view)
        if not inside(a_starts, a_ends, match.start())
        and not inside(m_starts, m_ends, match.start())
    )
    return len(a_starts) + len(m_starts) + bare
