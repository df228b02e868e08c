"""Logging to stderr, as text for people or one JSON object per line for collectors.

The handler sits on the root logger, so that libraries' loggers (stamina's retry notices,
Python warnings) come out in the same format instead of as bare lines.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from moderation.redact import redact
from moderation.text.inert import json_text, plain

# Set by the pipeline for the duration of a batch, so every line of that batch carries it.
current_run_id: ContextVar[str | None] = ContextVar("current_run_id", default=None)

# Attributes every LogRecord has; anything else was passed as ``extra=`` (stamina's details).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_STANDARD |= {"message", "asctime", "run", "extras", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and k[0] != "_"}
    return {k: redact(v) if isinstance(v, str) else v for k, v in extras.items()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "run_id": current_run_id.get(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        # Whatever a message quotes, nothing in the line is a control a terminal obeys.
        return json_text(json.dumps(entry, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """Plain lines for people; credentials hidden like everywhere else, tracebacks included."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s%(run)s %(message)s%(extras)s") -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        run_id = current_run_id.get()
        record.run = f" [{run_id[:8]}]" if run_id else ""
        record.extras = "".join(f" {k}={v}" for k, v in _extras(record).items())
        # Controls and format characters a message quotes show as codes (tracebacks keep
        # their lines).
        return plain(redact(super().format(record)))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now: a progress bar that redirects stderr then
    prints each log line above itself instead of through it."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(fmt: str, level: str) -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = logging.getLevelName(level.upper())
    # Libraries speak from WARNING up (their DEBUG would drown the tool's); ours at the level asked.
    root.setLevel(max(numeric, logging.WARNING))
    own = logging.getLogger("moderation")
    own.handlers.clear()
    own.setLevel(numeric)
    own.propagate = True
    logging.captureWarnings(True)


def json_configured() -> bool:
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
