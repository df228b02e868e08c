"""What each system writes beside the comment's status when a moderator rules, on its schema.

A ruling must leave the site as the system's own moderation would: WordPress recounts the
post's ``comment_count`` and marks trashed comments for its daily purge, and never lets a
pingback's excerpt through on its sentiment; Isso's delete removes the row (or blanks it when
it has replies); django-contrib-comments records who approved or removed a comment in
``django_comment_flags``. Each test runs a batch through the Python API, then rules through the
review queue, and reads the tables back.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from moderation.batch.pipeline import run_batch
from moderation.comment import text_hash
from moderation.errors import DatabaseError, SchemaError
from moderation.humans.queue import ReviewQueue
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage.engines import create_engine
from moderation.vocabulary import Outcome
from tests.fakes import FakeClassifier
from tests.helpers import execute, make_settings, read_table
from tests.site_schemas import (
    DJANGO_DDL,
    DJANGO_FLAGS_DDL,
    ISSO_DDL,
    ISSO_THREAD,
    WORDPRESS_NAMES_ONLY_SQLITE_DDL,
    wordpress_companions_ddl,
    wordpress_ddl,
)

NEGATIVE = '{"label": "negative"}'
RULES = {"idiot": NEGATIVE, "clown": NEGATIVE}
POSITIVE, IDIOT, CLOWN = "Thanks, this helped", "You idiot.", "What a clown"


def batch(settings: Settings, classifier: FakeClassifier | None = None) -> dict[str, Any]:
    return run_batch(settings, classifier=classifier or FakeClassifier(RULES)).to_json()


def queue_for(settings: Settings) -> ReviewQueue:
    engine = create_engine(settings.database_url)
    return ReviewQueue(engine, CommentsTable.reflect(engine, settings), str(uuid.uuid4()))


def rule(queue: ReviewQueue, key: Any, body: str, outcome: str) -> None:
    assert queue.rule(str(key), text_hash(body), outcome, "ana").written


# WordPress -----------------------------------------------------------------------------------

WP_INSERT = (
    "INSERT INTO wp_comments (comment_post_ID, comment_author, comment_date, comment_date_gmt,"
    " comment_content, comment_approved, comment_type) VALUES (:post, 'reader',"
    " '2026-11-30 10:00:00', '2026-11-30 09:00:00', :text, :status, :type)"
)


def wordpress_site(
    request: pytest.FixtureRequest, backend: str, rows: list[tuple[Any, ...]]
) -> str:
    """A WordPress site with posts 1 to 3 (their counts stale on purpose) and these comments:
    (post, text, status, type)."""
    url = str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "mysql_url"))
    dialect = "sqlite" if backend == "sqlite" else "mariadb"
    execute(
        url,
        wordpress_ddl(dialect),
        *wordpress_companions_ddl(dialect),
        rows=[
            *(
                (
                    "INSERT INTO wp_posts (ID, post_title, comment_count) VALUES (:id, 'p', 9)",
                    {"id": n},
                )
                for n in (1, 2, 3)
            ),
            *((WP_INSERT, {"post": p, "text": t, "status": s, "type": k}) for p, t, s, k in rows),
        ],
    )
    return url


BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_wordpress_approvals_recount_the_posts_they_touched(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = wordpress_site(
        request,
        backend,
        [
            (1, "Already here", "1", "comment"),
            (1, POSITIVE, "0", "comment"),
            (1, "Thanks again", "0", "comment"),
            (2, IDIOT, "0", "comment"),
            (2, "Seen before", "1", "comment"),
            (2, "Binned", "trash", "comment"),
        ],
    )
    settings = make_settings(url, preset="wordpress")

    report = batch(settings)

    assert (report["approved"], report["held"]) == (2, 1)
    # Post 1: its three approved comments, as wp_update_comment_count_now counts them; post 2
    # and 3 were not touched by an approval, so their (stale) counts are WordPress's business.
    counts = "SELECT ID, comment_count FROM wp_posts ORDER BY ID"
    assert read_table(url, counts) == [(1, 3), (2, 9), (3, 9)]

    # A human approves the held one: post 2 is recounted in the same transaction.
    rule(queue_for(settings), 4, IDIOT, Outcome.APPROVED)
    assert read_table(url, counts) == [(1, 3), (2, 2), (3, 9)]


def test_wordpress_approvals_and_recount_commit_together_or_not_at_all(
    request: pytest.FixtureRequest,
) -> None:
    url = wordpress_site(request, "sqlite", [(1, POSITIVE, "0", "comment")])
    execute(
        url,
        "CREATE TRIGGER posts_locked BEFORE UPDATE ON wp_posts"
        " BEGIN SELECT RAISE(ABORT, 'the posts are locked'); END",
    )

    with pytest.raises(DatabaseError):
        batch(make_settings(url, preset="wordpress"))

    # The recount failed, so the approval beside it was rolled back: fail closed.
    assert read_table(url, "SELECT comment_approved FROM wp_comments") == [("0",)]
    assert read_table(url, "SELECT count(*) FROM moderation_decisions") == [(0,)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_wordpress_reject_writes_trash_meta(backend: str, request: pytest.FixtureRequest) -> None:
    url = wordpress_site(request, backend, [(3, IDIOT, "0", "comment"), (3, CLOWN, "0", "comment")])
    # Left over from an earlier trash and restore: wp_trash_comment deletes these first.
    execute(
        url,
        "INSERT INTO wp_commentmeta (comment_id, meta_key, meta_value) VALUES"
        " (1, '_wp_trash_meta_status', '1'), (1, '_wp_trash_meta_time', '1000'),"
        " (1, 'rating', '5')",
    )
    settings = make_settings(url, preset="wordpress")
    batch(settings)
    before = int(time.time())

    rule(queue_for(settings), 1, IDIOT, Outcome.REJECTED)

    after = int(time.time())
    assert read_table(url, "SELECT comment_approved FROM wp_comments ORDER BY comment_ID") == [
        ("trash",),
        ("0",),
    ]
    meta = read_table(
        url, "SELECT comment_id, meta_key, meta_value FROM wp_commentmeta ORDER BY meta_key"
    )
    assert [row[:2] for row in meta] == [
        (1, "_wp_trash_meta_status"),
        (1, "_wp_trash_meta_time"),
        (1, "rating"),
    ]
    # The status it had before (pending), and when, in Unix seconds: what wp_scheduled_delete
    # compares with EMPTY_TRASH_DAYS.
    assert meta[0][2] == "0"
    assert before <= int(meta[1][2]) <= after
    assert meta[2][2] == "5"
    assert read_table(url, "SELECT comment_count FROM wp_posts WHERE ID = 3") == [(0,)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_wordpress_pingbacks_and_trackbacks_are_held_unasked(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = wordpress_site(
        request,
        backend,
        [
            (1, "[...] a great post, we linked to it [...]", "0", "pingback"),
            (1, "Loved it, see our roundup", "0", "trackback"),
            (1, POSITIVE, "0", "comment"),
            (1, "A reply from the site's own note", "0", "note"),
        ],
    )
    classifier = FakeClassifier(RULES)

    report = batch(make_settings(url, preset="wordpress"), classifier)

    by_id = {str(d["comment_id"]): d for d in report["decisions"]}
    assert {k: (d["outcome"], d["rule"]) for k, d in by_id.items()} == {
        "1": ("held", "comment_type"),
        "2": ("held", "comment_type"),
        "3": ("approved", None),
        "4": ("approved", None),
    }
    assert by_id["1"]["error"] == "rule: a pingback, never approved unread"
    assert by_id["2"]["error"] == "rule: a trackback, never approved unread"
    assert classifier.asked == [POSITIVE, "A reply from the site's own note"]
    audited = read_table(url, "SELECT comment_id, error FROM moderation_decisions ORDER BY id")
    assert ("1", "rule: a pingback, never approved unread") in audited
    status = read_table(url, "SELECT comment_approved FROM wp_comments ORDER BY comment_ID")
    assert status == [("0",), ("0",), ("1",), ("1",)]
    # The review page says why.
    items = {i.key: i for i in queue_for(make_settings(url, preset="wordpress")).page(0, 10).items}
    assert items["1"].rule_reason == "a pingback, never approved unread"


def test_a_custom_mapping_of_a_wordpress_table_writes_only_its_status(sqlite_url: str) -> None:
    """Without the preset, the same tables are just a status column: nothing else written."""
    execute(
        sqlite_url,
        wordpress_ddl("sqlite"),
        *wordpress_companions_ddl("sqlite"),
        "INSERT INTO wp_posts (ID, post_title, comment_count) VALUES (1, 'p', 9)",
        rows=[
            (WP_INSERT, {"post": 1, "text": t, "status": "0", "type": k})
            for t, k in [(POSITIVE, "pingback"), (CLOWN, "comment")]
        ],
    )
    settings = make_settings(
        sqlite_url,
        comments_table="wp_comments",
        comments_id_column="comment_ID",
        comments_body_column="comment_content",
        comments_approved_column="comment_approved",
        comments_approved_value="1",
        comments_pending_value="0",
        comments_rejected_values=["trash"],
    )
    assert batch(settings)["approved"] == 1
    rule(queue_for(settings), 2, CLOWN, Outcome.REJECTED)
    assert read_table(sqlite_url, "SELECT comment_count FROM wp_posts") == [(9,)]
    assert read_table(sqlite_url, "SELECT count(*) FROM wp_commentmeta") == [(0,)]


def test_wordpress_tables_a_site_lacks_are_left_out_with_a_warning(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A table that only borrows WordPress's names has no posts to count and no meta."""
    execute(
        sqlite_url,
        WORDPRESS_NAMES_ONLY_SQLITE_DDL[0],
        "INSERT INTO wp_comments (comment_content, comment_approved) VALUES ('Thanks', '0')",
    )
    report = batch(make_settings(sqlite_url, preset="wordpress"))
    assert report["approved"] == 1
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("'wp_posts'" in line and "leave it out" in line for line in warned)
    assert any("'wp_commentmeta'" in line for line in warned)


