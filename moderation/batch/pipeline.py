"""One batch: pending comments → classifier → decision → conditional approval + audit row.

Stages run concurrently and each stays bounded: a producer reads keyset pages of pending
comments (``producer``), ``slots`` workers keep exactly that many model requests in flight,
and a writer applies decisions in chunks, one transaction each (``writer``). This module only
wires them together, under the lease, between opening and closing the run's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy.engine import Engine

from moderation import rules
from moderation.batch import notify, quarantine
from moderation.batch.checks import check_soon
from moderation.batch.decide import STALE
from moderation.batch.heartbeat import Heartbeat
from moderation.batch.lease import Lease
from moderation.batch.nothing_new import asking_whether_anything_is_new
from moderation.batch.notify import Notifier
from moderation.batch.producer import produce
from moderation.batch.run_record import finish_run, start_run
from moderation.batch.run_report import DecisionRecord, RunReport
from moderation.batch.state import BatchState, OnDecision, Progress, Work
from moderation.batch.trust import UNQUALIFIED_THRESHOLD, establish
from moderation.batch.writer import write
from moderation.errors import ModerationError
from moderation.logs import current_run_id
from moderation.model.classifier import Classifier, OllamaClassifier
from moderation.model.host import Verdict
from moderation.model.prompts import load_prompt
from moderation.model.reading import UNREAD, Reading, read_whole
from moderation.settings import Settings
from moderation.site.open import is_rest, open_site
from moderation.site.options import read_site_rules
from moderation.storage import migrate
from moderation.storage.claim import claim
from moderation.storage.engines import connected

log = logging.getLogger(__name__)

__all__ = [
    "STALE",
    "DecisionRecord",
    "OnDecision",
    "Progress",
    "RunReport",
    "run_batch",
    "run_batch_async",
]


def run_batch(
    settings: Settings,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    classifier: Classifier | None = None,
    on_decision: OnDecision | None = None,
    cancel: threading.Event | None = None,
    scheduled_for: float | None = None,
    progress: Progress | None = None,
    notifier: Notifier | None = None,
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
            progress=progress,
            notifier=notifier,
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
    progress: Progress | None = None,
    notifier: Notifier | None = None,
) -> RunReport:
    """One batch, then the notifications it calls for (``notifier``: the default sends to
    MODERATION_NOTIFY_URLS; a dry run sends nothing)."""
    if notifier is None and settings.notify_targets and not dry_run:
        notifier = Notifier(settings)
    if dry_run:
        notifier = None
    try:
        return await _batch(
            settings,
            dry_run=dry_run,
            limit=limit,
            classifier=classifier,
            on_decision=on_decision,
            clock=clock,
            cancel=cancel,
            scheduled_for=scheduled_for,
            progress=progress,
            notifier=notifier,
        )
    except ModerationError as exc:
        if notifier is not None:
            scheduled = scheduled_for is not None
            tally = await asyncio.to_thread(
                notify.after_failure, notifier, exc, scheduled=scheduled
            )
            if tally is not None:
                exc.notifications = tally.to_json()
        raise


async def _batch(
    settings: Settings,
    *,
    dry_run: bool,
    limit: int | None,
    classifier: Classifier | None,
    on_decision: OnDecision | None,
    clock: Callable[[], float],
    cancel: threading.Event | None,
    scheduled_for: float | None,
    progress: Progress | None,
    notifier: Notifier | None,
) -> RunReport:
    # The template first: a broken one is a configuration error before any database work.
    prompt = load_prompt(settings.prompt) if classifier is None else None
    # With the REST API the database holds only the tool's own tables: a first run makes it.
    must_exist = not is_rest(settings)
    with (
        connected(settings.database_url, read_only=dry_run, must_exist=must_exist) as engine,
        contextlib.ExitStack() as stack,
    ):
        comments = await asyncio.to_thread(stack.enter_context, open_site(engine, settings))
        memory_available = await asyncio.to_thread(
            _own_tables_ready, engine, settings, comments.site, dry_run
        )
        # Asked now, while the lease is taken and the model checked (see batch.nothing_new).
        async with asking_whether_anything_is_new(
            engine, comments, settings.max_attempts, ready=memory_available
        ) as nothing_new:
            site = await asyncio.to_thread(read_site_rules, engine, settings)
            progress = progress or Progress()
            if progress.pending is not None:
                progress.pending(await asyncio.to_thread(comments.count_pending, engine))
            if classifier is None:
                assert prompt is not None
                classifier = OllamaClassifier(settings, prompt)
            state = BatchState(
                settings=settings,
                engine=engine,
                comments=comments,
                classifier=classifier,
                dry_run=dry_run,
                report=RunReport(run_id=None if dry_run else str(uuid.uuid4()), dry_run=dry_run),
                lease=None
                if dry_run
                else Lease(engine, settings.lease_seconds, clock=clock, site=comments.site),
                limit=limit or settings.limit,
                memory_available=memory_available,
                on_decision=on_decision,
                cancel=cancel,
                scheduled_for=scheduled_for,
                progress=progress,
                nothing_new=nothing_new,
                rules=rules.context_from(
                    settings,
                    site_hold_words=site.hold_words,
                    site_never_approve_words=site.never_approve_words,
                    site_max_links=site.max_links,
                    held_types=comments.held_types,
                ),
            )
            try:
                report = await _run(state)
            finally:
                await classifier.close()
            if notifier is not None:
                tally = await asyncio.to_thread(
                    notify.after_batch, notifier, engine, comments, report
                )
                report.notifications = tally.to_json()
            return report


def _own_tables_ready(engine: Engine, settings: Settings, site: str, dry_run: bool) -> bool:
    """Bring the tool's tables up to date (unless told not to) and claim rows from before the
    site key for this site; a dry run only looks."""
    if dry_run:
        return migrate.current_revision(engine) is not None
    migrate.ensure_current(engine, settings.auto_migrate)
    claim(engine, site)
    return True


async def _run(state: BatchState) -> RunReport:
    report = state.report
    current_run_id.set(report.run_id)  # every log line of this batch carries it
    if state.lease is not None:
        assert report.run_id is not None
        token = await asyncio.to_thread(state.lease.acquire, report.run_id)
        try:
            await asyncio.to_thread(start_run, state, token)
        except BaseException:
            await asyncio.to_thread(state.lease.release)
            raise
    # Renewed from the start: with a short lease, the model check and warm-up alone could
    # outlast it.
    heartbeat = None
    if state.lease is not None:
        heartbeat = Heartbeat(
            state.lease, report, state.in_work, state.stop, asyncio.get_running_loop()
        )
        heartbeat.start()
    try:
        if state.memory_available:
            state.quarantined = await asyncio.to_thread(
                quarantine.quarantined, state.engine, state.comments.site, report.run_id or ""
            )
            if state.quarantined:
                log.warning(
                    "%d comment(s) in work each time the last %d batches stopped: held unread",
                    len(state.quarantined),
                    quarantine.STOPPED_RUNS,
                )
        state.identity = await state.classifier.prepare()
        await establish(state)
        # The threshold is part of what an outcome depends on: see memory.skip_reason.
        gate = state.threshold if state.unqualified is None else UNQUALIFIED_THRESHOLD
        identity = dataclasses.replace(state.identity, min_confidence=gate)
        state.identity = report.identity = identity
        log.info(
            "batch started on %s: model %s (%s), prompt %s%s",
            state.settings.safe_database_url,
            state.identity.model,
            (state.identity.model_digest or "?")[:12],
            state.identity.prompt_hash[:12],
            " (dry run)" if state.dry_run else "",
        )
        await _process(state)
    except BaseException as exc:
        await _stop(heartbeat)
        await finish_run(state, exc)
        raise
    await _stop(heartbeat)
    await finish_run(state, None)
    counts = report.counts()
    log.info(
        "batch %s: %d considered, %d approved, %d held, %d failed, %d skipped",
        report.status,
        *(counts[k] for k in ("considered", "approved", "held", "failed", "skipped")),
    )
    return report


async def _process(state: BatchState) -> None:
    slots = state.classifier.slots
    # Twice the slots: a worker never waits for the producer, and memory does not grow
    # with the backlog.
    work: asyncio.Queue[Work | None] = asyncio.Queue(maxsize=max(2 * slots, 16))
    results: asyncio.Queue[tuple[Work, Reading] | None] = asyncio.Queue()
    workers = [asyncio.create_task(_worker(state, work, results)) for _ in range(slots)]
    producer = asyncio.create_task(produce(state, work, len(workers)))
    writer = asyncio.create_task(write(state, results))
    watcher = asyncio.create_task(_watch_cancel(state)) if state.cancel else None
    try:
        deadline = state.settings.deadline
        _, unfinished = await asyncio.wait(workers, timeout=deadline)
        if unfinished:
            state.report.deadline_reached = True
            log.warning("batch deadline of %ss reached; the rest stays pending", deadline)
        for task in (producer, *workers):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in [*workers, producer]:
            task.cancel()
        await asyncio.gather(*workers, producer, return_exceptions=True)
        await results.put(None)
        if watcher is not None:
            watcher.cancel()
    await writer  # re-raises a database error from the last flush


async def _worker(
    state: BatchState,
    work: asyncio.Queue[Work | None],
    results: asyncio.Queue[tuple[Work, Reading] | None],
) -> None:
    classifier = state.classifier
    while not state.stop.is_set():
        item = await work.get()
        if item is None:
            return
        key = item.comment.key
        state.in_work.begin(key)
        try:
            reading = await _read(state, item)
        finally:
            state.in_work.end(key)
        if reading is not None:
            results.put_nowait((item, reading))
            if state.progress.answered is not None:
                state.progress.answered()
        if classifier.circuit_open:
            state.report.circuit_open = True
            state.stop.set()


async def _read(state: BatchState, item: Work) -> Reading | None:
    """The reading of one comment: unreadable, held before the model, or the model's."""
    settings = state.settings
    if item.comment.problem is not None:
        # Nothing the model could read (the body is not text): this row fails alone, with
        # the reason, is retried up to MODERATION_MAX_ATTEMPTS, and the batch goes on.
        failed = Verdict(None, None, item.comment.problem, 0.0, None)
        return Reading(failed, UNREAD)
    held = await check_soon(item.comment, state.rules, state.quarantined)
    if held is not None:
        # Held before the model: it is not asked, and the reason goes in the audit row.
        return held
    return await state.answers.read(
        item.comment,
        functools.partial(
            read_whole,
            state.classifier,
            item.comment.body,
            size=settings.max_comment_chars,
            overlap=settings.window_overlap,
            max_windows=settings.max_windows,
            stop=state.stop,
        ),
    )


async def _watch_cancel(state: BatchState) -> None:
    assert state.cancel is not None
    while not state.cancel.is_set():
        await asyncio.sleep(0.1)
    state.report.cancelled = True
    state.stop.set()


async def _stop(heartbeat: Heartbeat | None) -> None:
    if heartbeat is not None:
        await asyncio.to_thread(heartbeat.stop)
