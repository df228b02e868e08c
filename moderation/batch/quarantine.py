"""The last defence against a comment that stops batches: hold it unasked, let the rest go on.

Every step before the model is linear in the text's length, and a step that raises holds its
comment instead of stopping the batch (``batch.checks``). Still, an input nobody foresaw could
crash the process (a bomb in a dependency, memory exhausted) or stall it until its lease is
taken (fenced). Without a record, the next batch would meet the same comment at the same place
and stop again, every run, for ever, and the honest comments behind it would wait with it.

So a batch keeps, in its run row, the comments it is working on: the heartbeat writes those in
work for more than a second whenever that set changes, and a batch that is fenced or fails
writes all of them as it ends. A comment found in work in each of the last two runs of the
site, both of which died (abandoned), were fenced or failed unexpectedly, is quarantined: the
next batch holds it for a human without asking anything (``rule: quarantined ...``, rule name
``quarantine``, in the audit row like any rule's hold) and moderates everything else.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy.engine import Engine

from moderation.storage import runs
from moderation.storage.engines import read_transaction, run_write
from moderation.vocabulary import ExitCode, RunStatus

QUARANTINE = "quarantine"
# Two stopped runs in a row: one could be chance (a deploy, the machine's OOM killer).
STOPPED_RUNS = 2
# Comments in work for longer than this are written down by the heartbeat.
STUCK_AFTER = 1.0


def reason(stopped: int = STOPPED_RUNS) -> str:
    return (
        f"rule: quarantined: in work each time the last {stopped} batches stopped "
        "(died, fenced or failed); held for a human, unread"
    )


def _stopped(run: runs.PreviousRun) -> bool:
    if run.status in (RunStatus.ABANDONED, RunStatus.FENCED):
        return True
    return run.status == RunStatus.FAILED and run.exit_code == ExitCode.FAILED


def quarantined(engine: Engine, site: str, run_id: str) -> frozenset[str]:
    """The comments to hold unread in this run: in work in each of the site's last runs,
    when each of them stopped."""
    with read_transaction(engine) as conn:
        previous = runs.previous_runs(conn, site, run_id, STOPPED_RUNS)
    if len(previous) < STOPPED_RUNS or not all(_stopped(run) for run in previous):
        return frozenset()
    common = set(previous[0].in_work)
    for run in previous[1:]:
        common &= set(run.in_work)
    return frozenset(common)


class InWork:
    """The comments this batch is working on, by id, with when each started.

    Changed on the batch's event loop and read from the heartbeat's thread: ``dict.copy`` is
    atomic under the GIL, so a reader never sees a dict mid-change."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._written: tuple[str, ...] = ()

    def begin(self, key: str) -> None:
        self._started[key] = time.monotonic()

    def end(self, key: str) -> None:
        self._started.pop(key, None)

    def all(self) -> list[str]:
        return sorted(self._started.copy())

    def stuck_change(self) -> list[str] | None:
        """The comments in work for more than STUCK_AFTER seconds, when that set differs from
        the one last returned; None when it does not."""
        now = time.monotonic()
        stuck = tuple(sorted(k for k, t in self._started.copy().items() if now - t > STUCK_AFTER))
        if stuck == self._written:
            return None
        self._written = stuck
        return list(stuck)


def write(engine: Engine, run_id: str, comment_ids: Iterable[str]) -> None:
    """Record on the run's row the comments it is working on."""
    ids = list(comment_ids)
    run_write(engine, lambda conn: runs.set_in_work(conn, run_id, ids))
