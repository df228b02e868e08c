"""A reviewer's ruling on a site behind an API (WordPress's REST API), with its write intent.

On a SQL site the ruling's UPDATE and its audit row commit in one transaction
(``ReviewQueue._rule``). An API cannot join that transaction, and no database lock is held
over HTTP: the same checks are made on the comment as the site holds it now, then the write
is recorded as an intent, sent, and marked done with the ruling's audit row
(``storage.intents``). A review page killed in between leaves an open intent, which the
site's next batch settles (``batch.settle``): the ruling is recorded once if the site holds
it, forgotten if it does not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection, Engine

from moderation import crashpoints
from moderation.comment import Comment, text_hash
from moderation.site.protocol import Site
from moderation.site.rows import PENDING_STATE, what_happened
from moderation.storage import audit, intents, memory
from moderation.storage.engines import read_transaction, run_write
from moderation.vocabulary import Outcome

# What the tool's memory says of a comment that waits for a human (as ``humans.queue``).
WAITING = (Outcome.HELD, Outcome.FAILED)


def rule_through_api(
    engine: Engine,
    site: Site,
    session_id: str,
    comment_id: Any,
    seen_hash: str,
    outcome: str,
    reviewer: str,
) -> str | None:
    """Approve or reject one comment, only if it is as the reviewer saw it: None when it was
    written, else what changed."""
    key = str(comment_id)
    row = site.current_rows(None, [key]).get(key)
    if row is None:
        return "it was deleted"
    if row.state != PENDING_STATE:
        return what_happened(row)
    if text_hash(row.body) != seen_hash:
        return "its text was edited since the page was shown"
    with read_transaction(engine) as conn:
        remembered = memory.recall(conn, site.site, [key]).get(key)
    if remembered is None or remembered.outcome not in WAITING:
        return "it is not waiting for a human"
    comment = Comment(comment_id, row.body)
    crashpoints.reach("before-intent")
    plan = intents.Planned(comment, outcome, reviewer=reviewer)
    opened = run_write(engine, lambda conn: intents.record(conn, site.site, session_id, [plan]))
    write = site.approve if outcome == Outcome.APPROVED else site.reject
    written = write(None, [comment])
    unsure = set(site.unsure) & set(opened)

    def _finish(conn: Connection) -> None:
        if key in intents.finish(conn, opened, written, unsure):
            audit.record_ruling(conn, session_id, comment, outcome, reviewer, site=site.site)

    run_write(engine, _finish)
    return None if key in written else "it changed while the ruling was written"
