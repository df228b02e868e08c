"""What humans did after the tool: each decided comment's outcome, from the site's table now.

For every comment whose latest decision by the tool falls in a window, the comment's current row
(read-only) says what happened since: still approved (``kept``), taken back (``reversed``),
approved by a human after the tool held it (``released``), rejected or deleted after a hold
(``confirmed``), still pending (``waiting``), changed text (``edited``), taken away by the
comment system itself rather than a human (``system``: WordPress's ``post-trashed``, or a held
comment's row gone where the system purges old pending comments, as Isso's ``purge-after``
does), or a state that is none of these (``other``, never guessed).

Only the site's own decisions count: every query is within one site (``moderation.site.key``).

A human outcome (reversed, released, confirmed) is recorded in ``moderation_outcomes`` the first
time it is seen, and from then on that record is the answer: the site may purge the row later
(WordPress empties its trash after 30 days), and the same window must give the same figures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.humans.since import Window
from moderation.settings import Settings
from moderation.site.open import open_site
from moderation.site.protocol import Site
from moderation.site.rows import (
    APPROVED_STATE,
    PENDING_STATE,
    REJECTED_STATE,
    SYSTEM_STATE,
    SiteRow,
)
from moderation.storage import migrate
from moderation.storage.claim import claim
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import decisions, outcomes
from moderation.vocabulary import HumanOutcome, Outcome

KEPT, REVERSED, RELEASED, CONFIRMED = "kept", "reversed", "released", "confirmed"
WAITING, EDITED, OTHER = "waiting", "edited", "other"
SYSTEM = HumanOutcome.SYSTEM.value
OUTCOMES = (KEPT, REVERSED, RELEASED, CONFIRMED, WAITING, EDITED, OTHER, SYSTEM)
HUMAN_OUTCOMES = frozenset({REVERSED, RELEASED, CONFIRMED})
# A human's ruling from the review page is an audit row with a reviewer and one of these.
RULING_APPROVED, RULING_REJECTED = "approved", "rejected"
TOOL_OUTCOMES = (Outcome.APPROVED, Outcome.HELD, Outcome.FAILED)
PAGE_SIZE = 1000
RECORD_EVERY = 20_000  # new outcomes per write transaction


@dataclass(frozen=True, slots=True)
class Judged:
    """One decided comment: the tool's latest decision and what became of it."""

    decision_id: int
    comment_id: str
    text_hash: str  # of the text the tool decided on
    tool_outcome: str  # approved, held or failed
    model_digest: str | None
    prompt_hash: str
    outcome: str
    row: SiteRow | None  # None when the row is gone from the site's table

    @property
    def approved_by_tool(self) -> bool:
        return self.tool_outcome == Outcome.APPROVED


def classify(
    approved_by_tool: bool,
    row: SiteRow | None,
    decided_text_hash: str,
    *,
    purges_pending: bool = False,
) -> str:
    """The outcome of one decision given the comment's row now (None: the row is gone).

    A rejected state wins over a text change: Isso blanks a deleted comment's text and
    Commento replaces it, yet the human's ruling is what happened. A state the system set by
    itself is nobody's ruling (``system``); so is a held comment's missing row on a site that
    purges old pending comments (``purges_pending``): there a moderator's deletion and the
    purge leave the same trace, and a confirmation that cannot be told apart is not counted.
    """
    if row is None and purges_pending and not approved_by_tool:
        return SYSTEM
    if row is not None and row.state == SYSTEM_STATE:
        return SYSTEM
    if row is None or row.state == REJECTED_STATE:
        return REVERSED if approved_by_tool else CONFIRMED
    if row.text_hash != decided_text_hash:
        return EDITED
    if row.state == APPROVED_STATE:
        return KEPT if approved_by_tool else RELEASED
    if row.state == PENDING_STATE:
        return REVERSED if approved_by_tool else WAITING
    return OTHER


def from_ruling(approved_by_tool: bool, ruling: str) -> str:
    """A human's recorded ruling (approved or rejected) as an outcome of the tool's decision."""
    if ruling == RULING_APPROVED:
        return KEPT if approved_by_tool else RELEASED
    return REVERSED if approved_by_tool else CONFIRMED


def _is_tool_row(table: sa.FromClause) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.reviewer.is_(None), table.c.outcome.in_(TOOL_OUTCOMES))


