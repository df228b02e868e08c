"""The review page's HTML: jinja2 templates in ``prompts/``, rendered inert whatever comments hold.

Everything is autoescaped, and characters that reorder or hide text are shown as their code
points, so a comment cannot run script, load anything, or disguise itself (``\u202e`` turning
"gnp.exe" into "exe.png").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from moderation.resources import html_templates

# Characters that reorder or hide text: bidi embeddings, overrides and isolates, marks, and C0
# and C1 controls other than newline and tab. Each is shown as its code point instead.
_INVISIBLE = re.compile(
    r"[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\ufeff"
    r"\u0000-\u0008\u000b-\u001f\u007f-\u009f]"
)


def visible(text: str) -> Markup:
    """Escaped text in which every reordering or invisible character shows as its code."""
    parts = []
    last = 0
    for match in _INVISIBLE.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(Markup('<span class="ctl">U+%s</span>') % f"{ord(match.group()):04X}")
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
