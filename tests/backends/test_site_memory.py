"""Two WordPress sites in one database (prefixes ``wp_`` and ``wp_2_``, the same comment ids):
each keeps its own memory, outcomes, runs and lease, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from moderation.batch.lease import Lease
from moderation.batch.pipeline import run_batch
from moderation.comment import text_hash
from moderation.errors import LeaseHeld
from moderation.humans.outcome_report import measure
from moderation.humans.since import Window
from moderation.settings import Settings
from moderation.storage import migrate
from moderation.storage.engines import create_engine
from moderation.storage.tables import runs
from tests.fakes import FakeClassifier
from tests.helpers import NEGATIVE, create_site_table, execute, make_settings, read_table

# The same ids on both sites, with different texts: memory keyed by the id alone mixes them.
FIRST = ["Thanks, this helped", "you idiot", "Nice write-up"]
SECOND = ["Great photos", "Lovely recipe", "idiot again"]
COUNTED = ("kept", "reversed", "released", "confirmed", "waiting", "edited", "other", "system")


def wordpress(url: str, prefix: str, bodies: list[str]) -> Settings:
    create_site_table(
        url,
        bodies,
        table=f"{prefix}comments",
        id_column="comment_ID",
        body_column="comment_content",
        approved_column="comment_approved",
        status=("0", "1"),
    )
    return make_settings(url, preset="wordpress", table_prefix=prefix, site_rules="off")


def batch(settings: Settings) -> dict[str, Any]:
    return run_batch(settings, classifier=FakeClassifier({"idiot": NEGATIVE})).to_json()


def id_column(url: str) -> str:
    # WordPress's mixed-case name: PostgreSQL keeps the case only when it is quoted.
    return '"comment_ID"' if url.startswith("postgresql") else "comment_ID"


def statuses(url: str, table: str) -> list[tuple[Any, ...]]:
    return read_table(url, f"SELECT comment_approved FROM {table} ORDER BY {id_column(url)}")


def status_of(url: str, table: str, comment_id: int) -> str:
    where = f"{id_column(url)} = {comment_id}"
    return str(read_table(url, f"SELECT comment_approved FROM {table} WHERE {where}")[0][0])


def set_status(url: str, table: str, comment_id: int, status: str) -> str:
    return f"UPDATE {table} SET comment_approved = '{status}' WHERE {id_column(url)} = {comment_id}"


def figures(settings: Settings) -> dict[str, Any]:
    result = measure(settings, Window.parse("30d")).to_json()
    return {name: result[name] for name in ("decided", *COUNTED, "reversal_rate")}


@pytest.fixture
def sites(db_url: str) -> Iterator[tuple[Settings, Settings]]:
    yield wordpress(db_url, "wp_", FIRST), wordpress(db_url, "wp_2_", SECOND)


def test_site_keys_name_the_comments_table(sites: tuple[Settings, Settings]) -> None:
    first, second = sites
    assert (first.site_key, second.site_key) == ("wp_comments", "wp_2_comments")


def test_a_moderators_unapproval_is_never_overridden_by_the_other_site(
    sites: tuple[Settings, Settings], db_url: str
) -> None:
    first, second = sites
    assert batch(first)["approved"] == 2
    # The first site's moderator takes the approval of comment 1 back.
    execute(db_url, set_status(db_url, "wp_comments", 1, "0"))
    # The second site's batch decides its own comment 1 (another text, approved) ...
    assert batch(second)["approved"] == 2
    # ... and the first site's next batch still leaves the taken-back approval alone.
    again = batch(first)
    assert (again["approved"], again["skipped"]) == (0, 2)
    assert status_of(db_url, "wp_comments", 1) == "0"
    # Interleaved once more: neither site asks anything again.
    assert (batch(second)["considered"], batch(first)["considered"]) == (0, 0)
    assert status_of(db_url, "wp_comments", 1) == "0"
    assert status_of(db_url, "wp_2_comments", 1) == "1"
    memory = read_table(
        db_url, "SELECT site, comment_id, outcome FROM moderation_comment_state ORDER BY 1, 2"
    )
    assert memory == [
        ("wp_2_comments", "1", "approved"),
        ("wp_2_comments", "2", "approved"),
        ("wp_2_comments", "3", "held"),
        ("wp_comments", "1", "approved"),
        ("wp_comments", "2", "held"),
        ("wp_comments", "3", "approved"),
    ]


def test_each_sites_outcomes_are_its_own(sites: tuple[Settings, Settings], db_url: str) -> None:
    first, second = sites
    batch(first)
    batch(second)
    execute(
        db_url,
        # First site: approval 1 taken back, hold 2 confirmed (spam).
        set_status(db_url, "wp_comments", 1, "0"),
        set_status(db_url, "wp_comments", 2, "spam"),
        # Second site: hold 3 released by a human.
        set_status(db_url, "wp_2_comments", 3, "1"),
    )
    zero = dict.fromkeys(COUNTED, 0)

    for _ in range(2):  # the second time from the recorded outcomes
        assert figures(first) == {
            **zero,
            "decided": 3,
            "kept": 1,
            "reversed": 1,
            "confirmed": 1,
            "reversal_rate": 1 / 2,
        }
        assert figures(second) == {
            **zero,
            "decided": 3,
            "kept": 2,
            "released": 1,
            "reversal_rate": 0.0,
        }
    recorded = read_table(
        db_url, "SELECT site, comment_id, outcome FROM moderation_outcomes ORDER BY 1, 2"
    )
    assert recorded == [
        ("wp_2_comments", "3", "released"),
        ("wp_comments", "1", "reversed"),
        ("wp_comments", "2", "confirmed"),
    ]


def test_two_sites_hold_two_leases_at_once(sites: tuple[Settings, Settings], db_url: str) -> None:
    first, second = sites
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    # A batch of the first site is running: it holds the first site's lease and its run row.
    running = Lease(engine, ttl=600, owner="elsewhere.example:1:abcd", site=first.site_key)
    running.acquire("r-first")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(runs).values(
                id="r-first",
                site=first.site_key,
                started_at=datetime.now(UTC),
                status="running",
                owner=running.owner,
            )
        )
    try:
        # The second site's batch runs meanwhile, and leaves the first site's run alone.
        assert batch(second)["approved"] == 2
        assert read_table(db_url, "SELECT status FROM moderation_runs WHERE id = 'r-first'") == [
            ("running",)
        ]
        with pytest.raises(LeaseHeld):
            batch(first)
    finally:
        running.release()
        engine.dispose()
    assert batch(first)["approved"] == 2
    names = read_table(db_url, "SELECT name FROM moderation_lease ORDER BY name")
    assert names == [("batch:wp_2_comments",), ("batch:wp_comments",)]
    assert statuses(db_url, "wp_2_comments") == [("1",), ("1",), ("0",)]


def test_rows_from_before_the_site_key_go_to_the_first_site_that_runs(db_url: str) -> None:
    from alembic import command

    first = wordpress(db_url, "wp_", FIRST)
    second = wordpress(db_url, "wp_2_", SECOND)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), "0008")
    # The memory of the one site this database served: comment 1 approved, then taken back.
    execute(
        db_url,
        "INSERT INTO moderation_comment_state (comment_id, text_hash, outcome, prompt_hash,"
        f" failures, run_id, updated_at) VALUES ('1', '{text_hash(SECOND[0])}', 'approved',"
        f" '{'p' * 64}', 0, 'old-run', '2026-12-01 10:00:00')",
    )
    engine.dispose()

    # The second site runs first: the old memory is its own, and keeps its taken-back approval.
    report = batch(second)
    assert (report["approved"], report["skipped"]) == (1, 1)
    assert read_table(
        db_url, "SELECT site FROM moderation_comment_state WHERE run_id = 'old-run'"
    ) == [("wp_2_comments",)]
    # The first site starts afresh, though its comment 1 has the same id.
    assert batch(first)["approved"] == 2
    assert read_table(db_url, "SELECT COUNT(*) FROM moderation_comment_state WHERE site = ''") == [
        (0,)
    ]
