"""The writer: decisions applied in chunks, one transaction each.

A chunk's fence check, approvals, audit rows and memory commit together, so a crash at any
instant leaves either all of a chunk or none of it; the report counts only what was written. A
site behind an API cannot join the transaction: its writes go through intents instead
(``apply_remote``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set as AbstractSet

from sqlalchemy.engine import Connection

from moderation import crashpoints
from moderation.batch.state import BatchState, Work
from moderation.comment import Comment
from moderation.errors import DatabaseError, LeaseLost
from moderation.model.reading import Reading
from moderation.storage import audit, intents
from moderation.storage.audit import Decision
from moderation.storage.engines import run_write
from moderation.text.inert import one_line
from moderation.vocabulary import Outcome

log = logging.getLogger(__name__)

FLUSH_IDLE_SECONDS = 0.5
Answer = tuple[Work, Reading]


async def write(state: BatchState, results: asyncio.Queue[Answer | None]) -> None:
    """Apply decisions in chunks: full ones at once, partial ones when answers pause."""
    chunk: list[Answer] = []
    while True:
        if not chunk:
            item = await results.get()
        else:
            try:
                item = await asyncio.wait_for(results.get(), FLUSH_IDLE_SECONDS)
            except TimeoutError:
                await flush(state, chunk)
                chunk = []
                continue
        if item is None:
            break
        chunk.append(item)
        if len(chunk) >= state.settings.batch_size:
            await flush(state, chunk)
            chunk = []
    if chunk:
        await flush(state, chunk)


async def flush(state: BatchState, chunk: list[Answer]) -> None:
    report = state.report
    if report.lease_lost:
        report.rejected += len(chunk)
        return
    if state.dry_run:
        decisions = [(state.decide(w.comment, r, would_approve=True), w) for w, r in chunk]
    else:
        try:
            if state.comments.writes_in_transaction:
                decisions = await asyncio.to_thread(
                    run_write, state.engine, lambda c: apply(state, c, chunk)
                )
            else:
                decisions = await asyncio.to_thread(apply_remote, state, chunk)
        except LeaseLost:
            report.lease_lost = True
            report.rejected += len(chunk)
            state.stop.set()
            log.error("lease lost: %d decisions were not written", len(chunk))
            return
        except DatabaseError:
            state.stop.set()
            raise
    for decision, _ in decisions:
        log.debug(
            "comment %s: %s -> %s%s",
            decision.comment.id,
            decision.label,
            decision.outcome,
            # A reason may quote a server's text: one line, nothing a terminal would obey.
            f" ({one_line(decision.error)})" if decision.error else "",
        )
        report.add(decision)
        if state.on_decision is not None:
            state.on_decision(decision)


def apply(state: BatchState, conn: Connection, chunk: list[Answer]) -> list[tuple[Decision, Work]]:
    """One transaction: fence, approve, audit, remember. All of it or none of it."""
    assert state.lease is not None
    state.lease.fence(conn)
    approved = state.comments.approve(conn, _wanted(state, chunk))
    return record(state, conn, chunk, approved)


def apply_remote(state: BatchState, chunk: list[Answer]) -> list[tuple[Decision, Work]]:
    """A site behind an API: the intents, then the writes over HTTP with no database lock
    held, then the audit rows with the intents marked done (see ``storage.intents``).

    The requests of a chunk can take seconds; holding the database's write lock through them
    would stall the lease's renewal (SQLite has one writer). The intents commit with the
    fence, so a batch that lost its lease writes nothing. The audit rows are written without a
    second fence: the approvals happened, and the trail must say so even if the lease was lost
    meanwhile (the next chunk's fence stops the batch). A crash anywhere in between leaves
    open intents, which the next batch settles before it reads new work (``batch.settle``).
    """
    assert state.lease is not None and state.report.run_id
    lease, run_id, site = state.lease, state.report.run_id, state.comments.site
    planned = _planned(state, chunk)
    if planned:
        crashpoints.reach("before-intent")

    def _open(conn: Connection) -> dict[str, int]:
        lease.fence(conn)
        return intents.record(conn, site, run_id, planned)

    opened = run_write(state.engine, _open)
    approved = state.comments.approve(None, [plan.comment for plan in planned])
    unsure = set(state.comments.unsure) & set(opened)

    def _record(conn: Connection) -> list[tuple[Decision, Work]]:
        done = intents.finish(conn, opened, approved, unsure)
        # An approval whose intent another batch settled meanwhile (this one lost its lease)
        # has its audit row already; one whose result is unknown gets it when it is settled.
        return record(state, conn, chunk, approved, leave_out=unsure | (approved - done))

    return run_write(state.engine, _record)


def _wanted(state: BatchState, chunk: list[Answer]) -> list[Comment]:
    """Which to try to approve: the same decision, assuming the write succeeds."""
    return [
        w.comment
        for w, r in chunk
        if state.decide(w.comment, r, would_approve=True).outcome == Outcome.APPROVED
    ]


def _planned(state: BatchState, chunk: list[Answer]) -> list[intents.Planned]:
    """The approvals to write, each with the decision it belongs to (its intent)."""
    assert state.identity is not None
    planned = []
    for w, r in chunk:
        decision = state.decide(w.comment, r, would_approve=True)
        if decision.outcome == Outcome.APPROVED:
            payload = intents.decision_json(decision, w.failures_before, state.identity)
            planned.append(intents.Planned(w.comment, Outcome.APPROVED, decision=payload))
    return planned


def record(
    state: BatchState,
    conn: Connection,
    chunk: list[Answer],
    approved: AbstractSet[str],
    leave_out: AbstractSet[str] = frozenset(),
) -> list[tuple[Decision, Work]]:
    """The decisions given which comments the site now holds approved: audit and memory
    (none for the comments in ``leave_out``: their intents speak for them)."""
    assert state.identity is not None and state.report.run_id
    decisions = [
        (state.decide(w.comment, r, would_approve=w.comment.key in approved), w)
        for w, r in chunk
        if w.comment.key not in leave_out
    ]
    audit.record(
        conn,
        state.report.run_id,
        state.identity,
        [(d, w.failures_before) for d, w in decisions],
        site=state.comments.site,
    )
    return decisions
