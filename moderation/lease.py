"""One batch at a time per database: a lease row with an owner, an expiry and a fencing token.

Works the same on SQLite and PostgreSQL because it relies only on single-row conditional
UPDATEs inside write transactions (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock the UPDATE
takes), never on ``SELECT ... FOR UPDATE``, which SQLAlchemy silently drops on SQLite.

The token only grows. Every write of a batch first runs :meth:`Lease.fence` in the same
transaction: if another process has taken the lease since (because this one was paused past its
expiry), the fence matches no row and the whole transaction is rolled back.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .db import run_write
from .errors import DatabaseError, LeaseHeld, LeaseLost
from .tables import leases, runs

BATCH_LEASE = "batch"
Clock = Callable[[], float]


def new_owner() -> str:
    """Unique per process and per lease object, readable in the 'held by' message."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(
        self,
        engine: Engine,
        ttl: float,
        *,
        owner: str | None = None,
        clock: Clock = time.time,
        name: str = BATCH_LEASE,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.owner = owner or new_owner()
        self.clock = clock
        self.name = name
        self.token: int | None = None

    def acquire(self, run_id: str | None = None) -> int:
        """Take the lease or raise LeaseHeld; marks runs left 'running' by a dead holder."""
        try:
            return run_write(self.engine, lambda conn: self._acquire(conn, run_id))
        except DatabaseError as exc:
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
            # Two first-ever acquirers inserted the row at once; the other one won.
            return run_write(self.engine, lambda conn: self._acquire(conn, run_id))

    def _acquire(self, conn: Connection, run_id: str | None) -> int:
        now = self.clock()
        row = conn.execute(sa.select(leases).where(leases.c.name == self.name)).first()
        if row is None:
            token = 1
            conn.execute(
                sa.insert(leases).values(
                    name=self.name,
                    owner=self.owner,
                    token=token,
                    acquired_at=now,
                    expires_at=now + self.ttl,
                    run_id=run_id,
                )
            )
        else:
            if row.owner != self.owner and row.expires_at > now:
                raise LeaseHeld(held_message(row.owner, row.expires_at))
            token = row.token + 1
            taken = conn.execute(
                sa.update(leases)
                .where(
                    leases.c.name == self.name,
                    leases.c.token == row.token,
                    sa.or_(leases.c.expires_at <= now, leases.c.owner == self.owner),
                )
                .values(
                    owner=self.owner,
                    token=token,
                    acquired_at=now,
                    expires_at=now + self.ttl,
                    run_id=run_id,
                )
            )
            if taken.rowcount != 1:
                raise LeaseHeld("another batch took the lease at the same moment")
        # Whoever holds the lease is the only batch that can be running: any run still marked
        # running was left behind by a holder that died.
        conn.execute(
            sa.update(runs)
            .where(runs.c.status == "running")
            .values(status="abandoned", finished_at=datetime.now(UTC))
        )
        self.token = token
        return token

    def fence(self, conn: Connection) -> None:
        """Inside a write transaction: prove the lease is still ours, and extend it."""
        now = self.clock()
        renewed = conn.execute(
            sa.update(leases)
            .where(
                leases.c.name == self.name,
                leases.c.owner == self.owner,
                leases.c.token == self.token,
                leases.c.expires_at > now,
            )
            .values(expires_at=now + self.ttl)
        )
        if renewed.rowcount != 1:
            raise LeaseLost()

    def renew(self) -> None:
        run_write(self.engine, self.fence)

    def release(self) -> None:
        """Let the next batch start at once (the token stays, so fencing still holds)."""
        if self.token is None:
            return

        def _release(conn: Connection) -> None:
            conn.execute(
                sa.update(leases)
                .where(
                    leases.c.name == self.name,
                    leases.c.owner == self.owner,
                    leases.c.token == self.token,
                )
                .values(expires_at=self.clock())
            )

        run_write(self.engine, _release)
        self.token = None


def held_message(owner: str, expires_at: float) -> str:
    until = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
    return f"another batch is running: lease held by {owner} until {until}"
