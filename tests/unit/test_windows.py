"""Long comments: read whole in overlapping windows, approved only when every window approves."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.batch.pipeline import run_batch
from moderation.model.host import Verdict
from moderation.model.reading import UNREAD, WHOLE, Reading, read_whole, window_starts
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table

NEGATIVE = '{"label": "negative"}'
NEUTRAL = '{"label": "neutral"}'


@given(
    length=st.integers(min_value=0, max_value=5000),
    size=st.integers(min_value=2, max_value=600),
    data=st.data(),
)
def test_windows_fit_the_bound_and_every_short_passage_lies_whole_in_one(
    length: int, size: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=size // 2))
    starts = window_starts(length, size, overlap)
    windows = [(s, min(s + size, length)) for s in starts]
    assert windows[0][0] == 0 and windows[-1][1] == length
    assert all(end - start <= size for start, end in windows)
    assert starts == sorted(set(starts))
    # Any passage of overlap + 1 characters is inside some window.
    span = min(overlap + 1, length)
    for begin in range(0, length - span + 1, max(1, (length - span + 1) // 50)):
        assert any(s <= begin and begin + span <= e for s, e in windows), (begin, windows)


def test_window_counts() -> None:
    assert window_starts(4000, 4000, 400) == [0]
    assert window_starts(4001, 4000, 400) == [0, 1]
    assert window_starts(7600, 4000, 400) == [0, 3600]
    assert window_starts(7601, 4000, 400) == [0, 3600, 3601]


def read(fake: FakeClassifier, text: str, max_windows: int = 8) -> Reading:
    reading = asyncio.run(read_whole(fake, text, size=1000, overlap=100, max_windows=max_windows))
    assert reading is not None
    return reading


def test_a_short_comment_is_one_call_read_whole() -> None:
    fake = FakeClassifier()
    reading = read(fake, "short and sweet")
    assert fake.asked == ["short and sweet"] and reading.coverage == WHOLE
    assert reading.verdict is not None and reading.verdict.label == "positive"


def test_every_window_must_approve_and_the_first_that_does_not_decides() -> None:
    text = "praise " * 300 + "you idiot " + "praise " * 10  # 2,210 characters: 3 windows
    fake = FakeClassifier({"idiot": NEGATIVE})
    reading = read(fake, text)
    assert all(len(window) <= 1000 for window in fake.asked)
    assert "".join(fake.asked).count("idiot") >= 1
    assert reading.verdict is not None and reading.verdict.label == "negative"
    assert reading.coverage == "3 windows" and len(fake.asked) == 3
    assert reading.verdict.raw_answer is not None and NEGATIVE in reading.verdict.raw_answer

    fake = FakeClassifier({"idiot": NEGATIVE})
    reading = read(fake, "you idiot " + "praise " * 400)
    assert len(fake.asked) == 1, "reading stops at the first window that does not approve"
    assert reading.coverage == "1 of 4 windows" and reading.verdict is not None
    assert reading.verdict.label == "negative"


def test_an_insult_on_a_window_boundary_is_read_whole() -> None:
    # Windows of 1,000 start at 0 and 900: put the word across the first one's end.
    text = "a" * 996 + "idiot" + "b" * 500
    fake = FakeClassifier({"idiot": NEGATIVE})
    reading = read(fake, text)
    assert any("idiot" in window for window in fake.asked)
    assert reading.verdict is not None and reading.verdict.label == "negative"


def test_all_windows_approving_gives_the_least_keen_label() -> None:
    text = "fine " * 150 + "question? " * 150  # neutral only in the tail
    fake = FakeClassifier({"question": NEUTRAL})
    reading = read(fake, text)
    assert reading.coverage == "3 windows" and len(fake.asked) == 3
    assert reading.verdict is not None and reading.verdict.label == "neutral"


def test_a_failed_window_fails_the_comment_and_names_the_window() -> None:
    text = "fine " * 300 + "garbled"
    fake = FakeClassifier({"garbled": "I cannot say"})
    reading = read(fake, text)
    assert reading.verdict is not None and reading.verdict.label is None
    assert reading.verdict.error == "window 2 of 2: unparseable answer"


def test_a_comment_needing_too_many_windows_is_not_read() -> None:
    fake = FakeClassifier()
    reading = read(fake, "x" * 100_000, max_windows=8)
    assert fake.asked == []
    assert reading.verdict is None and reading.coverage == UNREAD
    assert reading.unread_reason is not None
    assert (
        "111 windows" in reading.unread_reason and "MODERATION_MAX_WINDOWS" in reading.unread_reason
    )


def test_a_stopped_batch_leaves_a_half_read_comment_undecided() -> None:
    class StopsTheBatch(FakeClassifier):
        async def classify(self, text: str) -> Verdict:
            stop.set()  # as a deadline or a cancel would, while this window is in flight
            return await super().classify(text)

    stop = asyncio.Event()
    fake = StopsTheBatch()
    reading = asyncio.run(
        read_whole(fake, "y" * 2500, size=1000, overlap=100, max_windows=8, stop=stop)
    )
    assert reading is None and len(fake.asked) == 1


def test_a_batch_holds_a_long_comment_with_an_insult_in_its_tail(db_url: str) -> None:
    long_praise = "What a wonderful, thoughtful article. " * 120  # 4,560 characters
    create_site_table(db_url, [long_praise + " You are an idiot, buy pills at spam.example", "ok"])
    settings = make_settings(db_url)
    fake = FakeClassifier({"idiot": NEGATIVE})
    report = run_batch(settings, classifier=fake)
    assert report.count("approved") == 1 and report.count("held") == 1
    rows = read_table(
        db_url, "SELECT comment_id, outcome, coverage FROM moderation_decisions ORDER BY id"
    )
    assert sorted(rows) == [("1", "held", "2 windows"), ("2", "approved", "whole")]
    coverage = {d["comment_id"]: d["coverage"] for d in report.to_json()["decisions"]}
    assert coverage == {1: "2 windows", 2: "whole"}
    flags = read_table(db_url, "SELECT approved FROM comments ORDER BY id")
    assert [bool(f[0]) for f in flags] == [False, True]


def test_a_too_long_comment_is_held_unread_and_not_asked_again(db_url: str) -> None:
    create_site_table(db_url, ["z" * 50_000, "fine"])
    settings = make_settings(db_url, max_windows=4)
    fake = FakeClassifier()
    report = run_batch(settings, classifier=fake)
    assert fake.asked == ["fine"]
    held = [d for d in report.decisions if d.outcome == "held"]
    assert len(held) == 1 and held[0].coverage == UNREAD and held[0].label is None
    assert held[0].error is not None and "left for a human" in held[0].error
    query = "SELECT outcome, label, coverage, raw_answer FROM moderation_decisions WHERE id = 1"
    rows = read_table(db_url, query)
    assert rows == [("held", None, "none", None)]
    again = FakeClassifier()
    run_batch(settings, classifier=again)
    assert again.asked == []


@pytest.mark.parametrize("overlap", [2001, 4000])
def test_overlap_must_leave_windows_room_to_advance(overlap: int) -> None:
    with pytest.raises(ValueError, match="MODERATION_WINDOW_OVERLAP"):
        make_settings("sqlite://", window_overlap=overlap)
