"""Time from kill -9 of a running batch to the next batch that completes, with the default lease.

Usage (from a clone, in the project's virtualenv; no Ollama needed)::

    python bench/lease_takeover.py              # both scenarios, 3 rounds each (about 3 minutes)
    python bench/lease_takeover.py --rounds 1

Each round starts a real batch (``python -m moderation --json``) on a fresh SQLite database
against ``tests/fakeollama.py`` answering slowly, waits until it has had two answers (so it
holds the lease, renewed, mid-batch), kills it with SIGKILL, and then runs the next batch the
way a retrying scheduler would: at once, and again every ``--retry-every`` seconds while it
exits 75. The figure is the wall time from the kill to the end of the first batch that exits 0.

* same host: the dead holder's owner names this host and its PID: taken over at once.
* other host: the lease row is rewritten to name another host (as if the holder had run on
  another machine), so nothing can tell it died: the next batch waits for the lease to expire
  (MODERATION_LEASE_SECONDS, 60 s by default, counted from the holder's last renewal).
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # tests.fakeollama, when run as `python bench/lease_takeover.py`

from tests.fakeollama import FakeOllama  # noqa: E402

CHILD_TIMEOUT = 120.0


def fresh_database(path: Path, comments: int) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL, "
            "approved BOOLEAN NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO comments (body, approved) VALUES (?, 0)",
            [(f"comment number {i}",) for i in range(comments)],
        )
    return f"sqlite:///{path}"


def environment(url: str, fake: FakeOllama) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA_"))}
    env.update(
        MODERATION_DATABASE_URL=url,
        OLLAMA_HOST=fake.url,
        MODERATION_TIMEOUT="10",
        MODERATION_BATCH_SIZE="1",
    )
    return env


def moderate(env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "moderation", "--json"]
    return subprocess.run(
        command, env=env, capture_output=True, timeout=CHILD_TIMEOUT, check=False
    ).returncode


def one_round(
    work: Path, fake: FakeOllama, other_host: bool, retry_every: float
) -> tuple[float, int]:
    """Seconds from kill -9 to the next completed batch, and how many runs exited 75."""
    db = work / f"site-{time.monotonic_ns()}.db"
    url = fresh_database(db, 30)
    env = environment(url, fake)
    fake.configure(latency=0.5, reset_stats=True)
    holder = subprocess.Popen(
        [sys.executable, "-m", "moderation", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + CHILD_TIMEOUT
    while fake.stats()["completed"] < 2:
        if holder.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the first batch did not get going")
        time.sleep(0.01)
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    if other_host:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE moderation_lease SET owner = 'elsewhere.example:4242:dead'")
    fake.configure(latency=0.0)
    held = 0
    while True:
        code = moderate(env)
        if code == 0:
            return time.monotonic() - killed, held
        if code != 75:
            raise SystemExit(f"the next batch exited {code}")
        held += 1
        time.sleep(retry_every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--retry-every", type=float, default=5.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOllama(models={"sentiments": None}) as fake:
        work = Path(tmp)
        print("scenario      round  kill -9 -> next batch done  runs that exited 75")
        for name, other in (("same host", False), ("other host", True)):
            times = []
            for number in range(1, options.rounds + 1):
                seconds, held = one_round(work, fake, other, options.retry_every)
                times.append(seconds)
                print(f"{name:<12}  {number:>5}  {seconds:>23.2f} s  {held:>19}")
            print(f"{name:<12}  median {statistics.median(times):>21.2f} s")


if __name__ == "__main__":
    main()
