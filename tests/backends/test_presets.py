"""Each preset on its system's real schema, in that system's own database, through the CLI.

The DDL (``tests/site_schemas.py``) was written for these tests from each project's own schema.
Every test fills the table with rows in every state, runs one batch against the stand-in model
server, and checks that exactly the pending positive and neutral rows changed, to exactly the
approved value, while every other row and column stayed as it was.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests import site_schemas
from tests.fakeollama import FakeOllama
from tests.helpers import execute, read_table
from tests.processes import moderate

pytestmark = pytest.mark.integration

RULES = [
    {"contains": "idiot", "answer": '{"label": "negative"}'},
    {"contains": "question", "answer": '{"label": "neutral"}'},
]
POSITIVE, NEUTRAL, NEGATIVE = "Thanks, this helped 🎉", "A question: part two?", "You idiot."


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}, rules=RULES) as fake:
        yield fake


def run(url: str, ollama: FakeOllama, **env: str) -> dict[str, Any]:
    result = moderate(
        "--json",
        env={"MODERATION_DATABASE_URL": url, "OLLAMA_HOST": ollama.url, **env},
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def assert_only_approved(
    before: list[tuple[Any, ...]],
    after: list[tuple[Any, ...]],
    *,
    status_index: int,
    approved_value: Any,
    changed: set[Any],
    key_index: int = 0,
) -> None:
    """`after` is `before` with exactly the `changed` ids' status set to the approved value."""
    expected = [
        (*row[:status_index], approved_value, *row[status_index + 1 :])
        if row[key_index] in changed
        else row
        for row in before
    ]
    assert after == expected
    assert all(row[status_index] != approved_value for row in before if row[key_index] in changed)


# WordPress on MariaDB ---------------------------------------------------------------------------


@pytest.mark.mysql
def test_wordpress_on_mariadb(mysql_url: str, ollama: FakeOllama) -> None:
    states = [
        ("0", POSITIVE),
        ("0", NEUTRAL),
        ("0", NEGATIVE),
        ("1", POSITIVE),
        ("spam", POSITIVE),
        ("trash", POSITIVE),
        ("post-trashed", POSITIVE),
        ("akismet-pending", POSITIVE),  # a plugin's own status: never ours to touch
        ("0", "Great write-up   "),  # trailing spaces are part of the text
    ]
    insert = (
        "INSERT INTO blog_comments (comment_post_ID, comment_author, comment_author_email,"
        " comment_date, comment_date_gmt, comment_content, comment_approved, comment_agent)"
        " VALUES (7, :author, :email, '2026-11-30 10:00:00', '2026-11-30 09:00:00',"
        " :content, :status, 'Mozilla/5.0')"
    )
    # Each row by another author: a rejected row's author would get the others held
    # (tests/backends/test_author_record.py).
    execute(
        mysql_url,
        site_schemas.wordpress_ddl("mariadb", prefix="blog_"),
        rows=[
            (
                insert,
                {"author": f"reader {i}", "email": f"{i}@example.org", "content": c, "status": s},
            )
            for i, (s, c) in enumerate(states)
        ],
    )
    query = "SELECT * FROM blog_comments ORDER BY comment_ID"
    before = read_table(mysql_url, query)

    report = run(mysql_url, ollama, MODERATION_PRESET="wordpress", MODERATION_TABLE_PREFIX="blog_")

    assert (report["considered"], report["approved"], report["held"]) == (4, 3, 1)
    assert_only_approved(
        before, read_table(mysql_url, query), status_index=10, approved_value="1", changed={1, 2, 9}
    )
    # The edit guard compared bytes: the trailing spaces were stored and matched exactly.
    assert read_table(
        mysql_url, "SELECT comment_content FROM blog_comments WHERE comment_ID = 9"
    ) == [("Great write-up   ",)]


# Isso on SQLite ----------------------------------------------------------------------------------


def test_isso_on_sqlite(sqlite_url: str, ollama: FakeOllama) -> None:
    states = [(2, POSITIVE), (2, NEUTRAL), (2, NEGATIVE), (1, POSITIVE), (4, "")]
    insert = (
        "INSERT INTO comments (tid, parent, created, mode, remote_addr, text, author, voters)"
        " VALUES (1, NULL, :created, :mode, '127.0.0.0', :text, 'reader', :voters)"
    )
    execute(
        sqlite_url,
        *site_schemas.ISSO_DDL,
        site_schemas.ISSO_THREAD,
        rows=[
            (insert, {"created": 1764000000.25 + i, "mode": m, "text": t, "voters": b"\x00\x01"})
            for i, (m, t) in enumerate(states)
        ],
    )
    query = "SELECT * FROM comments ORDER BY id"
    before = read_table(sqlite_url, query)

    report = run(sqlite_url, ollama, MODERATION_PRESET="isso")

    assert (report["considered"], report["approved"], report["held"]) == (3, 2, 1)
    assert_only_approved(
        before,
        read_table(sqlite_url, query),
        status_index=5,
        approved_value=1,
        changed={1, 2},
        key_index=1,
    )