# Isso ----------------------------------------------------------------------------------------

ISSO_INSERT = (
    "INSERT INTO comments (tid, id, parent, created, mode, remote_addr, text, author, website,"
    " voters) VALUES (1, :id, :parent, 1764000000.5, :mode, '127.0.0.0', :text, 'troll',"
    " 'https://troll.example', x'00')"
)
ISSO_QUERY = "SELECT id, parent, mode, text, author, website FROM comments ORDER BY id"


def isso_site(url: str, rows: list[tuple[int, int | None, int, str]]) -> Settings:
    execute(
        url,
        *ISSO_DDL,
        ISSO_THREAD,
        rows=[(ISSO_INSERT, {"id": i, "parent": p, "mode": m, "text": t}) for i, p, m, t in rows],
    )
    settings = make_settings(url, preset="isso")
    batch(settings)
    return settings


def test_isso_reject_deletes_a_comment_without_replies(sqlite_url: str) -> None:
    settings = isso_site(sqlite_url, [(1, None, 2, IDIOT), (2, None, 1, POSITIVE)])

    rule(queue_for(settings), 1, IDIOT, Outcome.REJECTED)

    assert read_table(sqlite_url, ISSO_QUERY) == [
        (2, None, 1, POSITIVE, "troll", "https://troll.example")
    ]


