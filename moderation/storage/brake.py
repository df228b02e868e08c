"""The reversal brake's running figures, kept up to date as decisions and outcomes are recorded.

The brake needs two numbers for the current model and prompt over a window: the tool's
approvals that count, and how many of them humans took back, as `moderate outcomes` counts
them (``humans.outcomes``). Counting them from every decision of the window costs a batch
seconds per 100,000 decisions; instead each change that moves them updates per-hour and
per-minute figures (``moderation_brake_figures``) in its own transaction:

- a tool decision: the comment's previous latest tool decision stops counting (the new one
  replaces it), and the new one counts if it is an approval;
- a human outcome recorded in ``moderation_outcomes`` (first seen by `moderate outcomes` or
  by a batch's re-reading of its approvals);
- a reviewer's ruling after an approval;
- an approval seen in, or back out of, a state the comment system set by itself
  (``moderation_brake_marks``).

Each is applied the same way: under the site's lock (its row in ``moderation_brake_sites``),
what every decision the change touches counts for is computed from the tables before and
after the change, and the difference goes to the decision's hour and minute. What a decision
counts for
follows ``humans.outcomes``: only the latest tool decision on a comment counts, and only an
approval; its outcome is the recorded one, else the latest ruling after it, else the system's
state when it was last seen in one; a system state counts for nothing, a reversal counts as
approved and reversed, anything else as approved.

Reading a window (``figures``): the whole hours inside it are summed from the hours' figures,
the whole minutes of the hours where it starts and ends from the minutes', and the decisions of
the minutes where it starts and ends are read by the id range those minutes keep and counted
one by one: the same figures as counting every decision of the window, to the microsecond, in
at most 720 + 120 rows of figures and two minutes of decisions for a window of 30 days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.storage.tables import brake_figures, brake_marks, brake_sites, decisions, outcomes
from moderation.vocabulary import HumanOutcome, Outcome

TOOL_OUTCOMES = (Outcome.APPROVED, Outcome.HELD, Outcome.FAILED)
RULINGS = (Outcome.APPROVED, Outcome.REJECTED)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND_US = 1_000_000
SPANS = (3600, 60)  # the figures' periods, in seconds: hours, and minutes
CHUNK = 500  # ids per IN list

Variant = tuple[str, str, str]  # site, model digest ("" for none), prompt hash
# A variant's period: its length in seconds and where it starts (epoch seconds).
Bucket = tuple[str, str, str, int, int]


@dataclass(frozen=True, slots=True)
class Counted:
    """What one decision counts for, and when it was made (microseconds since the epoch)."""

    variant: Variant
    at: int
    approved: int
    reversed: int

    def buckets(self) -> list[Bucket]:
        return [(*self.variant, span, _floor(self.at, span)) for span in SPANS]


@dataclass(frozen=True, slots=True)
class Figures:
    approved: int = 0
    reversed: int = 0


def micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive time is UTC (as the tool writes every time)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(microseconds=1)


def _floor(at: int, span: int) -> int:
    """The start (epoch seconds) of the period of ``span`` seconds that ``at`` (µs) lies in."""
    return at // (span * SECOND_US) * span


def _moment(at: int) -> datetime:
    return EPOCH + timedelta(microseconds=at)


def _current(conn: Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    """A read that sees the newest committed rows: on MySQL/MariaDB (REPEATABLE READ), a plain
    read would see the snapshot the transaction began with, before the site's lock."""
    if conn.dialect.name in ("mysql", "mariadb"):
        return query.with_for_update(read=True)
    return query


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


# -- what decisions count for ------------------------------------------------------------------


