"""The tool leaves a site's SQLite file in the journal mode its owner chose; WAL only on a
file the tool creates itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from moderation.batch.pipeline import run_batch
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from tests.fakes import FakeClassifier
from tests.helpers import NEGATIVE, make_settings, read_table


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_a_sites_rollback_journal_file_stays_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "comments.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT, approved BOOLEAN)")
        conn.executemany(
            "INSERT INTO comments (body, approved) VALUES (?, 0)", [("nice",), ("idiot",)]
        )
    assert journal_mode(path) == "delete"
    url = f"sqlite:///{path}"

    report = run_batch(make_settings(url), classifier=FakeClassifier({"idiot": NEGATIVE}))

    assert (report.counts()["approved"], report.counts()["held"]) == (1, 1)
    assert journal_mode(path) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comments.db"]  # no -wal, no -shm
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(1,), (0,)]


def test_a_file_the_tool_creates_is_put_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "moderation.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    assert journal_mode(path) == "wal"
    # Opened again later, it is the tool's file in WAL mode already: nothing changes.
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    assert journal_mode(path) == "wal"
