"""Memory's skip done in the site's query (``CommentsTable.pending_pages`` with
``memory.Remembered``): the rows it leaves out unread are exactly those ``memory.skip_reason``
skips, on SQLite, PostgreSQL and MariaDB, for integer and text ids and texts in any script."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from moderation.comment import Page, text_hash
from moderation.site import table as site_table
from moderation.site.table import CommentsTable
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from moderation.storage.memory import Identity, Memory, Remembered, skip_reason
from moderation.storage.tables import comment_state
from tests.helpers import create_site_table, make_settings

SITE = "comments"
MAX_ATTEMPTS = 3
JUDGE = Identity("sentiments", "sha256:aaa", "prompt-1", {}, min_confidence=0.9)
TEXTS = [
    "Thanks, this helped",
    "café crème ☕ — naïve",
    "👍🏽 great post",
    "  spaces kept  ",
    "Ünïcödé and ΕΛΛΗΝΙΚΆ",
    "line\nbreak",
    "日本語のコメント",
    "",
]

# Every field skip_reason reads, in every combination that changes its answer.
STATES = list(
    itertools.product(
        ["held", "approved", "failed", "rejected"],  # outcome
        [None, "positive", "neutral", "negative"],  # label
        [True, False],  # the text is the one remembered
        ["sha256:aaa", "sha256:bbb", None],  # model digest
        ["prompt-1", "prompt-2"],  # prompt hash
        [0, MAX_ATTEMPTS],  # failures
        [None, 0.9, 0.5],  # threshold
        [None, "ann"],  # reviewer
    )
)
# Pending comments with no memory at all, and one remembered only by another site.
UNREMEMBERED = 20


def memory_rows(key_of: Any) -> tuple[list[dict[str, Any]], dict[str, Memory]]:
    rows: list[dict[str, Any]] = []
    recalled: dict[str, Memory] = {}
    now = datetime.now(UTC)
    for number, state in enumerate(STATES, start=1):
        outcome, label, same_text, digest, prompt, failures, threshold, reviewer = state
        body = TEXTS[number % len(TEXTS)]
        remembered = text_hash(body if same_text else body + " (edited)")
        memory = Memory(remembered, outcome, digest, prompt, failures, label, threshold, reviewer)
        key = key_of(number)
        recalled[key] = memory
        rows.append(
            {
                "site": SITE,
                "comment_id": key,
                "text_hash": remembered,
                "outcome": outcome,
                "label": label,
                "model_digest": digest,
                "prompt_hash": prompt,
                "failures": failures,
                "min_confidence": threshold,
                "reviewer": reviewer,
                "run_id": "r",
                "updated_at": now,
            }
        )
    # Another site's memory of a comment with this site's id and text: never this site's.
    other = dict(rows[0], site="another", comment_id=key_of(len(STATES) + 1), reviewer="bob")
    rows.append(other)
    return rows, recalled


def bodies() -> list[str]:
    return [TEXTS[n % len(TEXTS)] for n in range(1, len(STATES) + UNREMEMBERED + 1)]


def read_all(table: CommentsTable, engine: sa.Engine, identity: Identity) -> list[Page]:
    remembered = Remembered(SITE, identity, MAX_ATTEMPTS)
    return list(table.pending_pages(engine, 50, remembered))


def expected_reads(
    texts: list[str], keys: list[str], recalled: dict[str, Memory], identity: Identity
) -> list[str]:
    return [
        key
        for key, body in zip(keys, texts, strict=True)
        if skip_reason(recalled.get(key), text_hash(body), identity, MAX_ATTEMPTS) is None
    ]


JUDGES = (
    JUDGE,
    Identity("sentiments", None, "prompt-1", {}, min_confidence=0.5),
    Identity("sentiments", "sha256:bbb", "prompt-2", {}, min_confidence=0.0),
)


def check(table: CommentsTable, engine: sa.Engine, texts: list[str], keys: list[str]) -> None:
    _, recalled = memory_rows(lambda n: keys[n - 1])
    for identity in JUDGES:
        pages = read_all(table, engine, identity)
        read = [c.key for page in pages for c in page.comments]
        wanted = expected_reads(texts, keys, recalled, identity)
        assert read == wanted, identity
        assert sum(page.skipped for page in pages) == len(keys) - len(wanted)
        # The bodies read are the site's, byte for byte.
        by_key = dict(zip(keys, texts, strict=True))
        assert all(c.body == by_key[c.key] for page in pages for c in page.comments)
        # The join that counts the skipped comments finds exactly the others, once each.
        sql = table._key_and_hash(engine)
        assert sql is not None
        joined = table.skipped_by(engine, Remembered(SITE, identity, MAX_ATTEMPTS), *sql)
        with engine.connect() as conn:
            found = conn.execute(sa.select(table.id).select_from(joined)).scalars().all()
        assert sorted(map(str, found)) == sorted(set(keys) - set(wanted)), identity


def own_tables(url: str, key_of: Any) -> sa.Engine:
    engine = create_engine(url)
    migrate.upgrade(engine)
    rows, _ = memory_rows(key_of)
    with engine.begin() as conn:
        conn.execute(sa.insert(comment_state), rows)
    return engine


def test_integer_ids_are_skipped_exactly_as_skip_reason_says(db_url: str) -> None:
    texts = bodies()
    create_site_table(db_url, texts)
    engine = own_tables(db_url, str)
    try:
        table = CommentsTable.reflect(engine, make_settings(db_url))
        assert table._key_and_hash(engine) is not None  # the skip is done in SQL here
        check(table, engine, texts, [str(n) for n in range(1, len(texts) + 1)])
    finally:
        engine.dispose()


def test_text_ids_are_skipped_exactly_as_skip_reason_says(db_url: str) -> None:
    texts = bodies()
    keys = [f"c-{n}" for n in range(1, len(texts) + 1)]
    metadata = sa.MetaData()
    comments = sa.Table(
        "comments",
        metadata,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
    )
    engine = own_tables(db_url, lambda n: f"c-{n}")
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            pairs = zip(keys, texts, strict=True)
            conn.execute(
                sa.insert(comments), [{"id": k, "body": b, "approved": False} for k, b in pairs]
            )
            # Memory keyed by a case variant of an id is not that comment's, on any collation.
            variant = dict(comment_id="C-1", text_hash=text_hash(texts[0]), reviewer="ann")
            conn.execute(
                sa.update(comment_state).where(comment_state.c.comment_id == "c-1").values(variant)
            )
        table = CommentsTable.reflect(engine, make_settings(db_url))
        pages = read_all(table, engine, JUDGE)
        assert "c-1" in [c.key for page in pages for c in page.comments]
    finally:
        engine.dispose()


def test_pages_partition_the_ids_and_hold_at_most_a_page_to_read(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few rows per query, so that pages are cut from several queries and across their ends.
    monkeypatch.setattr(site_table, "SKIPPING_ROWS", 7)
    texts = bodies()
    create_site_table(db_url, texts)
    engine = own_tables(db_url, str)
    try:
        table = CommentsTable.reflect(engine, make_settings(db_url))
        pages = list(table.pending_pages(engine, 3, Remembered(SITE, JUDGE, MAX_ATTEMPTS)))
        assert all(len(page.comments) <= 3 for page in pages)
        assert pages[0].after is None
        for before, page in itertools.pairwise(pages):
            assert page.after == before.last
        assert pages[-1].last == len(texts)
        for page in pages:
            ids = [c.id for c in page.comments]
            assert ids == sorted(ids)
            assert all((page.after or 0) < i <= page.last for i in ids)
        # Counting the texts of each page's range gives every pending text once.
        counted = [t for p in pages for t in table.pending_texts(engine, p.after, p.last)]
        assert sorted(counted) == sorted(texts)
    finally:
        engine.dispose()


def insert_comment(url: str, comment_id: int, body: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO comments (id, body, approved) VALUES (:id, :body, :approved)"),
            {"id": comment_id, "body": body, "approved": False},
        )
    engine.dispose()


def test_a_new_copy_of_a_flood_held_before_is_held_by_the_flood_rule(db_url: str) -> None:
    """The skipped copies are not read as comments, yet they still count as pending copies."""
    from moderation.batch.pipeline import run_batch
    from tests.fakes import FakeClassifier

    flood = "Best deals here, friends"
    create_site_table(db_url, [flood, "A fine article", flood, flood])
    settings = make_settings(db_url, max_duplicates=2)
    first = run_batch(settings, classifier=FakeClassifier()).to_json()
    assert (first["approved"], first["held"]) == (1, 3)

    insert_comment(db_url, 5, flood)
    classifier = FakeClassifier()
    again = run_batch(settings, classifier=classifier).to_json()
    assert (again["skipped"], again["considered"], again["held"]) == (3, 1, 1)
    assert classifier.asked == []
    [decision] = again["decisions"]
    assert decision["comment_id"] == 5
    assert (decision["rule"], decision["error"]) == ("flood", "rule: 4 copies pending")


def test_a_rerun_with_nothing_new_reads_no_text(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moderation.batch.pipeline import run_batch
    from tests.fakes import FakeClassifier

    create_site_table(db_url, [f"Comment number {n}, rather dull" for n in range(1, 40)])
    settings = make_settings(db_url)
    # Negative answers: every comment ends held, and memory skips them all next time.
    first = run_batch(settings, classifier=FakeClassifier(default='{"label": "negative"}'))
    assert first.to_json()["held"] == 39

    def no_text_read(*_: Any) -> Any:
        raise AssertionError("a text was read")

    # Known while the batch starts, under the newest decision's judge: no page is read.
    monkeypatch.setattr(site_table, "read_comment", no_text_read)
    monkeypatch.setattr(CommentsTable, "pending_texts", no_text_read)
    monkeypatch.setattr(CommentsTable, "pending_pages", no_text_read)
    again = run_batch(settings, classifier=FakeClassifier()).to_json()
    assert (again["skipped"], again["considered"]) == (39, 0)

    # Under another judge the same comments are all to be asked again.
    classifier = FakeClassifier(digest="sha256:another model")
    monkeypatch.undo()
    afresh = run_batch(settings, classifier=classifier).to_json()
    assert (afresh["skipped"], afresh["considered"]) == (0, 39)
    assert len(classifier.asked) == 39


def test_all_skipped_is_counted_only_when_nothing_is_to_read(db_url: str) -> None:
    from moderation.batch.pipeline import run_batch
    from moderation.storage.memory import latest_judge
    from tests.fakes import FakeClassifier

    create_site_table(db_url, [f"Comment number {n}, rather dull" for n in range(1, 11)])
    settings = make_settings(db_url)
    run_batch(settings, classifier=FakeClassifier(default='{"label": "negative"}'))
    engine = create_engine(db_url)
    try:
        table = CommentsTable.reflect(engine, settings)
        with engine.connect() as conn:
            judge = latest_judge(conn, SITE)
        assert judge is not None
        assert (judge.model_digest, judge.min_confidence) == ("sha256:fake", 0.9)
        remembered = Remembered(SITE, judge, MAX_ATTEMPTS)
        assert table.count_if_all_skipped(engine, remembered) == 10
        # Another judge: every comment is to be read again.
        other = Identity("m", "sha256:other", judge.prompt_hash, {}, min_confidence=0.9)
        assert table.count_if_all_skipped(engine, Remembered(SITE, other, 3)) is None
        # A new comment, the newest; then an old one edited: each is to be read.
        insert_comment(db_url, 11, "A new comment")
        assert table.count_if_all_skipped(engine, remembered) is None
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM comments WHERE id = 11"))
            conn.execute(sa.text("UPDATE comments SET body = 'edited' WHERE id = 4"))
        assert table.count_if_all_skipped(engine, remembered) is None
    finally:
        engine.dispose()
