"""What the tool refuses about a site's table before any request, and what it survives in it.

A body column that is not text, a missing database driver: each is one line and exit 2, with
nothing written. A single row whose body is not text fails alone. (Status values the column
cannot hold: tests/process/test_site_table_cli.py; the tool's own tables on every database:
tests/backends/test_own_tables.py.)
"""

from __future__ import annotations

import sys

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from moderation.batch.pipeline import STALE, run_batch
from moderation.cli.app import app
from moderation.errors import ConfigurationError
from moderation.storage.engines import create_engine
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table

runner = CliRunner()


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
    ("url", "module", "extra", "package"),
    [
        ("mysql://root@127.0.0.1:3306/test", "pymysql", "mysql", "pymysql"),
        ("mysql+pymysql://root@127.0.0.1:3306/test", "pymysql", "mysql", "pymysql"),
        ("postgresql://127.0.0.1:5432/test", "psycopg", "postgres", "'psycopg[binary]'"),
    ],
)
def test_a_missing_driver_names_the_package_and_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str, package: str
) -> None:
    # The project is on no package index: the hint names the driver's own package, and the
    # extra that brings it from the checkout, never `pip install 'moderation[...]'`.
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    hint = f"pip install {package} (the checkout's `{extra}` extra: pip install '.[{extra}]')"

    with pytest.raises(ConfigurationError) as raised:
        create_engine(url)
    assert hint in raised.value.message

    result = runner.invoke(app, ["--json"], env={"MODERATION_DATABASE_URL": url})
    assert result.exit_code == 2
    assert hint in result.output
    assert "moderation[" not in result.output
    assert "No module named" not in result.output


def test_plain_mysql_urls_use_pymysql_with_utf8mb4() -> None:
    engine = create_engine("mysql://moderator:s3cret@127.0.0.1:3306/site")
    assert engine.dialect.driver == "pymysql"
    assert engine.url.query["charset"] == "utf8mb4"
    engine.dispose()
