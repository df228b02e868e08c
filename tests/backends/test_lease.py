"""The batch lease at its boundaries, with a clock the test controls, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection, Engine

from moderation.batch.lease import Lease
from moderation.errors import LeaseHeld, LeaseLost
from moderation.storage import migrate
from moderation.storage.engines import create_engine, run_write
from tests.helpers import read_table


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_second_holder_is_refused_until_expiry_then_takes_over(engine: Engine) -> None:
    clock = Clock()
    first = Lease(engine, ttl=60, owner="first", clock=clock)
    second = Lease(engine, ttl=60, owner="second", clock=clock)
    assert first.acquire() == 1

    clock.now += 59.999
    with pytest.raises(LeaseHeld, match="held by first until"):
        second.acquire()

    clock.now += 0.001  # exactly at expiry: the lease is free
    assert second.acquire() == 2


def test_a_paused_holder_cannot_write_after_losing_the_lease(engine: Engine) -> None:
    clock = Clock()
    paused = Lease(engine, ttl=60, owner="paused", clock=clock)
    paused.acquire()
    clock.now += 61  # paused past its expiry...
    Lease(engine, ttl=60, owner="newcomer", clock=clock).acquire()  # ...and taken over

    writes = []

    def write(conn: Connection) -> None:
        paused.fence(conn)
        writes.append("written")

    with pytest.raises(LeaseLost):
        run_write(engine, write)
    assert writes == []


def test_an_expired_lease_fences_even_if_nobody_took_it(engine: Engine) -> None:
    clock = Clock()
    lease = Lease(engine, ttl=60, owner="slow", clock=clock)
    lease.acquire()
    clock.now += 60
    with pytest.raises(LeaseLost):
        lease.renew()


def test_fence_extends_the_lease(engine: Engine) -> None:
    clock = Clock()
    lease = Lease(engine, ttl=60, owner="worker", clock=clock)
    lease.acquire()
    clock.now += 50
    lease.renew()
    clock.now += 50  # 100 s after acquiring, still ours thanks to the renewal
    lease.renew()
    with pytest.raises(LeaseHeld):
        Lease(engine, ttl=60, owner="other", clock=clock).acquire()


def test_release_frees_it_at_once_and_the_token_keeps_growing(engine: Engine) -> None:
    clock = Clock()
    first = Lease(engine, ttl=600, owner="first", clock=clock)
    first.acquire()
    first.release()
    assert Lease(engine, ttl=600, owner="second", clock=clock).acquire() == 2
    assert read_table(
        str(engine.url.render_as_string(hide_password=False)),
        "SELECT owner, token FROM moderation_lease",
    ) == [("second", 2)]


def test_taking_over_marks_the_dead_holders_run_abandoned(engine: Engine, db_url: str) -> None:
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from moderation.storage.tables import runs

    clock = Clock()
    Lease(engine, ttl=60, owner="dead", clock=clock).acquire()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(runs).values(
                id="r1", started_at=datetime.now(UTC), status="running", owner="dead"
            )
        )
    clock.now += 61
    Lease(engine, ttl=60, owner="alive", clock=clock).acquire()
    assert read_table(db_url, "SELECT status FROM moderation_runs") == [("abandoned",)]


def test_two_takers_of_an_expired_lease_serialise(engine: Engine, db_url: str) -> None:
    # Both read the same expired row; the first one's UPDATE holds the row (SQLite: the write
    # lock) until it commits, and the second one's conditional UPDATE then matches nothing.
    import threading

    clock = Clock()
    Lease(engine, ttl=60, owner="dead", clock=clock).acquire()
    clock.now += 61
    first = Lease(engine, ttl=60, owner="first", clock=clock)
    second = Lease(engine, ttl=60, owner="second", clock=clock)
    first_updated, let_first_commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first_takes(conn: Connection) -> int:
        token = first._acquire(conn, None)
        first_updated.set()
        assert let_first_commit.wait(30)
        return token

    def second_takes() -> None:
        try:
            outcome["second"] = second.acquire()
        except LeaseHeld as exc:
            outcome["second"] = exc

    taker = threading.Thread(target=lambda: outcome.update(first=run_write(engine, first_takes)))
    taker.start()
    assert first_updated.wait(30)
    rival = threading.Thread(target=second_takes)
    rival.start()
    rival.join(1.0)
    assert rival.is_alive(), "the second taker must wait for the first one's transaction"
    let_first_commit.set()
    taker.join(30)
    rival.join(30)
    assert outcome["first"] == 2
    assert isinstance(outcome["second"], LeaseHeld)
    assert read_table(db_url, "SELECT owner, token FROM moderation_lease") == [("first", 2)]
