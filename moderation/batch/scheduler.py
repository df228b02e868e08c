"""Run batches periodically inside a process: a web app's startup hook or `moderate serve`.

One background thread runs the batches one after another, so a timer never overlaps itself;
across processes and replicas the database lease decides which one runs a given tick (the
others get LeaseHeld and simply wait for the next). A failing batch is logged and the next tick
still runs, the way a supervisor restarts a crashed worker.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from moderation.errors import ConfigurationError, LeaseHeld
from moderation.settings import Settings

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str | float, *, allow_zero: bool = False) -> float:
    """'90', '45s', '30m', '1h', '1.5h' -> seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match or float(match.group(1)) < 0 or (float(match.group(1)) == 0 and not allow_zero):
        raise ConfigurationError(f"invalid duration {text!r}; use e.g. 90s, 30m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


class PeriodicModerator:
    """``start()`` from a startup hook, ``stop()`` from the shutdown hook.

    ``every`` (seconds or '1h') or ``cron`` ('0 * * * *'), plus up to ``jitter`` seconds of
    random delay per tick so that replicas do not all hit the database at the same instant.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        every: str | float | None = None,
        cron: str | None = None,
        jitter: str | float = 0.0,
        run_now: bool = False,
        on_report: Callable[[object], None] | None = None,
        batch: Callable[..., object] | None = None,
    ) -> None:
        if (every is None) == (cron is None):
            raise ConfigurationError("give exactly one of every= or cron=")
        self.settings = settings
        self.interval = parse_duration(every) if every is not None else None
        self.cron = cron
        if cron is not None:
            from croniter import croniter

            if not croniter.is_valid(cron):
                raise ConfigurationError(f"invalid cron expression {cron!r}")
        self.jitter = parse_duration(jitter, allow_zero=True)
        if batch is None:
            from moderation.model.prompts import load_prompt

            # A template every tick would refuse stops the timer now, with its message.
            load_prompt(settings.prompt)
        self.run_now = run_now
        self.on_report = on_report
        self._batch = batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.failures = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="moderation-timer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Ask the current batch to wind down and wait for it; True if it ended in time."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def next_tick(self, now: float) -> float:
        """The next scheduled instant after ``now``, the same on every replica.

        Intervals are aligned to multiples of the interval since the epoch (an hourly timer
        fires on the hour everywhere), so replicas agree on which tick a batch belongs to.
        """
        if self.interval is not None:
            return (math.floor(now / self.interval) + 1) * self.interval
        from croniter import croniter

        assert self.cron is not None
        return float(croniter(self.cron, datetime.fromtimestamp(now, UTC)).get_next(float))

    def _loop(self) -> None:
        tick = math.floor(time.time()) if self.run_now else self.next_tick(time.time())
        while True:
            delay = max(0.0, tick - time.time()) + random.uniform(0, self.jitter)
            if self._stopping.wait(delay):
                return
            try:
                self._tick(tick)
            except Exception:
                # Whatever a tick did, the timer lives on: a dead timer thread in a live
                # process would stop moderation without a sound.
                self.failures += 1
                log.exception("tick failed; the next tick will run as scheduled")
            tick = self.next_tick(max(time.time(), tick))

    def _tick(self, tick: float) -> None:
        self.ticks += 1
        try:
            report = self._run_one(tick)
        except LeaseHeld as exc:
            log.info("tick skipped: %s", exc.message)
            return
        except Exception:
            self.failures += 1
            log.exception("batch failed; the next tick will run as scheduled")
            return
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception:
                self.failures += 1
                log.exception("reporting the batch failed; the next tick will run as scheduled")

    def _run_one(self, tick: float) -> object:
        batch = self._batch
        if batch is None:
            from moderation.batch.pipeline import run_batch

            batch = run_batch
        return batch(self.settings, cancel=self._stopping, scheduled_for=tick)
