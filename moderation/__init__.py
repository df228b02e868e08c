"""Approve a site's pending comments with a local Ollama sentiment model.

The public API is imported lazily, so that ``moderate --help`` does not pay for SQLAlchemy,
pydantic and the ollama client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classify import Verdict
    from .errors import ModerationError
    from .labels import Label, parse_label
    from .pipeline import RunReport, run_batch, run_batch_async
    from .scheduler import PeriodicModerator
    from .settings import Settings

__all__ = [
    "Label",
    "ModerationError",
    "PeriodicModerator",
    "RunReport",
    "Settings",
    "Verdict",
    "parse_label",
    "run_batch",
    "run_batch_async",
]

_WHERE = {
    "Label": "labels",
    "parse_label": "labels",
    "ModerationError": "errors",
    "PeriodicModerator": "scheduler",
    "RunReport": "pipeline",
    "run_batch": "pipeline",
    "run_batch_async": "pipeline",
    "Settings": "settings",
    "Verdict": "classify",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'moderation' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