# Commento on PostgreSQL --------------------------------------------------------------------------


@pytest.mark.postgres
def test_commento_on_postgres(postgres_url: str, ollama: FakeOllama) -> None:
    states = [
        ("unapproved", False, POSITIVE),
        ("unapproved", False, NEUTRAL),
        ("unapproved", False, NEGATIVE),
        ("approved", False, POSITIVE),
        ("flagged", False, POSITIVE),
        ("unapproved", True, "[deleted]"),
    ]
    hexes = [secrets.token_hex(32) for _ in states]  # text keys, in no particular order
    insert = (
        "INSERT INTO comments (commentHex, domain, path, commenterHex, markdown, html, parentHex,"
        " state, creationDate, deleted)"
        " VALUES (:hex, 'example.org', '/post', 'anonymous', :md, :html, 'root', :state,"
        " '2026-11-30 10:00:00', :deleted)"
    )
    execute(
        postgres_url,
        *site_schemas.COMMENTO_DDL,
        rows=[
            (insert, {"hex": h, "md": md, "html": f"<p>{md}</p>", "state": s, "deleted": d})
            for h, (s, d, md) in zip(hexes, states, strict=True)
        ],
    )
    query = "SELECT * FROM comments ORDER BY commenthex"
    before = read_table(postgres_url, query)

    report = run(postgres_url, ollama, MODERATION_PRESET="commento", MODERATION_BATCH_SIZE="1")

    assert (report["considered"], report["approved"], report["held"]) == (3, 2, 1)
    assert_only_approved(
        before,
        read_table(postgres_url, query),
        status_index=8,
        approved_value="approved",
        changed={hexes[0], hexes[1]},
    )
    audited = read_table(postgres_url, "SELECT comment_id, outcome FROM moderation_decisions")
    assert sorted(audited) == sorted(
        [(hexes[0], "approved"), (hexes[1], "approved"), (hexes[2], "held")]
    )
    # A second run asks nothing: memory is keyed by the text ids.
    assert run(postgres_url, ollama, MODERATION_PRESET="commento")["skipped"] == 1


# django-contrib-comments on PostgreSQL -----------------------------------------------------------


@pytest.mark.postgres
def test_django_on_postgres(postgres_url: str, ollama: FakeOllama) -> None:
    states = [
        (False, False, POSITIVE),
        (False, False, NEUTRAL),
        (False, False, NEGATIVE),
        (True, False, POSITIVE),
        (False, True, POSITIVE),  # removed by a moderator: never touched, whatever it says
        (True, True, POSITIVE),
    ]
    insert = (
        "INSERT INTO django_comments (object_pk, user_name, user_email, user_url, comment,"
        " submit_date, ip_address, is_public, is_removed, content_type_id, site_id)"
        " VALUES ('42', 'reader', :email, '', :comment, '2026-11-30 10:00:00+00',"
        " :ip, :public, :removed, 7, 1)"
    )
    # Each row by another author: a removed row's author would get the others held
    # (tests/backends/test_author_record.py).
    execute(
        postgres_url,
        *site_schemas.DJANGO_DDL,
        rows=[
            (
                insert,
                {
                    "comment": c,
                    "public": p,
                    "removed": r,
                    "email": f"{n}@example.org",
                    "ip": f"192.0.2.{n}",
                },
            )
            for n, (p, r, c) in enumerate(states, start=1)
        ],
    )
    query = "SELECT * FROM django_comments ORDER BY id"
    before = read_table(postgres_url, query)

    report = run(postgres_url, ollama, MODERATION_PRESET="django")

    assert (report["considered"], report["approved"], report["held"]) == (3, 2, 1)
    assert_only_approved(
        before, read_table(postgres_url, query), status_index=8, approved_value=True, changed={1, 2}
    )


# The blog table this tool started from, on PostgreSQL ---------------------------------------------


@pytest.mark.postgres
def test_tr_on_postgres(postgres_url: str, ollama: FakeOllama) -> None:
    states = [
        (False, POSITIVE),
        (False, NEUTRAL),
        (False, NEGATIVE),
        (True, POSITIVE),
        (None, POSITIVE),
    ]
    execute(
        postgres_url,
        *site_schemas.TR_DDL,
        rows=[
            ("INSERT INTO comments (body, approved, post_id) VALUES (:b, :a, 3)", {"b": b, "a": a})
            for a, b in states
        ],
    )
    query = "SELECT * FROM comments ORDER BY id"
    before = read_table(postgres_url, query)

    report = run(postgres_url, ollama, MODERATION_PRESET="tr")

    assert (report["considered"], report["approved"], report["held"]) == (3, 2, 1)
    assert_only_approved(
        before, read_table(postgres_url, query), status_index=2, approved_value=True, changed={1, 2}
    )
