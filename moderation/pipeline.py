"""One batch: pending comments → classifier → decision → conditional approval + audit row.

Stages run concurrently and each stays bounded: a producer reads keyset pages of pending
comments, ``slots`` workers keep exactly that many model requests in flight, and a writer
applies decisions in chunks, one transaction each (approvals, audit rows, memory and the lease
fence together, so a crash at any instant leaves either all of a chunk or none of it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from . import migrate, store
from .classify import Verdict
from .comments import Comment, CommentsTable
from .db import create_engine, read_transaction, run_write
from .errors import (
    DatabaseError,
    LeaseLost,
    ModerationError,
    TickAlreadyRun,
)
from .lease import Lease
from .logs import current_run_id
from .pool import Classifier, OllamaClassifier
from .prompts import load_prompt
from .settings import Settings
from .store import APPROVED, FAILED, HELD, Decision, Identity

log = logging.getLogger(__name__)

STALE = "comment changed or was moderated before the decision could be applied"
FLUSH_IDLE_SECONDS = 0.5
OnDecision = Callable[[Decision], None]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the report keeps of a decision: never the whole body (a backlog can be huge)."""

    comment_id: Any
    label: str | None
    outcome: str
    error: str | None
    latency: float | None
    excerpt: str

    @classmethod
    def of(cls, decision: Decision) -> DecisionRecord:
        excerpt = " ".join(decision.comment.body[:200].split())[:60]
        return cls(
            decision.comment.id,
            decision.label,
            decision.outcome,
            decision.error,
            decision.latency,
            excerpt,
        )


@dataclass
class RunReport:
    """The result of one batch; ``to_json`` is the documented ``--json`` object."""

    run_id: str | None
    dry_run: bool
    identity: Identity | None = None
    decisions: list[DecisionRecord] = field(default_factory=list)
    tally: dict[str, int] = field(default_factory=lambda: {APPROVED: 0, HELD: 0, FAILED: 0})
    skipped: int = 0
    rejected: int = 0
    circuit_open: bool = False
    deadline_reached: bool = False
    lease_lost: bool = False
    cancelled: bool = False

    def add(self, decision: Decision) -> None:
        self.decisions.append(DecisionRecord.of(decision))
        self.tally[decision.outcome] += 1

    def count(self, outcome: str) -> int:
        return self.tally[outcome]

    @property
    def exit_code(self) -> int:
        if self.lease_lost:
            return LeaseLost.exit_code
        incomplete = self.circuit_open or self.deadline_reached or self.cancelled
        return 3 if incomplete or self.count(FAILED) else 0

    @property
    def status(self) -> str:
        if self.lease_lost:
            return "fenced"
        if self.circuit_open:
            return "circuit-open"
        if self.deadline_reached:
            return "deadline"
        if self.cancelled:
            return "cancelled"
        return "done"

    def counts(self) -> dict[str, int]:
        return {
            "considered": len(self.decisions),
            "approved": self.count(APPROVED),
            "held": self.count(HELD),
            "failed": self.count(FAILED),
            "skipped": self.skipped,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            **self.counts(),
            "rejected": self.rejected,
            "status": self.status,
            "model": self.identity.model if self.identity else None,
            "model_digest": self.identity.model_digest if self.identity else None,
            "prompt_hash": self.identity.prompt_hash if self.identity else None,
            "decisions": [
                {
                    "comment_id": d.comment_id,
                    "label": d.label,
                    "outcome": d.outcome,
                    "error": d.error,
                }
                for d in self.decisions
            ],
        }


@dataclass(frozen=True, slots=True)
class _Work:
    comment: Comment
    failures_before: int


def run_batch(
    settings: Settings,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    classifier: Classifier | None = None,
    on_decision: OnDecision | None = None,
    cancel: threading.Event | None = None,
    scheduled_for: float | None = None,
) -> RunReport:
    """Run one batch to the end; the synchronous entry point for cron, the CLI and web apps.

    Setting ``cancel`` (from another thread) stops taking new comments; answers already in
    flight are still written, so the batch ends within one request timeout.
    """
    return asyncio.run(
        run_batch_async(
            settings,
            dry_run=dry_run,
            limit=limit,
            classifier=classifier,
            on_decision=on_decision,
            cancel=cancel,
            scheduled_for=scheduled_for,
        )
    )


