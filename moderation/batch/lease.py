"""One batch at a time per site: a lease row with an owner, an expiry and a fencing token.

The lease is named after the site (``batch:<site key>``, see ``moderation.site.key``): two
sites sharing one database run their batches at the same time, each under its own lease.

Works the same on SQLite and PostgreSQL because it relies only on single-row conditional
UPDATEs inside write transactions (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock the UPDATE
takes), never on ``SELECT ... FOR UPDATE``, which SQLAlchemy silently drops on SQLite.

The token only grows. Every write of a batch first runs :meth:`Lease.fence` in the same
transaction: if another process has taken the lease since (because this one was paused past its
expiry), the fence matches no row and the whole transaction is rolled back.

A holder that died (kill -9, OOM, reboot) blocks the next batch until its lease expires, which
the short default keeps to a minute; on the holder's own host it does not wait at all: the
owner names the host and the process, and a process that is gone is taken over at once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.errors import DatabaseError, LeaseHeld, LeaseLost
from moderation.storage.engines import run_write
from moderation.storage.tables import leases, runs
from moderation.vocabulary import RunStatus

log = logging.getLogger(__name__)

BATCH_LEASE = "batch"


def lease_name(site: str) -> str:
    """The batch lease of one site."""
    return f"{BATCH_LEASE}:{site}"


Clock = Callable[[], float]
# /proc's process start time is in clock ticks after a boot time given in whole seconds.
START_TIME_SLACK = 2.0


def new_owner() -> str:
    """Unique per process and per lease object, readable in the 'held by' message.

    ``host:pid:id``; the id starts with the PID namespace where there is one, because two
    containers can share a host name (host networking) but not their process tables.
    """
    namespace = _pid_namespace()
    prefix = f"{namespace}." if namespace else ""
    return f"{socket.gethostname()}:{os.getpid()}:{prefix}{uuid.uuid4().hex[:8]}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return ""


class Lease:
    def __init__(
        self,
        engine: Engine,
        ttl: float,
        *,
        owner: str | None = None,
        clock: Clock = time.time,
        site: str = "",
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.owner = owner or new_owner()
        self.clock = clock
        self.site = site
        self.name = lease_name(site)
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
            dead_holder = False
            if row.owner != self.owner and row.expires_at > now:
                holder = inspect_holder(row.owner, row.acquired_at)
                if holder.alive is not False:
                    raise LeaseHeld(held_message(row.owner, row.expires_at, holder))
                dead_holder = True
                log.warning("taking over the lease from %s: %s", row.owner, holder.reason)
            token = row.token + 1
            # The same compare-and-set whichever way it was freed: the token we read must still
            # be the row's, so two newcomers racing for a dead holder's lease cannot both win.
            free = sa.or_(leases.c.expires_at <= now, leases.c.owner == self.owner)
            if dead_holder:
                free = leases.c.owner == row.owner
            taken = conn.execute(
                sa.update(leases)
                .where(
                    leases.c.name == self.name,
                    leases.c.token == row.token,
                    free,
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
        # Whoever holds the site's lease is the only batch of the site that can be running: any
        # run of the site still marked running was left behind by a holder that died.
        conn.execute(
            sa.update(runs)
            .where(runs.c.site == self.site, runs.c.status == RunStatus.RUNNING)
            .values(status=RunStatus.ABANDONED, finished_at=datetime.now(UTC))
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


@dataclass(frozen=True, slots=True)
class Holder:
    """What can be told about a lease holder from here: ``alive`` is None when nothing can."""

    alive: bool | None
    reason: str


def inspect_holder(owner: str, acquired_at: float | None) -> Holder:
    """Whether the process named by ``owner`` (host:pid:id) still runs.

    Only a holder on this host can be checked. A PID can be reused after the holder died: a
    process with that PID that started after the lease was taken is not the holder (Linux,
    from /proc; elsewhere an existing PID counts as alive, and the lease expiry decides).
    """
    host, _, rest = owner.partition(":")
    pid_text, _, ident = rest.partition(":")
    if not pid_text.isdigit():
        return Holder(None, "its owner does not name a process")
    if host != socket.gethostname():
        return Holder(None, f"it runs on host {host}, which cannot be checked from here")
    namespace = ident.partition(".")[0] if "." in ident else ""
    if namespace != _pid_namespace():
        return Holder(None, f"it runs in another container on {host}, which cannot be checked")
    pid = int(pid_text)
    if pid == os.getpid():
        return Holder(True, "it is this process")
    if not _process_exists(pid):
        return Holder(False, f"process {pid} is gone")
    started = process_start_time(pid)
    if started is not None and acquired_at is not None and started > acquired_at + START_TIME_SLACK:
        return Holder(False, f"process {pid} is gone (its PID now belongs to a newer process)")
    return Holder(True, f"process {pid} is running on this host")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return True  # cannot tell: assume it runs, the expiry still frees the lease
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")  # a zombie has exited and only awaits its parent


def process_start_time(pid: int) -> float | None:
    """The process's start as Unix time, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # Field 22 of stat is the start time; ``fields`` starts at field 3 (the state).
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def held_message(owner: str, expires_at: float, holder: Holder | None = None) -> str:
    until = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
    message = f"another batch is running: lease held by {owner} until {until}"
    if holder is None:
        return message
    if holder.alive:
        return f"{message}; the holder looks alive ({holder.reason})"
    return (
        f"{message}; whether the holder is alive is unknown ({holder.reason}); "
        "if it died, the lease frees itself at that time"
    )
