"""What the reversal brake costs a batch's start-up, read from every decision or from its figures.

Usage (from a clone, in the project's virtualenv)::

    python bench/brake.py                          # 100,000 and 1,000,000 decisions
    python bench/brake.py --decisions 100000

For each size, a fresh SQLite database gets the site's table (one comment per decision) and the
tool's tables at revision 0012, then the decisions as a batch writes them (one model and prompt,
spread over the 30 days of the default window, 60% approvals) and scripted humans (3% of the
approvals pending again, 2% deleted, a few posts trashed; 10% of the holds released). Revision
0013 then fills the brake's figures from them (timed: the one-off cost of the upgrade).

Timed, in this process, each the median of ``--rounds`` runs:

* before: the brake as every batch computed it until now, ``moderate outcomes``' count of
  every decision in the window and its comment's row (``humans.outcome_report.measure``), once
  the first run has recorded the human outcomes it saw. Twice: with each page's query as it
  was, which SQLite answered through the (site, text_hash) index, sorting all of the site's
  decisions for every page of 1,000 (measured up to ``--as-it-was-up-to`` decisions: the time
  grows with their square), and with the page keyed on the primary key as it is now;
* after: the brake as a batch computes it now: the bounded re-reading of 1,000 approvals on the
  site (``humans.outcomes.observe_approvals``) and the figures' read (``storage.brake.figures``),
  and the figures' read alone;
* the writer's cost: ``storage.audit.record`` for chunks of 500 decisions (the default
  ``MODERATION_BATCH_SIZE``) with the figures kept, against the same with their upkeep off.

Both computations must give the same figures; the script says so, or stops.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


from moderation.comment import Comment, text_hash  # noqa: E402
from moderation.humans import outcomes  # noqa: E402
from moderation.humans.outcome_report import measure  # noqa: E402
from moderation.humans.outcomes import observe_approvals  # noqa: E402
from moderation.humans.since import Window  # noqa: E402
from moderation.settings import Settings  # noqa: E402
from moderation.site.open import open_site  # noqa: E402
from moderation.storage import audit, brake, migrate  # noqa: E402
from moderation.storage.audit import Decision  # noqa: E402
from moderation.storage.engines import create_engine, read_transaction  # noqa: E402
from moderation.storage.memory import Identity  # noqa: E402

DIGEST, PROMPT = "sha256:" + "a" * 64, "b" * 64
IDENTITY = Identity("sentiments", DIGEST, PROMPT, {"temperature": 0})
INSERT_EVERY = 20_000


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url,
        comments_pending_value="0",
        comments_approved_value="1",
        comments_rejected_values=["trash"],
        comments_system_values=["post-trashed"],
        qualify="off",
    )


def build(path: Path, count: int, seed: int) -> tuple[Settings, datetime]:
    """The site and count decisions, the tool's tables at 0012, then upgraded (timed)."""
    from alembic import command

    url = f"sqlite:///{path}"
    rng = random.Random(seed)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL, "
            "approved VARCHAR(20) NOT NULL)"
        )
        command.upgrade(migrate._config(conn), "0012")
    now = datetime.now(UTC)
    start = now - timedelta(days=29, hours=23)
    approved = [rng.random() < 0.6 for _ in range(count)]
    status = []
    for is_approved in approved:
        roll = rng.random()
        if is_approved:
            status.append("0" if roll < 0.03 else None if roll < 0.05 else "1")
            if roll > 0.999:
                status[-1] = "post-trashed"
        else:
            status.append("1" if roll < 0.10 else "0")
    with engine.begin() as conn:
        for first in range(0, count, INSERT_EVERY):
            ids = range(first + 1, min(count, first + INSERT_EVERY) + 1)
            conn.exec_driver_sql(
                "INSERT INTO comments (id, body, approved) VALUES (?, ?, ?)",
                [(i, f"comment {i}", status[i - 1]) for i in ids if status[i - 1] is not None],
            )
            conn.exec_driver_sql(
                "INSERT INTO moderation_decisions (site, run_id, comment_id, text_hash, label,"
                " outcome, raw_answer, model, model_digest, host, prompt_hash, options,"
                " latency_ms, decided_at, coverage) VALUES ('comments', ?, ?, ?, ?, ?, ?,"
                " 'sentiments', ?, 'http://127.0.0.1:11434', ?, '{}', 12.5, ?, 'whole')",
                [
                    (
                        f"run-{i // 500}",
                        str(i),
                        text_hash(f"comment {i}"),
                        "positive" if approved[i - 1] else "negative",
                        "approved" if approved[i - 1] else "held",
                        '"positive"' if approved[i - 1] else '"negative"',
                        DIGEST,
                        PROMPT,
                        (start + (now - start) * (i / count)).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    )
                    for i in ids
                ],
            )
    started = time.perf_counter()
    migrate.upgrade(engine)
    print(f"  upgrade to revision 0013 (fills the figures): {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return settings_for(url), now


def median_seconds(work: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


@contextlib.contextmanager
def page_as_it_was() -> Iterator[None]:
    """``moderate outcomes``' page query as it was: a plain equality on the site."""

    def plain(conn: Any, site: str) -> Any:
        return outcomes.decisions.c.site == site

    with mock.patch.object(outcomes, "_same_site", plain):
        yield


@contextlib.contextmanager
def figures_off() -> Iterator[None]:
    """The writer as it was: no upkeep of the figures around its inserts."""

    @contextlib.contextmanager
    def nothing(*_: Any, **__: Any) -> Iterator[None]:
        yield

    with mock.patch.object(brake, "tool_decisions", nothing):
        yield


def writer_cost(settings: Settings, count: int, rounds: int) -> None:
    engine = create_engine(settings.database_url)
    with open_site(engine, settings) as site:
        chunk = 500
        key = count + 10_000

        def write() -> None:
            nonlocal key
            items = []
            for _ in range(chunk):
                key += 1
                comment = Comment(key, f"new comment {key}")
                items.append((Decision(comment, "positive", "approved", None, None, 0.1, None), 0))
            with engine.begin() as conn:
                audit.record(conn, "bench", IDENTITY, items, site=site.site)

        kept, _ = median_seconds(write, rounds)
        with figures_off():
            off, _ = median_seconds(write, rounds)
    engine.dispose()
    print(
        f"  writer, a chunk of {chunk} approvals: {kept * 1000:.1f} ms with the figures kept, "
        f"{off * 1000:.1f} ms without ({(kept - off) / chunk * 1000:.3f} ms a decision)"
    )


def bench(count: int, rounds: int, seed: int, as_it_was_up_to: int) -> None:
    print(f"{count:,} decisions")
    with tempfile.TemporaryDirectory() as directory:
        settings, now = build(Path(directory) / "site.db", count, seed)
        window = Window(now - timedelta(days=30), datetime.now(UTC))
        variant = (DIGEST, PROMPT)

        def before() -> tuple[int, int]:
            tally = measure(settings, window).by_variant[variant]
            return tally.approved_by_tool, tally.counts["reversed"]

        started = time.perf_counter()
        before()  # records the human outcomes it sees, once
        first = time.perf_counter() - started
        print(f"  before, first run (records what humans did): {first:.2f} s")
        if count <= as_it_was_up_to:
            with page_as_it_was():
                shipped_seconds, shipped = median_seconds(before, 1)
            assert shipped == before()
            print(f"  before, each page's query as it was: {shipped_seconds:.2f} s")
        else:
            print(f"  before, each page's query as it was: not measured (over {as_it_was_up_to:,})")
        old_seconds, old = median_seconds(before, rounds)
        engine = create_engine(settings.database_url)
        with open_site(engine, settings) as site:

            def read() -> tuple[int, int]:
                with read_transaction(engine) as conn:
                    found = brake.figures(conn, site.site, *variant, window.since, window.until)
                return found.approved, found.reversed

            def after() -> tuple[int, int]:
                observe_approvals(engine, site, window, variant)
                return read()

            new_seconds, new = median_seconds(after, rounds)
            read_seconds, _ = median_seconds(read, rounds)
        engine.dispose()
        if new != old:
            raise SystemExit(f"the figures differ: before {old}, after {new}")
        print(f"  figures (approvals, reversed): {new}, the same both ways")
        print(
            f"  before, keyed on the primary key: {old_seconds:.3f} s (every decision and its row)"
        )
        print(
            f"  after: {new_seconds * 1000:.1f} ms (re-reading 1,000 approvals, then the "
            f"figures), of which the figures' read {read_seconds * 1000:.2f} ms"
        )
        writer_cost(settings, count, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--as-it-was-up-to", type=int, default=200_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, SQLite")
    for count in args.decisions:
        bench(count, args.rounds, args.seed, args.as_it_was_up_to)


if __name__ == "__main__":
    main()
