"""The text as a moderator reads it: the form the owner's words and the flood rule compare.

A spammer splits a word the site holds with markup a reader never sees (``ca<b></b>sino``,
``cas<!-- -->ino``, ``ca**s**ino``), with whitespace (``cheap\\n  watches``) or with letters
of another script that look the same (Cyrillic ``саsino``). The canonical form undoes each:
the lenient view (``moderation.text.view``: NFKC, entities decoded, invisible characters
dropped), HTML tags and comments removed as ``wp_strip_all_tags`` removes them (``<script>``
and ``<style>`` with their content), Markdown's emphasis and code marks removed, whitespace
runs collapsed to one space, and each letter that Unicode's confusables data (UTS #39) says
looks like an ASCII letter replaced by it; then lower case.

Every step is one pass with ``str.find`` or ``str.translate``: linear in the text's length.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

from moderation.text.view import plain_view

# Markdown's emphasis, strike-through and code marks: a reader sees the letters between them.
_MARKS = str.maketrans("", "", "*_~`")
_TAG_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/!?")
# Elements whose content is no reader's text either (wp_strip_all_tags drops it too).
_RAW_TEXT = {name: re.compile(rf"</{name}", re.IGNORECASE) for name in ("script", "style")}


def strip_markup(text: str) -> str:
    """``text`` with HTML comments, tags, and the content of script and style elements
    removed. A tag or comment left open runs to the end of the text, as in a browser."""
    if "<" not in text:
        return text
    pieces: list[str] = []
    position, size = 0, len(text)
    while position < size:
        opening = text.find("<", position)
        if opening < 0:
            break
        following = text[opening + 1 : opening + 2]
        if following not in _TAG_START:
            pieces.append(text[position : opening + 1])
            position = opening + 1
            continue
        pieces.append(text[position:opening])
        if text.startswith("<!--", opening):
            close = text.find("-->", opening + 4)
            position = size if close < 0 else close + 3
            continue
        close = text.find(">", opening + 1)
        if close < 0:
            position = size
            break
        name = text[opening + 1 : close].split(None, 1)[0].lower() if close > opening + 1 else ""
        position = close + 1
        if name in _RAW_TEXT:
            end = _RAW_TEXT[name].search(text, position)
            if end is None:
                position = size
            else:
                close = text.find(">", end.start())
                position = size if close < 0 else close + 1
    pieces.append(text[position:])
    return "".join(pieces)


@cache
def _skeleton_table() -> dict[int, str]:
    """Each non-ASCII character that looks like exactly one ASCII character, mapped to it
    (UTS #39 confusables, as the confusable-homoglyphs package ships them)."""
    from confusable_homoglyphs import confusables

    table: dict[int, str] = {}
    for char, entries in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_forms = {e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii()}
        if len(ascii_forms) == 1:
            table[ord(char)] = ascii_forms.pop().casefold()
    return table


def skeleton(text: str) -> str:
    """Look-alike letters replaced by the ASCII letters they imitate (Cyrillic ``с`` is
    ``c``); ASCII is left as it is."""
    if text.isascii():
        return text
    return text.translate(_skeleton_table())


@lru_cache(maxsize=8)
def canonical(text: str) -> str:
    """The text as a moderator reads it: see the module's docstring."""
    view = strip_markup(plain_view(text)).translate(_MARKS)
    return skeleton(" ".join(view.split()).casefold())


def flood_form(text: str) -> str:
    """The canonical form without punctuation or symbols: near-copies of one text (a ``!``
    added, one letter swapped for a look-alike) share it."""
    form = canonical(text)
    if form.isascii():
        kept = "".join(c if c.isalnum() else " " for c in form)
    else:
        kept = "".join(c if unicodedata.category(c)[0] in "LNZ" else " " for c in form)
    return " ".join(kept.split())