def _decision_page(
    conn: Connection, site: str, window: Window, after: int, limit: int
) -> list[Any]:
    """The next page (by id) of tool decisions in the window that no later tool decision replaced,
    each with its recorded outcome and the latest human ruling after it (or None).

    Keyset over the primary key: one pass over the decisions table whatever the window; the
    "is it the latest" check and the ruling are lookups on the comment_id index, the recorded
    outcome one on the outcomes table's primary key.
    """
    later = decisions.alias("later")
    replaced = (
        sa.select(sa.literal(1))
        .where(
            later.c.site == decisions.c.site,
            later.c.comment_id == decisions.c.comment_id,
            later.c.id > decisions.c.id,
            _is_tool_row(later),
        )
        .exists()
    )
    ruling = decisions.alias("ruling")
    latest_ruling = (
        sa.select(ruling.c.outcome)
        .where(
            ruling.c.site == decisions.c.site,
            ruling.c.comment_id == decisions.c.comment_id,
            ruling.c.id > decisions.c.id,
            ruling.c.reviewer.is_not(None),
            ruling.c.outcome.in_((RULING_APPROVED, RULING_REJECTED)),
        )
        .order_by(ruling.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    recorded = (
        sa.select(outcomes.c.outcome)
        .where(outcomes.c.decision_id == decisions.c.id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            decisions.c.id,
            decisions.c.comment_id,
            decisions.c.text_hash,
            decisions.c.outcome,
            decisions.c.model_digest,
            decisions.c.prompt_hash,
            recorded,
            latest_ruling,
        )
        .where(
            decisions.c.site == site,
            decisions.c.id > after,
            decisions.c.decided_at >= window.since,
            decisions.c.decided_at <= window.until,
            _is_tool_row(decisions),
            ~replaced,
        )
        .order_by(decisions.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).all())


def _record(conn: Connection, site: str, judged: Sequence[Judged]) -> None:
    """Insert the first sighting of each human outcome; a concurrent run's row is kept.

    Only SQLite, PostgreSQL and MySQL/MariaDB are supported; each has its own insert-or-skip.
    """
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "decision_id": j.decision_id,
            "site": site,
            "comment_id": j.comment_id,
            "outcome": j.outcome,
            "seen_at": now,
        }
        for j in judged
    ]
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        conn.execute(sa.insert(outcomes).prefix_with("IGNORE"), rows)
        return
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        statement = insert(outcomes).on_conflict_do_nothing(index_elements=["decision_id"])
        conn.execute(statement, rows)
        return
    conn.execute(sa.insert(outcomes), rows)


def judge_pages(
    engine: Engine, settings: Settings, window: Window, page_size: int = PAGE_SIZE
) -> Iterator[list[Judged]]:
    """Every decided comment in the window, one page at a time (memory bounded by a page).

    New human outcomes are recorded in a few large write transactions rather than one per
    page: each commit costs a sync to disk. One not yet written when the scan stops is simply
    seen again, and recorded, by the next run.
    """
    migrate.ensure_current(engine, settings.auto_migrate)
    with open_site(engine, settings) as site:
        claim(engine, site.site)
        yield from _judge_pages(engine, site, window, page_size)


def _judge_pages(
    engine: Engine, site: Site, window: Window, page_size: int
) -> Iterator[list[Judged]]:
    unrecorded: list[Judged] = []
    after = 0
    while True:
        with read_transaction(engine) as conn:
            page = _decision_page(conn, site.site, window, after, page_size)
            rows = site.current_rows(conn, [d[1] for d in page])
        judged = []
        for decision_id, key, hash_, tool, digest, prompt, recorded, ruling in page:
            approved = tool == Outcome.APPROVED
            row = rows.get(key)
            if recorded is not None:
                outcome = recorded
            elif ruling is not None:
                outcome = from_ruling(approved, ruling)
            else:
                outcome = classify(approved, row, hash_, purges_pending=site.purges_pending)
            item = Judged(decision_id, key, hash_, tool, digest, prompt, outcome, row)
            if recorded is None and outcome in HUMAN_OUTCOMES:
                unrecorded.append(item)
            judged.append(item)
        if unrecorded and (len(unrecorded) >= RECORD_EVERY or len(page) < page_size):
            run_write(engine, lambda conn, new=unrecorded: _record(conn, site.site, new))  # type: ignore[misc]
            unrecorded = []
        if judged:
            yield judged
        if len(page) < page_size:
            return
        after = page[-1][0]