def contributions(conn: Connection, ids: Iterable[int]) -> dict[int, Counted]:
    """What each of these decisions counts for now (those counting for nothing are left out)."""
    wanted = sorted(set(ids))
    approvals: list[Any] = []
    for chunk in _chunks(wanted):
        approvals += conn.execute(
            _current(
                conn,
                sa.select(
                    decisions.c.id,
                    decisions.c.site,
                    decisions.c.comment_id,
                    decisions.c.model_digest,
                    decisions.c.prompt_hash,
                    decisions.c.decided_at,
                ).where(
                    decisions.c.id.in_(chunk),
                    decisions.c.reviewer.is_(None),
                    decisions.c.outcome == Outcome.APPROVED,
                ),
            )
        ).all()
    if not approvals:
        return {}
    ids_ = [row.id for row in approvals]
    later = _rows_on(conn, {(row.site, row.comment_id) for row in approvals})
    recorded: dict[int, str] = {}
    marked: set[int] = set()
    for chunk in _chunks(ids_):
        query = sa.select(outcomes.c.decision_id, outcomes.c.outcome).where(
            outcomes.c.decision_id.in_(chunk)
        )
        recorded.update({int(i): str(o) for i, o in conn.execute(_current(conn, query))})
        query = sa.select(brake_marks.c.decision_id).where(brake_marks.c.decision_id.in_(chunk))
        marked.update(int(i) for (i,) in conn.execute(_current(conn, query)))
    counted: dict[int, Counted] = {}
    for row in approvals:
        after = [r for r in later.get((row.site, row.comment_id), []) if r[0] > row.id]
        if any(reviewer is None and outcome in TOOL_OUTCOMES for _, outcome, reviewer in after):
            continue  # a later decision of the tool replaced it
        known = recorded.get(row.id)
        if known is None:
            rulings = [(i, o) for i, o, reviewer in after if reviewer is not None and o in RULINGS]
            if rulings:
                ruling = max(rulings)[1]
                known = HumanOutcome.KEPT if ruling == Outcome.APPROVED else HumanOutcome.REVERSED
            elif row.id in marked:
                known = HumanOutcome.SYSTEM
        if known == HumanOutcome.SYSTEM:
            continue
        variant = (row.site, row.model_digest or "", row.prompt_hash)
        at = micros(row.decided_at)
        counted[row.id] = Counted(variant, at, 1, int(known == HumanOutcome.REVERSED))
    return counted


def _rows_on(
    conn: Connection, comments: set[tuple[str, str]]
) -> dict[tuple[str, str], list[tuple[int, str, str | None]]]:
    """Every decision row (id, outcome, reviewer) on these comments, by (site, comment)."""
    found: dict[tuple[str, str], list[tuple[int, str, str | None]]] = {}
    by_site: dict[str, list[str]] = {}
    for site, comment_id in comments:
        by_site.setdefault(site, []).append(comment_id)
    for site, keys in by_site.items():
        for chunk in _chunks(sorted(keys)):
            query = sa.select(
                decisions.c.comment_id, decisions.c.id, decisions.c.outcome, decisions.c.reviewer
            ).where(decisions.c.site == site, decisions.c.comment_id.in_(chunk))
            for comment_id, id_, outcome, reviewer in conn.execute(_current(conn, query)):
                found.setdefault((site, comment_id), []).append((int(id_), outcome, reviewer))
    return found


def latest_tool_decisions(
    conn: Connection, site: str, comment_ids: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """The id and outcome of the tool's latest decision on each of these comments."""
    latest: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(set(comment_ids))):
        query = sa.select(decisions.c.comment_id, decisions.c.id, decisions.c.outcome).where(
            decisions.c.site == site,
            decisions.c.comment_id.in_(chunk),
            decisions.c.reviewer.is_(None),
            decisions.c.outcome.in_(TOOL_OUTCOMES),
        )
        for comment_id, id_, outcome in conn.execute(query):
            if comment_id not in latest or latest[comment_id][0] < id_:
                latest[comment_id] = (int(id_), str(outcome))
    return latest


# -- changes -------------------------------------------------------------------------------------


@contextmanager
def tracked(
    conn: Connection,
    site: str,
    touched: Iterable[int],
    touched_after: Callable[[], Iterable[int]] | None = None,
) -> Iterator[None]:
    """Around a change to the tables: the figures move by what the touched decisions count
    for after it less what they counted for before (``touched_after``: the decisions the
    change made, known only once it is made)."""
    _lock(conn, site)
    before_ids = set(touched)
    before = contributions(conn, before_ids)
    yield
    after_ids = before_ids | set(touched_after() if touched_after is not None else ())
    _apply(conn, before, contributions(conn, after_ids))


