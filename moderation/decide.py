"""The decision rule: what the tool does with one model verdict. Pure, no I/O.

Approval is the only outcome that changes the site, so it needs everything to line up: a
label, one that approves, and an UPDATE that actually changed the row. Anything less holds or
fails the comment, and a failed comment stays pending for another run or a human.
"""

from __future__ import annotations

from .classify import Verdict
from .comments import Comment
from .store import APPROVED, FAILED, HELD, Decision

STALE = "comment changed or was moderated before the decision could be applied"


def decide(comment: Comment, verdict: Verdict, *, would_approve: bool) -> Decision:
    """``would_approve``: the approval was (or, in a dry run, would be) written."""
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
