"""Rows from before the site key, claimed by the first site that runs (see revision 0009).

A migration does not know the settings, so revision 0009 leaves the rows it found with the
empty marker. The first batch, ``moderate outcomes`` or review page of a site that finds such
rows claims all of them for its site, in one write transaction, so that two sites starting
at once cannot split them. Until then a site's reads simply do not see them. The check is one
primary-key (or indexed) lookup per table, so every later run pays next to nothing.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.site.key import UNCLAIMED
from moderation.storage import brake
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import comment_state, decisions, notifications, outcomes, runs

log = logging.getLogger(__name__)

KEYED = (comment_state, decisions, outcomes, runs, notifications)
# Each looked up by an index that starts with the site. Outcomes need no look: every one
# belongs to a decision, and all tables are claimed in the same transaction.
LOOKED_UP = (comment_state, decisions, runs, notifications)


def unclaimed(conn: Connection) -> bool:
    for table in LOOKED_UP:
        marked = sa.select(sa.literal(1)).where(table.c.site == UNCLAIMED).limit(1)
        if conn.execute(marked).first() is not None:
            return True
    return False


def claim(engine: Engine, site: str) -> int:
    """Give every unclaimed row to ``site``; the number of rows claimed (0 nearly always)."""
    with read_transaction(engine) as conn:
        if not unclaimed(conn):
            return 0

    def _claim(conn: Connection) -> int:
        total = 0
        for table in KEYED:
            moved = conn.execute(
                sa.update(table).where(table.c.site == UNCLAIMED).values(site=site)
            )
            total += max(moved.rowcount, 0)
        # The reversal brake's figures of those rows: added to the site's own.
        return total + brake.claim(conn, UNCLAIMED, site)

    total = run_write(engine, _claim)
    if total:
        log.warning(
            "the tool's rows from before per-site memory (%d) now belong to site %s", total, site
        )
    return total
