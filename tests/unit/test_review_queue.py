"""The review queue through its Python API: what waits for a human, and rulings on it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from moderation.batch.pipeline import run_batch
from moderation.comment import Comment, text_hash
from moderation.humans.queue import ReviewQueue, as_datetime
from moderation.settings import Settings
from moderation.site.importer import default_table
from moderation.site.table import CommentsTable
from moderation.storage import audit, memory
from moderation.storage.engines import create_engine
from moderation.vocabulary import Outcome
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table
from tests.reviewsite import (
    BODIES,
    PLAIN_BODIES,
    RULES,
    STATUS,
    edit_comment,
    held_site,
    plain_rows,
    plain_site,
    rulings,
    status_of,
    status_settings,
)
from tests.site_schemas import WORDPRESS_NAMES_ONLY_SQLITE_DDL


def queue_for(settings: Settings) -> ReviewQueue:
    engine = create_engine(settings.database_url)
    return ReviewQueue(engine, CommentsTable.reflect(engine, settings), str(uuid.uuid4()))


def test_lists_held_and_failed_pending_newest_first_with_the_decision(db_url: str) -> None:
    settings = held_site(db_url)
    page = queue_for(settings).page(0, 10)

    assert page.total == 4 and not page.has_next
    assert [(i.key, i.outcome, i.label) for i in page.items] == [
        ("5", "held", "negative"),
        ("4", "held", None),  # its anchor and image URL: held by a rule, the model not asked
        ("3", "failed", None),
        ("1", "held", "negative"),
    ]
    failed = page.items[2]
    assert failed.error == "unparseable answer" and failed.raw_answer == "It could be anything."
    assert page.items[1].error == "rule: 2 links >= 2"
    assert page.items[1].body == BODIES[3] and page.items[1].text_hash == text_hash(BODIES[3])
    assert not any(i.edited for i in page.items)


def test_pages_are_bounded_and_cover_everything_once(sqlite_url: str) -> None:
    bodies = [f"idiot number {n}" for n in range(7)]
    create_site_table(sqlite_url, bodies, status=STATUS)
    settings = status_settings(sqlite_url)
    run_batch(settings, classifier=FakeClassifier(RULES))
    queue = queue_for(settings)

    pages = [queue.page(n, 3) for n in range(3)]

    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [p.has_next for p in pages] == [True, True, False]
    assert [i.key for p in pages for i in p.items] == [str(n) for n in range(7, 0, -1)]


def test_approval_writes_the_approved_value_an_audit_row_and_ends_model_calls(
    db_url: str,
) -> None:
    settings = held_site(db_url)
    queue = queue_for(settings)

    ruling = queue.rule("1", text_hash(BODIES[0]), Outcome.APPROVED, "alice")

    assert ruling.written
    assert status_of(db_url, 1) == "1"
    assert rulings(db_url) == [("1", "approved", "alice", "sentiments", None)]
    assert [i.key for i in queue.page(0, 10).items] == ["5", "4", "3"]
    # Someone puts it back to pending with new text: the model is still never asked again.
    edit_comment(db_url, 1, approved="0", body="You are an idiot, edited.")
    fake = FakeClassifier(RULES)
    report = run_batch(settings, classifier=fake)
    # Only the failed one is retried; the ruled one is skipped like the held ones.
    assert fake.asked == ["mumble mumble"] and report.skipped == 3


def test_rejection_writes_the_first_rejected_value(db_url: str) -> None:
    settings = held_site(db_url)

    ruling = queue_for(settings).rule("4", text_hash(BODIES[3]), Outcome.REJECTED, "bob")

    assert ruling.written
    assert status_of(db_url, 4) == "trash"
    assert rulings(db_url) == [("4", "rejected", "bob", "sentiments", None)]
    state = read_table(
        db_url, "SELECT outcome, reviewer FROM moderation_comment_state WHERE comment_id = '4'"
    )
    assert state == [("rejected", "bob")]


def test_rejection_sets_the_removed_flag(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL, "
            "approved BOOLEAN NOT NULL, is_removed BOOLEAN NOT NULL DEFAULT 0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO comments (body, approved) VALUES ('you idiot', 0), ('idiot again', 0)"
        )
    engine.dispose()
    settings = make_settings(sqlite_url, comments_removed_column="is_removed")
    run_batch(settings, classifier=FakeClassifier(RULES))
    queue = queue_for(settings)
    assert queue.comments.can_reject

    assert queue.rule("1", text_hash("you idiot"), Outcome.REJECTED, "carol").written

    assert read_table(sqlite_url, "SELECT id, approved, is_removed FROM comments") == [
        (1, 0, 1),
        (2, 0, 0),
    ]
    assert [i.key for i in queue.page(0, 10).items] == ["2"]


def test_a_rejection_without_a_rejected_state_is_recorded_here_and_leaves_the_row(
    db_url: str,
) -> None:
    # A boolean "approved" has no value meaning "rejected": the ruling lives in the tool's
    # memory and audit trail, the site's row stays exactly as it was.
    settings = plain_site(db_url)
    queue = queue_for(settings)
    before = plain_rows(db_url)
    assert not queue.comments.can_reject

    ruling = queue.rule("1", text_hash(PLAIN_BODIES[0]), Outcome.REJECTED, "dan")

    assert ruling.written and ruling.site_unchanged
    assert plain_rows(db_url) == before
    assert rulings(db_url) == [("1", "rejected", "dan", "sentiments", None)]
    state = read_table(
        db_url, "SELECT outcome, reviewer FROM moderation_comment_state WHERE comment_id = '1'"
    )
    assert state == [("rejected", "dan")]
    assert [i.key for i in queue.page(0, 10).items] == ["3"]
    # The next batch leaves it alone: a human's word is final.
    fake = FakeClassifier(RULES)
    run_batch(settings, classifier=fake)
    assert fake.asked == [] and plain_rows(db_url) == before


def test_a_rejection_recorded_here_still_needs_the_row_as_the_reviewer_saw_it(
    sqlite_url: str,
) -> None:
    settings = plain_site(sqlite_url)
    edit_comment(sqlite_url, 1, body="You are an idiot (edited).")
    edit_comment(sqlite_url, 3, approved=True)
    queue = queue_for(settings)

    edited = queue.rule("1", text_hash(PLAIN_BODIES[0]), Outcome.REJECTED, "dan")
    approved = queue.rule("3", text_hash(PLAIN_BODIES[2]), Outcome.REJECTED, "dan")

    assert (edited.written, edited.change) == (
        False,
        "its text was edited since the page was shown",
    )
    assert (approved.written, approved.change) == (False, "it was approved meanwhile")
    assert rulings(sqlite_url) == []


def test_a_plain_table_shows_its_post_and_time_and_a_bare_one_shows_neither(
    sqlite_url: str, tmp_path: Path
) -> None:
    items = queue_for(plain_site(sqlite_url)).page(0, 10).items

    assert [(i.key, i.post, i.author) for i in items] == [("3", "41", None), ("1", "41", None)]
    assert items[0].created is not None and items[1].created is not None
    assert items[0].created > items[1].created

    bare_url = f"sqlite:///{tmp_path / 'bare.db'}"
    settings = make_settings(bare_url)
    engine = sa.create_engine(bare_url)
    default_table(settings, sa.MetaData()).create(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO comments (body, approved) VALUES ('you idiot', 0)")
    engine.dispose()
    run_batch(settings, classifier=FakeClassifier(RULES))
    [bare] = queue_for(settings).page(0, 10).items
    assert (bare.post, bare.author, bare.created) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": "You are an idiot (edited)"}, "its text was edited since the page was shown"),
        ({"approved": "1"}, "it was approved meanwhile"),
        ({"approved": "spam"}, "it was rejected meanwhile (status 'spam')"),
        ({"approved": "held"}, "it is no longer pending (its status is now 'held')"),
        ({}, "it was deleted"),
    ],
)
def test_a_row_changed_meanwhile_is_left_alone(
    db_url: str, change: dict[str, str], message: str
) -> None:
    settings = status_settings(db_url, comments_rejected_values=["trash", "spam"])
    held_site(db_url, settings)
    edit_comment(db_url, 1, **change)
    before = read_table(db_url, "SELECT id, body, approved FROM comments ORDER BY id")

    ruling = queue_for(settings).rule("1", text_hash(BODIES[0]), Outcome.APPROVED, "erin")

    assert not ruling.written and ruling.change == message
    assert read_table(db_url, "SELECT id, body, approved FROM comments ORDER BY id") == before
    assert rulings(db_url) == []


def test_only_comments_waiting_for_a_human_can_be_ruled_on(sqlite_url: str) -> None:
    settings = held_site(sqlite_url)
    edit_comment(sqlite_url, 2, approved="0")  # the tool approved it; a human unapproved it

    ruling = queue_for(settings).rule("2", text_hash(BODIES[1]), Outcome.REJECTED, "fay")

    assert not ruling.written and ruling.change == "it is not waiting for a human"
    assert queue_for(settings).rule("x", "0" * 64, Outcome.APPROVED, "fay").change == (
        "no such comment"
    )
    assert status_of(sqlite_url, 2) == "0"


def test_a_late_model_answer_does_not_undo_a_ruling(sqlite_url: str) -> None:
    settings = held_site(sqlite_url)
    queue_for(settings).rule("1", text_hash(BODIES[0]), Outcome.APPROVED, "gus")
    engine = create_engine(sqlite_url)
    identity = memory.Identity("sentiments", "sha256:other", "q" * 64, {})
    late = audit.Decision(
        Comment(1, BODIES[0]), "negative", Outcome.HELD, None, RULES["idiot"], 0.1, "h"
    )
    with engine.begin() as conn:
        audit.record(conn, "late-run", identity, [(late, 0)], site=settings.site_key)
        remembered = memory.recall(conn, settings.site_key, ["1"])["1"]
    engine.dispose()

    assert (remembered.outcome, remembered.reviewer) == ("approved", "gus")
    assert memory.skip_reason(remembered, "other text", identity, 3) == "ruled on by a human"


def test_posting_times_of_every_kind_become_aware_datetimes() -> None:
    assert as_datetime(0).isoformat() == "1970-01-01T00:00:00+00:00"  # type: ignore[union-attr]
    assert as_datetime("2026-12-01 10:00:00").tzinfo is not None  # type: ignore[union-attr]
    assert as_datetime("yesterday") is None and as_datetime(None) is None
    assert as_datetime(True) is None


def test_author_and_posting_time_columns_are_found_and_order_the_page(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        for statement in WORDPRESS_NAMES_ONLY_SQLITE_DDL:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(
            "INSERT INTO wp_comments VALUES "
            "(1, 'Ana', '2026-12-01 10:00:00', 'idiot one', '0'), "
            "(2, 'Bob', '2026-11-30 10:00:00', 'idiot two', '0'), "
            "(3, NULL, '2026-12-01 12:00:00', 'idiot three', '0')"
        )
    engine.dispose()
    settings = make_settings(
        sqlite_url,
        comments_table="wp_comments",
        comments_id_column="comment_ID",
        comments_body_column="comment_content",
        comments_approved_column="comment_approved",
        comments_pending_value="0",
        comments_approved_value="1",
        comments_rejected_values=["trash", "spam", "post-trashed"],
    )
    run_batch(settings, classifier=FakeClassifier(RULES))

    items = queue_for(settings).page(0, 10).items

    assert [(i.key, i.author) for i in items] == [("3", None), ("1", "Ana"), ("2", "Bob")]
    assert items[1].created is not None and items[1].created.isoformat() == (
        "2026-12-01T10:00:00+00:00"
    )
    assert queue_for(settings).rule("2", text_hash("idiot two"), Outcome.REJECTED, "ana").written
    assert read_table(sqlite_url, "SELECT comment_approved FROM wp_comments") == [
        ("0",),
        ("trash",),
        ("0",),
    ]
