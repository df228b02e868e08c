"""A site with comments the tool held or failed, ready for the review page.

The decisions come from a real batch (the pipeline with a scripted classifier), so the rows
the page reads are the ones a batch writes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from moderation.batch.pipeline import run_batch
from moderation.settings import Settings
from moderation.storage import migrate
from moderation.storage.tables import runs
from moderation.vocabulary import RunStatus
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table

NEGATIVE = '{"label": "negative"}'
HOSTILE = (
    'hostile <script>window.__pwned = 1; alert("x")</script>'
    '<img src="http://203.0.113.9/x.png" onerror="alert(2)">'
    '<a href="javascript:alert(3)">click</a> \u202egnp.exe'
)
# Held (negative), failed (unparseable), approved by the tool, and the hostile one (held by the
# links rule, before the model is asked).
BODIES = [
    "You are an idiot and this post is garbage.",
    "Thanks, this helped me a lot!",
    "mumble mumble",
    HOSTILE,
    "Another idiot take.",
]
RULES = {"idiot": NEGATIVE, "hostile": NEGATIVE, "mumble": "It could be anything."}
STATUS = ("0", "1")  # WordPress-like: '0' pending, '1' approved


def status_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "comments_pending_value": "0",
        "comments_approved_value": "1",
        "comments_rejected_values": ["trash", "spam"],
    }
    values.update(overrides)
    return make_settings(url, **values)


def held_site(url: str, settings: Settings | None = None, bodies: list[str] = BODIES) -> Settings:
    """Create the site's table and run one batch; comments 1, 3, 4, 5 then wait for a human."""
    create_site_table(url, bodies, status=STATUS)
    settings = settings or status_settings(url)
    run_batch(settings, classifier=FakeClassifier(RULES))
    return settings


def status_of(url: str, comment_id: int) -> Any:
    rows = read_table(url, f"SELECT approved FROM comments WHERE id = {comment_id}")
    return rows[0][0] if rows else None


def rulings(url: str) -> list[tuple[Any, ...]]:
    return read_table(
        url,
        "SELECT comment_id, outcome, reviewer, model, label FROM moderation_decisions "
        "WHERE reviewer IS NOT NULL ORDER BY id",
    )


def edit_comment(url: str, comment_id: int, **values: Any) -> None:
    engine = sa.create_engine(url)
    table = sa.Table("comments", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        if values:
            conn.execute(sa.update(table).where(table.c.id == comment_id).values(**values))
        else:
            conn.execute(sa.delete(table).where(table.c.id == comment_id))
    engine.dispose()


PLAIN_BODIES = ["You are an idiot.", "Thanks, a great read.", "Another idiot take."]


def plain_site(url: str, bodies: list[str] = PLAIN_BODIES) -> Settings:
    """A site's own simple table, no preset: a boolean ``approved`` (no rejected state), the
    post each comment is on and when it was written; then one batch."""
    metadata = sa.MetaData()
    table = sa.Table(
        "comments",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("post_id", sa.Integer),
        sa.Column("inserted_at", sa.DateTime),
    )
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            sa.insert(table),
            [
                {
                    "id": n,
                    "body": body,
                    "approved": False,
                    "post_id": 40 + n % 2,
                    "inserted_at": start - timedelta(minutes=10 * (len(bodies) - n)),
                }
                for n, body in enumerate(bodies, start=1)
            ],
        )
    engine.dispose()
    settings = make_settings(url)
    run_batch(settings, classifier=FakeClassifier(RULES))
    return settings


def plain_rows(url: str) -> list[tuple[Any, ...]]:
    return read_table(
        url, "SELECT id, body, approved, post_id, inserted_at FROM comments ORDER BY id"
    )


POSITIVE = '{"label": "positive"}'
UNPARSEABLE = "It could be anything."
# One comment for each reason a comment waits for, as the batches below make them wait.
REASON_TEXTS = {
    "negative": "You are an idiot and this post is garbage.",
    "unsure": "Well, I suppose it is fine, in its way.",
    "unqualified": "Great post, thanks for writing it!",
    "rule": "Cheap pills at http://a.example and http://b.example",
    "quarantined": "The comment every batch stopped on.",
    "long": "A very long comment. " * 1600,
    "failed": "mumble mumble",
}


class ScriptedModel(FakeClassifier):
    """Answers each comment by its exact text: negative, unparseable, or positive, sure or
    not; anything else (the qualification's fixtures) positive and sure."""

    def __init__(self, reasons: dict[str, str]) -> None:
        answers = {"negative": NEGATIVE, "failed": UNPARSEABLE}
        by_text = {text: answers.get(reason, POSITIVE) for text, reason in reasons.items()}
        super().__init__(default=lambda text: by_text.get(text, POSITIVE))
        self.unsure = {text for text, reason in reasons.items() if reason == "unsure"}

    async def classify(self, text: str) -> Any:
        self.confidence = 0.5 if text in self.unsure else 1.0
        return await super().classify(text)


def make_them_wait(settings: Settings, reasons: Sequence[str], bodies: Sequence[str]) -> None:
    """Two real batches over a site whose comments (ids 1, 2, ...: ``bodies``, all pending, in
    a string status column) then wait for a human for ``reasons``, one per comment.

    The first batch runs after two batches that died while working on the quarantined ones,
    with a confidence threshold of 0.8 and without qualification: it holds the negative,
    unsure, ruled, quarantined and long ones and fails the garbled ones. The second qualifies
    the model on the shipped fixtures, where it fails, so it holds the comments it finds
    positive as unqualified. Each batch meets only its own comments: the others are out of
    the pending state meanwhile, as a moderator's "hold for later" would put them.
    """
    engine = sa.create_engine(settings.database_url)
    migrate.upgrade(engine)
    table = sa.Table(settings.comments_table, sa.MetaData(), autoload_with=engine)
    key = table.c[settings.comments_id_column]
    status = table.c[settings.comments_approved_column]

    def ids(*wanted: str) -> list[int]:
        return [n for n, reason in enumerate(reasons, start=1) if reason in wanted]

    def put(value: str | None, *wanted: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.update(table).where(key.in_(ids(*wanted))).values({status: value}))

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(runs),
            [
                {
                    "id": str(uuid.uuid4()),
                    "started_at": now - timedelta(minutes=minutes),
                    "status": RunStatus.ABANDONED,
                    "owner": "a batch that died",
                    "site": settings.site_key,
                    "in_work": json.dumps([str(n) for n in ids("quarantined")]),
                }
                for minutes in (60, 30)
            ],
        )
    model = ScriptedModel(dict(zip(bodies, reasons, strict=True)))
    pending = settings.comments_pending_value
    put("parked", "unqualified")
    run_batch(settings.model_copy(update={"min_confidence": 0.8}), classifier=model)
    put("parked", "unsure")
    put(pending, "unqualified")
    run_batch(settings.model_copy(update={"qualify": "auto"}), classifier=model)
    put(pending, "unsure")
    engine.dispose()


def reasons_site(url: str, reasons: Sequence[str]) -> Settings:
    """A site whose comment n waits for ``reasons[n - 1]`` (``REASON_TEXTS`` numbered: each
    text ends with its id, so that no two are the same)."""
    bodies = [f"{REASON_TEXTS[reason]} ({n})" for n, reason in enumerate(reasons, start=1)]
    create_site_table(url, bodies, status=STATUS)
    settings = status_settings(url)
    make_them_wait(settings, reasons, bodies)
    return settings
