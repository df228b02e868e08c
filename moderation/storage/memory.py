"""The tool's memory of each comment (``moderation_comment_state``): what it last decided, on
which text, model and prompt, and whether a human has ruled since; read before asking again.

Keyed by the site and the comment id: two sites in one database have ids in common, and one
site's memory must never decide for the other (``moderation.site.key``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.storage.tables import comment_state
from moderation.vocabulary import APPROVING_LABELS, Outcome


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


def recall(conn: Connection, site: str, keys: Sequence[str]) -> dict[str, Memory]:
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
        ).where(comment_state.c.site == site, comment_state.c.comment_id.in_(keys))
    ).all()  # one fetch for the page, not a driver call per row
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


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a site's pending-rows query joins to leave out the comments memory would skip
    (``skip_condition``): the memory of one site, under one judge."""

    site: str
    identity: Identity
    max_attempts: int

    def outerjoin(
        self,
        comments: sa.FromClause,
        key: sa.ColumnElement[Any],
        text_hash: sa.ColumnElement[Any],
    ) -> tuple[sa.Join, sa.ColumnElement[bool]]:
        """``comments`` LEFT JOIN memory, and the column that is true where a row is skipped."""
        on = skip_condition(self.site, self.identity, self.max_attempts, key, text_hash)
        return comments.outerjoin(comment_state, on), comment_state.c.comment_id.is_not(None)

    def skipped(
        self,
        comments: sa.FromClause,
        key: sa.ColumnElement[Any],
        text_hash: sa.ColumnElement[Any],
        lookup: sa.ColumnElement[bool] | None = None,
    ) -> sa.Join:
        """``comments`` JOIN memory: one row per comment that memory skips (its primary key
        holds one row per key). ``lookup``, an equality the condition implies anyway, lets
        the database find each memory row's comment by the comments' own index."""
        on = skip_condition(self.site, self.identity, self.max_attempts, key, text_hash)
        return comments.join(comment_state, on if lookup is None else sa.and_(lookup, on))


def skip_condition(
    site: str,
    identity: Identity,
    max_attempts: int,
    key: sa.ColumnElement[Any],
    text_hash: sa.ColumnElement[Any],
) -> sa.ColumnElement[bool]:
    """``skip_reason`` in SQL: true for the memory row of the comment whose stored key is
    ``key`` and whose text hashes to ``text_hash`` when it gives a reason not to ask.

    The condition of a LEFT JOIN from the site's pending rows to their memory, so that a rerun
    over a large backlog of decided comments leaves them out in the database instead of
    reading each into Python. It must hold exactly where ``skip_reason`` gives a reason (a
    test compares the two on every database); the producer still applies ``skip_reason`` to
    what it reads.
    """
    state = comment_state.c
    same_judge = sa.and_(
        state.model_digest.is_not_distinct_from(identity.model_digest),
        state.prompt_hash == identity.prompt_hash,
    )
    approving = sorted(str(label) for label in APPROVING_LABELS)
    held_before = sa.and_(
        state.outcome == Outcome.HELD.value,
        same_judge,
        sa.or_(
            state.label.is_(None),
            state.label.not_in(approving),
            state.min_confidence == identity.min_confidence,
        ),
    )
    out_of_attempts = sa.and_(
        state.outcome == Outcome.FAILED.value, same_judge, state.failures >= max_attempts
    )
    return sa.and_(
        state.site == site,
        state.comment_id == key,
        sa.or_(
            state.reviewer.is_not(None),
            sa.and_(
                state.text_hash == text_hash,
                sa.or_(held_before, state.outcome == Outcome.APPROVED.value, out_of_attempts),
            ),
        ),
    )


def latest_judge(conn: Connection, site: str) -> Identity | None:
    """The judge (model digest, prompt, threshold) of the newest decision memory holds for
    ``site``: the likeliest judge of the next batch, before its model is even checked."""
    row = conn.execute(
        sa.select(
            comment_state.c.model_digest,
            comment_state.c.prompt_hash,
            comment_state.c.min_confidence,
        )
        .where(comment_state.c.site == site, comment_state.c.min_confidence.is_not(None))
        .order_by(comment_state.c.updated_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Identity("", row[0], row[1], {}, min_confidence=row[2])


def same_judge(one: Identity, other: Identity) -> bool:
    """Whether memory skips the same comments under both (``skip_reason`` reads only these)."""
    return (one.model_digest, one.prompt_hash, one.min_confidence) == (
        other.model_digest,
        other.prompt_hash,
        other.min_confidence,
    )


def previous_failures(memory: Memory | None, text_hash: str, identity: Identity) -> int:
    if memory is None or memory.outcome != Outcome.FAILED or memory.text_hash != text_hash:
        return 0
    if (memory.model_digest, memory.prompt_hash) != (identity.model_digest, identity.prompt_hash):
        return 0
    return memory.failures


def ruled_by_humans(conn: Connection, site: str, keys: Sequence[str]) -> set[str]:
    query = sa.select(comment_state.c.comment_id).where(
        comment_state.c.site == site,
        comment_state.c.comment_id.in_(keys),
        comment_state.c.reviewer.is_not(None),
    )
    return set(conn.execute(query).scalars())


KEY = ("site", "comment_id")


def remember(conn: Connection, states: list[dict[str, Any]]) -> None:
    """Upsert the memory of these comments; each state names its ``site`` and ``comment_id``."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        statement = insert(comment_state)
        updated = {c: statement.excluded[c] for c in states[0] if c not in KEY}
        conn.execute(
            statement.on_conflict_do_update(index_elements=list(KEY), set_=updated), states
        )
        return
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        upsert = mysql_insert(comment_state)
        conn.execute(
            upsert.on_duplicate_key_update(
                {c: upsert.inserted[c] for c in states[0] if c not in KEY}
            ),
            states,
        )
        return
    # Portable fallback for other databases: same effect, two statements.
    for state in states:
        conn.execute(
            sa.delete(comment_state).where(
                comment_state.c.site == state["site"],
                comment_state.c.comment_id == state["comment_id"],
            )
        )
    conn.execute(sa.insert(comment_state), states)
