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
from moderation.storage import brake, migrate
from moderation.storage.claim import claim
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import brake_marks, decisions, outcomes
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
    conn: Connection,
    site: str,
    window: Window,
    after: int,
    limit: int,
    variant: tuple[str | None, str] | None = None,
) -> list[Any]:
    """The next page (by id) of tool decisions in the window that no later tool decision replaced,
    each with its recorded outcome, the latest human ruling after it (or None), and whether it
    was last seen in a state the system set (``storage.brake``). ``variant``: only the
    approvals of this model digest and prompt.

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
    marked = sa.select(sa.literal(1)).where(brake_marks.c.decision_id == decisions.c.id).exists()
    only = []
    if variant is not None:
        digest, prompt = variant
        only = [
            decisions.c.outcome == Outcome.APPROVED,
            decisions.c.model_digest.is_(None)
            if digest is None
            else decisions.c.model_digest == digest,
            decisions.c.prompt_hash == prompt,
        ]
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
            marked,
        )
        .where(
            _same_site(conn, site),
            decisions.c.id > after,
            decisions.c.decided_at >= window.since,
            decisions.c.decided_at <= window.until,
            _is_tool_row(decisions),
            *only,
            ~replaced,
        )
        .order_by(decisions.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).all())


def _same_site(conn: Connection, site: str) -> sa.ColumnElement[bool]:
    """The decision's site is ``site``, written so that SQLite keys the page on the primary key:
    with a plain equality its planner picks an index that starts with the site and sorts all
    of the site's decisions for every page, a whole pass per page."""
    if conn.dialect.name == "sqlite":
        return decisions.c.site.concat("") == site
    return decisions.c.site == site


def _record(
    conn: Connection,
    site: str,
    judged: Sequence[Judged],
    marks: Sequence[tuple[int, bool]] = (),
) -> None:
    """Insert the first sighting of each human outcome (a concurrent run's row is kept) and
    the approvals seen in or out of a system's state, the brake's figures with them.

    Only SQLite, PostgreSQL and MySQL/MariaDB are supported; each has its own insert-or-skip.
    """
    touched = [j.decision_id for j in judged if j.approved_by_tool] + [i for i, _ in marks]
    with brake.tracked(conn, site, touched):
        if judged:
            _insert_outcomes(conn, site, judged)
        brake.set_marks(conn, site, marks)


def _insert_outcomes(conn: Connection, site: str, judged: Sequence[Judged]) -> None:
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
    marks: list[tuple[int, bool]] = []
    after = 0
    while True:
        with read_transaction(engine) as conn:
            page = _decision_page(conn, site.site, window, after, page_size)
            rows = site.current_rows(conn, [d[1] for d in page])
        judged, new, moved = _judge(site, page, rows)
        unrecorded += new
        marks += moved
        last = len(page) < page_size
        if (unrecorded or marks) and (len(unrecorded) >= RECORD_EVERY or last):
            run_write(engine, lambda conn, j=unrecorded, m=marks: _record(conn, site.site, j, m))  # type: ignore[misc]
            unrecorded, marks = [], []
        if judged:
            yield judged
        if last:
            return
        after = page[-1][0]


def _judge(
    site: Site, page: Sequence[Any], rows: dict[str, SiteRow]
) -> tuple[list[Judged], list[Judged], list[tuple[int, bool]]]:
    """The outcome of each decision of a page given the site's rows: all of them, the human
    outcomes not recorded yet, and the approvals whose system-state mark must change."""
    judged, unrecorded, marks = [], [], []
    for decision_id, key, hash_, tool, digest, prompt, recorded, ruling, marked in page:
        approved = tool == Outcome.APPROVED
        row = rows.get(key)
        if recorded is not None:
            outcome = recorded
        elif ruling is not None:
            outcome = from_ruling(approved, ruling)
        else:
            outcome = classify(approved, row, hash_, purges_pending=site.purges_pending)
            if approved and bool(marked) != (outcome == SYSTEM):
                marks.append((decision_id, outcome == SYSTEM))
        item = Judged(decision_id, key, hash_, tool, digest, prompt, outcome, row)
        if recorded is None and outcome in HUMAN_OUTCOMES:
            unrecorded.append(item)
        judged.append(item)
    return judged, unrecorded, marks


def observe_approvals(
    engine: Engine,
    site: Site,
    window: Window,
    variant: tuple[str | None, str],
    limit: int = PAGE_SIZE,
) -> int:
    """Read the site's rows of up to ``limit`` of this variant's approvals in the window and
    record what humans (or the system) did with them: the brake's re-reading, so that its
    figures see a reversal made in the site's own admin without `moderate outcomes`.

    Each call goes on where the last one stopped, and on from the oldest once it reaches the
    newest, reading no approval twice: a site with up to ``limit`` approvals in the window has
    them all read by every batch, a larger one within ``approvals / limit`` batches. Returns
    how many were read.
    """
    digest, prompt = variant
    with read_transaction(engine) as conn:
        start = brake.first_decision_since(conn, site.site, digest, prompt, window.since)
        after = max(brake.swept_after(conn, site.site), start)
        page = _decision_page(conn, site.site, window, after, limit, variant)
        reached = page[-1][0] if len(page) == limit else 0
        if not reached and after > start:
            # The newest reached: go on from the oldest, up to where this reading began.
            more = _decision_page(conn, site.site, window, start, limit - len(page), variant)
            earlier = [row for row in more if row[0] <= after]
            if len(earlier) == len(more) == limit - len(page):
                reached = earlier[-1][0]
            page += earlier
        rows = site.current_rows(conn, [d[1] for d in page])
    _, unrecorded, marks = _judge(site, page, rows)

    def _write(conn: Connection) -> None:
        if unrecorded or marks:
            _record(conn, site.site, unrecorded, marks)
        brake.sweep_to(conn, site.site, reached)

    run_write(engine, _write)
    return len(page)
