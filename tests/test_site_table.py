"""What the tool refuses about a site's table before any request, and what it survives in it.

Status values the column cannot hold, a body column that is not text, a missing database
driver: each is one line and exit 2, with nothing written. A single row whose body is not text
fails alone. The tool's own tables hold times exactly on every database.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from moderation.batch.lease import Lease
from moderation.batch.pipeline import STALE, run_batch
from moderation.cli.app import app
from moderation.errors import ConfigurationError
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from tests.fakeollama import FakeOllama
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table
from tests.processes import moderate

runner = CliRunner()


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


def test_approved_means_the_row_now_reads_approved(sqlite_url: str) -> None:
    # A trigger that undoes the approval: the UPDATE matched, but nothing was approved.
    create_site_table(sqlite_url, ["Thanks!", "Nice one"])
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER hold_first AFTER UPDATE ON comments WHEN new.id = 1 AND new.approved"
            " BEGIN UPDATE comments SET approved = 0 WHERE id = 1; END"
        )
    engine.dispose()

    report = run_batch(make_settings(sqlite_url), classifier=FakeClassifier())

    assert [(d.comment_id, d.outcome) for d in report.decisions] == [(1, "failed"), (2, "approved")]
    assert report.decisions[0].error == STALE
    assert report.counts()["approved"] == 1
    assert read_table(sqlite_url, "SELECT id, approved FROM comments ORDER BY id") == [
        (1, 0),
        (2, 1),
    ]
    assert read_table(
        sqlite_url, "SELECT comment_id, outcome FROM moderation_decisions ORDER BY comment_id"
    ) == [("1", "failed"), ("2", "approved")]


def test_a_body_column_that_is_not_text_is_refused_at_start(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body INTEGER, approved BOOLEAN)"
        )
        conn.exec_driver_sql("INSERT INTO comments VALUES (1, 42, 0)")
    engine.dispose()

    result = runner.invoke(app, ["--json"], env={"MODERATION_DATABASE_URL": sqlite_url})

    assert result.exit_code == 2, result.output
    assert "the body column 'body' (MODERATION_COMMENTS_BODY_COLUMN) is INTEGER" in result.output
    assert read_table(sqlite_url, "SELECT approved FROM comments") == [(0,)]


def test_a_row_whose_body_is_not_text_fails_alone(sqlite_url: str) -> None:
    # An untyped SQLite column stores whatever it is given.
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body, approved BOOLEAN)"
        )
        conn.exec_driver_sql(
            "INSERT INTO comments VALUES (1, 'Thanks!', 0), (2, 42, 0), (3, x'00ff', 0),"
            " (4, 'Great post', 0)"
        )
    engine.dispose()
    fake = FakeClassifier()

    report = run_batch(make_settings(sqlite_url), classifier=fake)

    assert [(d.comment_id, d.outcome, d.error) for d in report.decisions] == [
        (1, "approved", None),
        (2, "failed", "the body is not text (int)"),
        (3, "failed", "the body is not text (bytes)"),
        (4, "approved", None),
    ]
    assert fake.asked == ["Thanks!", "Great post"]
    assert report.counts()["failed"] == 2 and report.exit_code == 3
    assert read_table(sqlite_url, "SELECT id, approved FROM comments ORDER BY id") == [
        (1, 1),
        (2, 0),
        (3, 0),
        (4, 1),
    ]
    audited = read_table(
        sqlite_url,
        "SELECT comment_id, outcome, error FROM moderation_decisions ORDER BY comment_id",
    )
    assert audited[1] == ("2", "failed", "the body is not text (int)")


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("mysql://root@127.0.0.1:3306/test", "pymysql", "mysql"),
        ("mysql+pymysql://root@127.0.0.1:3306/test", "pymysql", "mysql"),
        ("postgresql://127.0.0.1:5432/test", "psycopg", "postgres"),
    ],
)
def test_a_missing_driver_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed

    with pytest.raises(ConfigurationError, match=rf"pip install 'moderation\[{extra}\]'"):
        create_engine(url)

    result = runner.invoke(app, ["--json"], env={"MODERATION_DATABASE_URL": url})
    assert result.exit_code == 2
    assert f"pip install 'moderation[{extra}]'" in result.output
    assert "No module named" not in result.output


def test_plain_mysql_urls_use_pymysql_with_utf8mb4() -> None:
    engine = create_engine("mysql://moderator:s3cret@127.0.0.1:3306/site")
    assert engine.dialect.driver == "pymysql"
    assert engine.url.query["charset"] == "utf8mb4"
    engine.dispose()


def test_lease_times_are_stored_exactly(db_url: str) -> None:
    # MySQL's FLOAT kept these in 128-second steps: "held until" was off and the next batch
    # was refused long after the lease had ended.
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    now = 1_764_500_000.123456
    lease = Lease(engine, ttl=60.5, owner="exact", clock=lambda: now)
    lease.acquire("run")
    engine.dispose()
    assert read_table(db_url, "SELECT acquired_at, expires_at FROM moderation_lease") == [
        (now, now + 60.5)
    ]


@pytest.mark.mysql
def test_own_tables_on_mysql_are_innodb_utf8mb4_with_exact_types(mysql_url: str) -> None:
    engine = create_engine(mysql_url)
    migrate.upgrade(engine)
    engine.dispose()
    database = sa.engine.make_url(mysql_url).database
    columns = read_table(
        mysql_url,
        "SELECT table_name, column_name, column_type, collation_name"
        f" FROM information_schema.columns WHERE table_schema = '{database}'"
        " AND table_name LIKE 'moderation%%' AND table_name <> 'moderation_alembic_version'",
    )
    types = {(t, c): ct for t, c, ct, _ in columns}
    for table, column in [
        ("moderation_lease", "acquired_at"),
        ("moderation_lease", "expires_at"),
        ("moderation_runs", "scheduled_for"),
    ]:
        assert types[(table, column)] == "double"
    assert types[("moderation_runs", "started_at")] == "datetime(6)"
    assert not [c for c in columns if "float" in c[2]]
    assert {c[3] for c in columns if c[3] is not None} == {"utf8mb4_bin"}
    engines = read_table(
        mysql_url,
        "SELECT table_name, engine FROM information_schema.tables"
        f" WHERE table_schema = '{database}' AND table_name LIKE 'moderation%%'",
    )
    assert {e for _, e in engines} == {"InnoDB"}


def test_text_ids_are_paged_remembered_and_audited(db_url: str) -> None:
    # Commento-style hex keys, and keys differing only in case, across several keyset pages.
    ids = ["f3a9", "0b7c", "A1", "a1", "zz-9", "Ω-1", "10", "9"]
    metadata = sa.MetaData()
    site = sa.Table(
        "comments",
        metadata,
        sa.Column("hex", sa.String(64, collation=_binary_collation(db_url)), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
    )
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            sa.insert(site),
            [{"hex": i, "body": f"comment {i}", "approved": False} for i in ids],
        )
    engine.dispose()
    settings = make_settings(db_url, comments_id_column="hex", batch_size=3)

    first = run_batch(settings, classifier=FakeClassifier({"zz": '{"label": "negative"}'}))
    again = run_batch(settings, classifier=FakeClassifier())

    assert sorted(d.comment_id for d in first.decisions) == sorted(ids)
    assert first.counts()["approved"] == len(ids) - 1
    assert (again.counts()["considered"], again.skipped) == (0, 1)
    audited = read_table(db_url, "SELECT comment_id, outcome FROM moderation_decisions")
    assert sorted(audited) == sorted((i, "held" if i == "zz-9" else "approved") for i in ids)


def _binary_collation(url: str) -> str | None:
    # Keys that differ only in case need a case-sensitive column on MySQL, as a real site has.
    return "utf8mb4_bin" if url.startswith("mysql") else None
