"""Write intents: a write to a site behind an API stays explainable across a crash.

The SQL presets write the site's row and the audit row in one transaction. An API (WordPress's
REST API) cannot join that transaction, so each of its writes takes three steps:

1. the intent is recorded and committed (``open``): the site, the comment, what is to be
   written, the hash of the text that was judged, and the decision it belongs to (the batch's
   decision, or the reviewer's ruling);
2. the site is written;
3. the intent is marked ``done`` in the transaction that writes its audit row, or ``dropped``
   when nothing was written (the text was edited, a human ruled first).

A crash can fall between any two steps. Before it reads new work, the next batch of the site
reads the comment of each open intent from the site and settles it (``batch.settle``):
``done``, with the audit row written from the intent, when the site holds what was to be
written; ``dropped`` when it does not. Every change of state is a compare-and-set on the
state, so an intent is settled once, and its audit row written once, whoever gets there first.
The comment's text is never stored: only its hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.comment import Comment
from moderation.storage.audit import Decision
from moderation.storage.memory import Identity
from moderation.storage.tables import write_intents

OPEN, DONE, DROPPED = "open", "done", "dropped"


@dataclass(frozen=True, slots=True)
class Planned:
    """A write about to be sent: the comment as judged, what is written, and by whom."""

    comment: Comment
    outcome: str  # "approved" or "rejected"
    reviewer: str | None = None  # set for a reviewer's ruling
    decision: str | None = None  # the batch's decision (``decision_json``)


@dataclass(frozen=True, slots=True)
class Intent:
    id: int
    comment_id: str
    outcome: str
    text_hash: str
    run_id: str
    reviewer: str | None
    decision: str | None

    @property
    def comment(self) -> Comment:
        return JudgedComment(self.comment_id, "", judged=self.text_hash)


@dataclass(frozen=True, slots=True)
class JudgedComment(Comment):
    """A comment known by its id and the hash of the text that was judged (never the text)."""

    judged: str = ""

    @property
    def text_hash(self) -> str:
        return self.judged


def record(conn: Connection, site: str, run_id: str, planned: Sequence[Planned]) -> dict[str, int]:
    """Open an intent for each planned write; the intent ids by comment key."""
    now = datetime.now(UTC)
    opened: dict[str, int] = {}
    for plan in planned:
        result = conn.execute(
            sa.insert(write_intents).values(
                site=site,
                comment_id=plan.comment.key,
                outcome=plan.outcome,
                text_hash=plan.comment.text_hash,
                run_id=run_id,
                reviewer=plan.reviewer,
                decision=plan.decision,
                state=OPEN,
                created_at=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        opened[plan.comment.key] = int(key[0])
    return opened


def finish(
    conn: Connection, opened: Mapping[str, int], written: Set[str], unsure: Set[str]
) -> set[str]:
    """After the writes: ``done`` for those written, ``dropped`` for those surely not, and
    left open those whose result the site never told (the next batch settles them).

    The keys returned are those this call marked done: only theirs are the caller's audit
    rows to write. An intent a batch dropped while its write was still on its way (the review
    page's, say) is marked done all the same; one already done was recorded by whoever did it.
    """
    done: set[str] = set()
    for key, intent_id in opened.items():
        if key in written:
            if mark(conn, intent_id, DONE, (OPEN, DROPPED)):
                done.add(key)
        elif key not in unsure:
            mark(conn, intent_id, DROPPED, (OPEN,))
    return done


def mark(conn: Connection, intent_id: int, state: str, was: Sequence[str]) -> bool:
    """Compare-and-set: move the intent to ``state`` if it is in one of ``was``."""
    moved = conn.execute(
        sa.update(write_intents)
        .where(write_intents.c.id == intent_id, write_intents.c.state.in_(was))
        .values(state=state, settled_at=datetime.now(UTC))
    )
    return moved.rowcount == 1


def unfinished(conn: Connection, site: str) -> list[Intent]:
    """The site's open intents, oldest first."""
    rows = conn.execute(
        sa.select(
            write_intents.c.id,
            write_intents.c.comment_id,
            write_intents.c.outcome,
            write_intents.c.text_hash,
            write_intents.c.run_id,
            write_intents.c.reviewer,
            write_intents.c.decision,
        )
        .where(write_intents.c.site == site, write_intents.c.state == OPEN)
        .order_by(write_intents.c.id)
    ).all()
    return [Intent(*row) for row in rows]


def decision_json(decision: Decision, failures_before: int, identity: Identity) -> str:
    """What the audit row and memory of a batch's decision need, less the comment's text."""
    return json.dumps(
        {
            "label": decision.label,
            "outcome": decision.outcome,
            "error": decision.error,
            "raw_answer": decision.raw_answer,
            "latency": decision.latency,
            "host": decision.host,
            "coverage": decision.coverage,
            "confidence": decision.confidence,
            "rule": decision.rule,
            "answer_of": decision.answer_of,
            "failures_before": failures_before,
            "identity": {
                "model": identity.model,
                "model_digest": identity.model_digest,
                "prompt_hash": identity.prompt_hash,
                "options": identity.options,
                "min_confidence": identity.min_confidence,
            },
        },
        sort_keys=True,
    )


def decision_of(intent: Intent) -> tuple[Decision, int, Identity]:
    """The batch's decision an intent carries, with its failures before and its judge."""
    assert intent.decision is not None
    stored: dict[str, Any] = json.loads(intent.decision)
    identity = Identity(**stored.pop("identity"))
    failures_before = int(stored.pop("failures_before"))
    return Decision(comment=intent.comment, **stored), failures_before, identity
