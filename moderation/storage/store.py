"""Queries on the tool's own tables: decision memory, the audit trail, and runs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.comment import Comment
from moderation.redact import redact
from moderation.storage.tables import comment_state, decisions, runs
from moderation.vocabulary import APPROVING_LABELS, Outcome, RunStatus

MAX_RAW_ANSWER = 2000
MAX_HOST = 255  # the column's size; several hosts can share one windowed decision


@dataclass(frozen=True, slots=True)
class Identity:
    """What a decision depends on besides the text: re-ask when any of it changes."""

    model: str
    model_digest: str | None
    prompt_hash: str
    options: dict[str, Any]
    # The approval threshold: an answer held as uncertain is re-asked when it changes.
    min_confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Memory:
    text_hash: str
    outcome: str
    model_digest: str | None
    prompt_hash: str
    failures: int
    label: str | None = None
    min_confidence: float | None = None
    reviewer: str | None = None


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


def recall(conn: Connection, keys: Sequence[str]) -> dict[str, Memory]:
    """The remembered state of these comments: one indexed primary-key lookup per page."""
    if not keys:
        return {}
    rows = conn.execute(
        sa.select(
            comment_state.c.comment_id,
            comment_state.c.text_hash,
            comment_state.c.outcome,
            comment_state.c.model_digest,
            comment_state.c.prompt_hash,
            comment_state.c.failures,
            comment_state.c.label,
            comment_state.c.min_confidence,
            comment_state.c.reviewer,
        ).where(comment_state.c.comment_id.in_(keys))
    )
    return {row[0]: Memory(*row[1:]) for row in rows}


def skip_reason(
    memory: Memory | None, text_hash: str, identity: Identity, max_attempts: int
) -> str | None:
    """Why a pending comment need not be asked again, or None to ask.

    Held: the same text was judged negative by the same model and prompt, or judged positive or
    neutral too uncertainly under the same threshold; asking again would cost a call and give
    the same answer. Approved yet pending again: a human took the approval
    back, and the tool must not fight them. Failed too often: a human has to look. Ruled on by
    a reviewer, whatever the text now: a human's word is final.
    """
    if memory is not None and memory.reviewer is not None:
        return "ruled on by a human"
    if memory is None or memory.text_hash != text_hash:
        return None
    same_judge = (memory.model_digest, memory.prompt_hash) == (
        identity.model_digest,
        identity.prompt_hash,
    )
    if memory.outcome == Outcome.HELD and same_judge:
        # Only the uncertain ones depend on the threshold; a negative stays held at any.
        uncertain = memory.label in APPROVING_LABELS
        if not uncertain or memory.min_confidence == identity.min_confidence:
            return "held before"
    if memory.outcome == Outcome.APPROVED:
        return "approval taken back by a human"
    if memory.outcome == Outcome.FAILED and same_judge and memory.failures >= max_attempts:
        return "out of attempts"
    return None


def previous_failures(memory: Memory | None, text_hash: str, identity: Identity) -> int:
    if memory is None or memory.outcome != Outcome.FAILED or memory.text_hash != text_hash:
        return 0
    if (memory.model_digest, memory.prompt_hash) != (identity.model_digest, identity.prompt_hash):
        return 0
    return memory.failures


def record(
    conn: Connection,
    run_id: str,
    identity: Identity,
    items: Sequence[tuple[Decision, int]],
) -> None:
    """Audit rows and memory for a chunk of decisions, in the caller's transaction."""
    if not items:
        return
    now = datetime.now(UTC)
    # The threshold goes with the request options: with the confidence it explains the outcome.
    options = json.dumps(
        {**identity.options, "min_confidence": identity.min_confidence}, sort_keys=True
    )
    conn.execute(
        sa.insert(decisions),
        [
            {
                "run_id": run_id,
                "comment_id": d.comment.key,
                "text_hash": d.comment.text_hash,
                "label": d.label,
                "outcome": d.outcome,
                "raw_answer": None if d.raw_answer is None else d.raw_answer[:MAX_RAW_ANSWER],
                "model": identity.model,
                "model_digest": identity.model_digest,
                "host": None if d.host is None else redact(d.host)[:MAX_HOST],
                "coverage": d.coverage,
                "prompt_hash": identity.prompt_hash,
                "options": options,
                "latency_ms": None if d.latency is None else round(d.latency * 1000, 3),
                "error": None if d.error is None else redact(d.error),
                "confidence": d.confidence,
                "decided_at": now,
            }
            for d, _ in items
        ],
    )
    states = [
        {
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
    ruled = _ruled_by_humans(conn, [str(s["comment_id"]) for s in states])
    states = [s for s in states if s["comment_id"] not in ruled]
    if states:
        _upsert_states(conn, states)


def _ruled_by_humans(conn: Connection, keys: Sequence[str]) -> set[str]:
    query = sa.select(comment_state.c.comment_id).where(
        comment_state.c.comment_id.in_(keys), comment_state.c.reviewer.is_not(None)
    )
    return set(conn.execute(query).scalars())


def record_ruling(
    conn: Connection,
    session_id: str,
    comment: Comment,
    outcome: str,
    reviewer: str,
) -> None:
    """A reviewer's approval or rejection: its audit row and the memory that ends model calls.

    The audit row repeats the model, digest and prompt hash of the tool's latest decision on
    the comment, so a ruling can be read as a correction of that variant.
    """
    latest = conn.execute(
        sa.select(decisions.c.model, decisions.c.model_digest, decisions.c.prompt_hash)
        .where(decisions.c.comment_id == comment.key, decisions.c.reviewer.is_(None))
        .order_by(decisions.c.id.desc())
        .limit(1)
    ).first()
    model, digest, prompt_hash = latest if latest is not None else ("", None, "")
    now = datetime.now(UTC)
    conn.execute(
        sa.insert(decisions).values(
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
    _upsert_states(conn, [state])


def _upsert_states(conn: Connection, states: list[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        statement = insert(comment_state)
        updated = {c: statement.excluded[c] for c in states[0] if c != "comment_id"}
        conn.execute(
            statement.on_conflict_do_update(index_elements=["comment_id"], set_=updated), states
        )
        return
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        upsert = mysql_insert(comment_state)
        conn.execute(
            upsert.on_duplicate_key_update(
                {c: upsert.inserted[c] for c in states[0] if c != "comment_id"}
            ),
            states,
        )
        return
    # Portable fallback for other databases: same effect, two statements.
    keys = [s["comment_id"] for s in states]
    conn.execute(sa.delete(comment_state).where(comment_state.c.comment_id.in_(keys)))
    conn.execute(sa.insert(comment_state), states)


def tick_already_run(conn: Connection, scheduled_for: float) -> bool:
    """Did another replica's timer already run the batch for this tick?"""
    query = sa.select(sa.literal(1)).where(
        runs.c.scheduled_for >= scheduled_for, runs.c.status != "abandoned"
    )
    return conn.execute(query.limit(1)).first() is not None


def start_run(
    conn: Connection,
    run_id: str,
    owner: str,
    token: int | None,
    identity: Identity,
    scheduled_for: float | None = None,
) -> None:
    conn.execute(
        sa.insert(runs).values(
            id=run_id,
            scheduled_for=scheduled_for,
            started_at=datetime.now(UTC),
            status=RunStatus.RUNNING,
            owner=owner,
            fencing_token=token,
            model=identity.model,
            model_digest=identity.model_digest,
            prompt_hash=identity.prompt_hash,
        )
    )


def finish_run(
    conn: Connection,
    run_id: str,
    status: str,
    counts: dict[str, int],
    exit_code: int,
    error: str | None,
) -> None:
    conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(
            status=status,
            finished_at=datetime.now(UTC),
            exit_code=exit_code,
            error=None if error is None else redact(error),
            **counts,
        )
    )


def set_run_identity(conn: Connection, run_id: str, identity: Identity) -> None:
    conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(model_digest=identity.model_digest, prompt_hash=identity.prompt_hash)
    )


def recent_runs(conn: Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]
