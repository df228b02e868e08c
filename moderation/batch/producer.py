"""The producer: keyset pages of pending comments, minus those memory says not to ask again,
read once the writes an earlier run left unfinished are settled."""

from __future__ import annotations

import asyncio
from typing import Any

from moderation.batch.settle import settle
from moderation.batch.state import BatchState, Work
from moderation.comment import Comment, Page
from moderation.storage import memory
from moderation.storage.audit import PreviousAnswer, previous_answers
from moderation.storage.engines import read_transaction


async def produce(state: BatchState, work: asyncio.Queue[Work | None], workers: int) -> None:
    """Fill ``work`` and then tell each worker to stop; on failure, unblock them at once."""
    try:
        await _settle(state)
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


async def _settle(state: BatchState) -> None:
    """Before any new work: the writes an earlier run left unfinished (see batch.settle)."""
    if state.dry_run or not state.memory_available or state.comments.writes_in_transaction:
        return
    await asyncio.to_thread(settle, state.engine, state.comments, state.lease)


async def _queue_pending(state: BatchState, work: asyncio.Queue[Work | None]) -> None:
    if await _nothing_new(state):
        return
    queued = 0
    warmed = False
    flood = _FloodCount(state)
    remembered = None
    if state.memory_available:
        assert state.identity is not None
        remembered = memory.Remembered(
            state.comments.site, state.identity, state.settings.max_attempts
        )
    pages = state.comments.pending_pages(state.engine, state.settings.batch_size, remembered)
    while not state.stop.is_set():
        page = await asyncio.to_thread(next, pages, None)
        if page is None:
            return
        _count_skipped(state, page.skipped)
        # A whole page is counted before any of it is queued: every copy of a text that
        # floods this page is held, not only those after the limit.
        await flood.count(page)
        selected, answers = await asyncio.to_thread(select, state, page.comments)
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


async def _nothing_new(state: BatchState) -> bool:
    """True, with every pending comment counted as skipped, when memory skips them all under
    this batch's judge (asked while the batch started, see batch.nothing_new)."""
    if state.nothing_new is None:
        return False
    assert state.identity is not None
    skipped = await state.nothing_new.skipped(state.identity)
    if skipped is None:
        return False
    _count_skipped(state, skipped)
    return True


class _FloodCount:
    """Counts every pending text read so far for the flood rule, the skipped rows' included.

    Rows the site left out unread (decided before) are counted only when a later comment is to
    be read, by reading their texts then: a rerun with nothing new reads no text at all.
    """

    _NONE = object()

    def __init__(self, state: BatchState) -> None:
        self.state = state
        self.on = state.rules.max_duplicates > 0
        # The ``after`` of the first page whose skipped rows are not counted yet.
        self.uncounted_after: Any = self._NONE

    async def count(self, page: Page) -> None:
        if not self.on:
            return
        if not page.comments:
            if self.uncounted_after is self._NONE:
                self.uncounted_after = page.after
            return
        if page.skipped == 0 and self.uncounted_after is self._NONE:
            self.state.rules.count(c.body for c in page.comments if c.problem is None)
            return
        after = page.after if self.uncounted_after is self._NONE else self.uncounted_after
        self.uncounted_after = self._NONE
        texts = await asyncio.to_thread(
            lambda: list(self.state.comments.pending_texts(self.state.engine, after, page.last))
        )
        self.state.rules.count(texts)


def _count_skipped(state: BatchState, skipped: int) -> None:
    if skipped:
        state.report.skipped += skipped
        if state.progress.skipped is not None:
            state.progress.skipped(skipped)


def select(state: BatchState, page: list[Comment]) -> tuple[list[Work], list[PreviousAnswer]]:
    """Leave out comments that memory says need not be asked again; with the rest, the
    answers earlier batches had on the same texts (see batch.answers)."""
    assert state.identity is not None
    if not page:
        return [], []
    if not state.memory_available:
        return [Work(comment, 0) for comment in page], []
    with read_transaction(state.engine) as conn:
        recalled = memory.recall(conn, state.comments.site, [c.key for c in page])
        selected = []
        for comment in page:
            remembered = recalled.get(comment.key)
            digest = comment.text_hash
            if memory.skip_reason(remembered, digest, state.identity, state.settings.max_attempts):
                _count_skipped(state, 1)
                continue
            failures = memory.previous_failures(remembered, digest, state.identity)
            selected.append(Work(comment, failures))
        readable = [w.comment.text_hash for w in selected if w.comment.problem is None]
        return selected, previous_answers(conn, state.comments.site, readable, state.identity)
