"""The runs (``moderation_runs``): one row per batch, opened under the lease and closed with
its outcome; the scheduler's record of which tick ran."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.redact import redact
from moderation.storage.memory import Identity
from moderation.storage.tables import runs
from moderation.vocabulary import RunStatus


def tick_already_run(conn: Connection, site: str, scheduled_for: float) -> bool:
    """Did another replica's timer already run this site's batch for this tick?"""
    query = sa.select(sa.literal(1)).where(
        runs.c.site == site,
        runs.c.scheduled_for >= scheduled_for,
        runs.c.status != RunStatus.ABANDONED,
    )
    return conn.execute(query.limit(1)).first() is not None


def start_run(
    conn: Connection,
    run_id: str,
    owner: str,
    token: int | None,
    identity: Identity,
    scheduled_for: float | None = None,
    *,
    site: str,
) -> None:
    conn.execute(
        sa.insert(runs).values(
            id=run_id,
            site=site,
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


def recent_runs(conn: Connection, site: str, limit: int) -> list[dict[str, Any]]:
    query = sa.select(runs).where(runs.c.site == site)
    rows = conn.execute(query.order_by(runs.c.started_at.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]


def set_in_work(conn: Connection, run_id: str, comment_ids: list[str]) -> None:
    """Record the comments the run is working on (see batch.quarantine)."""
    conn.execute(sa.update(runs).where(runs.c.id == run_id).values(in_work=json.dumps(comment_ids)))


def previous_runs(conn: Connection, site: str, run_id: str, count: int) -> list[PreviousRun]:
    """The site's ``count`` runs started before ``run_id`` (the newest first)."""
    query = (
        sa.select(runs.c.status, runs.c.exit_code, runs.c.in_work)
        .where(runs.c.site == site, runs.c.id != run_id)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(count)
    )
    return [
        PreviousRun(row.status, row.exit_code, tuple(_ids(row.in_work)))
        for row in conn.execute(query)
    ]


def _ids(value: str | None) -> list[str]:
    try:
        ids = json.loads(value) if value else []
    except ValueError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


@dataclass(frozen=True, slots=True)
class PreviousRun:
    status: str
    exit_code: int | None
    in_work: tuple[str, ...]
