"""Untrusted text made inert for display: what a comment or a model's answer says, shown, never
obeyed.

A comment is written by an adversary, and every surface that shows one (a terminal, a log line,
an HTML page, a JSON document someone will ``cat``) reads some characters as instructions:
escape sequences clear a terminal or open a hyperlink, C1 controls are escapes on their own,
bidi overrides and isolates reorder what is shown (``\\u202e`` turning "gnp.exe" into
"exe.png"), zero widths and tag characters hide words. Each of them is shown as its code point
instead, ``U+202E``, the way the review page shows it: every format character (Unicode
category Cf: bidi embeddings, overrides, isolates and marks, zero widths, the soft hyphen,
invisible operators, the tag characters that can spell a whole invisible sentence), the rest
of the tag block, the Hangul fillers (letters that draw nothing), line and paragraph
separators, lone surrogates (which no output encoding can write), and C0 and C1 controls and
DEL. Newline and tab are kept where a surface allows them.

Standard library only: the surfaces add what they need on top (HTML escaping here, rich's
``Text`` in the command line, JSON escapes for ``--json``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

_CONTROLS = re.compile(r"[\u0000-\u001f\u007f-\u009f]")
_ALSO_HIDDEN = frozenset("\u115f\u1160\u3164\uffa0\u2028\u2029") | frozenset(
    chr(c) for c in range(0xE0000, 0xE0080)
)
_HIDDEN_CATEGORIES = frozenset({"Cf", "Cs"})
# Candidates: everything but printable ASCII (then checked one by one).
_CANDIDATE = re.compile(r"[^\u0020-\u007e]")

LINES = "\n\t"  # text with line breaks: a page, a multi-line message
ONE_LINE = "\t"  # a table cell, a log line: a newline would fake another row or line


def hidden(char: str) -> bool:
    """Whether ``char`` (one character) is shown as its code rather than as itself."""
    return (
        char in _ALSO_HIDDEN
        or _CONTROLS.match(char) is not None
        or unicodedata.category(char) in _HIDDEN_CATEGORIES
    )


def code(char: str) -> str:
    """The code point of ``char`` as the review page shows it: ``U+202E``."""
    return f"U+{ord(char):04X}"


def pieces(text: str, keep: str = LINES) -> Iterator[tuple[str, bool]]:
    """``text`` in runs: ``(run, False)`` to show as it is, ``(char, True)`` for one hidden
    character to show as its code. The characters of ``keep`` are shown as they are."""
    last = 0
    for match in _CANDIDATE.finditer(text):
        char = match.group()
        if char in keep or not hidden(char):
            continue
        if match.start() > last:
            yield text[last : match.start()], False
        yield char, True
        last = match.end()
    if last < len(text):
        yield text[last:], False


def render(
    text: str,
    shown: Callable[[str], str] = str,
    coded: Callable[[str], str] = code,
    keep: str = LINES,
) -> str:
    """``text`` with each run passed through ``shown`` and each hidden character through
    ``coded``: the one walk every surface's rendering is made of."""
    return "".join(coded(run) if is_code else shown(run) for run, is_code in pieces(text, keep))


def plain(text: str, keep: str = LINES) -> str:
    """Plain text for a terminal, a log or a message: each hidden character as ``<U+202E>``."""
    return render(text, coded=lambda char: f"<{code(char)}>", keep=keep)


def one_line(text: str) -> str:
    """As ``plain``, with newlines shown as codes too: a table cell, a log line."""
    return plain(text, keep=ONE_LINE)


def escape_html(text: str) -> str:
    """HTML-escaped as markupsafe escapes (``&<>"'``), so pages read the same bytes."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


def html(text: str) -> str:
    """Escaped HTML with each hidden character as ``<span class="ctl">U+202E</span>``."""
    return render(text, escape_html, lambda char: f'<span class="ctl">{code(char)}</span>')


def json_text(document: str) -> str:
    """A JSON text (``json.dumps(..., ensure_ascii=False)``) with every hidden character
    written as its ``\\uXXXX`` escape: the same document to a parser, nothing raw on a screen.

    JSON already escapes C0 controls; this adds DEL, C1, format characters, separators and
    lone surrogates. Outside strings a JSON text is ASCII, so only string contents change.
    """
    return render(document, coded=_json_escape)


def _json_escape(char: str) -> str:
    number = ord(char)
    if number < 0x10000:
        return f"\\u{number:04x}"
    number -= 0x10000
    return f"\\u{0xD800 + (number >> 10):04x}\\u{0xDC00 + (number & 0x3FF):04x}"


__all__ = [
    "LINES",
    "ONE_LINE",
    "code",
    "escape_html",
    "hidden",
    "html",
    "json_text",
    "one_line",
    "pieces",
    "plain",
    "render",
]
