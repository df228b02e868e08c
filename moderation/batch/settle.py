"""Settling the writes an earlier run left unfinished on a site behind an API.

A write to WordPress's REST API is recorded as an intent before it is sent and marked done
with its audit row after (``storage.intents``). A run killed in between leaves the intent
open. Before it reads new work, the next batch of the site reads each open intent's comment
from the site and settles it:

- the site holds what was to be written: the intent is done, and its audit row is written
  now, once (the batch's decision as it was made, or the reviewer's ruling), with the memory
  that keeps later batches away from the comment;
- it does not: the intent is dropped; a comment still pending is read again like any other.

The site's word is its state now: a comment a moderator approved in the meantime counts as
written, as an approval whose answer was lost does (``site.wordpress_rest``).
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection, Engine

from moderation.batch.lease import Lease
from moderation.site.protocol import Site
from moderation.site.rows import APPROVED_STATE, REJECTED_STATE, SiteRow
from moderation.storage import audit, intents
from moderation.storage.engines import read_transaction, run_write
from moderation.vocabulary import Outcome

log = logging.getLogger(__name__)

# The state a written outcome shows on the site.
WRITTEN_STATES = {Outcome.APPROVED: APPROVED_STATE, Outcome.REJECTED: REJECTED_STATE}


def settle(engine: Engine, site: Site, lease: Lease | None) -> tuple[int, int]:
    """Settle the site's open intents: (found written and recorded, found unwritten)."""
    if site.writes_in_transaction:
        return 0, 0  # the site's writes commit with their audit rows: no intents
    with read_transaction(engine) as conn:
        found = intents.unfinished(conn, site.site)
    if not found:
        return 0, 0
    rows = site.current_rows(None, sorted({intent.comment_id for intent in found}))
    landed = {intent.id: _landed(intent, rows.get(intent.comment_id)) for intent in found}

    def _settle(conn: Connection) -> tuple[int, int]:
        if lease is not None:
            lease.fence(conn)
        done = dropped = 0
        for intent in found:
            if not landed[intent.id]:
                dropped += intents.mark(conn, intent.id, intents.DROPPED, (intents.OPEN,))
            elif intents.mark(conn, intent.id, intents.DONE, (intents.OPEN,)):
                _record(conn, site.site, intent)
                done += 1
        return done, dropped

    done, dropped = run_write(engine, _settle)
    if done or dropped:
        log.warning(
            "%d write(s) left unfinished by an earlier run: %d found written and recorded, "
            "%d found unwritten and dropped",
            done + dropped,
            done,
            dropped,
        )
    return done, dropped


def _landed(intent: intents.Intent, row: SiteRow | None) -> bool:
    return row is not None and row.state == WRITTEN_STATES.get(Outcome(intent.outcome))


def _record(conn: Connection, site: str, intent: intents.Intent) -> None:
    """The audit row (and memory) the interrupted run would have written."""
    if intent.reviewer is not None:
        audit.record_ruling(
            conn, intent.run_id, intent.comment, intent.outcome, intent.reviewer, site=site
        )
        return
    decision, failures_before, identity = intents.decision_of(intent)
    audit.record(conn, intent.run_id, identity, [(decision, failures_before)], site=site)
