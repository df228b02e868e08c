"""One model request per text: a reading shared by every copy of the same text.

What the model answers depends on the text, the model, the prompt and the request options,
nothing else. Copies of one text (a greeting posted twice, a comment sent again after an
error, a spam run below the flood rule's limit) each get a decision of their own, under the
batch's own gate, but not each a request: the first copy's reading serves the others, in this
batch (copies read at the same time wait for the first) and in later ones (the audit trail
keeps every answer with its text's hash, model digest, prompt hash and options; see
``audit.previous_answers``).

Only a reading that is an answer is shared: a failure (a timeout, garbage) is the request's,
not the text's, so a copy whose first reading failed asks again. The reused reading keeps the
label, confidence and raw answer, carries no latency or host (no request was made) and names
the comment whose answer it is (``answer_of`` in the audit row), so the decision can be
explained from the database alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable

from moderation.comment import Comment
from moderation.model.host import Verdict
from moderation.model.labels import Label
from moderation.model.reading import Reading
from moderation.storage.audit import PreviousAnswer

Ask = Callable[[], Awaitable[Reading | None]]


def is_answer(reading: Reading | None) -> bool:
    """Whether a reading says what the model thinks of the text (not how a request went)."""
    verdict = None if reading is None else reading.verdict
    return verdict is not None and verdict.label is not None and verdict.error is None


def reused(reading: Reading, source: str) -> Reading:
    """``reading`` as another copy of its text receives it: no request, no latency, a source."""
    assert reading.verdict is not None
    verdict = dataclasses.replace(reading.verdict, latency=0.0, host=None)
    return dataclasses.replace(reading, verdict=verdict, answer_of=source)


def from_audit(answer: PreviousAnswer) -> Reading:
    """A reading from an earlier batch's audit row."""
    verdict = Verdict(
        label=Label(answer.label),
        raw_answer=answer.raw_answer,
        error=None,
        latency=0.0,
        host=None,
        confidence=answer.confidence,
    )
    return Reading(verdict, answer.coverage, answer_of=answer.comment_id)


class Answers:
    """The readings of this batch and the earlier answers found for its texts, by text hash."""

    def __init__(self) -> None:
        # A future per text being read or read: copies wait for the first reading's result,
        # (reading, key of the comment it was read for); the reading is None when it failed.
        self._by_text: dict[str, asyncio.Future[tuple[Reading | None, str]]] = {}

    def add_previous(self, answers: Iterable[PreviousAnswer]) -> None:
        """Answers found in the audit trail; a reading of this batch is never replaced."""
        loop = asyncio.get_running_loop()
        for answer in answers:
            if answer.text_hash in self._by_text:
                continue
            future: asyncio.Future[tuple[Reading | None, str]] = loop.create_future()
            future.set_result((from_audit(answer), answer.comment_id))
            self._by_text[answer.text_hash] = future

    async def read(self, comment: Comment, ask: Ask) -> Reading | None:
        """The reading of ``comment``: another copy's answer when there is one, else ``ask``."""
        key = comment.text_hash
        first = self._by_text.get(key)
        if first is not None:
            reading, source = await asyncio.shield(first)
            if reading is not None:
                if reading.answer_of is not None:
                    return reading  # from an earlier batch: it names its source already
                return reused(reading, source)
            # The first copy's request failed: this copy asks for itself.
            return await ask()
        future: asyncio.Future[tuple[Reading | None, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self._by_text[key] = future
        reading = None
        try:
            reading = await ask()
        finally:
            shared = reading if is_answer(reading) else None
            if shared is None:
                # Nothing to share: later copies ask for themselves.
                del self._by_text[key]
            future.set_result((shared, comment.key))
        return reading
