"""The reversal brake reads running figures: the same figures, and the same decisions, as
reading every decision of the window and its comment's row (`moderate outcomes`, which is
what the brake did before), on generated histories, on SQLite, PostgreSQL and MariaDB.

A history is made through the tool's own write paths (the batch's audit rows, reviewers'
rulings, `moderate outcomes` and the batches' re-reading of approvals) at times spread over
40 days, with humans acting on the site's table between them: approvals taken back, trashed,
deleted, edited; posts trashed and restored; holds released. Windows start and end at any
microsecond, inside an hour or on its boundary.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from moderation.batch.run_report import RunReport
from moderation.batch.state import BatchState
from moderation.batch.trust import _brake
from moderation.comment import Comment, text_hash
from moderation.formatting import percent
from moderation.humans.outcome_report import measure
from moderation.humans.outcomes import observe_approvals
from moderation.humans.since import Window
from moderation.settings import Settings
from moderation.site.open import open_site
from moderation.site.protocol import Site
from moderation.storage import audit, brake, migrate, tables
from moderation.storage.audit import Decision
from moderation.storage.engines import create_engine, read_transaction
from moderation.storage.memory import Identity
from moderation.storage.qualifications import Qualification
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings

COMMENTS = 120
VARIANTS = [("sha256:" + "a" * 64, "p" * 64), ("sha256:" + "b" * 64, "p" * 64), (None, "q" * 64)]
# "hidden" is the system's own state here (as WordPress's post-trashed is).
STATUSES = ["0", "1", "trash", "hidden"]


def site_settings(url: str, **overrides: Any) -> Settings:
    return make_settings(
        url,
        comments_pending_value="0",
        comments_approved_value="1",
        comments_rejected_values=["trash"],
        comments_system_values=["hidden"],
        **overrides,
    )


def identity(variant: tuple[str | None, str]) -> Identity:
    return Identity("sentiments", variant[0], variant[1], {"temperature": 0})


@dataclass
class History:
    url: str
    settings: Settings
    engine: Engine
    site: Site
    now: datetime

    def set_row(self, comment_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE comments SET "
                    + ", ".join(f"{k} = :{k}" for k in values)
                    + " WHERE id = :id"
                ),
                {"id": comment_id, **values},
            )

    def delete_row(self, comment_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM comments WHERE id = :id"), {"id": comment_id})


def make_history(url: str, seed: int, sweep_limit: int = 40) -> History:
    rng = random.Random(seed)
    create_site_table(url, [f"comment {i}" for i in range(1, COMMENTS + 1)], status=("0", "1"))
    settings = site_settings(url)
    engine = create_engine(url)
    migrate.upgrade(engine)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    history = History(url, settings, engine, open_site(engine, settings).__enter__(), now)
    moment = now - timedelta(days=40)
    bodies = {i: f"comment {i}" for i in range(1, COMMENTS + 1)}
    while moment < now - timedelta(hours=1):
        # Mostly forward, a few steps back: ids and times need not rise together.
        step = rng.choice([-1, 1, 1, 1, 1]) * rng.uniform(0, 6 * 3600)
        moment = min(moment + timedelta(seconds=step, microseconds=rng.randrange(10**6)), now)
        comment_id = rng.randrange(1, COMMENTS + 1)
        roll = rng.random()
        if roll < 0.45:  # a batch decides
            outcome = rng.choices(["approved", "held", "failed"], [6, 3, 1])[0]
            decision = Decision(
                Comment(comment_id, bodies[comment_id]), None, outcome, None, None, 0.1, None
            )
            with engine.begin() as conn:
                audit.record(
                    conn,
                    f"run-{rng.randrange(10**6)}",
                    identity(rng.choice(VARIANTS)),
                    [(decision, 0)],
                    site=history.site.site,
                    now=moment,
                )
            if outcome == "approved":
                history.set_row(comment_id, approved="1")
        elif roll < 0.75:  # a human, in the site's own admin
            action = rng.random()
            if action < 0.75:
                history.set_row(comment_id, approved=rng.choice(STATUSES))
            elif action < 0.9:
                bodies[comment_id] += " (edited)"
                history.set_row(comment_id, body=bodies[comment_id])
            else:
                history.delete_row(comment_id)
        elif roll < 0.85:  # a reviewer on the review page
            ruling = rng.choice(["approved", "rejected"])
            with engine.begin() as conn:
                audit.record_ruling(
                    conn,
                    "session",
                    Comment(comment_id, bodies[comment_id]),
                    ruling,
                    "tester",
                    site=history.site.site,
                    now=moment,
                )
            history.set_row(comment_id, approved="1" if ruling == "approved" else "trash")
        elif roll < 0.89:  # `moderate outcomes` over some window
            since = moment - timedelta(days=rng.uniform(0, 20))
            measure(settings, Window(since, moment))
        else:  # a batch's re-reading of its approvals
            since = now - timedelta(days=rng.uniform(1, 40))
            observe_approvals(
                engine, history.site, Window(since, now), rng.choice(VARIANTS), sweep_limit
            )
    return history


def by_reading_every_decision(
    settings: Settings, since: datetime, until: datetime
) -> dict[tuple[str | None, str], tuple[int, int]]:
    """The brake's figures as it computed them before, every decision and its row read: per
    variant, the approvals that count and those reversed."""
    report = measure(settings, Window(since, until))
    return {
        variant: (tally.approved_by_tool, tally.counts["reversed"])
        for variant, tally in report.by_variant.items()
    }


def brake_time(row: Any) -> datetime:
    """A stored time as an aware one (SQLite and MariaDB give naive UTC)."""
    moment: datetime = row[0]
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def random_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    moment = start + (end - start) * rng.random()
    choice = rng.random()
    if choice < 0.4:  # on an hour's or a minute's boundary, or a microsecond either side
        edge = moment.replace(second=0, microsecond=0)
        if choice < 0.2:
            edge = edge.replace(minute=0)
        return edge + timedelta(microseconds=rng.choice([-1, 0, 0, 1]))
    return moment


def test_the_running_figures_are_those_of_reading_every_decision(db_url: str) -> None:
    history = make_history(db_url, seed=1)
    start = history.now - timedelta(days=41)
    # Everything humans did is seen (and recorded) once, as `moderate outcomes` sees it.
    measure(history.settings, Window(start, history.now))
    rng = random.Random(2)
    with read_transaction(history.engine) as conn:
        approvals = sa.select(tables.decisions.c.decided_at).where(
            tables.decisions.c.outcome == "approved"
        )
        made = [brake_time(t) for t in conn.execute(approvals)]
    compared = 0
    for _ in range(60):
        since = random_moment(rng, start, history.now)
        until = random_moment(rng, since, history.now + timedelta(hours=1))
        if rng.random() < 0.2:  # within one hour
            until = since + timedelta(minutes=rng.uniform(0, 50))
        if rng.random() < 0.5:  # starting or ending on a decision, or a microsecond beside
            on = [t + timedelta(microseconds=rng.choice([-1, 0, 1])) for t in rng.sample(made, 2)]
            since, until = sorted([on[0], rng.choice([until, on[1]])])
        if until <= since:
            continue
        old = by_reading_every_decision(history.settings, since, until)
        for variant in VARIANTS:
            with read_transaction(history.engine) as conn:
                new = brake.figures(conn, history.site.site, *variant, since, until)
            assert (new.approved, new.reversed) == old.get(variant, (0, 0)), (variant, since)
            compared += new.approved
    assert compared > 100  # the windows held approvals to count
    history.engine.dispose()


def test_a_ruling_after_an_approval_counts_at_once(db_url: str) -> None:
    """A reviewer's ruling is recorded by the tool itself: no reading of the site needed."""
    create_site_table(db_url, ["Thanks!", "Nice."], status=("0", "1"), approved={1, 2})
    settings = site_settings(db_url)
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    variant = VARIANTS[0]
    start = datetime.now(UTC) - timedelta(hours=2)
    with open_site(engine, settings) as site, engine.begin() as conn:
        for comment_id, body in ((1, "Thanks!"), (2, "Nice.")):
            decision = Decision(Comment(comment_id, body), None, "approved", None, None, 0.1, None)
            audit.record(conn, "run", identity(variant), [(decision, 0)], site=site.site)
        audit.record_ruling(conn, "s", Comment(1, "Thanks!"), "rejected", "tester", site=site.site)
        audit.record_ruling(conn, "s", Comment(2, "Nice."), "approved", "tester", site=site.site)
        key = site.site
    with read_transaction(engine) as conn:
        new = brake.figures(conn, key, *variant, start, datetime.now(UTC))
    assert (new.approved, new.reversed) == (2, 1)
    old = by_reading_every_decision(settings, start, datetime.now(UTC))
    assert old[variant] == (2, 1)
    engine.dispose()


