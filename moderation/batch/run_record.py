"""The run's own row in ``moderation_runs``: opened under the lease, closed with the outcome."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Connection

from moderation.batch.state import BatchState
from moderation.errors import DatabaseError, ModerationError, TickAlreadyRun
from moderation.storage import runs
from moderation.storage.engines import run_write
from moderation.storage.memory import Identity
from moderation.vocabulary import ExitCode, RunStatus

log = logging.getLogger(__name__)


def start_run(state: BatchState, token: int) -> None:
    assert state.lease is not None and state.report.run_id is not None
    run_id, owner = state.report.run_id, state.lease.owner
    identity = Identity(state.settings.model, None, "", {})
    tick = state.scheduled_for
    site = state.comments.site

    def _start(conn: Connection) -> None:
        # Replicas' timers fire at the same tick; the lease serialises them, and this check
        # makes the later ones stand down instead of running a second batch for that tick.
        if tick is not None and runs.tick_already_run(conn, site, tick):
            raise TickAlreadyRun()
        runs.start_run(conn, run_id, owner, token, identity, tick, site=site)

    run_write(state.engine, _start)


async def finish_run(state: BatchState, error: BaseException | None) -> None:
    """Record how the run ended and release the lease; a dry run has neither."""
    if state.lease is None:
        return
    report = state.report
    exit_code: int
    if isinstance(error, ModerationError):
        status, exit_code, message = RunStatus.FAILED, error.exit_code, error.message
    elif isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        # The operator's doing (Ctrl-C), no comment's: the quarantine leaves it out.
        status, exit_code, message = RunStatus.INTERRUPTED, ExitCode.INTERRUPTED, "interrupted"
    elif error is not None:
        status, exit_code = RunStatus.FAILED, ExitCode.FAILED
        message = f"{type(error).__name__}: {error}"
    else:
        status, exit_code, message = report.status, report.exit_code, None

    # A run that stops early says which comments it was working on (see batch.quarantine).
    in_work = state.in_work.all() if status in (RunStatus.FAILED, RunStatus.FENCED) else None

    def _write(conn: Connection) -> None:
        runs.finish_run(conn, report.run_id or "", status, report.counts(), exit_code, message)
        if in_work is not None:
            runs.set_in_work(conn, report.run_id or "", in_work)
        if state.identity is not None:
            runs.set_run_identity(conn, report.run_id or "", state.identity)

    try:
        await asyncio.to_thread(run_write, state.engine, _write)
        await asyncio.to_thread(state.lease.release)
    except DatabaseError as exc:
        # The database is what failed; the next run marks this one abandoned.
        log.error("could not record the end of run %s: %s", report.run_id, exc)