async def run_batch_async(
    settings: Settings,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    classifier: Classifier | None = None,
    on_decision: OnDecision | None = None,
    clock: Callable[[], float] = time.time,
    cancel: threading.Event | None = None,
    scheduled_for: float | None = None,
) -> RunReport:
    engine = create_engine(settings.database_url, read_only=dry_run)
    try:
        comments = await asyncio.to_thread(CommentsTable.reflect, engine, settings)
        memory_available = await asyncio.to_thread(_own_tables_ready, engine, settings, dry_run)
        if classifier is None:
            classifier = OllamaClassifier(settings, load_prompt(settings.prompt))
        batch = _Batch(settings, engine, comments, classifier, dry_run, clock)
        batch.limit = limit or settings.limit
        batch.memory_available = memory_available
        batch.on_decision = on_decision
        batch.cancel = cancel
        batch.scheduled_for = scheduled_for
        try:
            return await batch.run()
        finally:
            await classifier.close()
    finally:
        engine.dispose()


def _own_tables_ready(engine: Engine, settings: Settings, dry_run: bool) -> bool:
    """Bring the tool's tables up to date (unless told not to); a dry run only looks."""
    if dry_run:
        return migrate.current_revision(engine) is not None
    migrate.ensure_current(engine, settings.auto_migrate)
    return True