def test_isso_reject_blanks_a_comment_with_replies(sqlite_url: str) -> None:
    settings = isso_site(sqlite_url, [(1, None, 2, IDIOT), (2, 1, 1, "I disagree")])

    rule(queue_for(settings), 1, IDIOT, Outcome.REJECTED)

    # As Isso's own delete: mode 4, no text, no author, no website; the reply keeps its parent.
    assert read_table(sqlite_url, ISSO_QUERY) == [
        (1, None, 4, "", None, None),
        (2, 1, 1, "I disagree", "troll", "https://troll.example"),
    ]


def test_isso_reject_removes_deleted_parents_left_without_replies(sqlite_url: str) -> None:
    # Comment 1 was deleted earlier and kept only for its one reply, the held comment 2.
    settings = isso_site(sqlite_url, [(1, None, 4, ""), (2, 1, 2, IDIOT), (3, None, 1, POSITIVE)])

    rule(queue_for(settings), 2, IDIOT, Outcome.REJECTED)

    assert [row[0] for row in read_table(sqlite_url, ISSO_QUERY)] == [3]


def test_isso_reject_keeps_the_edit_guard(sqlite_url: str) -> None:
    settings = isso_site(sqlite_url, [(1, None, 2, IDIOT)])
    queue = queue_for(settings)
    execute(sqlite_url, "UPDATE comments SET text = 'You idiot!' WHERE id = 1")

    ruling = queue.rule("1", text_hash(IDIOT), Outcome.REJECTED, "ana")

    assert not ruling.written
    assert read_table(sqlite_url, ISSO_QUERY) == [
        (1, None, 2, "You idiot!", "troll", "https://troll.example")
    ]