@contextmanager
def tool_decisions(
    conn: Connection,
    site: str,
    made: Sequence[tuple[str, str]],
    model_digest: str | None,
    prompt_hash: str,
    decided_at: datetime,
) -> Iterator[None]:
    """Around the insert of tool decisions (comment key, outcome) of one model and prompt,
    all decided at ``decided_at``.

    The decisions they replace (the comments' previous latest) stop counting; each new
    approval counts once, as approved: nothing can have been recorded about it yet.
    Nothing to do when neither they nor the decisions they replace approve (a chunk of holds).
    """
    previous = latest_tool_decisions(conn, site, [key for key, _ in made])
    final = dict(made)  # a comment decided twice in one chunk counts by its last decision
    approvals = sum(1 for outcome in final.values() if outcome == Outcome.APPROVED)
    replaced = [i for i, outcome in previous.values() if outcome == Outcome.APPROVED]
    if not approvals and not replaced:
        yield
        return
    _lock(conn, site)
    before = contributions(conn, replaced)
    first = _newest_id(conn) + 1
    yield
    _apply(conn, before, {})  # replaced now, by the decisions just made
    if approvals:
        # The ids of the decisions just made lie in this range (others' too, maybe: harmless).
        made_now = Counted((site, model_digest or "", prompt_hash), micros(decided_at), 0, 0)
        last = max(first, _newest_id(conn))
        _add(conn, {bucket: [approvals, 0, first, last] for bucket in made_now.buckets()})


def _newest_id(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(decisions.c.id))).scalar() or 0)


@contextmanager
def ruling(conn: Connection, site: str, comment_id: str) -> Iterator[None]:
    """Around the insert of a reviewer's ruling: it may change the outcome of an approval."""
    previous = latest_tool_decisions(conn, site, [comment_id]).get(comment_id)
    if previous is None or previous[1] != Outcome.APPROVED:
        yield
        return
    with tracked(conn, site, [previous[0]]):
        yield


def set_marks(conn: Connection, site: str, marks: Iterable[tuple[int, bool]]) -> None:
    """Mark (True) or unmark approvals seen in or out of a state the system set by itself.

    Call within ``tracked`` over the same decisions."""
    marks = list(marks)
    on = [{"decision_id": i, "site": site} for i, mark in marks if mark]
    off = [i for i, mark in marks if not mark]
    for chunk in _chunks(off):
        conn.execute(sa.delete(brake_marks).where(brake_marks.c.decision_id.in_(chunk)))
    if on:
        present: set[int] = set()
        for chunk in _chunks([row["decision_id"] for row in on]):
            query = sa.select(brake_marks.c.decision_id).where(brake_marks.c.decision_id.in_(chunk))
            present.update(int(i) for (i,) in conn.execute(query))
        new = [row for row in on if row["decision_id"] not in present]
        if new:
            conn.execute(sa.insert(brake_marks), new)


def _apply(conn: Connection, before: dict[int, Counted], after: dict[int, Counted]) -> None:
    moves: dict[Bucket, list[int]] = {}  # approved, reversed, first id, last id
    for decision_id in before.keys() | after.keys():
        for counted, sign in ((before.get(decision_id), -1), (after.get(decision_id), 1)):
            if counted is None:
                continue
            for bucket in counted.buckets():
                move = moves.setdefault(bucket, [0, 0, decision_id, decision_id])
                move[0] += sign * counted.approved
                move[1] += sign * counted.reversed
                move[2], move[3] = min(move[2], decision_id), max(move[3], decision_id)
    _add(conn, moves)


