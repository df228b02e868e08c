"""Concurrency and host selection of the real `moderate` program, over real sockets.

The program runs in a subprocess against one or two Ollama-compatible test servers; what the
servers saw (peak requests in flight, requests per server) is read from their statistics, and
the decisions from the `--json` report and the audit table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moderation.model.host import PROBE_PROMPT
from tests.fakeollama import FakeOllama, free_port
from tests.helpers import create_site_table, read_table
from tests.processes import moderate

pytestmark = pytest.mark.integration

RULES = [
    {"contains": "idiot", "answer": '{"label": "negative"}'},
    {"contains": "question", "answer": '{"label": "neutral"}'},
]
# Every comment fails; the start-up probe for log probabilities carries no comment and passes,
# so the host fails mid-batch rather than being left out at the start.
ALWAYS_500 = [{"contains": "<comment>", "kind": "status", "status": 500}]


def reset(server: FakeOllama, **config: Any) -> FakeOllama:
    server.configure(
        **{
            "rules": RULES,
            "faults": [],
            "latency": 0.0,
            "parallel": 8,
            "models": {"sentiments": None},
            "reset_stats": True,
            **config,
        }
    )
    return server


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeOllama, FakeOllama]]:
    with FakeOllama(rules=RULES) as first, FakeOllama(rules=RULES) as second:
        yield first, second


@pytest.fixture
def one(servers: tuple[FakeOllama, FakeOllama]) -> FakeOllama:
    reset(servers[1])
    return reset(servers[0])


@pytest.fixture
def two(servers: tuple[FakeOllama, FakeOllama]) -> tuple[FakeOllama, FakeOllama]:
    return reset(servers[0]), reset(servers[1])


def site(tmp_path: Path, count: int, name: str = "site.db") -> str:
    url = f"sqlite:///{tmp_path / name}"
    create_site_table(url, [body(i) for i in range(1, count + 1)])
    return url


def body(i: int) -> str:
    # Three labels by the server's rules, spread over the backlog.
    return (f"comment {i}: ") + ("you idiot", "a question", "thanks, lovely")[i % 3]


def run(url: str, **env: str) -> tuple[int, dict[str, Any], str]:
    result = moderate(
        "--json",
        env={
            "MODERATION_DATABASE_URL": url,
            "MODERATION_TIMEOUT": "5",
            "MODERATION_LOAD_TIMEOUT": "10",
            **env,
        },
    )
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, report, result.stderr


def prompts_seen(server: FakeOllama) -> int:
    """Comments sent; the warm-up's empty prompt only loads the model, and the probe for log
    probabilities after it carries no comment."""
    bodies = server.stats()["generate_bodies"]
    return sum(1 for b in bodies if b.get("prompt") and b["prompt"] != PROBE_PROMPT)


@pytest.mark.parametrize("concurrency", [3, 1])
def test_requests_in_flight_never_exceed_the_concurrency(
    tmp_path: Path, one: FakeOllama, concurrency: int
) -> None:
    # The server could take 8 at once; the program must not send more than it was told.
    reset(one, latency=0.05, parallel=8)
    url = site(tmp_path, 40)
    code, report, stderr = run(url, OLLAMA_HOST=one.url, MODERATION_CONCURRENCY=str(concurrency))
    assert code == 0, stderr
    assert report["considered"] == 40
    stats = one.stats()
    assert stats["peak_in_flight"] == concurrency
    assert stats["peak_waiting"] == 0
    assert prompts_seen(one) == 40


def test_requests_spread_over_two_hosts_within_their_slots(
    tmp_path: Path, two: tuple[FakeOllama, FakeOllama]
) -> None:
    for server in two:
        reset(server, latency=0.02, parallel=8)
    url = site(tmp_path, 40)
    hosts = ",".join(f"{s.url}*2" for s in two)
    code, report, stderr = run(url, OLLAMA_HOSTS=hosts)
    assert code == 0, stderr
    assert report["considered"] == 40 and report["failed"] == 0
    seen = [prompts_seen(s) for s in two]
    assert sum(seen) == 40
    assert all(n >= 10 for n in seen), seen  # each at least a quarter
    assert all(s.stats()["peak_in_flight"] <= 2 for s in two)
    audit = read_table(url, "SELECT host, count(*) FROM moderation_decisions GROUP BY host")
    assert dict(audit) == {s.url: n for s, n in zip(two, seen, strict=True)}


def test_a_failing_host_is_rested_and_the_healthy_one_decides(
    tmp_path: Path, two: tuple[FakeOllama, FakeOllama]
) -> None:
    bad, good = two
    reset(bad, faults=ALWAYS_500)
    reset(good, latency=0.01)
    url = site(tmp_path, 40)
    code, report, stderr = run(url, OLLAMA_HOSTS=f"{bad.url}*2,{good.url}*2")
    assert code == 0, stderr
    assert (report["considered"], report["failed"], report["status"]) == (40, 0, "done")
    assert {d["outcome"] for d in report["decisions"]} == {"approved", "held"}
    assert read_table(url, "SELECT DISTINCT host FROM moderation_decisions") == [(good.url,)]
    # Rested after 3 consecutive failures; requests already in flight may add one or two.
    assert 3 <= prompts_seen(bad) <= 5
    assert f"resting {bad.url}" in stderr
    assert prompts_seen(good) == 40


def test_a_host_down_at_start_is_left_out_with_a_warning(tmp_path: Path, one: FakeOllama) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    url = site(tmp_path, 20)
    code, report, stderr = run(url, OLLAMA_HOSTS=f"{down}*2,{one.url}*2")
    assert code == 0, stderr
    assert (report["considered"], report["failed"]) == (20, 0)
    assert f"leaving out {down}" in stderr and "WARNING" in stderr
    assert read_table(url, "SELECT DISTINCT host FROM moderation_decisions") == [(one.url,)]


def test_decisions_do_not_depend_on_the_concurrency(tmp_path: Path, one: FakeOllama) -> None:
    reset(one, latency=0.005, parallel=16)
    outcomes = {"negative": "held", "neutral": "approved", "positive": "approved"}
    expected = {
        (i, label, outcomes[label])
        for i in range(1, 61)
        for label in [("negative", "neutral", "positive")[i % 3]]
    }
    for concurrency in (1, 4, 16):
        url = site(tmp_path, 60, name=f"c{concurrency}.db")
        code, report, stderr = run(
            url, OLLAMA_HOST=one.url, MODERATION_CONCURRENCY=str(concurrency)
        )
        assert code == 0, stderr
        decided = {(d["comment_id"], d["label"], d["outcome"]) for d in report["decisions"]}
        assert decided == expected, concurrency
        approved = read_table(url, "SELECT id FROM comments WHERE approved ORDER BY id")
        assert [row[0] for row in approved] == [i for i in range(1, 61) if i % 3]
