"""Crash points for tests only: ``MODERATION_TEST_CRASH_AT`` kills the process at a named point.

A write to a site outside the tool's database (WordPress's REST API) goes through three steps
whose every gap a crash can hit: the intent is recorded, the site is written, the intent is
marked done with its audit row (see ``storage.intents``). The tests prove that a later batch
explains every write whatever the gap, by killing ``moderate`` there with SIGKILL, as
``kill -9`` or the OOM killer would:

- ``before-intent``: the decision is made, nothing is recorded or written yet;
- ``after-intent``: the intent is recorded, the site not written yet;
- ``after-write``: the site holds the write, the intent is not marked done.

``MODERATION_TEST_CRASH_AT=after-write`` crashes the first time the point is reached,
``after-write:3`` the third time. Not a setting: nothing an operator would set, and never read
unless a crash point is reached (a handful of times per written comment). Like the other
``MODERATION_TEST_*`` variables it is no part of the configuration (``docs/configuration.md``).
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "MODERATION_TEST_CRASH_AT"
POINTS = ("before-intent", "after-intent", "after-write")

_reached: dict[str, int] = {}
_lock = threading.Lock()


def reach(point: str) -> None:
    """Kill this process with SIGKILL if the test-only variable names this point (and count)."""
    assert point in POINTS, point
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name.strip() != point:
        return
    with _lock:
        _reached[point] = _reached.get(point, 0) + 1
        count = _reached[point]
    if count == (int(nth) if nth.strip().isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
