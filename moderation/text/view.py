"""The text as a lenient reader sees it."""

from __future__ import annotations

import html
import re
import unicodedata

# Exactly what html.unescape decodes (its own pattern): numeric references with any number of
# digits, named ones with or without the semicolon.
_ENTITY = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_IGNORED = frozenset({"Cf", "Mn", "Me"})

Span = tuple[int, int]


def normalised_view(text: str) -> tuple[str, list[Span]]:
    """The text as a lenient reader sees it, and for each of its characters the span of the
    original text it came from."""
    chars = list(text)
    origin = [(i, i + 1) for i in range(len(text))]
    # Each pass decodes one level of nesting (&amp;amp;lt; needs three). Every reference is
    # longer than what it decodes to, so each pass that decodes shortens the text: the loop
    # ends, at the latest after as many passes as the text has characters.
    for _ in range(len(text) + 1):
        chars, origin = _normalise(chars, origin)
        chars, origin, decoded = _decode_entities(chars, origin)
        if not decoded:
            break  # NFKC is idempotent: only newly decoded characters could need it
    return "".join(chars), origin


def _normalise(chars: list[str], origin: list[Span]) -> tuple[list[str], list[Span]]:
    out: list[str] = []
    spans: list[Span] = []
    for char, span in zip(chars, origin, strict=True):
        if char.isascii():  # NFKC-stable, and never a format character or a combining mark
            out.append(char)
            spans.append(span)
            continue
        # Character by character: composing across characters would turn "<" followed by a
        # combining overlay into "≮" and hide the bracket.
        for part in unicodedata.normalize("NFKC", char):
            if unicodedata.category(part) not in _IGNORED:
                out.append(part)
                spans.append(span)
    return out, spans


def _decode_entities(chars: list[str], origin: list[Span]) -> tuple[list[str], list[Span], bool]:
    joined = "".join(chars)
    if "&" not in joined:
        return chars, origin, False
    out: list[str] = []
    spans: list[Span] = []
    done = 0
    decoded = False
    for match in _ENTITY.finditer(joined):
        value = html.unescape(match.group())
        if value == match.group():
            continue
        out += chars[done : match.start()]
        spans += origin[done : match.start()]
        whole = (origin[match.start()][0], origin[match.end() - 1][1])
        out += list(value)
        spans += [whole] * len(value)
        done = match.end()
        decoded = True
    out += chars[done:]
    spans += origin[done:]
    return out, spans, decoded
