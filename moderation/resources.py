"""Where the files shipped beside the code live.

In a wheel, ``prompts/``, ``fixtures/`` and the ``Modelfile`` are copied inside the package;
in a source checkout (editable install, tests) they stay at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped resource (``"prompts"``, ``"fixtures"`` or ``"Modelfile"``)."""
    inside = _PACKAGE_DIR / name
    if inside.exists():
        return inside
    return _PACKAGE_DIR.parent / name


def html_templates(**filters: Callable[..., Any]) -> Environment:
    """The HTML templates in ``prompts/``: everything autoescaped, an undefined name an error,
    block tags taking no lines of their own; ``filters`` added to jinja2's own."""
    env = Environment(
        loader=FileSystemLoader(resource_path("prompts")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters)
    return env
