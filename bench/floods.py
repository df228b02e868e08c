"""Requests a site with floods and copies costs: 10,000 comments, 20% of them copies.

Usage (from a clone, in the project's virtualenv; no Ollama needed, about a minute)::

    python bench/floods.py
    python bench/floods.py --comments 10000 --copies 0.2

The site's table holds ``--comments`` comments of which ``--copies`` are copies of another
comment's text: half of the copies in pairs (one extra copy of a text: below the flood limit,
each copy decided on its own), half in floods (texts posted ten times: held by the flood rule).
Each scenario runs one real batch (``python -m moderation --json``) on a fresh SQLite database
against ``tests/fakeollama.py`` at zero latency and counts the requests the server received:

* rules + shared answers: the shipped defaults;
* shared answers only: ``MODERATION_MAX_DUPLICATES=0`` (the flood rule off);
* and then a second batch on the first database after ``--again`` more comments arrived, every
  one a copy of a text decided in the first batch: each is decided on the stored answer.

"Without sharing" is what the same batch would have asked with one request per comment that
no rule held (requests + answers reused).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # tests.fakeollama, when run as `python bench/floods.py`

from moderation.model.host import PROBE_PROMPT  # noqa: E402
from tests.fakeollama import FakeOllama  # noqa: E402

FLOOD_SIZE = 10


def texts(comments: int, copies: float, seed: int = 7) -> list[str]:
    """``comments`` texts of which a share ``copies`` repeat another one, shuffled."""
    extra = round(comments * copies)
    paired = extra // 2
    flooded_texts = (extra - paired) // (FLOOD_SIZE - 1)
    flood_extra = flooded_texts * (FLOOD_SIZE - 1)
    unique = comments - paired - flood_extra
    bodies = [f"Comment {i}: thanks for writing about topic {i % 97}." for i in range(unique)]
    bodies += bodies[:paired]
    for i in range(flooded_texts):
        bodies += [bodies[paired + i]] * (FLOOD_SIZE - 1)
    random.Random(seed).shuffle(bodies)
    return bodies


def site(path: Path, bodies: list[str]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS comments "
            "(id INTEGER PRIMARY KEY, body TEXT NOT NULL, approved BOOLEAN NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO comments (body, approved) VALUES (?, 0)", [(b,) for b in bodies]
        )
    return f"sqlite:///{path}"


def batch(url: str, fake: FakeOllama, **extra: str) -> tuple[dict[str, object], int, float, float]:
    """One batch: its report, the comment requests the server got, wall and CPU seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA_"))}
    env.update(
        MODERATION_DATABASE_URL=url,
        OLLAMA_HOST=fake.url,
        MODERATION_QUALIFY="off",
        MODERATION_MIN_CONFIDENCE="0",
        **extra,
    )
    fake.reset_stats()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "moderation", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"the batch exited {result.returncode}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    bodies = fake.stats()["generate_bodies"]
    asked = sum(1 for b in bodies if b.get("prompt") and b["prompt"] != PROBE_PROMPT)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return report, asked, wall, cpu


def show(name: str, report: dict[str, object], asked: int, wall: float, cpu: float) -> None:
    decisions = report["decisions"]
    assert isinstance(decisions, list)
    flood = sum(1 for d in decisions if d["rule"] == "flood")
    reused = int(report["reused"])  # type: ignore[call-overload]
    without = asked + reused
    saved = 100 * (1 - asked / without) if without else 0.0
    print(
        f"{name:<28} {len(decisions):>8} {flood:>11} {asked:>9} {reused:>7} "
        f"{without:>16} {saved:>6.1f}% {wall:>7.1f} s {cpu:>6.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=10_000)
    parser.add_argument("--copies", type=float, default=0.2)
    parser.add_argument("--again", type=int, default=1_000)
    options = parser.parse_args()
    bodies = texts(options.comments, options.copies)
    distinct = len(set(bodies))
    print(
        f"{len(bodies)} comments, {distinct} distinct texts, {len(bodies) - distinct} copies; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    header = "scenario                     decided  flood rule  requests  reused"
    print(f"{header}  without sharing   saved     wall    CPU")
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOllama(models={"sentiments": None}, latency=0.0, parallel=8, logprobs=True) as fake,
    ):
        work = Path(tmp)
        first = site(work / "rules.db", bodies)
        show("rules + shared answers", *batch(first, fake, MODERATION_CONCURRENCY="8"))
        second = site(work / "sharing.db", bodies)
        show(
            "shared answers only",
            *batch(second, fake, MODERATION_CONCURRENCY="8", MODERATION_MAX_DUPLICATES="0"),
        )
        # The same texts again later: paired texts (not held by a rule) come back.
        counts = Counter(bodies)
        decided = [b for b, n in counts.items() if n < FLOOD_SIZE]
        site(work / "rules.db", random.Random(11).choices(decided, k=options.again))
        show("a later batch of copies", *batch(first, fake, MODERATION_CONCURRENCY="8"))


if __name__ == "__main__":
    main()
