"""The lease's heartbeat, on a thread of its own.

The batch's event loop runs the comments' checks, the model requests and the writer; a renewal
that waited for the loop would wait on whatever the loop is doing. So the heartbeat is a plain
thread: it renews the lease every third of its time to live, whatever one comment costs, and
between renewals writes down the comments stuck in work (see batch.quarantine). When the lease
is lost it tells the loop to stop taking work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from moderation.batch.lease import Lease
from moderation.batch.quarantine import InWork, write
from moderation.batch.run_report import RunReport
from moderation.errors import DatabaseError, LeaseLost

log = logging.getLogger(__name__)

# How often the thread looks at the comments in work; renewals are every ttl / 3.
TICK = 1.0


class Heartbeat:
    def __init__(
        self,
        lease: Lease,
        report: RunReport,
        in_work: InWork,
        stop: asyncio.Event,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.lease = lease
        self.report = report
        self.in_work = in_work
        self.stop_batch = stop
        self.loop = loop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; returns once a renewal in progress has landed (a renewal cut off
        half-way could still extend the lease after its release)."""
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = self.lease.ttl / 3
        renewed = time.monotonic()
        while not self._done.wait(min(TICK, interval)):
            if time.monotonic() - renewed >= interval:
                try:
                    self.lease.renew()
                    renewed = time.monotonic()
                except LeaseLost:
                    self.report.lease_lost = True
                    self.loop.call_soon_threadsafe(self.stop_batch.set)
                    return
                except DatabaseError as exc:
                    log.warning("could not renew the lease: %s", exc)
            stuck = self.in_work.stuck_change()
            if stuck is not None and self.report.run_id is not None:
                try:
                    write(self.lease.engine, self.report.run_id, stuck)
                except DatabaseError as exc:
                    log.warning("could not record the comments in work: %s", exc)
