"""The author's record on each system's own table, through the CLI, and one query per page.

On every system the same authors: a spammer whose comment was rejected lately, a regular with
an approved comment, an author rejected long ago. Pending: a comment under the spammer's e-mail
and another name (held: ``author_rejected``), one with a link under the regular's e-mail and
another name (held: ``first_comment_links``, the e-mail alone does not make its author known),
one with a link by the regular, same name and e-mail (asked), one under the old rejection's
e-mail (asked: outside the window).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from moderation.site.table import CommentsTable
from tests import site_schemas
from tests.fakeollama import FakeOllama
from tests.helpers import execute, make_settings
from tests.processes import moderate

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
RECENT, LONG_AGO = NOW - timedelta(days=3), NOW - timedelta(days=200)
LINK = "Thanks, my notes are at https://notes.example.net/x"
PLAIN = "Thanks, this helped"


@dataclass(frozen=True)
class Row:
    name: str
    email: str
    status: str  # "approved", "rejected", "pending"
    text: str
    when: datetime = RECENT
    account: int | None = None


ROWS = [
    Row("Spammer", "spam@example.com", "rejected", "buy now"),  # 1
    Row("Regular", "regular@example.com", "approved", PLAIN),  # 2
    Row("Old", "old@example.com", "rejected", "buy then", when=LONG_AGO),  # 3
    Row("Someone", "spam@example.com", "pending", PLAIN),  # 4: held, author_rejected
    Row("Impostor", "regular@example.com", "pending", LINK),  # 5: held, first_comment_links
    Row("Regular", "regular@example.com", "pending", LINK),  # 6: asked, approved
    Row("Old", "old@example.com", "pending", PLAIN),  # 7: asked, approved
]
EXPECTED = {
    4: ("author_rejected", "rule: author had 1 comment rejected in 90 days"),
    5: ("first_comment_links", "rule: first comment by this author, 1 link"),
    6: (None, None),
    7: (None, None),
}


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}) as fake:
        yield fake


def run(url: str, ollama: FakeOllama, *args: str, **env: str) -> Any:
    result = moderate(*args, env={"MODERATION_DATABASE_URL": url, "OLLAMA_HOST": ollama.url, **env})
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_held_as_expected(report: dict[str, Any]) -> None:
    got = {d["comment_id"]: (d["rule"], d["error"]) for d in report["decisions"]}
    assert got == EXPECTED
    outcomes = {d["comment_id"]: d["outcome"] for d in report["decisions"]}
    assert outcomes == {4: "held", 5: "held", 6: "approved", 7: "approved"}


# WordPress ---------------------------------------------------------------------------------------

_WP_STATUS = {"approved": "1", "rejected": "spam", "pending": "0"}
WP_INSERT = (
    "INSERT INTO wp_comments (comment_post_ID, comment_author, comment_author_email,"
    " comment_author_IP, comment_date, comment_date_gmt, comment_content, comment_approved,"
    " user_id) VALUES (7, :name, :email, :ip, :when, :when, :text, :status, :account)"
)


def wordpress_rows(rows: list[Row]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            WP_INSERT,
            {
                "name": r.name,
                "email": r.email,
                "ip": f"198.51.100.{n}",
                "when": r.when.strftime("%Y-%m-%d %H:%M:%S"),
                "text": r.text,
                "status": _WP_STATUS[r.status],
                "account": r.account or 0,
            },
        )
        for n, r in enumerate(rows, start=1)
    ]


def _wordpress(url: str, dialect: Any, ollama: FakeOllama) -> None:
    execute(url, site_schemas.wordpress_ddl(dialect), rows=wordpress_rows(ROWS))
    report = json.loads(run(url, ollama, "--json", MODERATION_PRESET="wordpress"))
    assert_held_as_expected(report)


def test_wordpress_on_sqlite(sqlite_url: str, ollama: FakeOllama) -> None:
    _wordpress(sqlite_url, "sqlite", ollama)


@pytest.mark.mysql
def test_wordpress_on_mariadb(mysql_url: str, ollama: FakeOllama) -> None:
    _wordpress(mysql_url, "mariadb", ollama)


def test_wordpress_account_and_ip(sqlite_url: str, ollama: FakeOllama) -> None:
    """A registered author is known by their account whatever name they give; a rejected
    comment's IP makes the tool careful with another author at that address."""
    rows = [
        Row("Member", "member@example.com", "approved", PLAIN, account=5),  # 1
        Row("New name", "new@example.com", "pending", LINK, account=5),  # 2: asked
        Row("Spammer", "spam@example.com", "rejected", "buy now"),  # 3: 198.51.100.3
    ]
    statements = wordpress_rows(rows)
    statements.append((WP_INSERT, {**statements[2][1], "name": "B", "email": "b@example.org"}))
    statements[3][1]["status"] = "0"
    statements[3][1]["text"] = PLAIN
    execute(sqlite_url, site_schemas.wordpress_ddl("sqlite"), rows=statements)
    report = json.loads(run(sqlite_url, ollama, "--json", MODERATION_PRESET="wordpress"))
    got = {d["comment_id"]: (d["outcome"], d["rule"]) for d in report["decisions"]}
    assert got == {2: ("approved", None), 4: ("held", "author_rejected")}


