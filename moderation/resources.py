"""Where the files shipped beside the code live.

In a wheel, ``prompts/``, ``fixtures/`` and the ``Modelfile`` are copied inside the package;
in a source checkout (editable install, tests) they stay at the repository root. The HTML
templates and static files of the review page and the eval report are package data of their
subpackage, read through ``importlib.resources``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped resource (``"prompts"``, ``"fixtures"`` or ``"Modelfile"``)."""
    inside = _PACKAGE_DIR / name
    if inside.exists():
        return inside
    return _PACKAGE_DIR.parent / name


def html_templates(package: str, **filters: Callable[..., Any]) -> Environment:
    """The HTML templates in ``package``'s ``templates/``: everything autoescaped, an undefined
    name an error, block tags taking no lines of their own; ``filters`` added to jinja2's own."""
    env = Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters)
    return env
