"""`moderate serve` in real processes: one batch per tick across replicas, clean SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, read_table
from tests.processes import start_moderate

pytestmark = pytest.mark.integration


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}, latency=0.01) as fake:
        yield fake


def serve(url: str, ollama: FakeOllama) -> subprocess.Popen[str]:
    env = {"MODERATION_DATABASE_URL": url, "OLLAMA_HOST": ollama.url, "MODERATION_TIMEOUT": "5"}
    return start_moderate("serve", "--every", "1s", env=env)


def test_three_replicas_run_one_batch_per_tick(db_url: str, ollama: FakeOllama) -> None:
    create_site_table(db_url, [f"comment {i}" for i in range(30)])
    replicas = [serve(db_url, ollama) for _ in range(3)]
    try:
        deadline = time.monotonic() + 60
        ticks: list[tuple[float]] = []
        while time.monotonic() < deadline and all(p.poll() is None for p in replicas):
            time.sleep(0.5)
            try:
                ticks = read_table(db_url, "SELECT scheduled_for FROM moderation_runs")
            except Exception:
                continue  # tables not created yet
            if len({t for (t,) in ticks}) >= 3:
                break
    finally:
        for process in replicas:
            process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        codes = [p.wait(timeout=30) for p in replicas]
        stopped_within = time.monotonic() - started
    assert codes == [0, 0, 0], [p.stderr.read() for p in replicas if p.stderr]
    assert stopped_within < 10
    per_tick = Counter(t for (t,) in ticks)
    assert len(per_tick) >= 3
    assert set(per_tick.values()) == {1}, per_tick  # never two batches for one tick
    assert read_table(db_url, "SELECT count(*) FROM comments WHERE approved = true") == [(30,)]
    assert read_table(db_url, "SELECT count(DISTINCT comment_id) FROM moderation_decisions") == [
        (30,)
    ]
