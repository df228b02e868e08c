"""The time window of ``--since``: ``24h``, ``7d``, ``30d`` or an ISO date or date-time (UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from moderation.errors import ConfigurationError

_RELATIVE = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def duration(value: str) -> timedelta | None:
    """``24h``, ``7d``, ``2w`` as a time span; None when ``value`` is not such a duration."""
    match = _RELATIVE.match(value)
    return None if match is None else int(match.group(1)) * _UNITS[match.group(2).lower()]


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def parse(cls, since: str, now: datetime | None = None) -> Window:
        until = now or datetime.now(UTC)
        return cls(parse_since(since, until), until)


def parse_since(value: str, now: datetime) -> datetime:
    """The start of the window; a date without a time is midnight UTC, a naive time is UTC."""
    span = duration(value)
    if span is not None:
        start = now - span
    else:
        try:
            start = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigurationError(
                f"--since {value!r}: use a duration (24h, 7d, 30d, 2w) or an ISO date (2026-11-01)"
            ) from None
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    if start >= now:
        raise ConfigurationError(f"--since {value!r} is not in the past")
    return start
