"""Reading a whole comment: one model call, or overlapping windows when it is too long.

A decision must cover the whole text. A comment longer than ``MODERATION_MAX_COMMENT_CHARS``
is read in windows of that size, each starting ``size - overlap`` characters after the last,
so that any passage of up to ``overlap + 1`` characters lies whole inside at least one window:
an insult on a window boundary is still read in one piece. The comment approves only when
every window approves; the first window that does not ends the reading, and its verdict
(negative, or failed) is the comment's. A comment that would need more than
``MODERATION_MAX_WINDOWS`` windows is not read at all: it is held for a human, so that one
huge comment cannot spend a batch's time and requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from moderation import policy
from moderation.model.classifier import Classifier
from moderation.model.host import Verdict
from moderation.model.labels import Label

WHOLE = "whole"
UNREAD = "none"


@dataclass(frozen=True, slots=True)
class Reading:
    """What the model made of a whole comment, and how much of the text that covers."""

    # One verdict for the whole text (windows combined); None when the text was not read.
    verdict: Verdict | None
    # "whole", "N windows", "K of N windows" (stopped at a window that did not approve), "none".
    coverage: str
    # Why the text was not read (only when ``verdict`` is None).
    unread_reason: str | None = None
    # The rule that held the comment before the model was asked (see moderation.rules).
    rule: str | None = None
    # The comment whose model answer this reading reuses (same text, model, prompt and
    # options; see moderation.batch.answers); None when the model was asked for this one.
    answer_of: str | None = None


def window_starts(length: int, size: int, overlap: int) -> list[int]:
    """Offsets of the windows covering ``length`` characters; one window when it fits."""
    if length <= size:
        return [0]
    stride = size - overlap
    count = -(-(length - size) // stride) + 1  # ceil: the last window ends at the text's end
    return [min(i * stride, length - size) for i in range(count)]


def _passes(verdict: Verdict) -> bool:
    """Whether this window lets the reading go on: the policy's rule with the gate off (the
    confidence of the whole is judged once, by the batch, on the combined verdict)."""
    return policy.approves(verdict.label, None, 0.0)


async def read_whole(
    classifier: Classifier,
    text: str,
    *,
    size: int,
    overlap: int,
    max_windows: int,
    stop: asyncio.Event | None = None,
) -> Reading | None:
    """The comment's reading; None when the batch stopped before every window was read."""
    starts = window_starts(len(text), size, overlap)
    if len(starts) == 1:
        return Reading(await classifier.classify(text), WHOLE)
    total = len(starts)
    if total > max_windows:
        return Reading(
            None,
            UNREAD,
            f"too long to read whole: {len(text):,} characters need {total} windows of "
            f"{size:,}, more than MODERATION_MAX_WINDOWS ({max_windows}); left for a human",
        )
    verdicts: list[Verdict] = []
    for start in starts:
        if verdicts and stop is not None and stop.is_set():
            # Half a comment is no decision: it stays pending and is read again next run.
            return None
        verdict = await classifier.classify(text[start : start + size])
        verdicts.append(verdict)
        if not _passes(verdict):
            break
    read = len(verdicts)
    coverage = f"{total} windows" if read == total else f"{read} of {total} windows"
    return Reading(combine(verdicts, total), coverage)


def combine(verdicts: list[Verdict], total: int) -> Verdict:
    """One verdict for the windows read: the first that did not approve, else the least keen.

    Its confidence is that of the deciding window; when every window approves, the lowest of
    theirs (None if any has none), so the whole comment is only as sure as its least sure part.
    """
    deciding = next((v for v in verdicts if not _passes(v)), None)
    if deciding is None:
        labels = {v.label for v in verdicts}
        label: Label | None = Label.NEUTRAL if Label.NEUTRAL in labels else Label.POSITIVE
        error = None
        server_error = False
        known = [v.confidence for v in verdicts if v.confidence is not None]
        confidence = min(known) if len(known) == len(verdicts) else None
    else:
        label = deciding.label
        index = verdicts.index(deciding) + 1
        error = None if deciding.error is None else f"window {index} of {total}: {deciding.error}"
        server_error = deciding.server_error
        confidence = deciding.confidence
    answers = [
        f"[window {i}/{total}] {v.raw_answer}"
        for i, v in enumerate(verdicts, start=1)
        if v.raw_answer is not None
    ]
    hosts = list(dict.fromkeys(v.host for v in verdicts if v.host))
    return Verdict(
        label=label,
        raw_answer="\n".join(answers) if answers else None,
        error=error,
        latency=sum(v.latency for v in verdicts),
        host=", ".join(hosts) if hosts else None,
        server_error=server_error,
        confidence=confidence,
    )
