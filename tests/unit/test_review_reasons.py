"""Why each comment waits, and the review queue's filters, counts and pages by reason."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from moderation.batch import quarantine
from moderation.batch.trust import NOT_YET
from moderation.humans import reasons
from moderation.humans.queue import ReviewQueue
from moderation.policy import UNTRUSTED_REASONS
from moderation.settings import Settings
from moderation.site.table import CommentsTable
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from moderation.storage.tables import decisions
from tests.reviewsite import reasons_site

# Two of each reason, interleaved, so that a filter has to skip others to fill its page.
ORDER = [*reasons.REASONS, *reasons.REASONS]


def queue_for(settings: Settings) -> ReviewQueue:
    engine = create_engine(settings.database_url)
    return ReviewQueue(engine, CommentsTable.reflect(engine, settings), str(uuid.uuid4()))


def ids_of(reason: str) -> list[str]:
    """The ids of ``ORDER``'s comments waiting for ``reason``, newest (highest id) first."""
    return [str(n) for n in range(len(ORDER), 0, -1) if ORDER[n - 1] == reason]


def test_each_comment_waits_for_the_reason_its_batch_gave(db_url: str) -> None:
    queue = queue_for(reasons_site(db_url, ORDER))

    page = queue.page(0, 50)

    assert page.counts == {reason: 2 for reason in reasons.REASONS}
    assert page.total == page.waiting == len(ORDER) and page.reason is None
    assert {i.key: i.reason for i in page.items} == {
        str(n): reason for n, reason in enumerate(ORDER, start=1)
    }
    assert page.untrusted is not None and page.untrusted.startswith("unqualified: ")
    untrusted = [i for i in page.items if i.untrusted]
    assert [i.key for i in untrusted] == ids_of("unqualified")
    assert {i.label for i in untrusted} == {"positive"}


def test_a_filter_lists_only_its_reason_in_bounded_pages(db_url: str) -> None:
    queue = queue_for(reasons_site(db_url, ORDER))

    for reason in reasons.REASONS:
        first, second = queue.page(0, 1, reason), queue.page(1, 1, reason)
        assert [first.total, first.has_next, second.has_next] == [2, True, False], reason
        assert [i.key for i in (*first.items, *second.items)] == ids_of(reason), reason
        assert first.counts == second.counts == {r: 2 for r in reasons.REASONS}
        assert first.waiting == len(ORDER)
    # Past the end of a filter: no items, and the count says how many there are.
    beyond = queue.page(5, 1, "negative")
    assert beyond.items == [] and beyond.total == 2


def test_without_untrusted_comments_nothing_is_said_about_the_model(sqlite_url: str) -> None:
    page = queue_for(reasons_site(sqlite_url, ["negative", "rule"])).page(0, 10)

    assert page.untrusted is None and page.counts == {"negative": 1, "rule": 1}


class ElsewhereSite:
    """The same site, not seen as a table: the queue takes the path of a site behind an API."""

    def __init__(self, table: CommentsTable) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def test_a_site_outside_the_database_gets_the_same_pages_and_counts(sqlite_url: str) -> None:
    settings = reasons_site(sqlite_url, ORDER)
    engine = create_engine(sqlite_url)
    table = queue_for(settings)
    elsewhere = ReviewQueue(engine, ElsewhereSite(table.table), "session")  # type: ignore[arg-type]

    for reason in (None, *reasons.REASONS):
        for number in (0, 1):
            here, there = table.page(number, 1, reason), elsewhere.page(number, 1, reason)
            assert here == there, (reason, number)


