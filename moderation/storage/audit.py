"""The audit trail (``moderation_decisions``): one row for every decision, the tool's and the
reviewers', each also remembered in the tool's memory of the comment."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.comment import Comment
from moderation.redact import redact
from moderation.storage import brake
from moderation.storage.memory import Identity, remember, ruled_by_humans
from moderation.storage.tables import decisions
from moderation.vocabulary import Outcome

MAX_RAW_ANSWER = 2000
MAX_HOST = 255  # the column's size; several hosts can share one windowed decision


@dataclass(frozen=True, slots=True)
class Decision:
    comment: Comment
    label: str | None
    outcome: str
    error: str | None
    raw_answer: str | None
    latency: float | None
    host: str | None
    # How much of the text the model read: "whole", "N windows", "K of N windows" or "none".
    coverage: str = "whole"
    confidence: float | None = None
    # The rule that held the comment without asking the model (see moderation.rules).
    rule: str | None = None
    # The comment whose model answer was reused for this one (see moderation.batch.answers).
    answer_of: str | None = None


@dataclass(frozen=True, slots=True)
class PreviousAnswer:
    """The model's answer on a text in an earlier decision, as its audit row keeps it."""

    text_hash: str
    comment_id: str
    label: str
    confidence: float | None
    raw_answer: str | None
    coverage: str


def previous_answers(
    conn: Connection, site: str, text_hashes: Sequence[str], identity: Identity
) -> list[PreviousAnswer]:
    """The site's latest answer of this model, prompt and options on each of these texts.

    Within the site: ``answer_of`` names a comment of the same site, so the decision can be
    followed back to it.

    Only answers: a row with a label that did not fail (a failure is the request's, not the
    text's); a row that reused an answer names the comment the model was asked for. A model
    without a digest is never matched: the same name may have been rebuilt since.
    """
    if not text_hashes or identity.model_digest is None:
        return []
    rows = conn.execute(
        sa.select(
            decisions.c.text_hash,
            decisions.c.comment_id,
            decisions.c.label,
            decisions.c.confidence,
            decisions.c.raw_answer,
            decisions.c.coverage,
            decisions.c.options,
            decisions.c.answer_of,
        )
        .where(
            decisions.c.site == site,
            decisions.c.text_hash.in_(sorted(set(text_hashes))),
            decisions.c.model == identity.model,
            decisions.c.model_digest == identity.model_digest,
            decisions.c.prompt_hash == identity.prompt_hash,
            decisions.c.label.is_not(None),
            decisions.c.outcome != Outcome.FAILED,
            decisions.c.reviewer.is_(None),
        )
        .order_by(decisions.c.id.desc())
    )
    found: dict[str, PreviousAnswer] = {}
    for text, comment_id, label, confidence, raw, coverage, options, source in rows:
        if text in found or _request_options(options) != identity.options:
            continue
        # The comment the model was asked for, also when this row reused its answer.
        found[text] = PreviousAnswer(
            text, source or comment_id, label, confidence, raw, coverage or "whole"
        )
    return list(found.values())


def _request_options(stored: str | None) -> dict[str, object] | None:
    """The request options of an audit row, without the gate the row was decided under."""
    try:
        options = json.loads(stored) if stored else None
    except ValueError:
        return None
    if not isinstance(options, dict):
        return None
    options.pop("min_confidence", None)
    return options


