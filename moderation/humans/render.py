"""The review page's HTML: jinja2 templates in ``prompts/``, rendered inert whatever comments hold.

Everything is autoescaped, and characters that reorder or hide text are shown as their code
points, so a comment cannot run script, load anything, or disguise itself (``\u202e`` turning
"gnp.exe" into "exe.png").
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from moderation.resources import html_templates
from moderation.text import inert


def visible(text: str) -> Markup:
    """Escaped text in which every reordering or invisible character shows as its code."""
    return Markup(inert.html(text))


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