class _Batch:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        comments: CommentsTable,
        classifier: Classifier,
        dry_run: bool,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.comments = comments
        self.classifier = classifier
        self.dry_run = dry_run
        self.limit: int | None = None
        self.memory_available = True
        self.on_decision: OnDecision | None = None
        self.cancel: threading.Event | None = None
        self.scheduled_for: float | None = None
        self.report = RunReport(run_id=None if dry_run else str(uuid.uuid4()), dry_run=dry_run)
        self.lease = None if dry_run else Lease(engine, settings.lease_seconds, clock=clock)
        self.stop = asyncio.Event()
        self.identity: Identity | None = None

    async def run(self) -> RunReport:
        report = self.report
        current_run_id.set(report.run_id)  # every log line of this batch carries it
        if self.lease is not None:
            assert report.run_id is not None
            token = await asyncio.to_thread(self.lease.acquire, report.run_id)
            try:
                await asyncio.to_thread(self._start_run, token)
            except BaseException:
                await asyncio.to_thread(self.lease.release)
                raise
        try:
            self.identity = report.identity = await self.classifier.prepare()
            log.info(
                "batch started on %s: model %s (%s), prompt %s%s",
                self.settings.safe_database_url,
                self.identity.model,
                (self.identity.model_digest or "?")[:12],
                self.identity.prompt_hash[:12],
                " (dry run)" if self.dry_run else "",
            )
            await self._process()
        except BaseException as exc:
            await self._finish(exc)
            raise
        await self._finish(None)
        counts = report.counts()
        log.info(
            "batch %s: %d considered, %d approved, %d held, %d failed, %d skipped",
            report.status,
            *(counts[k] for k in ("considered", "approved", "held", "failed", "skipped")),
        )
        return report

    def _start_run(self, token: int) -> None:
        assert self.lease is not None and self.report.run_id is not None
        run_id, owner = self.report.run_id, self.lease.owner
        identity = Identity(self.settings.model, None, "", {})
        tick = self.scheduled_for

        def _start(conn: Connection) -> None:
            # Replicas' timers fire at the same tick; the lease serialises them, and this check
            # makes the later ones stand down instead of running a second batch for that tick.
            if tick is not None and store.tick_already_run(conn, tick):
                raise TickAlreadyRun()
            store.start_run(conn, run_id, owner, token, identity, tick)

        run_write(self.engine, _start)

    async def _finish(self, error: BaseException | None) -> None:
        if self.lease is None:
            return
        report = self.report
        if isinstance(error, ModerationError):
            status, exit_code, message = "failed", error.exit_code, error.message
        elif error is not None:
            status, exit_code, message = "failed", 1, f"{type(error).__name__}: {error}"
        else:
            status, exit_code, message = report.status, report.exit_code, None

        def _write(conn: Connection) -> None:
            store.finish_run(conn, report.run_id or "", status, report.counts(), exit_code, message)
            if self.identity is not None:
                store.set_run_identity(conn, report.run_id or "", self.identity)

        try:
            await asyncio.to_thread(run_write, self.engine, _write)
            await asyncio.to_thread(self.lease.release)
        except DatabaseError as exc:
            # The database is what failed; the next run marks this one abandoned.
            log.error("could not record the end of run %s: %s", report.run_id, exc)

    async def _process(self) -> None:
        # Twice the slots: a worker never waits for the producer, and memory does not grow
        # with the backlog.
        work: asyncio.Queue[_Work | None] = asyncio.Queue(
            maxsize=max(2 * self.classifier.slots, 16)
        )
        results: asyncio.Queue[tuple[_Work, Verdict] | None] = asyncio.Queue()
        workers = [
            asyncio.create_task(self._worker(work, results)) for _ in range(self.classifier.slots)
        ]
        producer = asyncio.create_task(self._produce(work, len(workers)))
        writer = asyncio.create_task(self._write(results))
        heartbeat = asyncio.create_task(self._heartbeat()) if self.lease else None
        watcher = asyncio.create_task(self._watch_cancel()) if self.cancel else None
        try:
            deadline = self.settings.deadline
            _, unfinished = await asyncio.wait(workers, timeout=deadline)
            if unfinished:
                self.report.deadline_reached = True
                log.warning("batch deadline of %ss reached; the rest stays pending", deadline)
            for task in (producer, *workers):
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in [*workers, producer]:
                task.cancel()
            await asyncio.gather(*workers, producer, return_exceptions=True)
            await results.put(None)
            for helper in (heartbeat, watcher):
                if helper is not None:
                    helper.cancel()
        await writer  # re-raises a database error from the last flush

    async def _produce(self, work: asyncio.Queue[_Work | None], workers: int) -> None:
        try:
            await self._queue_pending(work)
        except BaseException:
            # Unblock the workers: drop what is queued (it stays pending) and tell them to stop.
            self.stop.set()
            while not work.empty():
                work.get_nowait()
            for _ in range(workers):
                work.put_nowait(None)
            raise
        for _ in range(workers):
            await work.put(None)

    async def _queue_pending(self, work: asyncio.Queue[_Work | None]) -> None:
        queued = 0
        warmed = False
        pages = self.comments.pending_pages(self.engine, self.settings.batch_size)
        while not self.stop.is_set():
            page = await asyncio.to_thread(next, pages, None)
            if page is None:
                return
            for item in await asyncio.to_thread(self._select, page):
                if self.stop.is_set() or (self.limit is not None and queued >= self.limit):
                    return
                if not warmed:
                    await self.classifier.warm_up()
                    warmed = True
                await work.put(item)
                queued += 1

    def _select(self, page: list[Comment]) -> list[_Work]:
        """Leave out comments that memory says need not be asked again."""
        assert self.identity is not None
        memory: dict[str, store.Memory] = {}
        if self.memory_available:
            with read_transaction(self.engine) as conn:
                memory = store.recall(conn, [c.key for c in page])
        selected = []
        for comment in page:
            remembered = memory.get(comment.key)
            digest = comment.text_hash
            if store.skip_reason(remembered, digest, self.identity, self.settings.max_attempts):
                self.report.skipped += 1
                continue
            failures = store.previous_failures(remembered, digest, self.identity)
            selected.append(_Work(comment, failures))
        return selected

    async def _worker(
        self,
        work: asyncio.Queue[_Work | None],
        results: asyncio.Queue[tuple[_Work, Verdict] | None],
    ) -> None:
        while not self.stop.is_set():
            item = await work.get()
            if item is None:
                return
            verdict = await self.classifier.classify(item.comment.body)
            results.put_nowait((item, verdict))
            if self.classifier.circuit_open:
                self.report.circuit_open = True
                self.stop.set()

    async def _write(self, results: asyncio.Queue[tuple[_Work, Verdict] | None]) -> None:
        """Apply decisions in chunks: full ones at once, partial ones when answers pause."""
        chunk: list[tuple[_Work, Verdict]] = []
        while True:
            if not chunk:
                item = await results.get()
            else:
                try:
                    item = await asyncio.wait_for(results.get(), FLUSH_IDLE_SECONDS)
                except TimeoutError:
                    await self._flush(chunk)
                    chunk = []
                    continue
            if item is None:
                break
            chunk.append(item)
            if len(chunk) >= self.settings.batch_size:
                await self._flush(chunk)
                chunk = []
        if chunk:
            await self._flush(chunk)

    async def _flush(self, chunk: list[tuple[_Work, Verdict]]) -> None:
        if self.report.lease_lost:
            self.report.rejected += len(chunk)
            return
        if self.dry_run:
            decisions = [(_decide(w.comment, v, would_approve=True), w) for w, v in chunk]
        else:
            try:
                decisions = await asyncio.to_thread(
                    run_write, self.engine, lambda c: self._apply(c, chunk)
                )
            except LeaseLost:
                self.report.lease_lost = True
                self.report.rejected += len(chunk)
                self.stop.set()
                log.error("lease lost: %d decisions were not written", len(chunk))
                return
            except DatabaseError:
                self.stop.set()
                raise
        for decision, _ in decisions:
            log.debug(
                "comment %s: %s -> %s%s",
                decision.comment.id,
                decision.label,
                decision.outcome,
                f" ({decision.error})" if decision.error else "",
            )
            self.report.add(decision)
            if self.on_decision is not None:
                self.on_decision(decision)

    def _apply(
        self, conn: Connection, chunk: list[tuple[_Work, Verdict]]
    ) -> list[tuple[Decision, _Work]]:
        """One transaction: fence, approve, audit, remember. All of it or none of it."""
        assert self.lease is not None and self.identity is not None and self.report.run_id
        self.lease.fence(conn)
        wanted = [w.comment for w, v in chunk if v.label is not None and v.label.approves]
        approved = self.comments.approve(conn, wanted)
        decisions = [
            (_decide(w.comment, v, would_approve=w.comment.key in approved), w) for w, v in chunk
        ]
        store.record(
            conn,
            self.report.run_id,
            self.identity,
            [(d, w.failures_before) for d, w in decisions],
        )
        return decisions

    async def _watch_cancel(self) -> None:
        assert self.cancel is not None
        while not self.cancel.is_set():
            await asyncio.sleep(0.1)
        self.report.cancelled = True
        self.stop.set()

    async def _heartbeat(self) -> None:
        assert self.lease is not None
        while True:
            await asyncio.sleep(self.lease.ttl / 3)
            try:
                await asyncio.to_thread(self.lease.renew)
            except LeaseLost:
                self.report.lease_lost = True
                self.stop.set()
                return
            except DatabaseError as exc:
                log.warning("could not renew the lease: %s", exc)


def _decide(comment: Comment, verdict: Verdict, *, would_approve: bool) -> Decision:
    label = verdict.label
    if label is None:
        outcome, error = FAILED, verdict.error or "no label"
    elif not label.approves:
        outcome, error = HELD, None
    elif would_approve:
        outcome, error = APPROVED, None
    else:
        outcome, error = FAILED, STALE
    return Decision(
        comment=comment,
        label=None if label is None else label.value,
        outcome=outcome,
        error=error,
        raw_answer=verdict.raw_answer,
        latency=verdict.latency,
        host=verdict.host,
    )
