"""Status values the column cannot hold, through `moderate`: one line and exit 2 before any
request, with nothing written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakeollama import FakeOllama
from tests.helpers import read_table
from tests.processes import moderate


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}) as fake:
        yield fake


def status_table(url: str, column_type: str, pending: Any) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL,"
            f" state {column_type})"
        )
        conn.execute(
            sa.text("INSERT INTO comments (id, body, state) VALUES (1, 'Thanks!', :s)"),
            {"s": pending},
        )
    engine.dispose()


@pytest.mark.parametrize(
    ("column_type", "stored", "approved", "pending", "message"),
    [
        # Both coerce to false on a boolean: "approved" would be a no-op reported as done.
        ("BOOLEAN", False, "published", "pending", "neither true nor false"),
        ("BOOLEAN", False, "no", "false", "are the same value"),
        ("INTEGER", 0, "approved", "0", "is an integer: 'approved' is not one"),
        ("INTEGER", 0, "1", "01", "are the same value"),
        # Most MySQL collations would read these as one value.
        ("VARCHAR(20)", "pending", "Pending ", "pending", "are the same value"),
        ("VARCHAR(20)", "0", None, None, "holds text: set MODERATION_COMMENTS_APPROVED_VALUE"),
    ],
)
def test_status_values_the_column_cannot_tell_apart_are_refused_at_start(
    sqlite_url: str,
    ollama: FakeOllama,
    column_type: str,
    stored: Any,
    approved: str | None,
    pending: str | None,
    message: str,
) -> None:
    status_table(sqlite_url, column_type, stored)
    env = {
        "MODERATION_DATABASE_URL": sqlite_url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_COMMENTS_APPROVED_COLUMN": "state",
    }
    if approved is not None and pending is not None:
        env["MODERATION_COMMENTS_APPROVED_VALUE"] = approved
        env["MODERATION_COMMENTS_PENDING_VALUE"] = pending
    ollama.configure(reset_stats=True)

    result = moderate("--json", env=env)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert read_table(sqlite_url, "SELECT state FROM comments") == [(stored,)]
    assert ollama.stats()["generate_bodies"] == []
