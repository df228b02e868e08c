"""What the configured status values mean for the column that holds them, checked at start.

A value that the column's type cannot hold, or an approved value equal to the pending one once
coerced, would turn every approval into a no-op that is still reported as done. Refuse those
before any request (exit 2) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from moderation.errors import ConfigurationError, SchemaError
from moderation.settings import Settings

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


@dataclass(frozen=True, slots=True)
class StatusValues:
    pending: Any
    approved: Any


def python_type(column: sa.Column[Any]) -> type | None:
    """The column's Python type, or None when the database does not say (untyped SQLite)."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return None
    return None if kind in (object, type(None)) else kind


def coerce_status(column: sa.Column[Any], value: str) -> Any:
    """A configured status value as the column's Python type ('1' for an INTEGER column -> 1)."""
    kind = python_type(column)
    if kind is bool:
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ConfigurationError(
            f"the status column {column.name!r} is boolean: {value!r} is neither true nor false"
        )
    if kind is int:
        try:
            return int(value.strip())
        except ValueError:
            raise ConfigurationError(
                f"the status column {column.name!r} is an integer: {value!r} is not one"
            ) from None
    return value


def status_values(column: sa.Column[Any], settings: Settings) -> StatusValues:
    """The pending and approved values as the column holds them; refuses what cannot work."""
    if settings.comments_pending_value is None or settings.comments_approved_value is None:
        if python_type(column) is str:
            raise ConfigurationError(
                f"the status column {column.name!r} holds text: set "
                "MODERATION_COMMENTS_APPROVED_VALUE and MODERATION_COMMENTS_PENDING_VALUE"
            )
        return StatusValues(pending=False, approved=True)
    pending = coerce_status(column, settings.comments_pending_value)
    approved = coerce_status(column, settings.comments_approved_value)
    same = pending == approved
    if isinstance(pending, str) and isinstance(approved, str):
        # Many collations ignore case and trailing spaces: there, these would be one value.
        same = pending.rstrip().casefold() == approved.rstrip().casefold()
    if same:
        raise ConfigurationError(
            f"the approved value {settings.comments_approved_value!r} and the pending value "
            f"{settings.comments_pending_value!r} are the same value in the status column "
            f"{column.name!r}: approving would change nothing"
        )
    return StatusValues(pending=pending, approved=approved)


def body_type_problem(column: sa.Column[Any]) -> str | None:
    """Why a column cannot hold comment text, or None when it can."""
    kind = python_type(column)
    if kind is None or kind is str:
        return None
    return f"is {column.type}, not a text type"


def check_flag_column(column: sa.Column[Any]) -> None:
    """The removed-flag column must be a boolean (or MySQL's TINYINT boolean)."""
    if python_type(column) not in (bool, int, None):
        raise SchemaError(
            f"the removed-flag column {column.name!r} (MODERATION_COMMENTS_REMOVED_COLUMN) "
            f"is {column.type}, not a boolean"
        )
