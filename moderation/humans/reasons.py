"""Why a comment waits for a human, as one word a filter can use and a moderator can read.

Each waiting comment has exactly one reason, read from the tool's latest decision on it (its
outcome, label and error): the first of these that fits.

- ``failed``: no usable answer (a timeout, a server error, a garbled answer);
- ``quarantined``: it was in work each time the last batches stopped, so it is held unread
  (``rule: quarantined ...``, rule name ``quarantine``);
- ``rule``: a rule held it before the model was asked (links, the site's words, a flood...);
- ``unqualified``: the model may not approve anything yet (it has not passed its test on
  labelled comments, or the reversal-rate brake is on), so even a positive answer waits;
- ``long``: too long for the model to read whole;
- ``negative``: the model judged it negative;
- ``unsure``: positive or neutral, but less sure than the threshold.

The rule is written twice: in SQL, so that a page, a filter and the counts are worked out by
the database a page at a time, and in Python, for a site outside the database. A test holds
the two to the same answers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from moderation.policy import UNTRUSTED_REASONS
from moderation.rules import RULE_PREFIX
from moderation.vocabulary import APPROVING_LABELS, Outcome

FAILED, QUARANTINED, RULE, UNQUALIFIED = "failed", "quarantined", "rule", "unqualified"
LONG, NEGATIVE, UNSURE = "long", "negative", "unsure"
# In the order the filters are offered: what the model said first, then what kept it from
# saying anything.
REASONS = (NEGATIVE, UNSURE, UNQUALIFIED, RULE, QUARANTINED, LONG, FAILED)
TITLES = {
    NEGATIVE: "Negative",
    UNSURE: "Not sure",
    UNQUALIFIED: "Model not trusted yet",
    RULE: "Held by a rule",
    QUARANTINED: "Quarantined",
    LONG: "Too long",
    FAILED: "Failed",
}
# How the errors of these holds begin (batch.quarantine and model.reading write them).
QUARANTINE_PREFIX = RULE_PREFIX + "quarantined"
TOO_LONG_PREFIX = "too long"


def reason_of(outcome: str, label: str | None, error: str | None) -> str:
    """The reason a waiting comment waits, from the tool's latest decision on it."""
    error = error or ""
    if outcome == Outcome.FAILED:
        return FAILED
    if error.startswith(QUARANTINE_PREFIX):
        return QUARANTINED
    if error.startswith(RULE_PREFIX):
        return RULE
    if error.startswith(UNTRUSTED_REASONS):
        return UNQUALIFIED
    if error.startswith(TOO_LONG_PREFIX):
        return LONG
    if label is not None and label not in APPROVING_LABELS:
        return NEGATIVE
    return UNSURE


def reason_column(
    outcome: sa.ColumnElement[Any], label: sa.ColumnElement[Any], error: sa.ColumnElement[Any]
) -> sa.ColumnElement[str]:
    """:func:`reason_of` as an SQL expression over the same three columns."""

    def starts(prefix: str) -> sa.ColumnElement[bool]:
        # Compared exactly, as str.startswith does: SQLite's LIKE ignores case.
        return sa.func.substr(error, 1, len(prefix)) == prefix

    approving = sorted(str(name) for name in APPROVING_LABELS)
    return sa.case(
        (outcome == str(Outcome.FAILED), FAILED),
        (starts(QUARANTINE_PREFIX), QUARANTINED),
        (starts(RULE_PREFIX), RULE),
        (sa.or_(*(starts(prefix) for prefix in UNTRUSTED_REASONS)), UNQUALIFIED),
        (starts(TOO_LONG_PREFIX), LONG),
        (sa.and_(label.is_not(None), label.not_in(approving)), NEGATIVE),
        else_=UNSURE,
    )


def plain_untrusted(error: str) -> str:
    """Why the model may not approve, in a moderator's words (the page offers the tool's own
    words beside them, for whoever looks after the model)."""
    if error.startswith("reversal-rate brake:"):
        return (
            "Its approvals are paused: moderators took back too many of the comments it "
            "approved lately."
        )
    for words, plain in _UNQUALIFIED:
        if words in error:
            return plain
    return "It has not passed its test on labelled comments."


# What ``storage.qualifications`` and ``batch.trust`` say, and what it means to a moderator.
_UNQUALIFIED = (
    ("not qualified yet", "It has not been tested on labelled comments yet."),
    ("incomplete", "Its test on labelled comments could not be finished."),
    ("false approval", "On its test it would publish too many comments that should be held."),
    ("approves none", "On its test it approved none of the comments it should approve."),
    ("is one to hold", "Its test had no comment that should be held, so it proved nothing."),
)
