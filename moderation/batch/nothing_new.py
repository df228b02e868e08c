"""Whether a batch has anything new to read, asked of the database while the batch starts.

A batch run every few minutes mostly finds only comments it decided before. Which of them
memory skips depends on the judge (the model's digest, the prompt, the threshold), known only
once the model has been checked; but the judge rarely changes between batches. So as soon as
the tool's tables are ready, the judge of the newest decision is read and the site is asked,
under that judge, whether every pending comment is skipped (``count_if_all_skipped``), on a
worker thread while the lease is taken and the model checked. When the batch's own judge
turns out to be the same, that answer stands and no page is read; otherwise it is dropped
and the pages are read as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.engine import Engine

from moderation.site.protocol import Site
from moderation.storage import memory
from moderation.storage.engines import read_transaction

log = logging.getLogger(__name__)


class NothingNew:
    def __init__(self, engine: Engine, comments: Site, max_attempts: int) -> None:
        self._judge = asyncio.create_task(asyncio.to_thread(_newest_judge, engine, comments))
        self._count = asyncio.create_task(self._count_under_it(engine, comments, max_attempts))

    async def skipped(self, judge: memory.Identity) -> int | None:
        """How many comments are pending when memory skips them all under ``judge``; None when
        some are to be read, or when that was not asked under this very judge."""
        try:
            guessed = await self._judge
            if guessed is None or not memory.same_judge(guessed, judge):
                return None
            return await self._count
        except Exception as exc:  # the pages will meet the same database, and say so
            log.debug("not known whether anything is new: %s", exc)
            return None

    async def settled(self) -> None:
        """Wait for the worker thread: its connection must end before the engine does."""
        await asyncio.gather(self._judge, self._count, return_exceptions=True)

    async def _count_under_it(
        self, engine: Engine, comments: Site, max_attempts: int
    ) -> int | None:
        judge = await self._judge
        if judge is None:
            return None
        remembered = memory.Remembered(comments.site, judge, max_attempts)
        return await asyncio.to_thread(comments.count_if_all_skipped, engine, remembered)


def _newest_judge(engine: Engine, comments: Site) -> memory.Identity | None:
    with read_transaction(engine) as conn:
        return memory.latest_judge(conn, comments.site)


@contextlib.asynccontextmanager
async def asking_whether_anything_is_new(
    engine: Engine, comments: Site, max_attempts: int, *, ready: bool
) -> AsyncIterator[NothingNew | None]:
    """The question asked for the length of the block (when the tool's tables are ``ready``),
    its worker thread done before the block ends, however it ends."""
    nothing_new = NothingNew(engine, comments, max_attempts) if ready else None
    try:
        yield nothing_new
    finally:
        if nothing_new is not None:
            await nothing_new.settled()
