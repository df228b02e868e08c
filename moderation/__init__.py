"""Approve a site's pending comments with a local Ollama sentiment model.

The public API is imported lazily, so that ``moderate --help`` does not pay for SQLAlchemy,
pydantic and the ollama client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moderation.batch.pipeline import RunReport, run_batch, run_batch_async
    from moderation.batch.scheduler import PeriodicModerator
    from moderation.errors import ModerationError
    from moderation.model.host import Verdict
    from moderation.model.labels import parse_label
    from moderation.settings import Settings
    from moderation.vocabulary import Label

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
    "Label": "vocabulary",
    "parse_label": "model.labels",
    "ModerationError": "errors",
    "PeriodicModerator": "batch.scheduler",
    "RunReport": "batch.pipeline",
    "run_batch": "batch.pipeline",
    "run_batch_async": "batch.pipeline",
    "Settings": "settings",
    "Verdict": "model.host",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'moderation' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
