"""The decision rule: what the tool does with what the model read. Pure, no I/O.

Approval is the only outcome that changes the site, so it needs everything to line up: the
whole text read, a label, one that approves with a confidence at or above the threshold (see
policy.py, whose rule ``moderate eval`` applies too), and an UPDATE that actually changed the
row.
Anything less holds or fails the comment, and either way it stays pending for a human (held)
or for another run (failed).
"""

from __future__ import annotations

from moderation import policy
from moderation.comment import Comment
from moderation.model.reading import Reading
from moderation.storage.audit import Decision
from moderation.vocabulary import Outcome

STALE = "comment changed or was moderated before the decision could be applied"


def decide(
    comment: Comment,
    reading: Reading,
    *,
    would_approve: bool,
    min_confidence: float,
    unqualified: str | None = None,
) -> Decision:
    """``would_approve``: the approval was (or, in a dry run, would be) written."""
    verdict = reading.verdict
    if verdict is None:
        # Not read (too long, or held by a rule): a human decides, and no model output is
        # recorded. A rule only ever holds.
        return Decision(
            comment=comment,
            label=None,
            outcome=Outcome.HELD,
            error=reading.unread_reason,
            raw_answer=None,
            latency=None,
            host=None,
            coverage=reading.coverage,
            rule=reading.rule,
        )
    label = verdict.label
    ruling = policy.rule(
        None if label is None else label.value,
        verdict.confidence,
        min_confidence,
        verdict.error,
        unqualified=unqualified,
    )
    if ruling.action == policy.FAIL:
        outcome, error = Outcome.FAILED, ruling.reason
    elif ruling.action == policy.HOLD:
        outcome, error = Outcome.HELD, ruling.reason  # why, when it was not simply negative
    elif would_approve:
        outcome, error = Outcome.APPROVED, None
    else:
        outcome, error = Outcome.FAILED, STALE
    return Decision(
        comment=comment,
        label=None if label is None else label.value,
        outcome=outcome,
        error=error,
        raw_answer=verdict.raw_answer,
        latency=verdict.latency,
        host=verdict.host,
        coverage=reading.coverage,
        confidence=verdict.confidence,
        answer_of=reading.answer_of,
    )
