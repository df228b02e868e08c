"""Counting a comment's links."""

from __future__ import annotations

import re

from moderation.rules.fold import fold

# An HTML anchor with an href, as WordPress's check_comment counts them ("<a " ... "href").
_ANCHOR = re.compile(r"<a\s[^>]*?href\s*=\s*[\"']?([^\"'\s>]*)", re.IGNORECASE)
# A markdown link [text](url).
_MARKDOWN = re.compile(r"\[[^\]\n]*\]\(\s*([^)\s]+)[^)]*\)")
# A bare URL: a scheme (and its disguises: hxxp, h t t p, fullwidth once folded) or www.
_SCHEME = r"h\s?[tx]\s?[tx]\s?p\s?s?\s?(?::|\[:\])\s?/\s?/"
_BARE = re.compile(rf"(?:{_SCHEME}|\bwww\s?\.)[^\s<>\"'()\[\]]+", re.IGNORECASE)


def count_links(text: str) -> int:
    """Anchors, markdown links and bare URLs in the folded text, each link counted once: the
    URL of an anchor or a markdown link is not counted again as a bare URL."""
    view = fold(text)
    count = 0
    spans: list[tuple[int, int]] = []
    for pattern in (_ANCHOR, _MARKDOWN):
        for match in pattern.finditer(view):
            if any(s <= match.start() < e for s, e in spans):
                continue
            count += 1
            spans.append(match.span())
    for match in _BARE.finditer(view):
        if not any(s <= match.start() < e for s, e in spans):
            count += 1
    return count