# django-contrib-comments ---------------------------------------------------------------------

DJANGO_INSERT = (
    "INSERT INTO django_comments (object_pk, user_name, user_email, user_url, comment,"
    " submit_date, is_public, is_removed, content_type_id) VALUES ('42', 'reader', '', '',"
    " :comment, '2026-11-30 10:00:00+00', false, false, 7)"
)
FLAGS = "SELECT comment_id, user_id, flag, flag_date IS NOT NULL FROM django_comment_flags"


def django_site(url: str, bodies: list[str]) -> None:
    execute(
        url,
        *DJANGO_DDL,
        *DJANGO_FLAGS_DDL,
        "INSERT INTO auth_user (id, username) VALUES (5, 'moderation')",
        rows=[(DJANGO_INSERT, {"comment": b}) for b in bodies],
    )


@pytest.mark.postgres
def test_django_rulings_write_moderator_flags(postgres_url: str) -> None:
    django_site(postgres_url, [POSITIVE, IDIOT, CLOWN])
    settings = make_settings(postgres_url, preset="django", django_moderator_id=5)

    batch(settings)
    queue = queue_for(settings)
    rule(queue, 2, IDIOT, Outcome.APPROVED)
    rule(queue, 3, CLOWN, Outcome.REJECTED)

    assert sorted(read_table(postgres_url, FLAGS)) == [
        (1, 5, "moderator approval", True),
        (2, 5, "moderator approval", True),
        (3, 5, "moderator deletion", True),
    ]
    states = "SELECT id, is_public, is_removed FROM django_comments ORDER BY id"
    assert read_table(postgres_url, states) == [
        (1, True, False),
        (2, True, False),
        (3, False, True),
    ]


@pytest.mark.postgres
def test_django_without_a_moderator_writes_no_flags(postgres_url: str) -> None:
    django_site(postgres_url, [POSITIVE])
    assert batch(make_settings(postgres_url, preset="django"))["approved"] == 1
    assert read_table(postgres_url, FLAGS) == []


@pytest.mark.postgres
def test_django_moderator_must_be_a_user(postgres_url: str) -> None:
    django_site(postgres_url, [POSITIVE])
    settings = make_settings(postgres_url, preset="django", django_moderator_id=6)
    with pytest.raises(SchemaError, match="MODERATION_DJANGO_MODERATOR_ID"):
        batch(settings)
    assert read_table(postgres_url, "SELECT is_public FROM django_comments") == [(False,)]
