"""Time of `moderate outcomes` over 100,000 decided comments in the window, on SQLite.

Usage (from a clone, in the project's virtualenv)::

    python bench/outcomes.py                    # 100,000 decided comments
    python bench/outcomes.py --comments 20000

A fresh SQLite database gets the site's table and the tool's own tables (``moderate db
upgrade``), then one decision per comment written as the batch writes them (same columns, same
values), then scripted humans: some approvals taken back or deleted, some holds approved,
deleted or edited. The real program (``python -m moderation outcomes --json``) runs twice in a
child process: the first run reads every row and records the human outcomes it sees, the second
finds them recorded. Printed per run: wall time (start-up included), the child's CPU time
(user + system, from ``os.wait4``) and peak RSS; then the figures.
The target is under 5 s per run for 100,000 decisions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 5.0
CHILD_TIMEOUT = 600.0  # for `db upgrade`
PHRASES = (
    "Thanks for writing this up, the part about connection pools saved my afternoon.",
    "I disagree with the second point, but the benchmark numbers are convincing.",
    "Could you share the config you used for the replica? Mine keeps lagging.",
    "This is nonsense and you should stop writing.",
)


def text_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA_"))}
    env["MODERATION_DATABASE_URL"] = url
    return env


def build(path: Path, comments: int, seed: int) -> None:
    url = f"sqlite:///{path}"
    sqlite = sqlite3.connect(path)
    sqlite.execute(
        "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL, approved BOOLEAN)"
    )
    sqlite.commit()
    subprocess.run(
        [sys.executable, "-m", "moderation", "db", "upgrade"],
        env=environment(url),
        check=True,
        capture_output=True,
        timeout=CHILD_TIMEOUT,
    )
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bodies = [f"{PHRASES[i % len(PHRASES)]} #{i}" for i in range(1, comments + 1)]
    approved = [rng.random() < 0.6 for _ in bodies]
    sqlite.executemany(
        "INSERT INTO comments (id, body, approved) VALUES (?, ?, ?)",
        [
            (i, body, int(a))
            for i, (body, a) in enumerate(zip(bodies, approved, strict=True), start=1)
        ],
    )
    decided_at = (now - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S.%f")
    sqlite.executemany(
        "INSERT INTO moderation_decisions (run_id, comment_id, text_hash, label, outcome,"
        " raw_answer, model, model_digest, host, prompt_hash, options, latency_ms, error,"
        " decided_at) VALUES (?, ?, ?, ?, ?, ?, 'sentiments', ?, 'http://127.0.0.1:11434',"
        " ?, '{}', 12.5, NULL, ?)",
        [
            (
                f"run-{i // 500}",
                str(i),
                text_hash(body),
                "positive" if a else "negative",
                "approved" if a else "held",
                '{"label": "positive"}' if a else '{"label": "negative"}',
                "sha256:" + ("a" if i % 3 else "b") * 64,
                ("1" if i % 2 else "2") * 64,
                decided_at,
            )
            for i, (body, a) in enumerate(zip(bodies, approved, strict=True), start=1)
        ],
    )
    # The humans: approvals taken back (pending again, or deleted), holds released,
    # confirmed by deletion, or edited by their author.
    for i, a in enumerate(approved, start=1):
        roll = rng.random()
        if a and roll < 0.03:
            sqlite.execute("UPDATE comments SET approved = 0 WHERE id = ?", (i,))
        elif (a and roll < 0.05) or (not a and roll < 0.10):
            sqlite.execute("DELETE FROM comments WHERE id = ?", (i,))
        elif not a and roll < 0.20:
            sqlite.execute("UPDATE comments SET approved = 1 WHERE id = ?", (i,))
        elif not a and roll < 0.22:
            sqlite.execute("UPDATE comments SET body = body || ' (edited)' WHERE id = ?", (i,))
    sqlite.commit()
    sqlite.close()


def run_outcomes(path: Path) -> tuple[float, float, float, dict[str, Any]]:
    """(wall s, CPU s, peak RSS MiB, the JSON figures) of one `moderate outcomes --json`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "moderation", "outcomes", "--since", "7d", "--json"],
            env=environment(f"sqlite:///{path}"),
            stdout=out,
            stderr=err,
        )
        # os.wait4 rather than Popen.wait: it also gives this child's own peak RSS.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"moderate outcomes failed ({child.returncode}): {err.read()}")
        cpu = usage.ru_utime + usage.ru_stime
        return wall, cpu, usage.ru_maxrss / 1024, json.loads(out.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "site.db"
        started = time.perf_counter()
        build(path, args.comments, args.seed)
        print(f"built {args.comments:,} decided comments in {time.perf_counter() - started:.1f} s")
        # Wall time on a busy machine includes waiting for a core; CPU time does not.
        print(f"load average before the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        for name in ("first run (records outcomes)", "second run (outcomes recorded)"):
            wall, cpu, rss, figures = run_outcomes(path)
            verdict = "ok" if wall < TARGET_SECONDS else f"ABOVE the {TARGET_SECONDS:.0f} s target"
            print(f"{name}: {wall:.2f} s wall ({verdict}), {cpu:.2f} s CPU, peak RSS {rss:.0f} MiB")
        counts = {k: figures[k] for k in ("decided", "kept", "reversed", "released", "confirmed")}
        rest = {k: figures[k] for k in ("waiting", "edited", "other")}
        print(f"figures: {counts} {rest}")
        print(
            f"reversal rate {figures['reversal_rate']:.4f}, release rate "
            f"{figures['release_rate']:.4f}, {len(figures['by_variant'])} variants"
        )


if __name__ == "__main__":
    main()