def test_wordpress_dry_run_shows_the_record(sqlite_url: str, ollama: FakeOllama) -> None:
    execute(sqlite_url, site_schemas.wordpress_ddl("sqlite"), rows=wordpress_rows(ROWS))
    out = run(sqlite_url, ollama, "--dry-run", MODERATION_PRESET="wordpress", COLUMNS="200")
    assert "author" in out
    assert "first 1✗" in out  # comment 4: a first comment under a rejected author's e-mail
    assert "1✓" in out  # comment 6: the regular


def test_the_rules_can_be_turned_off(sqlite_url: str, ollama: FakeOllama) -> None:
    execute(sqlite_url, site_schemas.wordpress_ddl("sqlite"), rows=wordpress_rows(ROWS))
    out = run(
        sqlite_url,
        ollama,
        "--json",
        MODERATION_PRESET="wordpress",
        MODERATION_HOLD_REJECTED_AUTHORS="false",
        MODERATION_FIRST_COMMENT_MAX_LINKS="0",
    )
    assert {d["rule"] for d in json.loads(out)["decisions"]} == {None}


# Isso --------------------------------------------------------------------------------------------

_ISSO_MODE = {"approved": 1, "rejected": 4, "pending": 2}


def test_isso_on_sqlite(sqlite_url: str, ollama: FakeOllama) -> None:
    insert = (
        "INSERT INTO comments (tid, parent, created, mode, remote_addr, text, author, email,"
        " voters) VALUES (1, NULL, :created, :mode, '127.0.0.0', :text, :name, :email, x'00')"
    )
    execute(
        sqlite_url,
        *site_schemas.ISSO_DDL,
        site_schemas.ISSO_THREAD,
        rows=[
            (
                insert,
                {
                    "created": r.when.timestamp(),
                    "mode": _ISSO_MODE[r.status],
                    "text": r.text,
                    "name": r.name,
                    "email": r.email,
                },
            )
            for r in ROWS
        ],
    )
    report = json.loads(run(sqlite_url, ollama, "--json", MODERATION_PRESET="isso"))
    assert_held_as_expected(report)


# django-contrib-comments -------------------------------------------------------------------------


@pytest.mark.postgres
def test_django_on_postgres(postgres_url: str, ollama: FakeOllama) -> None:
    insert = (
        "INSERT INTO django_comments (object_pk, user_name, user_email, user_url, comment,"
        " submit_date, ip_address, is_public, is_removed, content_type_id, site_id)"
        " VALUES ('42', :name, :email, '', :text, :when, :ip, :public, :removed, 7, 1)"
    )
    execute(
        postgres_url,
        *site_schemas.DJANGO_DDL,
        rows=[
            (
                insert,
                {
                    "name": r.name,
                    "email": r.email,
                    "text": r.text,
                    "when": r.when,
                    "ip": f"192.0.2.{n}",
                    "public": r.status == "approved",
                    "removed": r.status == "rejected",
                },
            )
            for n, r in enumerate(ROWS, start=1)
        ],
    )
    report = json.loads(run(postgres_url, ollama, "--json", MODERATION_PRESET="django"))
    assert_held_as_expected(report)


# One query per page ------------------------------------------------------------------------------


def test_one_query_per_page(sqlite_url: str) -> None:
    pending = [Row(f"r{n}", f"r{n}@example.com", "pending", PLAIN) for n in range(7)]
    execute(sqlite_url, site_schemas.wordpress_ddl("sqlite"), rows=wordpress_rows(ROWS + pending))
    settings = make_settings(sqlite_url, preset="wordpress")
    engine = sa.create_engine(sqlite_url)
    table = CommentsTable.reflect(engine, settings)
    statements: list[str] = []
    listen: Callable[..., None] = lambda *a: statements.append(a[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listen)
    pages = list(table.pending_pages(engine, 3))
    sa.event.remove(engine, "before_cursor_execute", listen)
    engine.dispose()

    assert [len(p.comments) for p in pages] == [3, 3, 3, 2]
    records = [s for s in statements if "wp_comments AS other" in s]
    assert len(records) == len(pages)
    assert all(c.author is not None for p in pages for c in p.comments)
    assert pages[0].comments[0].author is not None
    assert pages[0].comments[0].author.rejected == 1
