"""What an answer means for a comment: approve it, hold it for a human, or leave it pending.

One pure function, shared by the batch (which then applies it to the database) and by
``moderate eval`` (whose approval rates must be what a batch would have done).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moderation.vocabulary import APPROVING_LABELS

APPROVE, HOLD, FAIL = "approve", "hold", "fail"
# How the reasons begin when the model itself may not approve (not qualified on labelled
# comments, or its reversal-rate brake is on), whatever it answered.
UNTRUSTED_REASONS = ("unqualified:", "reversal-rate brake:")


@dataclass(frozen=True, slots=True)
class Ruling:
    action: str  # APPROVE, HOLD or FAIL
    reason: str | None  # why it was not approved; None when it was


def rule(
    label: str | None,
    confidence: float | None,
    min_confidence: float,
    error: str | None = None,
    *,
    unqualified: str | None = None,
) -> Ruling:
    """The ruling on one answer.

    No label: the call failed and the comment stays pending. A label that does not approve:
    held. An approving label less sure than ``min_confidence``, or of unknown confidence while
    the gate is on: held as uncertain, since publishing is the one mistake nobody reviews.
    ``min_confidence`` 0 turns the gate off. ``unqualified``: why the model may not approve
    at all (see ``moderation.evaluation.qualify``); every approving answer is then held.
    """
    if label is None:
        return Ruling(FAIL, error or "no label")
    label = str(label)
    if label not in APPROVING_LABELS:
        return Ruling(HOLD, None)
    if unqualified is not None:
        # A model that has not proven itself on labelled comments approves nothing.
        return Ruling(HOLD, unqualified)
    if min_confidence > 0:
        if confidence is None:
            return Ruling(HOLD, f"uncertain ({label}: no confidence)")
        if confidence < min_confidence:
            return Ruling(HOLD, uncertain_reason(label, confidence, min_confidence))
    return Ruling(APPROVE, None)


def approves(label: str | None, confidence: float | None, min_confidence: float) -> bool:
    return rule(label, confidence, min_confidence).action == APPROVE


def uncertain_reason(label: str, confidence: float, min_confidence: float) -> str:
    """``uncertain (positive 0.62 < 0.80)``: the confidence is rounded down, never up to the
    threshold, so the comparison printed is always the one that held the comment."""
    digits = 2
    while digits < 6 and round(min_confidence, digits) != min_confidence:
        digits += 1
    scale = 10**digits
    shown = math.floor(confidence * scale) / scale
    return f"uncertain ({label} {shown:.{digits}f} < {min_confidence:.{digits}f})"
