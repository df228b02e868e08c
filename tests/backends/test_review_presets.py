"""The review queue on each preset's real schema: what it lists, and what a ruling writes.

Each test builds the comment system's own table (``tests/site_schemas.py``), runs one batch
with a scripted classifier, then approves one held comment and rejects another through the
queue, and checks that exactly those two rows changed, in exactly the preset's column, to
exactly the preset's approved or rejected value.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest

from moderation.batch.pipeline import run_batch
from moderation.comment import text_hash
from moderation.humans.queue import ReviewQueue
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage.engines import create_engine
from moderation.vocabulary import Outcome
from tests.fakes import FakeClassifier
from tests.helpers import execute, read_table
from tests.site_schemas import (
    COMMENTO_DDL,
    DJANGO_DDL,
    ISSO_DDL,
    ISSO_THREAD,
    WORDPRESS_REVIEW_LEFT_OUT,
    wordpress_ddl,
)

NEGATIVE = '{"label": "negative"}'
RULES = {"idiot": NEGATIVE, "clown": NEGATIVE}
POSITIVE, IDIOT, CLOWN = "Thanks, this helped", "You idiot.", "What a clown 🤡"


def review(url: str, **settings: Any) -> ReviewQueue:
    """Run one batch with the preset, then open the review queue on it."""
    configured = Settings(database_url=url, http_transport="httpx", qualify="off", **settings)
    run_batch(configured, classifier=FakeClassifier(RULES))
    engine = create_engine(url)
    return ReviewQueue(engine, CommentsTable.reflect(engine, configured), str(uuid.uuid4()))


def rule_on_both(queue: ReviewQueue, idiot: Any, clown: Any) -> None:
    """Approve the idiot comment and reject the clown one, both as listed."""
    assert queue.rule(str(idiot), text_hash(IDIOT), Outcome.APPROVED, "ana").written
    assert queue.rule(str(clown), text_hash(CLOWN), Outcome.REJECTED, "ana").written
    assert queue.page(0, 10).total == 0


def changed(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]) -> dict[int, Any]:
    """Row index -> the columns that differ, as (index, old, new)."""
    diff = {}
    for n, (old, new) in enumerate(zip(before, after, strict=True)):
        cells = [(i, a, b) for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        if cells:
            diff[n] = cells
    return diff


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def test_wordpress(backend: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "mysql_url"))
    ddl = wordpress_ddl(
        "sqlite" if backend == "sqlite" else "mariadb", left_out=WORDPRESS_REVIEW_LEFT_OUT
    )
    insert = (
        "INSERT INTO wp_comments (comment_author, comment_date, comment_date_gmt,"
        " comment_content, comment_approved) VALUES (:author, :date, :date, :text, :status)"
    )
    states = [("0", POSITIVE), ("0", IDIOT), ("0", CLOWN), ("spam", IDIOT), ("1", CLOWN)]
    execute(
        url,
        ddl,
        rows=[
            (
                insert,
                {"author": f"reader {n}", "date": f"2026-11-2{n} 10:00:00", "text": t, "status": s},
            )
            for n, (s, t) in enumerate(states)
        ],
    )
    query = "SELECT * FROM wp_comments ORDER BY comment_ID"
    queue = review(url, preset="wordpress")
    before = read_table(url, query)

    page = queue.page(0, 10)
    assert [(i.key, i.author, i.label) for i in page.items] == [
        ("3", "reader 2", "negative"),
        ("2", "reader 1", "negative"),
    ]
    assert page.items[0].created is not None and page.items[0].created.day == 22
    rule_on_both(queue, 2, 3)

    assert changed(before, read_table(url, query)) == {1: [(8, "0", "1")], 2: [(8, "0", "trash")]}


def test_isso(sqlite_url: str) -> None:
    insert = (
        "INSERT INTO comments (tid, created, mode, remote_addr, text, author, voters)"
        " VALUES (1, :created, :mode, '127.0.0.0', :text, :author, x'00')"
    )
    states = [(2, POSITIVE, "ann"), (2, IDIOT, None), (2, CLOWN, "cid"), (4, "", None)]
    execute(
        sqlite_url,
        *ISSO_DDL,
        ISSO_THREAD,
        rows=[
            (insert, {"created": 1764000000.5 + n, "mode": m, "text": t, "author": a})
            for n, (m, t, a) in enumerate(states)
        ],
    )
    query = "SELECT * FROM comments ORDER BY id"
    queue = review(sqlite_url, preset="isso")
    before = read_table(sqlite_url, query)

    page = queue.page(0, 10)
    assert [(i.key, i.author) for i in page.items] == [("3", "cid"), ("2", None)]
    assert page.items[0].created is not None and page.items[0].created.year == 2025
    rule_on_both(queue, 2, 3)

    # Reject is Isso's own delete: the row without replies is gone, not kept with its text,
    # and so (as Isso's delete does) is the deleted row 4, which no reply keeps either.
    after = read_table(sqlite_url, query)
    assert [row[1] for row in after] == [1, 2]
    assert changed(before[:2], after) == {1: [(5, 2, 1)]}


@pytest.mark.postgres
def test_commento(postgres_url: str) -> None:
    hexes = sorted(secrets.token_hex(32) for _ in range(4))
    insert = (
        "INSERT INTO comments (commentHex, domain, path, commenterHex, markdown, html,"
        " parentHex, state, creationDate, deleted) VALUES (:hex, 'example.org', '/post',"
        " 'anonymous', :md, '', 'root', 'unapproved', :date, :deleted)"
    )
    states = [(POSITIVE, False), (IDIOT, False), (CLOWN, False), (CLOWN, True)]
    execute(
        postgres_url,
        *COMMENTO_DDL,
        rows=[
            (insert, {"hex": h, "md": md, "date": f"2026-11-2{n} 10:00:00", "deleted": d})
            for n, (h, (md, d)) in enumerate(zip(hexes, states, strict=True))
        ],
    )
    query = "SELECT * FROM comments ORDER BY commenthex"
    queue = review(postgres_url, preset="commento")
    before = read_table(postgres_url, query)

    # Newest first by creationDate: text ids say nothing about age.
    assert [i.key for i in queue.page(0, 10).items] == [hexes[2], hexes[1]]
    rule_on_both(queue, hexes[1], hexes[2])

    after = read_table(postgres_url, query)
    assert changed(before, after) == {
        1: [(8, "unapproved", "approved")],
        2: [(8, "unapproved", "flagged")],
    }


@pytest.mark.postgres
def test_django(postgres_url: str) -> None:
    insert = (
        "INSERT INTO django_comments (object_pk, user_name, user_email, user_url, comment,"
        " submit_date, is_public, is_removed, content_type_id) VALUES ('42', :name, '', '',"
        " :comment, '2026-11-30 10:00:00+00', false, :removed, 7)"
    )
    states = [(POSITIVE, False), (IDIOT, False), (CLOWN, False), (IDIOT, True)]
    execute(
        postgres_url,
        *DJANGO_DDL,
        rows=[
            (insert, {"name": f"user{n}", "comment": c, "removed": r})
            for n, (c, r) in enumerate(states)
        ],
    )
    query = "SELECT * FROM django_comments ORDER BY id"
    queue = review(postgres_url, preset="django")
    before = read_table(postgres_url, query)

    assert [(i.key, i.author) for i in queue.page(0, 10).items] == [("3", "user2"), ("2", "user1")]
    rule_on_both(queue, 2, 3)

    # Approve sets is_public; Reject sets is_removed, django's own "removed by a moderator".
    after = read_table(postgres_url, query)
    assert changed(before, after) == {1: [(8, False, True)], 2: [(9, False, True)]}