@pytest.mark.parametrize(
    ("outcome", "label", "error", "expected"),
    [
        ("failed", None, "unparseable answer", "failed"),
        ("failed", None, None, "failed"),
        ("held", None, quarantine.reason(), "quarantined"),
        ("held", None, "rule: 2 links >= 2", "rule"),
        ("held", None, "rule: a pingback, never approved unread", "rule"),
        ("held", "positive", "unqualified: not qualified yet", "unqualified"),
        ("held", "neutral", "reversal-rate brake: humans took back 9 %", "unqualified"),
        ("held", None, "too long to read whole: 40,000 characters need 11 windows", "long"),
        ("held", "negative", None, "negative"),
        ("held", "negative", "odd", "negative"),
        ("held", "positive", "uncertain (positive 0.62 < 0.80)", "unsure"),
        ("held", "neutral", "uncertain (neutral: no confidence)", "unsure"),
        ("held", None, None, "unsure"),
        ("held", "positive", "rule%_ like: not a rule", "unsure"),
        ("held", "positive", "RULE: upper case", "unsure"),
    ],
)
def test_the_reason_is_the_same_in_python_and_in_each_database(
    db_url: str, outcome: str, label: str | None, error: str | None, expected: str
) -> None:
    assert reasons.reason_of(outcome, label, error) == expected
    with evaluated(db_url) as evaluate:
        assert evaluate(outcome, label, error) == expected


@contextmanager
def evaluated(url: str) -> Iterator[Any]:
    """Evaluates the SQL reason on a decision row of the tool's own table."""
    engine = create_engine(url)
    migrate.upgrade(engine)

    def evaluate(outcome: str, label: str | None, error: str | None) -> str:
        row = {
            "run_id": "run",
            "comment_id": "1",
            "text_hash": "0" * 64,
            "outcome": outcome,
            "label": label,
            "error": error,
            "model": "m",
            "prompt_hash": "p" * 64,
            "decided_at": datetime.now(UTC),
            "site": "",
        }
        with engine.begin() as conn:
            key = conn.execute(sa.insert(decisions).values(row)).inserted_primary_key[0]
            reason = reasons.reason_column(
                decisions.c.outcome, decisions.c.label, decisions.c.error
            )
            return str(conn.execute(sa.select(reason).where(decisions.c.id == key)).scalar_one())

    try:
        yield evaluate
    finally:
        engine.dispose()


def test_the_prefixes_are_those_the_batch_writes() -> None:
    assert quarantine.reason().startswith(reasons.QUARANTINE_PREFIX)
    assert all(prefix.endswith(":") for prefix in UNTRUSTED_REASONS)
    assert set(reasons.TITLES) == set(reasons.REASONS)


def test_a_page_reads_a_page_however_many_wait(sqlite_url: str) -> None:
    queue = queue_for(reasons_site(sqlite_url, ["negative", "unsure", "rule"] * 20))
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(queue.engine, "before_cursor_execute", seen)
    page = queue.page(1, 5, "unsure")

    assert [i.key for i in page.items] == ["44", "41", "38", "35", "32"]
    reads = [s for s in statements if "FROM comments" in s]
    # The comments themselves come in one LIMITed query; the database counts the rest.
    assert len(reads) == 2, reads
    assert "LIMIT" in reads[0] and "count(" in reads[1], reads


@pytest.mark.parametrize("reason", ["bogus", "", "NEGATIVE"])
def test_an_unknown_reason_lists_nothing(sqlite_url: str, reason: str) -> None:
    page = queue_for(reasons_site(sqlite_url, ["negative"])).page(0, 10, reason)
    assert page.items == [] and page.total == 0 and page.waiting == 1


def test_a_filter_keeps_the_newest_first(sqlite_url: str) -> None:
    order = list(itertools.chain.from_iterable(zip(["negative"] * 3, ["rule"] * 3, strict=True)))
    queue = queue_for(reasons_site(sqlite_url, order))
    assert [i.key for i in queue.page(0, 10, "rule").items] == ["6", "4", "2"]


@pytest.mark.parametrize(
    ("error", "plain"),
    [
        (NOT_YET, "It has not been tested on labelled comments yet."),
        (
            "unqualified: qualification incomplete (3 of 367 fixtures failed)",
            "could not be finished",
        ),
        ("unqualified: false approval >= 0.98 at every threshold on 367 fixtures", "too many"),
        ("unqualified: it approves none of 367 fixtures at any threshold", "approved none"),
        ("unqualified: none of its 12 fixtures is one to hold", "proved nothing"),
        ("unqualified: something new", "It has not passed its test on labelled comments."),
        ("reversal-rate brake: humans took back 9.0 % of 120 approvals", "paused"),
    ],
)
def test_why_the_model_may_not_approve_reads_plainly(error: str, plain: str) -> None:
    assert plain in reasons.plain_untrusted(error)
