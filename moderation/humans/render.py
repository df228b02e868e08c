"""The review page's HTML: jinja2 templates in ``prompts/``, rendered inert whatever comments hold.

Everything is autoescaped, and characters that reorder or hide text are shown as their code
points, so a comment cannot run script, load anything, or disguise itself (``\u202e`` turning
"gnp.exe" into "exe.png").
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from moderation.resources import html_templates

# Characters that may reorder or hide text, each shown as its code point instead: every
# format character (Unicode category Cf: bidi embeddings, overrides, isolates and marks, zero
# widths, the soft hyphen, invisible operators, the tag characters that can spell a whole
# invisible sentence), the rest of the tag block, the Hangul fillers (letters that draw
# nothing), line and paragraph separators, and C0 and C1 controls other than newline and tab.
_CONTROLS = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f]")
_ALSO_HIDDEN = frozenset("\u115f\u1160\u3164\uffa0\u2028\u2029") | frozenset(
    chr(c) for c in range(0xE0000, 0xE0080)
)
# Candidates: controls, and anything beyond ASCII (then checked by category).
_CANDIDATE = re.compile(r"[^\t\n\u0020-\u007e]")


def _hidden(char: str) -> bool:
    return (
        char in _ALSO_HIDDEN
        or _CONTROLS.match(char) is not None
        or unicodedata.category(char) == "Cf"
    )


def visible(text: str) -> Markup:
    """Escaped text in which every reordering or invisible character shows as its code."""
    parts = []
    last = 0
    for match in _CANDIDATE.finditer(text):
        char = match.group()
        if not _hidden(char):
            continue
        parts.append(escape(text[last : match.start()]))
        parts.append(Markup('<span class="ctl">U+%s</span>') % f"{ord(char):04X}")
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def age(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return html_templates("moderation.humans", visible=visible, age=age)


def render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(**values)
