"""The approval threshold in a batch: what is held as uncertain, what is recorded, what is
remembered. The rule itself is tested on its own at the end."""

from __future__ import annotations

import pytest

from moderation.batch.pipeline import run_batch
from moderation.policy import APPROVE, FAIL, HOLD, Ruling, rule, uncertain_reason
from tests.fakes import FakeClassifier
from tests.helpers import create_site_table, make_settings, read_table

NEGATIVE = '{"label": "negative"}'
NEUTRAL = '{"label": "neutral"}'


def audit(url: str) -> list[tuple[object, ...]]:
    return read_table(
        url,
        "SELECT comment_id, label, outcome, confidence, error FROM moderation_decisions "
        "ORDER BY id",
    )


def test_answers_below_the_threshold_are_held_and_negatives_always(db_url: str) -> None:
    create_site_table(
        db_url, ["sure praise", "unsure praise", "sure question", "sure insult", "no logprobs"]
    )
    fake = FakeClassifier(
        {"question": NEUTRAL, "insult": NEGATIVE},
        confidences={"unsure": 0.62, "sure": 0.97, "no logprobs": None},
    )
    report = run_batch(make_settings(db_url, min_confidence=0.8), classifier=fake)

    assert audit(db_url) == [
        ("1", "positive", "approved", 0.97, None),
        ("2", "positive", "held", 0.62, "uncertain (positive 0.62 < 0.80)"),
        ("3", "neutral", "approved", 0.97, None),
        ("4", "negative", "held", 0.97, None),
        ("5", "positive", "held", None, "uncertain (positive: no confidence)"),
    ]
    flags = read_table(db_url, "SELECT approved FROM comments ORDER BY id")
    assert [bool(f[0]) for f in flags] == [True, False, True, False, False]
    assert report.exit_code == 0 and report.counts()["held"] == 3
    decisions = report.to_json()["decisions"]
    assert [d["confidence"] for d in decisions] == [0.97, 0.62, 0.97, 0.97, None]
    assert decisions[1]["error"] == "uncertain (positive 0.62 < 0.80)"


def test_threshold_zero_turns_the_gate_off(db_url: str) -> None:
    create_site_table(db_url, ["unsure", "unknown"])
    fake = FakeClassifier(confidences={"unsure": 0.34, "unknown": None})
    report = run_batch(make_settings(db_url, min_confidence=0), classifier=fake)
    assert [d.outcome for d in report.decisions] == ["approved", "approved"]


def test_uncertain_comments_are_not_asked_again_until_the_threshold_changes(db_url: str) -> None:
    create_site_table(db_url, ["unsure praise", "an insult"])
    answers = {"insult": NEGATIVE}
    at_80 = make_settings(db_url, min_confidence=0.8)
    run_batch(at_80, classifier=FakeClassifier(answers, confidence=0.7))

    again = FakeClassifier(answers, confidence=0.7)
    report = run_batch(at_80, classifier=again)
    assert again.asked == [] and report.skipped == 2

    # A lower threshold may approve the uncertain one; the negative stays held at any. The
    # model's answer does not depend on the threshold: the stored one is judged again.
    lower = FakeClassifier(answers, confidence=0.7)
    report = run_batch(make_settings(db_url, min_confidence=0.6), classifier=lower)
    assert lower.asked == []
    assert [(d.comment_id, d.outcome, d.confidence, d.answer_of) for d in report.decisions] == [
        (1, "approved", 0.7, "1")
    ]
    state = read_table(
        db_url, "SELECT comment_id, outcome, min_confidence FROM moderation_comment_state"
    )
    assert sorted(state) == [("1", "approved", 0.6), ("2", "held", 0.8)]


def test_a_new_model_asks_uncertain_comments_again(db_url: str) -> None:
    create_site_table(db_url, ["unsure praise"])
    settings = make_settings(db_url, min_confidence=0.9)
    run_batch(settings, classifier=FakeClassifier(confidence=0.5))
    other = FakeClassifier(confidence=0.95, digest="sha256:other")
    report = run_batch(settings, classifier=other)
    assert other.asked == ["unsure praise"] and report.counts()["approved"] == 1


def test_a_dry_run_shows_what_the_gate_would_do(sqlite_url: str) -> None:
    create_site_table(sqlite_url, ["sure", "unsure"])
    fake = FakeClassifier(confidences={"unsure": 0.5, "sure": 0.99})
    report = run_batch(make_settings(sqlite_url, min_confidence=0.9), dry_run=True, classifier=fake)
    assert [(d.outcome, d.confidence, d.error) for d in report.decisions] == [
        ("approved", 0.99, None),
        ("held", 0.5, "uncertain (positive 0.50 < 0.90)"),
    ]


# --- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "confidence", "threshold", "expected"),
    [
        ("positive", 0.95, 0.9, Ruling(APPROVE, None)),
        ("positive", 0.9, 0.9, Ruling(APPROVE, None)),  # at the threshold is enough
        ("neutral", 0.62, 0.8, Ruling(HOLD, "uncertain (neutral 0.62 < 0.80)")),
        ("negative", 1.0, 0.9, Ruling(HOLD, None)),
        ("negative", 0.2, 0.0, Ruling(HOLD, None)),
        ("positive", None, 0.5, Ruling(HOLD, "uncertain (positive: no confidence)")),
        ("positive", None, 0.0, Ruling(APPROVE, None)),
        ("positive", 0.01, 0.0, Ruling(APPROVE, None)),
        (None, None, 0.9, Ruling(FAIL, "no label")),
    ],
)
def test_rule(
    label: str | None, confidence: float | None, threshold: float, expected: Ruling
) -> None:
    assert rule(label, confidence, threshold) == expected


def test_a_failed_call_keeps_its_own_error() -> None:
    assert rule(None, None, 0.9, "timed out after 30s") == Ruling(FAIL, "timed out after 30s")


@pytest.mark.parametrize(
    ("confidence", "threshold", "text"),
    [
        (0.62, 0.8, "uncertain (positive 0.62 < 0.80)"),
        # Rounded down, so the figures never read as equal to the threshold.
        (0.7999, 0.8, "uncertain (positive 0.79 < 0.80)"),
        (0.8749, 0.875, "uncertain (positive 0.874 < 0.875)"),
    ],
)
def test_the_reason_never_rounds_up_to_the_threshold(
    confidence: float, threshold: float, text: str
) -> None:
    assert uncertain_reason("positive", confidence, threshold) == text


def test_a_comment_read_in_windows_is_as_sure_as_its_least_sure_window() -> None:
    from moderation.model.host import Verdict
    from moderation.model.labels import Label
    from moderation.model.reading import combine

    def verdict(label: Label, confidence: float | None) -> Verdict:
        return Verdict(label, label.value, None, 0.1, "h", confidence=confidence)

    sure, unsure = verdict(Label.POSITIVE, 0.97), verdict(Label.NEUTRAL, 0.7)
    assert combine([sure, unsure], 2).confidence == 0.7
    assert combine([sure, verdict(Label.POSITIVE, None)], 2).confidence is None
    # A window that does not approve decides, with its own confidence.
    assert combine([sure, verdict(Label.NEGATIVE, 0.55)], 3).confidence == 0.55