def test_the_upgrade_counts_the_decisions_recorded_before_it(db_url: str) -> None:
    """Revision 0013 fills the figures from the decisions, outcomes and rulings already there."""
    from alembic import command

    bodies = [f"comment {i}" for i in range(1, 9)]
    create_site_table(db_url, bodies, status=("0", "1"), approved={1, 2, 3, 5, 6})
    settings = site_settings(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0012")
    now = datetime.now(UTC) - timedelta(hours=1)
    variant = VARIANTS[0]
    rows = [  # comment, outcome, reviewer, hours ago
        (1, "approved", None, 30),  # kept
        (2, "approved", None, 20),  # reversed (recorded below)
        (3, "held", None, 50),
        (3, "approved", None, 10),  # replaces the hold: kept
        (4, "approved", None, 40),
        (4, "held", None, 5),  # replaced: counts for nothing
        (5, "approved", None, 3),
        (5, "rejected", "tester", 2),  # a ruling after it: reversed
        (6, "approved", None, 1),
    ]
    with engine.begin() as conn:
        for comment_id, outcome, reviewer, hours in rows:
            conn.execute(
                sa.insert(tables.decisions).values(
                    site="comments",
                    run_id="old",
                    comment_id=str(comment_id),
                    text_hash=text_hash(bodies[comment_id - 1]),
                    outcome=outcome,
                    model="sentiments",
                    model_digest=variant[0],
                    prompt_hash=variant[1],
                    decided_at=now - timedelta(hours=hours, microseconds=comment_id),
                    reviewer=reviewer,
                )
            )
        [two] = conn.execute(
            sa.select(tables.decisions.c.id).where(tables.decisions.c.comment_id == "2")
        ).scalars()
        conn.execute(
            sa.insert(tables.outcomes).values(
                decision_id=two, comment_id="2", outcome="reversed", seen_at=now, site="comments"
            )
        )

    migrate.upgrade(engine)

    since = now - timedelta(hours=35, minutes=17)
    with read_transaction(engine) as conn:
        new = brake.figures(conn, "comments", *variant, since, now)
    assert (new.approved, new.reversed) == (5, 2)
    assert by_reading_every_decision(settings, since, now)[variant] == (5, 2)
    engine.dispose()


def qualification(variant: tuple[str | None, str], qualified_at: datetime) -> Qualification:
    return Qualification(
        key="k",
        model="sentiments",
        model_digest=variant[0],
        prompt_hash=variant[1],
        fixtures_hash="f",
        n=367,
        n_positive=100,
        n_neutral=128,
        n_negative=139,
        n_approve=0,
        n_hold=139,
        max_false_approval=0.05,
        threshold=0.9,
        false_approval_rate=0.0,
        false_approval_bound=0.02,
        auto_approval_share=0.5,
        missed_approval_rate=0.1,
        best_false_approval_rate=0.0,
        failed=0,
        seconds=1.0,
        qualified_at=qualified_at,
    )


def brake_before(
    settings: Settings, variant: tuple[str | None, str], qualified_at: datetime
) -> str | None:
    """The brake's decision as it was computed before the running figures."""
    assert settings.max_reversal_rate is not None
    window = Window.parse(settings.reversal_window)
    since = max(window.since, qualified_at)
    tally = measure(settings, Window(since, window.until)).by_variant.get(variant)
    if tally is None or tally.approved_by_tool < settings.reversal_min_approvals:
        return None
    rate = tally.reversal_rate or 0.0
    if rate <= settings.max_reversal_rate:
        return None
    return (
        f"reversal-rate brake: humans took back {percent(rate)} of {tally.approved_by_tool} "
        f"approvals since {since:%Y-%m-%d %H:%M} UTC, above {percent(settings.max_reversal_rate)}"
    )


def brake_now(
    history: History, settings: Settings, variant: tuple[str | None, str], qualified_at: datetime
) -> str | None:
    """The brake's decision as a batch computes it now."""
    state = BatchState(
        settings=settings,
        engine=history.engine,
        comments=history.site,
        classifier=FakeClassifier(),
        dry_run=False,
        report=RunReport(run_id="run", dry_run=False),
        lease=None,
        identity=identity(variant),
    )
    return _brake(state, qualification(variant, qualified_at))


@pytest.mark.parametrize("observed_first", [True, False])
def test_the_brake_decides_as_it_did_when_it_read_every_decision(
    db_url: str, observed_first: bool
) -> None:
    """With the humans' doings seen first (by `moderate outcomes`), or only by the batch's own
    re-reading (at most 1,000 approvals in the window: every batch reads them all)."""
    history = make_history(db_url, seed=3 if observed_first else 4)
    if observed_first:
        measure(history.settings, Window(history.now - timedelta(days=41), history.now))
    rng = random.Random(5)
    decisions: list[tuple[str | None, str | None]] = []
    for _ in range(8):
        variant = rng.choice(VARIANTS)
        settings = site_settings(
            db_url,
            max_reversal_rate=rng.choice([0.0, 0.05, 0.2, 0.35, 0.5]),
            reversal_window=rng.choice(["3d", "7d", "30d", "48h"]),
            reversal_min_approvals=rng.choice([1, 5, 20]),
        )
        qualified_at = random_moment(
            rng, history.now - timedelta(days=35), history.now - timedelta(days=1)
        )
        # The batch first (its re-reading records what it sees), then the old way.
        now = brake_now(history, settings, variant, qualified_at)
        before = brake_before(settings, variant, qualified_at)
        assert now == before
        decisions.append((now, before))
    assert any(d is not None for d, _ in decisions)  # the brake stopped approvals
    assert any(d is None for d, _ in decisions)  # and let them through
    history.engine.dispose()
