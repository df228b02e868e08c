"""Progress of a long command: a bar on a terminal, a log line every few seconds elsewhere.

Qualifying or evaluating takes minutes; under cron, in CI or behind a pipe a silent command
looks hung. Outside a terminal the command logs where it is (``MODERATION_PROGRESS_EVERY``
seconds apart, on stderr, in the configured log format), never on stdout, which stays the
command's result (one JSON object with ``--json``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("moderation.cli")

Advance = Callable[[], None]


@contextmanager
def progress(title: str, total: int, every: float, *, bar: bool = True) -> Iterator[Advance]:
    """An ``advance`` to call once per item done. ``bar``: a rich bar when stderr is a
    terminal (the caller's choice: not under ``--json``); off a terminal, a line once
    ``every`` seconds have passed, then at most one per ``every`` seconds (a short run
    prints none)."""
    if bar and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True, redirect_stderr=True) as shown:
            task = shown.add_task(title, total=total)
            yield lambda: shown.advance(task)
        return
    if sys.stderr.isatty():
        yield lambda: None  # a terminal under --json: the bar is not wanted, nor lines
        return
    started = last = time.monotonic()
    done = 0

    def advance() -> None:
        nonlocal done, last
        done += 1
        now = time.monotonic()
        if now - last >= every and done < total:
            last = now
            log.info("%s: %d of %d fixtures, %.0f s", title, done, total, now - started)

    yield advance
