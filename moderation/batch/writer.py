"""The writer: decisions applied in chunks, one transaction each.

A chunk's fence check, approvals, audit rows and memory commit together, so a crash at any
instant leaves either all of a chunk or none of it; the report counts only what was written.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Connection

from moderation.batch.state import BatchState, Work
from moderation.comment import Comment
from moderation.errors import DatabaseError, LeaseLost
from moderation.model.reading import Reading
from moderation.storage import audit
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
    """A site behind an API: fence, then write over HTTP with no database lock held, then
    record what the site now holds.

    The requests of a chunk can take seconds; holding the database's write lock through them
    would stall the lease's renewal (SQLite has one writer). The audit rows are written
    without a second fence: the approvals happened, and the trail must say so even if the
    lease was lost meanwhile (the next chunk's fence stops the batch). A crash between the
    requests and the commit leaves approvals with no audit row (see site/wordpress_rest.py).
    """
    assert state.lease is not None
    run_write(state.engine, state.lease.fence)
    approved = state.comments.approve(None, _wanted(state, chunk))
    return run_write(state.engine, lambda conn: record(state, conn, chunk, approved))


def _wanted(state: BatchState, chunk: list[Answer]) -> list[Comment]:
    """Which to try to approve: the same decision, assuming the write succeeds."""
    return [
        w.comment
        for w, r in chunk
        if state.decide(w.comment, r, would_approve=True).outcome == Outcome.APPROVED
    ]


def record(
    state: BatchState, conn: Connection, chunk: list[Answer], approved: set[str]
) -> list[tuple[Decision, Work]]:
    """The decisions given which comments the site now holds approved: audit and memory."""
    assert state.identity is not None and state.report.run_id
    decisions = [
        (state.decide(w.comment, r, would_approve=w.comment.key in approved), w) for w, r in chunk
    ]
    audit.record(
        conn,
        state.report.run_id,
        state.identity,
        [(d, w.failures_before) for d, w in decisions],
        site=state.comments.site,
    )
    return decisions