def _add(conn: Connection, moves: dict[Bucket, list[int]]) -> None:
    """Add to the figures of each bucket: [approved, reversed, first id, last id]."""
    rows = [
        {
            "site": site,
            "model_digest": digest,
            "prompt_hash": prompt,
            "seconds": span,
            "starts_at": starts_at,
            "approved": approved,
            "reversed": reversed_,
            "first_id": first,
            "last_id": last,
        }
        for (site, digest, prompt, span, starts_at), move in moves.items()
        for approved, reversed_, first, last in [move]
        if approved or reversed_
    ]
    if rows:
        conn.execute(_add_statement(conn), rows)


def _add_statement(conn: Connection) -> Any:
    """Insert a bucket, or add to the one there (ids: the wider range)."""
    table = brake_figures
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        statement = mysql_insert(table)
        new = statement.inserted
        return statement.on_duplicate_key_update(
            approved=table.c.approved + new.approved,
            reversed=table.c.reversed + new.reversed,
            first_id=sa.func.least(table.c.first_id, new.first_id),
            last_id=sa.func.greatest(table.c.last_id, new.last_id),
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(table)
        # SQLite's scalar min() and max() of two values
        return lite.on_conflict_do_update(
            index_elements=_BUCKET_KEY, set_=_sums(lite.excluded, sa.func.min, sa.func.max)
        )
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    pg = pg_insert(table)
    return pg.on_conflict_do_update(
        index_elements=_BUCKET_KEY, set_=_sums(pg.excluded, sa.func.least, sa.func.greatest)
    )


_BUCKET_KEY = ["site", "model_digest", "prompt_hash", "seconds", "starts_at"]


def _sums(new: Any, least: Any, greatest: Any) -> dict[str, Any]:
    table = brake_figures
    return {
        "approved": table.c.approved + new.approved,
        "reversed": table.c.reversed + new.reversed,
        "first_id": least(table.c.first_id, new.first_id),
        "last_id": greatest(table.c.last_id, new.last_id),
    }


def _lock(conn: Connection, site: str) -> None:
    """The site's lock, held until the transaction ends: the changes of two transactions to
    one site's figures never interleave. SQLite's write transactions are serial already."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        statement = mysql_insert(brake_sites).values(site=site, swept_after=0)
        conn.execute(statement.on_duplicate_key_update(swept_after=brake_sites.c.swept_after))
        return
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    upsert = pg_insert(brake_sites).values(site=site, swept_after=0)
    conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[brake_sites.c.site], set_={"swept_after": brake_sites.c.swept_after}
        )
    )


def claim(conn: Connection, unclaimed: str, site: str) -> int:
    """Give the figures and marks of rows from before the site key to ``site``
    (``storage.claim``): added to the site's own figures period by period."""
    rows = [
        dict(row._mapping, site=site)
        for row in conn.execute(sa.select(brake_figures).where(brake_figures.c.site == unclaimed))
    ]
    if rows:
        conn.execute(_add_statement(conn), rows)
        conn.execute(sa.delete(brake_figures).where(brake_figures.c.site == unclaimed))
    moved = conn.execute(
        sa.update(brake_marks).where(brake_marks.c.site == unclaimed).values(site=site)
    )
    conn.execute(sa.delete(brake_sites).where(brake_sites.c.site == unclaimed))
    return len(rows) + max(moved.rowcount, 0)


# -- reading -------------------------------------------------------------------------------------


def figures(
    conn: Connection,
    site: str,
    model_digest: str | None,
    prompt_hash: str,
    since: datetime,
    until: datetime,
) -> Figures:
    """The approvals that count and those reversed, of decisions made from ``since`` to
    ``until`` (both included) by this model and prompt on this site."""
    variant = (site, model_digest or "", prompt_hash)
    # Whole periods, longest first, then the decisions of what no whole minute covers.
    sums, rest = _cover(micros(since), micros(until) + 1, SPANS)
    approved = reversed_ = 0
    bucket = brake_figures.c
    for span, first, last in sums:
        total = conn.execute(
            sa.select(sa.func.sum(bucket.approved), sa.func.sum(bucket.reversed)).where(
                bucket.site == site,
                bucket.model_digest == variant[1],
                bucket.prompt_hash == prompt_hash,
                bucket.seconds == span,
                bucket.starts_at >= first,
                bucket.starts_at < last,
            )
        ).one()
        approved += int(total[0] or 0)
        reversed_ += int(total[1] or 0)
    for low, high in rest:
        part = _part_of_minute(conn, variant, low, high)
        approved += part.approved
        reversed_ += part.reversed
    return Figures(approved, reversed_)


def _cover(
    low: int, high: int, spans: Sequence[int]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """[low, high) in µs as (span, first start, end start) runs of whole periods, longest
    first, and the pieces (µs) no whole period of the shortest span covers."""
    if low >= high:
        return [], []
    if not spans:
        return [], [(low, high)]
    size = spans[0] * SECOND_US
    first, last = -(-low // size) * size, high // size * size
    if first >= last:  # no whole period of this length inside
        return _cover(low, high, spans[1:])
    left_sums, left_rest = _cover(low, first, spans[1:])
    right_sums, right_rest = _cover(last, high, spans[1:])
    whole = (spans[0], first // SECOND_US, last // SECOND_US)
    return [whole, *left_sums, *right_sums], left_rest + right_rest


def _part_of_minute(conn: Connection, variant: Variant, low: int, high: int) -> Figures:
    """The decisions made in [low, high) µs, part of one minute: read by the id range the
    minute's figures keep, and counted one by one."""
    site, digest, prompt_hash = variant
    span = conn.execute(
        sa.select(brake_figures.c.first_id, brake_figures.c.last_id).where(
            brake_figures.c.site == site,
            brake_figures.c.model_digest == digest,
            brake_figures.c.prompt_hash == prompt_hash,
            brake_figures.c.seconds == SPANS[-1],
            brake_figures.c.starts_at == _floor(low, SPANS[-1]),
        )
    ).first()
    if span is None:
        return Figures()
    same_digest = (
        sa.or_(decisions.c.model_digest.is_(None), decisions.c.model_digest == "")
        if digest == ""
        else decisions.c.model_digest == digest
    )
    ids = conn.execute(
        sa.select(decisions.c.id).where(
            decisions.c.id >= span.first_id,
            decisions.c.id <= span.last_id,
            decisions.c.site == site,
            same_digest,
            decisions.c.prompt_hash == prompt_hash,
            decisions.c.reviewer.is_(None),
            decisions.c.outcome == Outcome.APPROVED,
            decisions.c.decided_at >= _moment(low),
            decisions.c.decided_at < _moment(high),
        )
    ).scalars()
    counted = contributions(conn, ids).values()
    return Figures(sum(c.approved for c in counted), sum(c.reversed for c in counted))


# -- the batches' re-reading of approvals -------------------------------------------------------


def swept_after(conn: Connection, site: str) -> int:
    """Where the last re-reading of the site's approvals stopped (0: start over)."""
    value = conn.execute(
        sa.select(brake_sites.c.swept_after).where(brake_sites.c.site == site)
    ).scalar()
    return int(value or 0)


def sweep_to(conn: Connection, site: str, after: int) -> None:
    _lock(conn, site)  # makes the site's row where another process could make it at once
    found = conn.execute(
        sa.update(brake_sites).where(brake_sites.c.site == site).values(swept_after=after)
    )
    if found.rowcount == 0:
        conn.execute(sa.insert(brake_sites).values(site=site, swept_after=after))


def first_decision_since(
    conn: Connection, site: str, model_digest: str | None, prompt_hash: str, since: datetime
) -> int:
    """A decision id no counted decision of this model and prompt since ``since`` lies below."""
    first = conn.execute(
        sa.select(sa.func.min(brake_figures.c.first_id)).where(
            brake_figures.c.site == site,
            brake_figures.c.model_digest == (model_digest or ""),
            brake_figures.c.prompt_hash == prompt_hash,
            brake_figures.c.seconds == SPANS[0],
            brake_figures.c.starts_at >= _floor(micros(since), SPANS[0]),
        )
    ).scalar()
    return 0 if first is None else int(first) - 1
