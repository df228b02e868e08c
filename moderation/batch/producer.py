"""The producer: keyset pages of pending comments, minus those memory says not to ask again."""

from __future__ import annotations

import asyncio

from moderation.batch.state import BatchState, Work
from moderation.comment import Comment
from moderation.storage import memory
from moderation.storage.audit import PreviousAnswer, previous_answers
from moderation.storage.engines import read_transaction


async def produce(state: BatchState, work: asyncio.Queue[Work | None], workers: int) -> None:
    """Fill ``work`` and then tell each worker to stop; on failure, unblock them at once."""
    try:
        await _queue_pending(state, work)
    except BaseException:
        # Unblock the workers: drop what is queued (it stays pending) and tell them to stop.
        state.stop.set()
        while not work.empty():
            work.get_nowait()
        for _ in range(workers):
            work.put_nowait(None)
        raise
    for _ in range(workers):
        await work.put(None)


async def _queue_pending(state: BatchState, work: asyncio.Queue[Work | None]) -> None:
    queued = 0
    warmed = False
    pages = state.comments.pending_pages(state.engine, state.settings.batch_size)
    while not state.stop.is_set():
        page = await asyncio.to_thread(next, pages, None)
        if page is None:
            return
        # A whole page is counted before any of it is queued: every copy of a text that
        # floods this page is held, not only those after the limit.
        state.rules.count(c.body for c in page if c.problem is None)
        selected, answers = await asyncio.to_thread(select, state, page)
        state.answers.add_previous(answers)
        for item in selected:
            if state.stop.is_set() or (state.limit is not None and queued >= state.limit):
                return
            if not warmed:
                # Only now: an hourly run with nothing pending never makes Ollama load the model.
                await state.classifier.warm_up()
                warmed = True
            await work.put(item)
            queued += 1


def select(state: BatchState, page: list[Comment]) -> tuple[list[Work], list[PreviousAnswer]]:
    """Leave out comments that memory says need not be asked again; with the rest, the
    answers earlier batches had on the same texts (see batch.answers)."""
    assert state.identity is not None
    if not state.memory_available:
        return [Work(comment, 0) for comment in page], []
    with read_transaction(state.engine) as conn:
        recalled = memory.recall(conn, state.comments.site, [c.key for c in page])
        selected = []
        for comment in page:
            remembered = recalled.get(comment.key)
            digest = comment.text_hash
            if memory.skip_reason(remembered, digest, state.identity, state.settings.max_attempts):
                state.report.skipped += 1
                if state.progress.skipped is not None:
                    state.progress.skipped(1)
                continue
            failures = memory.previous_failures(remembered, digest, state.identity)
            selected.append(Work(comment, failures))
        readable = [w.comment.text_hash for w in selected if w.comment.problem is None]
        return selected, previous_answers(conn, state.comments.site, readable, state.identity)
