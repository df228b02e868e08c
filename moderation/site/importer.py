"""``moderate import``: load comments from JSON Lines into the configured table.

The whole file is validated before anything is written, and the rows go in one transaction, so
a bad line 90,000 lines in leaves the database exactly as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from moderation.errors import ConfigurationError
from moderation.settings import Settings
from moderation.site.status import coerce_status
from moderation.storage.engines import run_write, translate_errors

CHUNK = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_bodies(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, body) for each non-blank line; ConfigurationError names the bad line."""
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                yield number, _body(line, number, path)
        except UnicodeDecodeError as exc:
            raise ConfigurationError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _body(line: str, number: int, path: Path) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    # "text" is accepted too, so the labelled fixtures double as a quick-start backlog.
    body = record.get("body", record.get("text")) if isinstance(record, dict) else None
    if not isinstance(body, str):
        raise ConfigurationError(f'{path}:{number}: expected an object with a string "body"')
    return body


def sanitise(body: str, dialect: str) -> str:
    """Make a body storable: lone surrogates (valid in JSON, not in UTF-8) and, on PostgreSQL,
    NUL characters (its text type cannot hold them) become U+FFFD."""
    clean = _SURROGATE.sub("\ufffd", body) if _has_surrogates(body) else body
    if dialect == "postgresql" and "\x00" in clean:
        clean = clean.replace("\x00", "\ufffd")
    return clean


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def default_table(settings: Settings, metadata: sa.MetaData) -> sa.Table:
    """A minimal comments table with the configured names, for a quick start."""
    approved: sa.Column[Any]
    if settings.comments_pending_value is None:
        approved = sa.Column(
            settings.comments_approved_column, sa.Boolean, nullable=False, default=False
        )
    else:
        approved = sa.Column(
            settings.comments_approved_column,
            sa.String(32),
            nullable=False,
            default=settings.comments_pending_value,
        )
    return sa.Table(
        settings.comments_table,
        metadata,
        sa.Column(settings.comments_id_column, sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(settings.comments_body_column, sa.Text, nullable=False),
        approved,
    )


def import_comments(engine: Engine, settings: Settings, path: Path) -> tuple[int, int, bool]:
    """Insert every body as a pending comment; returns (inserted, sanitised, table_created)."""
    total = sum(1 for _ in read_bodies(path))  # validation pass: nothing written yet
    with translate_errors(engine):
        exists = sa.inspect(engine).has_table(settings.comments_table)
        if exists:
            table = sa.Table(settings.comments_table, sa.MetaData(), autoload_with=engine)
            for column in (settings.comments_body_column, settings.comments_approved_column):
                if column not in table.c:
                    raise ConfigurationError(
                        f"the comments table {settings.comments_table!r} has no column {column!r}"
                    )
        else:
            table = default_table(settings, sa.MetaData())
    pending = _pending_value(settings, table)
    dialect = engine.dialect.name
    sanitised = 0

    body_key = table.c[settings.comments_body_column].key
    approved_key = table.c[settings.comments_approved_column].key

    def _insert(conn: sa.Connection) -> None:
        nonlocal sanitised
        if not exists:
            table.create(conn)
        rows: list[dict[str, object]] = []
        for _, body in read_bodies(path):
            clean = sanitise(body, dialect)
            sanitised += clean != body
            rows.append({body_key: clean, approved_key: pending})
            if len(rows) == CHUNK:
                conn.execute(sa.insert(table), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(table), rows)

    run_write(engine, _insert)
    return total, sanitised, not exists


def _pending_value(settings: Settings, table: sa.Table) -> object:
    if settings.comments_pending_value is None:
        return False
    return coerce_status(
        table.c[settings.comments_approved_column], settings.comments_pending_value
    )
