"""The review queue on each preset's real schema: what it lists, and what a ruling writes.

Each test builds the comment system's own table (DDL from its schema), runs one batch with a
scripted classifier, then approves one held comment and rejects another through the queue, and
checks that exactly those two rows changed, in exactly the preset's column, to exactly the
preset's approved or rejected value.
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
from tests.conftest import execute, read_table
from tests.fakes import FakeClassifier

NEGATIVE = '{"label": "negative"}'
RULES = {"idiot": NEGATIVE, "clown": NEGATIVE}
POSITIVE, IDIOT, CLOWN = "Thanks, this helped", "You idiot.", "What a clown 🤡"


def review(url: str, **settings: Any) -> ReviewQueue:
    """Run one batch with the preset, then open the review queue on it."""
    configured = Settings(database_url=url, http_transport="httpx", **settings)
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


WORDPRESS_SQLITE_DDL = """
CREATE TABLE wp_comments (
    comment_ID INTEGER PRIMARY KEY AUTOINCREMENT,
    comment_post_ID INTEGER NOT NULL DEFAULT 0,
    comment_author TINYTEXT NOT NULL,
    comment_author_email VARCHAR(100) NOT NULL DEFAULT '',
    comment_date DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
    comment_date_gmt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
    comment_content TEXT NOT NULL,
    comment_karma INTEGER NOT NULL DEFAULT 0,
    comment_approved VARCHAR(20) NOT NULL DEFAULT '1',
    comment_type VARCHAR(20) NOT NULL DEFAULT 'comment',
    comment_parent INTEGER NOT NULL DEFAULT 0,
    user_id INTEGER NOT NULL DEFAULT 0
)
"""
WORDPRESS_MARIADB_DDL = """
CREATE TABLE wp_comments (
    comment_ID BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
    comment_post_ID BIGINT(20) UNSIGNED NOT NULL DEFAULT 0,
    comment_author TINYTEXT NOT NULL,
    comment_author_email VARCHAR(100) NOT NULL DEFAULT '',
    comment_date DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
    comment_date_gmt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00',
    comment_content TEXT NOT NULL,
    comment_karma INT(11) NOT NULL DEFAULT 0,
    comment_approved VARCHAR(20) NOT NULL DEFAULT '1',
    comment_type VARCHAR(20) NOT NULL DEFAULT 'comment',
    comment_parent BIGINT(20) UNSIGNED NOT NULL DEFAULT 0,
    user_id BIGINT(20) UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (comment_ID),
    KEY comment_approved_date_gmt (comment_approved, comment_date_gmt)
) ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci
"""


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def test_wordpress(backend: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "mysql_url"))
    ddl = WORDPRESS_SQLITE_DDL if backend == "sqlite" else WORDPRESS_MARIADB_DDL
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


ISSO_DDL = [
    "CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, title VARCHAR(256))",
    "CREATE TABLE comments ("
    " tid REFERENCES threads(id), id INTEGER PRIMARY KEY, parent INTEGER,"
    " created FLOAT NOT NULL, modified FLOAT, mode INTEGER, remote_addr VARCHAR,"
    " text VARCHAR, author VARCHAR, email VARCHAR, website VARCHAR,"
    " likes INTEGER DEFAULT 0, dislikes INTEGER DEFAULT 0, voters BLOB NOT NULL,"
    " notification INTEGER NOT NULL DEFAULT 0)",
    "INSERT INTO threads (id, uri, title) VALUES (1, '/post/', 'A post')",
]


def test_isso(sqlite_url: str) -> None:
    insert = (
        "INSERT INTO comments (tid, created, mode, remote_addr, text, author, voters)"
        " VALUES (1, :created, :mode, '127.0.0.0', :text, :author, x'00')"
    )
    states = [(2, POSITIVE, "ann"), (2, IDIOT, None), (2, CLOWN, "cid"), (4, "", None)]
    execute(
        sqlite_url,
        *ISSO_DDL,
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

    assert changed(before, read_table(sqlite_url, query)) == {1: [(5, 2, 1)], 2: [(5, 2, 4)]}


COMMENTO_DDL = [
    "CREATE TABLE comments ("
    " commentHex TEXT NOT NULL UNIQUE PRIMARY KEY,"
    " domain TEXT NOT NULL, path TEXT NOT NULL, commenterHex TEXT NOT NULL,"
    " markdown TEXT NOT NULL, html TEXT NOT NULL, parentHex TEXT NOT NULL,"
    " score INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'unapproved',"
    " creationDate TIMESTAMP NOT NULL)",
    "ALTER TABLE comments ADD deleted BOOLEAN NOT NULL DEFAULT false",
]


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


DJANGO_DDL = [
    "CREATE TABLE django_comments ("
    " id integer NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,"
    " object_pk varchar(64) NOT NULL, user_name varchar(50) NOT NULL,"
    " user_email varchar(254) NOT NULL, user_url varchar(200) NOT NULL,"
    " comment text NOT NULL, submit_date timestamp with time zone NOT NULL,"
    " ip_address inet NULL, is_public boolean NOT NULL, is_removed boolean NOT NULL,"
    " content_type_id integer NOT NULL, site_id integer NULL, user_id integer NULL)",
]


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
