"""The text as a lenient reader sees it, in one pass over the text.

A model, a browser or a moderator reads through disguises that a plain comparison misses:
fullwidth letters, HTML entities (nested: ``&amp;lt;`` is a ``<`` after two decodings), format
characters and combining marks inside a word. The view undoes them all: each character is
NFKC-normalised on its own (composing across characters would turn ``<`` followed by a
combining overlay into ``≮`` and hide the bracket), format characters (Unicode category Cf)
and combining marks are dropped, and HTML references are decoded as ``html.unescape`` applied
until nothing changes would decode them, nesting included.

It is one pass, linear in the length of the text whatever it holds. A decoded reference is
fed back to the reader in place of the reference, so that it can extend or complete a
reference begun before it (``&am&#112;;`` is ``&amp;``, then ``&``); every reference is longer
than what it decodes to, so the text the reader still has to read only shrinks, and each
position remembers the reference that was open there, so no character is read twice for its
sake. Numeric references take any number of digits (leading zeros cost nothing, and a number
past U+10FFFF reads as U+FFFD, as browsers read it).
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

Span = tuple[int, int]

_IGNORED = frozenset({"Cf", "Mn", "Me"})
# A character that needs more than copying: the start of a reference, or anything not ASCII.
_SPECIAL = re.compile(r"[&\x80-\U0010ffff]")
# What may follow "&" in a named reference (html.unescape's own class), and its longest name.
_NOT_NAME = frozenset("\t\n\f <&#;")
_MAX_NAME = 32
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")

# The states of a reference being read: what has been seen since its "&".
_NONE, _AMP, _HASH, _DEC, _X, _HEXD, _NAME = range(7)
# The states in which what was read is a whole reference, if nothing extends it.
_COMPLETE = frozenset({_DEC, _HEXD, _NAME})


@lru_cache(maxsize=4096)
def _normal(char: str) -> str:
    """One character NFKC-normalised, with format characters and combining marks dropped."""
    return "".join(
        part
        for part in unicodedata.normalize("NFKC", char)
        if unicodedata.category(part) not in _IGNORED
    )


def _decode(reference: str) -> str:
    """What ``html.unescape`` makes of one reference (``&...`` with its ``;`` if it has one).

    A numeric one is shortened first: ``int()`` refuses more than 4,300 digits, and leading
    zeros change nothing."""
    if reference.startswith("&#"):
        hexadecimal = reference[2:3] in ("x", "X")
        digits = reference[3 if hexadecimal else 2 :].rstrip(";").lstrip("0") or "0"
        if len(digits) > 8:
            digits = "110000" if hexadecimal else "1114112"  # past U+10FFFF: U+FFFD
        reference = f"&#{'x' if hexadecimal else ''}{digits};"
    return html.unescape(reference)


def _next_state(state: int, char: str, length: int) -> int:
    """The state after ``char`` extends a reference in ``state`` that is ``length``
    characters long so far, or _NONE when it cannot extend it."""
    if state == _AMP:
        if char == "#":
            return _HASH
        return _NAME if char not in _NOT_NAME else _NONE
    if state == _HASH:
        if char in _DIGITS:
            return _DEC
        return _X if char in "xX" else _NONE
    if state == _DEC:
        return _DEC if char in _DIGITS else _NONE
    if state in (_X, _HEXD):
        return _HEXD if char in _HEX else _NONE
    if state == _NAME and char not in _NOT_NAME and length <= _MAX_NAME:
        return _NAME
    return _NONE


def _view(text: str, track: bool) -> tuple[list[str], list[Span]]:
    """The view's characters and, when ``track``, their origins.

    ``marks[i]`` is the reference open once character ``i`` is read: ``start * 8 + state``,
    or -1 for none. A decoded reference's value goes on ``pending``, read before the rest of
    the text, with the character that ended it (unless that was its ``;``) after it."""
    chars: list[str] = []
    spans: list[Span] = []
    marks: list[int] = []
    pending: list[tuple[str, Span]] = []
    position, size = 0, len(text)
    mark = -1
    special = _SPECIAL.search
    while True:
        if pending:
            char, span = pending.pop()
        elif position < size:
            if mark < 0:
                found = special(text, position)
                end = found.start() if found else size
                if end > position:
                    chars.extend(text[position:end])
                    marks.extend([-1] * (end - position))
                    if track:
                        spans.extend((i, i + 1) for i in range(position, end))
                    position = end
                    continue
            char, span = text[position], (position, position + 1)
            position += 1
        else:
            # At the end of the text a reference still open is complete (``&lt`` is ``<``).
            if mark >= 0 and mark & 7 in _COMPLETE:
                start = mark >> 3
                reference = "".join(chars[start:])
                value = _decode(reference)
                if value != reference:
                    whole = (spans[start][0], spans[-1][1]) if track else (0, 0)
                    del chars[start:], marks[start:]
                    if track:
                        del spans[start:]
                    mark = marks[-1] if marks else -1
                    pending.extend((part, whole) for part in reversed(value))
                    continue
            return chars, spans
        parts = char if char.isascii() else _normal(char)
        for index, part in enumerate(parts):
            if mark >= 0:
                state, start = mark & 7, mark >> 3
                following = _next_state(state, part, len(chars) - start)
                if following != _NONE:
                    mark = start * 8 + following
                    chars.append(part)
                    marks.append(mark)
                    if track:
                        spans.append(span)
                    continue
                if state in _COMPLETE:
                    ends = part == ";"
                    reference = "".join(chars[start:]) + (";" if ends else "")
                    value = _decode(reference)
                    if value != reference:
                        if track:
                            whole = (spans[start][0], span[1] if ends else spans[-1][1])
                            del spans[start:]
                        else:
                            whole = (0, 0)
                        del chars[start:], marks[start:]
                        mark = marks[-1] if marks else -1
                        # Read next: the value, then what ended the reference, then the
                        # rest of what ``char`` normalised to.
                        pending.extend((rest, span) for rest in reversed(parts[index + 1 :]))
                        if not ends:
                            pending.append((part, span))
                        pending.extend((piece, whole) for piece in reversed(value))
                        break
            mark = len(chars) * 8 + _AMP if part == "&" else -1
            chars.append(part)
            marks.append(mark)
            if track:
                spans.append(span)


def normalised_view(text: str) -> tuple[str, list[Span]]:
    """The text as a lenient reader sees it, and for each of its characters the span of the
    original text it came from."""
    chars, spans = _view(text, track=True)
    return "".join(chars), spans


@lru_cache(maxsize=8)
def plain_view(text: str) -> str:
    """The same view without the origins (cheaper): what rules compare. The last few are
    kept: every rule reads the same comment's view in turn."""
    if text.isascii() and "&" not in text:
        return text
    return "".join(_view(text, track=False)[0])
