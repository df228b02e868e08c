"""Many processes, kill -9 and a dying server: every comment decided once, nothing lost.

These start real `moderate` processes against the Ollama-compatible test server, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, read_table
from tests.processes import moderate, start_moderate

pytestmark = pytest.mark.integration

RULES = [{"contains": "bad", "answer": '{"label": "negative"}'}]
# How many rounds of the concurrency and kill loops; CI raises it (see .ci/run).
STRESS = int(os.environ.get("MODERATION_TEST_STRESS", "1"))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}, rules=RULES, parallel=8) as fake:
        yield fake


@pytest.fixture
def ollama(server: FakeOllama) -> FakeOllama:
    server.configure(rules=RULES, faults=[], latency=0.01, parallel=8, reset_stats=True)
    return server


def environment(url: str, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    env = {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_CONCURRENCY": "2",
        "MODERATION_BATCH_SIZE": "5",
    }
    env.update(extra)
    return env


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    return start_moderate("--json", env=env)


def bodies(start_at: int, count: int) -> list[str]:
    return [
        f"comment {i} {'bad' if i % 4 == 0 else 'fine'}" for i in range(start_at, start_at + count)
    ]


def add_comments(url: str, texts: list[str]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO comments (body, approved) VALUES (:body, false)"),
            [{"body": t} for t in texts],
        )
    engine.dispose()


def check_invariants(url: str, expect_all_decided: bool) -> None:
    """No approval without its audit row, no audit row claiming an approval that did not
    happen, at most one effective decision per comment, no run stuck 'running'."""
    approved = {r[0] for r in read_table(url, "SELECT id FROM comments WHERE approved = true")}
    if not sa.inspect(sa.create_engine(url)).has_table("moderation_decisions"):
        assert approved == set()  # killed before its first transaction
        assert not expect_all_decided
        return
    rows = read_table(
        url,
        "SELECT comment_id, outcome FROM moderation_decisions "
        "WHERE outcome IN ('approved', 'held')",
    )
    audited_approvals = [int(c) for c, o in rows if o == "approved"]
    assert sorted(audited_approvals) == sorted(approved)
    decided = [int(c) for c, _ in rows]
    assert len(decided) == len(set(decided)), "a comment was decided twice"
    if expect_all_decided:
        total = read_table(url, "SELECT count(*) FROM comments")[0][0]
        assert len(decided) == total
        held = {int(c) for c, o in rows if o == "held"}
        pending = {r[0] for r in read_table(url, "SELECT id FROM comments WHERE approved = false")}
        assert pending == held
        assert read_table(url, "SELECT count(*) FROM moderation_runs WHERE status = 'running'") == [
            (0,)
        ]


def run_until_done(env: dict[str, str], attempts: int = 20) -> None:
    for _ in range(attempts):
        result = moderate(env=env)
        if result.returncode == 0:
            return
        assert result.returncode == 75, result.stderr
        time.sleep(0.3)
    raise AssertionError("the lease was never freed")


def test_eight_processes_decide_each_comment_exactly_once(db_url: str, ollama: FakeOllama) -> None:
    create_site_table(db_url, [])
    env = environment(db_url, ollama)
    for round_number in range(2 * STRESS):
        add_comments(db_url, bodies(round_number * 40, 40))
        processes = [start(env) for _ in range(8)]
        codes = [p.wait(timeout=120) for p in processes]
        errors = [p.stderr.read() for p in processes if p.stderr]
        assert set(codes) <= {0, 75}, errors
        assert 0 in codes
        check_invariants(db_url, expect_all_decided=True)
    assert ollama.stats()["peak_in_flight"] <= 8


def test_two_sites_in_one_database_run_their_batches_at_the_same_time(
    db_url: str, ollama: FakeOllama
) -> None:
    """One lease per site: neither batch waits for the other, nor exits 75."""
    import json

    texts = bodies(0, 12)
    for table in ("site_a_comments", "site_b_comments"):
        create_site_table(db_url, texts, table=table)  # the same ids on both
    ollama.configure(latency=0.2)
    started = [
        start(environment(db_url, ollama, MODERATION_COMMENTS_TABLE=table))
        for table in ("site_a_comments", "site_b_comments")
    ]
    results = [(p.wait(timeout=120), p.communicate()) for p in started]
    assert [code for code, _ in results] == [0, 0], [err for _, (_, err) in results]
    reports = [json.loads(out) for _, (out, _) in results]
    assert [(r["considered"], r["approved"]) for r in reports] == [(12, 9), (12, 9)]
    runs = read_table(db_url, "SELECT site, started_at, finished_at FROM moderation_runs")
    assert sorted(site for site, _, _ in runs) == ["site_a_comments", "site_b_comments"]
    (_, start_a, end_a), (_, start_b, end_b) = runs
    assert start_a < end_b and start_b < end_a, "the two batches did not overlap"
    for table in ("site_a_comments", "site_b_comments"):
        pending = read_table(db_url, f"SELECT count(*) FROM {table} WHERE approved = false")
        assert pending == [(3,)]


def test_kill_minus_nine_at_random_moments_loses_nothing(db_url: str, ollama: FakeOllama) -> None:
    create_site_table(db_url, bodies(0, 80))
    # The default lease: a killed holder on this host is taken over at once, no expiry needed.
    env = environment(db_url, ollama)
    ollama.configure(latency=0.02)
    rng = random.Random(20261123)
    for _ in range(10 * STRESS):
        process = start(env)
        # Kill after a random number of model answers (0 = during start-up), at a random
        # instant between two answers: before a call, after it, or inside a commit.
        target = ollama.stats()["completed"] + rng.randint(0, 25)
        deadline = time.monotonic() + 20
        while ollama.stats()["completed"] < target and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.03))
        process.send_signal(signal.SIGKILL)
        process.wait()
        check_invariants(db_url, expect_all_decided=False)
    run_until_done(env, attempts=1)
    check_invariants(db_url, expect_all_decided=True)


def test_server_dying_mid_batch_opens_the_circuit(sqlite_url: str, ollama: FakeOllama) -> None:
    create_site_table(sqlite_url, bodies(0, 30))
    # Every answer about a comment fails (the start-up probe carries none, and passes): the
    # circuit opens after 5 consecutive failures.
    ollama.configure(faults=[{"contains": "<comment>", "kind": "status", "status": 500}])
    env = environment(sqlite_url, ollama, MODERATION_CONCURRENCY="1", MODERATION_RETRIES="0")
    result = moderate("--json", env=env)
    assert result.returncode == 3, result.stderr
    check_invariants(sqlite_url, expect_all_decided=False)
    pending = read_table(sqlite_url, "SELECT count(*) FROM comments WHERE approved = false")[0][0]
    assert pending == 30
    assert ollama.stats()["faults_served"] == 5  # it stopped asking instead of failing all 30
    assert read_table(sqlite_url, "SELECT status FROM moderation_runs") == [("circuit-open",)]


def test_killed_server_mid_batch_then_a_new_one_completes(sqlite_url: str, tmp_path: Path) -> None:
    create_site_table(sqlite_url, bodies(0, 40))
    with FakeOllama(models={"sentiments": None}, rules=RULES, latency=0.05) as dying:
        env = environment(sqlite_url, dying, MODERATION_CONCURRENCY="1", MODERATION_RETRIES="0")
        process = start(env)
        deadline = time.monotonic() + 30
        while dying.stats()["completed"] < 5:  # mid-batch: some answers in, most to come
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        dying.kill()
        assert process.wait(timeout=60) == 3
        check_invariants(sqlite_url, expect_all_decided=False)
    with FakeOllama(models={"sentiments": None}, rules=RULES) as fresh:
        run_until_done(environment(sqlite_url, fresh))
    check_invariants(sqlite_url, expect_all_decided=True)


@pytest.mark.postgres
def test_database_connections_dropped_mid_batch(postgres_url: str, ollama: FakeOllama) -> None:
    create_site_table(postgres_url, bodies(0, 60))
    ollama.configure(latency=0.05)
    env = environment(postgres_url, ollama, MODERATION_CONCURRENCY="1")
    process = start(env)
    time.sleep(1.0)
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() "
            "AND application_name <> 'psql'"
        )
    admin.dispose()
    assert process.wait(timeout=60) in (0, 3, 5)
    check_invariants(postgres_url, expect_all_decided=False)
    ollama.configure(latency=0.0)
    run_until_done(env)
    check_invariants(postgres_url, expect_all_decided=True)
