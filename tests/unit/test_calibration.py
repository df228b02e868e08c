"""Choosing the threshold: per-threshold figures, the target search, calibration, and the
headline rates under a threshold, all worked out by hand on six outcomes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.evaluation.calibration import (
    at_threshold,
    bounded_threshold,
    expected_calibration_error,
    false_approval_bound,
    reliability,
    target_threshold,
    threshold_grid,
    threshold_table,
)
from moderation.evaluation.metrics import FixtureResult, compare, compute_metrics


def outcome(fid: str, truth: str, predicted: str | None, confidence: float | None) -> FixtureResult:
    return FixtureResult(fid, fid, truth, predicted, None, (), 0.1, confidence=confidence)


# truth, answer, confidence of the answer
SIX = [
    outcome("p1", "positive", "positive", 0.95),
    outcome("p2", "positive", "positive", 0.70),
    outcome("u1", "neutral", "neutral", 0.85),
    outcome("g1", "negative", "positive", 0.80),  # approved unless the threshold is above 0.8
    outcome("g2", "negative", "negative", 0.90),
    outcome("g3", "negative", "neutral", 0.60),
]


def test_headline_rates_apply_the_threshold_like_a_batch() -> None:
    off = compute_metrics(SIX)
    assert off["false_approval_rate"] == 2 / 3  # g1 g3
    assert off["missed_approval_rate"] == 0.0
    assert off["min_confidence"] == 0.0 and off["held_uncertain"] == 0

    at_90 = compute_metrics(SIX, 0.9)
    assert at_90["false_approval_rate"] == 0.0
    assert at_90["missed_approval_rate"] == 2 / 3  # p2 and u1 held as uncertain
    assert at_90["held_uncertain"] == 4  # p2 u1 g1 g3
    # Labels are unchanged: accuracy and the matrix do not depend on the threshold.
    assert at_90["accuracy"] == off["accuracy"] == 4 / 6  # p1 p2 u1 g2
    assert at_90["confusion"] == off["confusion"]
    assert compute_metrics(SIX, 0.75)["false_approval_rate"] == 1 / 3  # g1 only


def test_no_confidence_is_held_when_the_gate_is_on() -> None:
    unknown = [
        outcome("p", "positive", "positive", None),
        outcome("g", "negative", "neutral", None),
    ]
    assert compute_metrics(unknown, 0.5)["missed_approval_rate"] == 1.0
    assert compute_metrics(unknown, 0.5)["false_approval_rate"] == 0.0
    assert compute_metrics(unknown)["false_approval_rate"] == 1.0


def test_figures_at_one_threshold() -> None:
    assert at_threshold(SIX, 0.8) == {
        "threshold": 0.8,
        "auto_approved": 3 / 6,  # p1 u1 g1
        "auto_approved_count": 3,
        "false_approval_rate": 1 / 3,
        "missed_approval_rate": 1 / 3,  # p2
    }


def test_the_table_covers_the_grid_and_the_configured_threshold() -> None:
    assert threshold_grid() == [round(i * 0.05, 2) for i in range(21)]
    assert 0.87 in threshold_grid(0.87) and len(threshold_grid(0.87)) == 22
    table = threshold_table(SIX, 0.87)
    shares = [row["auto_approved"] for row in table]
    assert shares == sorted(shares, reverse=True)  # a higher threshold never approves more
    assert table[0]["auto_approved"] == 5 / 6 and table[-1]["auto_approved"] == 0.0
    row = next(r for r in table if r["threshold"] == 0.87)
    assert (row["auto_approved_count"], row["false_approval_rate"]) == (1, 0.0)  # p1


@pytest.mark.parametrize(
    ("target", "threshold", "approved", "rate"),
    [
        (1.0, 0.0, 5, 2 / 3),  # no gate needed
        # Just above g3's 0.60 drops it and nothing else.
        (0.5, 0.6001, 4, 1 / 3),
        (0.34, 0.6001, 4, 1 / 3),
        (0.0, 0.8001, 2, 0.0),  # just above g1's 0.80: p2 (0.70) goes too
        (0.33, 0.8001, 2, 0.0),
    ],
)
def test_target_threshold_is_the_lowest_that_keeps_the_rate(
    target: float, threshold: float, approved: int, rate: float
) -> None:
    found = target_threshold(SIX, target)
    assert found is not None
    assert found["threshold"] == threshold
    assert found["auto_approved_count"] == approved
    assert found["false_approval_rate"] == rate


def test_a_sure_false_approval_leaves_no_threshold() -> None:
    sure = [outcome("g", "negative", "positive", 1.0), outcome("p", "positive", "positive", 1.0)]
    assert target_threshold(sure, 0.0) is None


def test_just_above_the_highest_confidence_when_needed() -> None:
    cases = [outcome("g", "negative", "positive", 0.93), outcome("p", "positive", "positive", 0.9)]
    found = target_threshold(cases, 0.0)
    assert found is not None and found["threshold"] == 0.9301
    assert found["auto_approved_count"] == 0


def test_without_negatives_there_is_no_target() -> None:
    assert target_threshold([outcome("p", "positive", "positive", 0.5)], 0.1) is None


def test_reliability_bins_and_expected_calibration_error() -> None:
    bins = {b["lower"]: b for b in reliability(SIX) if b["n"]}
    assert sorted(bins) == [0.6, 0.7, 0.8, 0.9]
    assert bins[0.6] == {"lower": 0.6, "upper": 0.7, "n": 1, "confidence": 0.6, "accuracy": 0.0}
    assert bins[0.8]["n"] == 2 and bins[0.8]["accuracy"] == 0.5  # u1 right, g1 wrong
    assert bins[0.8]["confidence"] == pytest.approx(0.825)
    # (1 * |0 - .6| + 1 * |1 - .7| + 2 * |.5 - .825| + 2 * |1 - .925|) / 6 = 1.7 / 6
    assert expected_calibration_error(SIX) == pytest.approx(1.7 / 6)
    assert len(reliability(SIX)) == 10


def test_calibration_leaves_out_answers_without_a_confidence() -> None:
    failed = [*SIX, outcome("x", "positive", None, None), outcome("y", "neutral", "neutral", None)]
    assert expected_calibration_error(failed) == expected_calibration_error(SIX)
    assert expected_calibration_error([outcome("x", "positive", None, None)]) is None


def test_a_confidence_on_a_bin_edge_goes_up() -> None:
    edge = [outcome("a", "positive", "positive", 0.7999999999999999)]
    assert next(b for b in reliability(edge) if b["n"])["lower"] == 0.8
    assert [b["n"] for b in reliability([outcome("b", "positive", "positive", 1.0)])][-1] == 1


def test_compare_applies_the_threshold_to_both_runs() -> None:
    result = compare(SIX, SIX, 0.9)
    assert result["a"]["false_approval_rate"] == result["b"]["false_approval_rate"] == 0.0
    assert result["b"]["thresholds"] == threshold_table(SIX, 0.9)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["positive", "neutral", "negative"]),
            st.sampled_from(["positive", "neutral", "negative", None]),
            st.floats(min_value=0, max_value=1),
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(min_value=0, max_value=1),
)
def test_the_target_is_met_and_nothing_lower_meets_it(
    rows: list[tuple[str, str | None, float]], target: float
) -> None:
    outcomes = [outcome(str(i), t, p, c if p else None) for i, (t, p, c) in enumerate(rows)]
    found = target_threshold(outcomes, target)
    grid_rates = [r["false_approval_rate"] for r in threshold_table(outcomes)]
    if found is None:
        return
    assert found["false_approval_rate"] is not None
    assert found["false_approval_rate"] <= target
    assert found == at_threshold(outcomes, found["threshold"])
    for row, rate in zip(threshold_table(outcomes), grid_rates, strict=True):
        if row["threshold"] < found["threshold"] - 1e-4:
            assert rate is not None and rate > target


# --- the bound a model must pass ---------------------------------------------------------


def test_the_bound_with_no_wrong_approval_is_the_rule_of_three_exactly() -> None:
    # P(0 wrong of n) = (1 - p)^n = 5%  <=>  p = 1 - 0.05^(1/n): about 3/n.
    for holds in (59, 139, 1000):
        assert false_approval_bound(0, holds) == pytest.approx(1 - 0.05 ** (1 / holds), rel=1e-9)
    assert false_approval_bound(0, 139) == pytest.approx(0.0213, abs=1e-4)


def test_the_bound_against_binomial_tail_probabilities() -> None:
    # At the bound, seeing k or fewer wrong has a probability of exactly 5%.
    from math import comb

    for wrong, holds in ((1, 139), (2, 139), (5, 60), (14, 139)):
        bound = false_approval_bound(wrong, holds)
        tail = sum(comb(holds, i) * bound**i * (1 - bound) ** (holds - i) for i in range(wrong + 1))
        assert tail == pytest.approx(0.05, abs=1e-9)
    assert false_approval_bound(2, 139) == pytest.approx(0.0446, abs=1e-4)


def test_the_bound_of_nothing_held_or_all_wrong_is_one() -> None:
    assert false_approval_bound(0, 0) == 1.0
    assert false_approval_bound(7, 7) == 1.0


@given(st.integers(0, 300), st.integers(1, 300))
def test_the_bound_is_a_rate_at_least_the_one_seen(wrong: int, extra: int) -> None:
    holds = wrong + extra
    bound = false_approval_bound(wrong, holds)
    assert wrong / holds <= bound <= 1
    assert false_approval_bound(wrong + 1, holds + 1) >= false_approval_bound(wrong, holds + 1)


def test_the_bounded_threshold_needs_enough_evidence_and_an_approval() -> None:
    # 60 negatives, none approved above 0.5; positives sure at 0.8.
    outcomes = [outcome(f"n{i}", "negative", "negative", 0.9) for i in range(60)]
    outcomes += [outcome(f"p{i}", "positive", "positive", 0.8) for i in range(10)]
    found = bounded_threshold(outcomes, 0.05)
    assert found is not None and found["threshold"] == 0.0
    assert found["false_approval_bound"] == pytest.approx(1 - 0.05 ** (1 / 60))
    # With only 50 negatives, even no wrong approval cannot bound the rate under 5%.
    assert bounded_threshold(outcomes[10:], 0.05) is None
    # One sure wrong approval at 0.95: only a threshold above it qualifies, and that one
    # approves nothing, which proves nothing.
    wrong = [*outcomes, outcome("w", "negative", "positive", 0.95)]
    assert bounded_threshold(wrong, 0.05) is None
    # A wrong approval at 0.6 is dropped at a threshold above it; the positives stay.
    unsure = [*outcomes, outcome("w", "negative", "positive", 0.6)]
    chosen = bounded_threshold(unsure, 0.05, floor=0.5)
    assert chosen is not None and chosen["threshold"] == 0.6001
    assert chosen["auto_approved_count"] == 10
