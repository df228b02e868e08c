"""The in-process timer: ticks, no overlap, survival of failing batches, clean stop."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from moderation.batch.scheduler import PeriodicModerator, parse_duration
from moderation.errors import ConfigurationError, LeaseHeld
from moderation.settings import Settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("45s", 45.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_jitter_may_be_zero() -> None:
    assert PeriodicModerator(Settings(), every="1h", jitter="0").jitter == 0.0


@pytest.mark.parametrize("text", ["", "h", "-1s", "0", "1 week"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_duration(text)


def test_exactly_one_schedule_and_a_valid_cron() -> None:
    with pytest.raises(ConfigurationError):
        PeriodicModerator(Settings(), every="1h", cron="0 * * * *")
    with pytest.raises(ConfigurationError):
        PeriodicModerator(Settings())
    with pytest.raises(ConfigurationError, match="invalid cron"):
        PeriodicModerator(Settings(), cron="every hour")


def test_ticks_are_aligned_so_replicas_agree() -> None:
    hourly = PeriodicModerator(Settings(), every="1h")
    assert hourly.next_tick(7200.5) == 10800.0
    assert hourly.next_tick(10800.0) == 14400.0
    cron = PeriodicModerator(Settings(), cron="15 * * * *")
    assert cron.next_tick(3600.0) == 3600.0 + 15 * 60


class RecordingBatch:
    def __init__(self, fail_on: set[int] | None = None, hold_on: set[int] | None = None) -> None:
        self.calls: list[float] = []
        self.active = 0
        self.max_active = 0
        self.fail_on = fail_on or set()
        self.hold_on = hold_on or set()
        self.lock = threading.Lock()

    def __call__(self, _settings: Settings, **kwargs: Any) -> str:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(kwargs["scheduled_for"])
            number = len(self.calls)
        try:
            time.sleep(0.05)
            if number in self.fail_on:
                raise RuntimeError("boom")
            if number in self.hold_on:
                raise LeaseHeld("held by someone else")
            return f"report {number}"
        finally:
            with self.lock:
                self.active -= 1


def test_three_ticks_without_overlap_surviving_failures() -> None:
    batch = RecordingBatch(fail_on={1}, hold_on={2})
    reports: list[object] = []
    timer = PeriodicModerator(
        Settings(), every=0.2, run_now=True, batch=batch, on_report=reports.append
    )
    timer.start()
    deadline = time.monotonic() + 5
    while len(batch.calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert timer.stop(timeout=2)
    assert len(batch.calls) >= 4
    assert batch.max_active == 1
    assert timer.failures == 1  # the failing batch was logged and the timer went on
    assert reports[:2] == ["report 3", "report 4"]
    ticks = batch.calls[1:4]
    assert all(round(t / 0.2, 6).is_integer() for t in ticks)
    assert len(set(ticks)) == len(ticks)


def test_stop_sets_the_cancel_event_of_the_running_batch() -> None:
    seen: list[threading.Event] = []

    def slow_batch(_settings: Settings, **kwargs: Any) -> None:
        seen.append(kwargs["cancel"])
        kwargs["cancel"].wait(5)

    timer = PeriodicModerator(Settings(), every="1h", run_now=True, batch=slow_batch)
    timer.start()
    while not seen:
        time.sleep(0.01)
    started = time.monotonic()
    assert timer.stop(timeout=2)
    assert time.monotonic() - started < 1
    assert seen[0].is_set() and not timer.running
