"""The checks before the model, for one comment: quarantine first, then the rules.

Each is linear in the comment's length (see moderation.rules and moderation.text), and none
may stop the batch: a check that raises holds its comment for a human, with the error's type
in the reason, and the batch goes on. A long text is checked on a worker thread, so that the
batch's loop keeps its requests and its writer moving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging

from moderation import rules
from moderation.batch.quarantine import QUARANTINE, reason
from moderation.comment import Comment
from moderation.model.reading import UNREAD, Reading

log = logging.getLogger(__name__)

# Texts longer than this are checked off the loop: a thread costs more than checking a short one.
OFF_LOOP_CHARS = 4096
CHECK_FAILED = "check_failed"


def check(
    comment: Comment, context: rules.RuleContext, quarantined: frozenset[str]
) -> Reading | None:
    """The reading of a comment held before the model, or None when it goes to the model."""
    if comment.key in quarantined:
        return Reading(None, UNREAD, reason(), rule=QUARANTINE)
    try:
        hold = rules.check(comment.body, context, kind=comment.kind, author=comment.author)
    except Exception as exc:  # a bug or a bomb in one check must not stop the batch
        # The comment's text stays out of the log: only its id and what failed.
        log.error("the checks failed on comment %s: %s", comment.key, type(exc).__name__)
        return Reading(
            None,
            UNREAD,
            f"rule: could not be checked ({type(exc).__name__}); held for a human",
            rule=CHECK_FAILED,
        )
    if hold is None:
        return None
    return Reading(None, UNREAD, hold.reason, rule=hold.rule)


async def check_soon(
    comment: Comment, context: rules.RuleContext, quarantined: frozenset[str]
) -> Reading | None:
    """``check``, on a worker thread when the text is long."""
    if len(comment.body) > OFF_LOOP_CHARS:
        return await asyncio.to_thread(check, comment, context, quarantined)
    return check(comment, context, quarantined)
