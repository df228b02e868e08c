"""Helpers the test modules share: building and reading a site's tables, and Settings.

Fixtures live in ``tests/conftest.py``; everything a test module imports lives here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from moderation.settings import Settings

PG_ENV = "MODERATION_TEST_POSTGRES_URL"
MYSQL_ENV = "MODERATION_TEST_MYSQL_URL"
# "required": the real-model tests fail instead of skipping when the model cannot run.
REALMODEL_ENV = "MODERATION_TEST_REALMODEL"
# The scripted answer for a negative comment.
NEGATIVE = '{"label": "negative"}'


def postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://127.0.0.1/test)")
    return url


def psycopg_url(url: str) -> str:
    """A PostgreSQL URL with SQLAlchemy's psycopg (3) driver named."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def mysql_base_url() -> str:
    url = os.environ.get(MYSQL_ENV)
    if not url:
        pytest.skip(
            f"MariaDB/MySQL tests need {MYSQL_ENV} (e.g. mysql+pymysql://root@127.0.0.1:3306/test)"
        )
    return url


def create_site_table(
    url: str,
    bodies: list[str],
    *,
    table: str = "comments",
    id_column: str = "id",
    body_column: str = "body",
    approved_column: str = "approved",
    status: tuple[str, str] | None = None,
    approved: set[int] | None = None,
) -> sa.Table:
    """A site's own comments table; `status` = (pending, approved) makes it a string column."""
    metadata = sa.MetaData()
    approved_type: sa.types.TypeEngine[Any] = sa.Boolean() if status is None else sa.String(8)
    site = sa.Table(
        table,
        metadata,
        sa.Column(id_column, sa.Integer, primary_key=True),
        sa.Column(body_column, sa.Text, nullable=False),
        sa.Column(approved_column, approved_type, nullable=False),
        sa.Column("author", sa.String(80)),
    )
    pending_value, approved_value = (False, True) if status is None else status
    approved_ids = approved or set()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        if bodies:
            conn.execute(
                sa.insert(site),
                [
                    {
                        id_column: i,
                        body_column: body,
                        approved_column: approved_value if i in approved_ids else pending_value,
                    }
                    for i, body in enumerate(bodies, start=1)
                ],
            )
    engine.dispose()
    return site


def read_table(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.exec_driver_sql(query)]
    engine.dispose()
    return rows


def execute(url: str, *statements: str, rows: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    """Run ``statements``, then each ``(insert, values)`` of ``rows``, in one transaction."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
        for insert, values in rows:
            conn.execute(sa.text(insert), values)
    engine.dispose()


def make_settings(url: str, **overrides: Any) -> Settings:
    """Settings for a test. Qualification is off unless the test turns it on: a test of
    another stage must not depend on how the test server's rules fare on the fixtures."""
    values: dict[str, Any] = {"database_url": url, "http_transport": "httpx", "qualify": "off"}
    values.update(overrides)
    return Settings(**values)


def prompt_needle(text: str) -> str:
    """A piece of a fixture that the prompt carries as it is: its longest run free of markup
    and brackets (the prompt defuses markers and control tokens) and of line breaks, cut to 30
    characters (a long comment is read in windows), in lower case (the test server's rules
    match so)."""
    return max(re.split(r"[<>&\n\[\]|]", text), key=len).strip()[:30].lower()