def record(
    conn: Connection,
    run_id: str,
    identity: Identity,
    items: Sequence[tuple[Decision, int]],
    *,
    site: str,
    now: datetime | None = None,
) -> None:
    """Audit rows and memory for a chunk of decisions of ``site``, in the caller's transaction
    (the brake's figures too: see ``storage.brake``); ``now``: when they were decided."""
    if not items:
        return
    now = now or datetime.now(UTC)
    # The threshold goes with the request options: with the confidence it explains the outcome.
    options = json.dumps(
        {**identity.options, "min_confidence": identity.min_confidence}, sort_keys=True
    )
    # One host serves a whole chunk, as a rule: redact each distinct one once.
    hosts = {h: redact(h)[:MAX_HOST] for h in {d.host for d, _ in items if d.host is not None}}
    made = [(d.comment.key, d.outcome) for d, _ in items]
    with brake.tool_decisions(conn, site, made, identity.model_digest, identity.prompt_hash, now):
        _insert_decisions(conn, site, run_id, identity, items, options, hosts, now)
    states = [
        {
            "site": site,
            "comment_id": d.comment.key,
            "text_hash": d.comment.text_hash,
            "outcome": d.outcome,
            "label": d.label,
            "model_digest": identity.model_digest,
            "prompt_hash": identity.prompt_hash,
            "min_confidence": identity.min_confidence,
            "failures": failures_before + 1 if d.outcome == Outcome.FAILED else 0,
            "run_id": run_id,
            "updated_at": now,
        }
        for d, failures_before in items
    ]
    # A reviewer's ruling outlives any later answer of the model (one that was in flight while
    # the human ruled, say): its memory row is kept so the model is never asked again.
    ruled = ruled_by_humans(conn, site, [str(s["comment_id"]) for s in states])
    states = [s for s in states if s["comment_id"] not in ruled]
    if states:
        remember(conn, states)


def _insert_decisions(
    conn: Connection,
    site: str,
    run_id: str,
    identity: Identity,
    items: Sequence[tuple[Decision, int]],
    options: str,
    hosts: dict[str, str],
    now: datetime,
) -> None:
    conn.execute(
        sa.insert(decisions),
        [
            {
                "site": site,
                "run_id": run_id,
                "comment_id": d.comment.key,
                "text_hash": d.comment.text_hash,
                "label": d.label,
                "outcome": d.outcome,
                "raw_answer": None if d.raw_answer is None else d.raw_answer[:MAX_RAW_ANSWER],
                "model": identity.model,
                "model_digest": identity.model_digest,
                "host": None if d.host is None else hosts[d.host],
                "coverage": d.coverage,
                "prompt_hash": identity.prompt_hash,
                "options": options,
                "latency_ms": None if d.latency is None else round(d.latency * 1000, 3),
                "error": None if d.error is None else redact(d.error),
                "confidence": d.confidence,
                "answer_of": d.answer_of,
                "decided_at": now,
            }
            for d, _ in items
        ],
    )


def record_ruling(
    conn: Connection,
    session_id: str,
    comment: Comment,
    outcome: str,
    reviewer: str,
    *,
    site: str,
    now: datetime | None = None,
) -> None:
    """A reviewer's approval or rejection: its audit row and the memory that ends model calls.

    The audit row repeats the model, digest and prompt hash of the tool's latest decision on
    the comment, so a ruling can be read as a correction of that variant.
    """
    latest = conn.execute(
        sa.select(decisions.c.model, decisions.c.model_digest, decisions.c.prompt_hash)
        .where(
            decisions.c.site == site,
            decisions.c.comment_id == comment.key,
            decisions.c.reviewer.is_(None),
        )
        .order_by(decisions.c.id.desc())
        .limit(1)
    ).first()
    model, digest, prompt_hash = latest if latest is not None else ("", None, "")
    now = now or datetime.now(UTC)
    # A ruling after an approval is that approval's outcome: the brake's figures follow.
    with brake.ruling(conn, site, comment.key):
        conn.execute(
            sa.insert(decisions).values(
                site=site,
                run_id=session_id,
                comment_id=comment.key,
                text_hash=comment.text_hash,
                outcome=outcome,
                model=model,
                model_digest=digest,
                prompt_hash=prompt_hash,
                decided_at=now,
                reviewer=reviewer,
            )
        )
    state = {
        "site": site,
        "comment_id": comment.key,
        "text_hash": comment.text_hash,
        "outcome": outcome,
        "label": None,
        "model_digest": digest,
        "prompt_hash": prompt_hash,
        "failures": 0,
        "run_id": session_id,
        "updated_at": now,
        "reviewer": reviewer,
    }
    remember(conn, [state])
