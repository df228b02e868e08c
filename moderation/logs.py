"""Logging to stderr, as text for people or one JSON object per line for collectors."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from .redact import redact

# Set by the pipeline for the duration of a batch, so every line of that batch carries it.
current_run_id: ContextVar[str | None] = ContextVar("current_run_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "run_id": current_run_id.get(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain lines for people; credentials hidden like everywhere else, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RunIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        run_id = current_run_id.get()
        record.run = f" [{run_id[:8]}]" if run_id else ""
        return True


def configure(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s%(run)s %(message)s"))
        handler.addFilter(_RunIdFilter())
    root = logging.getLogger("moderation")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
