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
from array import array
from collections.abc import Iterator
from functools import lru_cache
from itertools import chain, repeat

Span = tuple[int, int]


class Origins:
    """For each character of a view, the span of the original text it came from: two arrays
    of integers rather than a tuple per character (nothing for the garbage collector to walk,
    which would make a long text cost more than its length)."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts = array("q")
        self.ends = array("q")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> Span:
        return self.starts[index], self.ends[index]

    def __iter__(self) -> Iterator[Span]:
        return zip(self.starts, self.ends, strict=True)

    def append(self, span: Span) -> None:
        self.starts.append(span[0])
        self.ends.append(span[1])

    def copied(self, begin: int, end: int, source: array[int] | None) -> None:
        """Characters copied as they are from ``text[begin:end]``, whose original positions
        are ``source[begin:end]`` (None: the same)."""
        if source is None:
            self.starts.extend(range(begin, end))
            self.ends.extend(range(begin + 1, end + 1))
        else:
            self.starts.extend(source[begin:end])
            self.ends.extend(map((1).__add__, source[begin:end]))

    def cut(self, start: int) -> None:
        del self.starts[start:], self.ends[start:]


_IGNORED = frozenset({"Cf", "Mn", "Me"})
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


# A whole reference that ends in ";", after its "&": nothing after it can change how it reads.
_REFERENCE_BODY = re.compile(r"#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,30};")
# The start of a reference that no whole one follows: "&", "&#" or "&#x".
_OPENING = re.compile(r"&(?:#[xX]?)?")
_OPENING_STATES = (_AMP, _HASH, _X)
# States of a reference that an "&" ends without decoding anything: it starts afresh.
_DEAD_ON_AMP = frozenset({_AMP, _HASH, _X})
# The characters that extend an open reference in each state, taken many at a time.
_EXTENDING = {
    _AMP: (re.compile(r"[A-Za-z0-9]+"), _NAME),
    _NAME: (re.compile(r"[A-Za-z0-9]+"), _NAME),
    _HASH: (re.compile(r"[0-9]+"), _DEC),
    _DEC: (re.compile(r"[0-9]+"), _DEC),
    _X: (re.compile(r"[0-9a-fA-F]+"), _HEXD),
    _HEXD: (re.compile(r"[0-9a-fA-F]+"), _HEXD),
}


@lru_cache(maxsize=1024)
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


def _view(text: str, track: bool) -> tuple[list[str], Origins]:
    """The view's characters and, when ``track``, their origins.

    ``marks[i]`` is the reference open once character ``i`` is read: ``start * 8 + state``,
    or -1 for none. A decoded reference's value goes on ``pending``, read before the rest of
    the text, with the character that ended it (unless that was its ``;``) after it."""
    chars: list[str] = []
    spans = Origins()
    marks: list[int] = []
    pending: list[tuple[str, Span]] = []
    # Every character normalised first, in one call; ``source[i]`` is the original position
    # of the normalised text's character ``i`` (None: the same position, nothing changed).
    source: array[int] | None = None
    if not text.isascii():
        pieces = list(map(_normal, text))
        normal = "".join(pieces)
        if track and (len(normal) != len(text) or normal != text):
            source = array(
                "q", chain.from_iterable(map(repeat, range(len(text)), map(len, pieces)))
            )
        text = normal
    position, size = 0, len(text)
    mark = -1

    def origin(begin: int, end: int) -> Span:
        """The span of the original text that ``text[begin:end]`` came from."""
        if source is None:
            return (begin, end)
        return (source[begin], source[end - 1] + 1)

    while True:
        if pending:
            char, span = pending.pop()
            if char == "&" and not pending and (mark < 0 or mark & 7 in _DEAD_ON_AMP):
                # A decoded "&" (``&amp;``) and a reference after it in the text: nested
                # references, one level each time round.
                body = _REFERENCE_BODY.match(text, position)
                if body is not None:
                    value = _decode("&" + body.group())
                    if value != "&" + body.group():
                        whole = (span[0], origin(position, body.end())[1])
                        pending.extend((piece, whole) for piece in reversed(value))
                        position = body.end()
                        continue
        elif position < size:
            if mark < 0:
                # Everything up to the next "&" is copied as it is: normalised already.
                end = text.find("&", position)
                end = size if end < 0 else end
                if end > position:
                    chars.extend(text[position:end])
                    marks.extend([-1] * (end - position))
                    if track:
                        spans.copied(position, end, source)
                    position = end
                    continue
            # Shortcuts that read as the character-by-character path below would:
            if text[position] == "&" and (mark < 0 or mark & 7 in _DEAD_ON_AMP):
                # a whole reference where none is open (or one that this "&" ends without
                # decoding anything), decoded at once;
                body = _REFERENCE_BODY.match(text, position + 1)
                if body is not None:
                    reference = text[position : body.end()]
                    value = _decode(reference)
                    if value != reference:
                        span = origin(position, body.end())
                        pending.extend((piece, span) for piece in reversed(value))
                        position = body.end()
                        continue
                # or its opening, each character with the state it leaves.
                opening = _OPENING.match(text, position)
                assert opening is not None
                start, end = len(chars), opening.end()
                chars.extend(text[position:end])
                marks.extend(start * 8 + state for state in _OPENING_STATES[: end - position])
                if track:
                    spans.copied(position, end, source)
                mark = marks[-1]
                position = end
                continue
            elif mark >= 0:
                # the digits or letters that extend an open reference, many at a time.
                start = mark >> 3
                pattern, following = _EXTENDING.get(mark & 7, (None, _NONE))
                room = _MAX_NAME + 1 - (len(chars) - start) if following == _NAME else size
                run = pattern.match(text, position) if pattern is not None else None
                if run is not None and room > 0:
                    end = min(run.end(), position + room)
                    mark = start * 8 + following
                    chars.extend(text[position:end])
                    marks.extend([mark] * (end - position))
                    if track:
                        spans.copied(position, end, source)
                    position = end
                    continue
            char, span = text[position], origin(position, position + 1)
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
                        spans.cut(start)
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
                            spans.cut(start)
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


def normalised_view(text: str) -> tuple[str, Origins]:
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
