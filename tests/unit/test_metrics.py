"""Metrics against confusion matrices worked out by hand.

Every expected value is written as a Fraction of small integers, with the arithmetic in a
comment, and compared with ``pytest.approx(rel=1e-12)``: tight enough that any wrong formula
fails, loose enough for the last-bit rounding of a float product.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import pytest

from moderation.evaluation.metrics import (
    FAILED,
    LABELS,
    FixtureResult,
    compare,
    compute_metrics,
    latency_percentiles,
    mcnemar_exact,
    nearest_rank,
)
from moderation.model.labels import Label

P, U, N = "positive", "neutral", "negative"  # U for "neutral": N is taken by negative


def outcome(
    truth: str,
    predicted: str | None,
    *,
    id: str | None = None,
    lang: str | None = "en",
    tags: tuple[str, ...] = (),
    latency_s: float | None = None,
) -> FixtureResult:
    return FixtureResult(
        id=id or f"{truth}-{predicted}",
        text=f"a {truth} comment",
        truth=truth,
        predicted=predicted,
        lang=lang,
        tags=tags,
        latency_s=latency_s,
        error="timeout" if predicted is None else None,
    )


def run(*pairs: tuple[str, str | None]) -> list[FixtureResult]:
    """Outcomes with unique ids from (truth, predicted) pairs."""
    return [outcome(t, p, id=f"f{i}") for i, (t, p) in enumerate(pairs)]


def exact(value: Fraction | int) -> Any:
    return pytest.approx(float(value), rel=1e-12, abs=0)


def row(positive: int, neutral: int, negative: int, failed: int) -> dict[str, int]:
    return {P: positive, U: neutral, N: negative, FAILED: failed}


def scores(
    precision: Fraction | int, recall: Fraction | int, f1: Fraction | int, support: int
) -> dict[str, Any]:
    return {
        "precision": exact(precision),
        "recall": exact(recall),
        "f1": exact(f1),
        "support": support,
    }


# --- whole runs ----------------------------------------------------------------------------


def test_perfect_run() -> None:
    m = compute_metrics(run((P, P), (P, P), (U, U), (U, U), (N, N), (N, N)))

    assert m["n"] == 6
    assert m["accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert m["confusion"] == {P: row(2, 0, 0, 0), U: row(0, 2, 0, 0), N: row(0, 0, 2, 0)}
    assert m["per_label"] == {label: scores(1, 1, 1, 2) for label in LABELS}
    assert m["false_approval_rate"] == 0.0
    assert m["missed_approval_rate"] == 0.0
    assert m["failed"] == 0


def test_mixed_run_every_cell_by_hand() -> None:
    m = compute_metrics(
        run(
            (P, P), (P, P), (P, U), (P, None),  # 4 positives: 2 right, 1 neutral, 1 failed
            (U, U), (U, P), (U, N),  # 3 neutrals: 1 right, 1 positive, 1 negative
            (N, N), (N, N), (N, P),  # 3 negatives: 2 right, 1 approved as positive
        )
    )  # fmt: skip

    #                 predicted: pos neu neg failed
    assert m["confusion"] == {
        P: row(2, 1, 0, 1),
        U: row(1, 1, 1, 0),
        N: row(1, 0, 2, 0),
    }
    assert m["n"] == 10
    # correct = diagonal = 2 + 1 + 2 = 5 of 10
    assert m["accuracy"] == exact(Fraction(5, 10))
    assert m["failed"] == 1
    # positive: predicted-positive column = 2 + 1 + 1 = 4, TP 2 -> P = 2/4; support 4 -> R = 2/4
    #           F1 = 2 * 1/2 * 1/2 / (1/2 + 1/2) = 1/2
    # neutral:  column = 1 + 1 + 0 = 2, TP 1 -> P = 1/2; support 3 -> R = 1/3
    #           F1 = 2 * 1/2 * 1/3 / (1/2 + 1/3) = (1/3) / (5/6) = 2/5
    # negative: column = 0 + 1 + 2 = 3, TP 2 -> P = 2/3; support 3 -> R = 2/3; F1 = 2/3
    assert m["per_label"] == {
        P: scores(Fraction(1, 2), Fraction(1, 2), Fraction(1, 2), 4),
        U: scores(Fraction(1, 2), Fraction(1, 3), Fraction(2, 5), 3),
        N: scores(Fraction(2, 3), Fraction(2, 3), Fraction(2, 3), 3),
    }
    # macro-F1 = (1/2 + 2/5 + 2/3) / 3 = (15 + 12 + 20) / 30 / 3 = 47/90
    assert m["macro_f1"] == exact(Fraction(47, 90))
    # 3 negatives, 1 predicted positive (approved) -> 1/3
    assert m["false_approval_rate"] == exact(Fraction(1, 3))
    # 7 positive/neutral, held: P->failed and U->negative -> 2/7
    assert m["missed_approval_rate"] == exact(Fraction(2, 7))


def test_empty_class_scores_zero_and_still_counts_in_macro_f1() -> None:
    # No neutral in truth and none predicted.
    m = compute_metrics(run((P, P), (P, N), (N, N), (N, N)))

    assert m["confusion"][U] == row(0, 0, 0, 0)
    # positive: column 1, TP 1 -> P = 1; support 2 -> R = 1/2; F1 = 2 * 1 * 1/2 / (3/2) = 2/3
    # negative: column 1 + 2 = 3, TP 2 -> P = 2/3; support 2 -> R = 1;
    #           F1 = 2 * 2/3 * 1 / (5/3) = 4/5
    # neutral:  nothing predicted -> P = 0; support 0 -> R = 0; P + R = 0 -> F1 = 0
    assert m["per_label"] == {
        P: scores(1, Fraction(1, 2), Fraction(2, 3), 2),
        U: scores(0, 0, 0, 0),
        N: scores(Fraction(2, 3), 1, Fraction(4, 5), 2),
    }
    # macro-F1 = (2/3 + 0 + 4/5) / 3 = (22/15) / 3 = 22/45
    assert m["macro_f1"] == exact(Fraction(22, 45))
    assert m["accuracy"] == exact(Fraction(3, 4))


def test_all_failures() -> None:
    m = compute_metrics(run((P, None), (U, None), (U, None), (N, None), (N, None)))

    assert m["accuracy"] == 0.0
    assert m["failed"] == 5
    assert m["confusion"] == {P: row(0, 0, 0, 1), U: row(0, 0, 0, 2), N: row(0, 0, 0, 2)}
    assert m["per_label"] == {
        P: scores(0, 0, 0, 1),
        U: scores(0, 0, 0, 2),
        N: scores(0, 0, 0, 2),
    }
    assert m["macro_f1"] == 0.0
    # A failure is held, never approved: no negative slips through, every approvable is held.
    assert m["false_approval_rate"] == 0.0
    assert m["missed_approval_rate"] == 1.0


def test_no_negatives_has_no_false_approval_rate() -> None:
    m = compute_metrics(run((P, P), (U, N)))

    assert m["false_approval_rate"] is None
    assert m["missed_approval_rate"] == exact(Fraction(1, 2))


def test_no_approvable_comments_has_no_missed_approval_rate() -> None:
    m = compute_metrics(run((N, N), (N, U)))

    assert m["missed_approval_rate"] is None
    assert m["false_approval_rate"] == exact(Fraction(1, 2))


def test_empty_run() -> None:
    m = compute_metrics([])

    assert m["n"] == 0
    assert m["accuracy"] is None
    assert m["macro_f1"] is None
    assert m["false_approval_rate"] is None
    assert m["missed_approval_rate"] is None
    assert m["latency"] == {"p50": None, "p95": None}
    assert m["confusion"] == {label: row(0, 0, 0, 0) for label in LABELS}
    assert m["per_tag"] == {}
    assert m["per_lang"] == {}


def test_label_enum_values_are_accepted_and_output_is_plain_json() -> None:
    outcomes = [outcome(Label.NEGATIVE, Label.POSITIVE, tags=("x",), latency_s=0.5)]

    m = compute_metrics(outcomes)

    assert m["confusion"][N][P] == 1
    assert m["false_approval_rate"] == 1.0
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m


def test_unknown_label_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown label"):
        compute_metrics([outcome("angry", N)])
    with pytest.raises(ValueError, match="unknown label"):
        compute_metrics([outcome(N, "NEGATIVE")])


# --- breakdowns ----------------------------------------------------------------------------


def test_per_tag_and_per_lang_breakdowns() -> None:
    outcomes = [
        outcome(N, P, id="a", lang="en", tags=("sarcasm",)),  # false approval
        outcome(N, N, id="b", lang="en", tags=("sarcasm", "short")),
        outcome(P, P, id="c", lang="fr", tags=("short", "short")),  # duplicate tag counts once
        outcome(U, None, id="d", lang=None, tags=()),  # failed, no tag, unknown language
    ]

    m = compute_metrics(outcomes)

    assert m["per_tag"] == {
        # a, b: 1 right of 2; negatives a, b, one approved -> 1/2
        "sarcasm": {"n": 2, "accuracy": 0.5, "false_approval_rate": 0.5},
        # b, c: both right; one negative (b), held -> 0/1
        "short": {"n": 2, "accuracy": 1.0, "false_approval_rate": 0.0},
    }
    assert m["per_lang"] == {
        "en": {"n": 2, "accuracy": 0.5, "false_approval_rate": 0.5},
        # no negatives in these groups -> None
        "fr": {"n": 1, "accuracy": 1.0, "false_approval_rate": None},
        "unknown": {"n": 1, "accuracy": 0.0, "false_approval_rate": None},
    }
    assert list(m["per_tag"]) == ["sarcasm", "short"]


# --- latency -------------------------------------------------------------------------------


def test_latency_percentiles_nearest_rank() -> None:
    outcomes = [
        outcome(P, P, id=str(i), latency_s=v) for i, v in enumerate([0.5, 0.1, None, 0.3, 0.2, 0.4])
    ]
    # measured, sorted: 0.1 0.2 0.3 0.4 0.5 (n = 5; the None is not counted)
    # p50: rank ceil(0.50 * 5) = ceil(2.5) = 3 -> 0.3
    # p95: rank ceil(0.95 * 5) = ceil(4.75) = 5 -> 0.5
    assert compute_metrics(outcomes)["latency"] == {"p50": 0.3, "p95": 0.5}


def test_latency_percentiles_exact_ranks() -> None:
    # 1..100: p50 rank ceil(50) = 50, p95 rank ceil(95) = 95. In floats 0.95 * 100 is
    # 95.00000000000001, which would wrongly give rank 96.
    assert latency_percentiles(float(v) for v in range(1, 101)) == {"p50": 50.0, "p95": 95.0}
    # 1..20: p50 rank 10, p95 rank 19
    assert latency_percentiles(float(v) for v in range(1, 21)) == {"p50": 10.0, "p95": 19.0}
    # a single value is every percentile
    assert latency_percentiles([2.5]) == {"p50": 2.5, "p95": 2.5}
    assert latency_percentiles([None, None]) == {"p50": None, "p95": None}
    assert nearest_rank([1.0, 2.0], 0) == 1.0
    assert nearest_rank([1.0, 2.0], 100) == 2.0


# --- McNemar -------------------------------------------------------------------------------


def test_mcnemar_no_discordant_pairs() -> None:
    assert mcnemar_exact(0, 0) == 1.0


def test_mcnemar_one_sided() -> None:
    # n = 10, min = 0: 2 * C(10, 0) / 2**10 = 2 / 1024
    assert mcnemar_exact(10, 0) == 0.001953125
    assert mcnemar_exact(0, 10) == 0.001953125


def test_mcnemar_balanced() -> None:
    # 2 * P[X <= 5] for Bin(10, 1/2) = 2 * 638/1024 > 1 -> capped at 1
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(5000, 5000) == 1.0


def test_mcnemar_three_seven() -> None:
    # n = 10, min = 3: C(10,0) + C(10,1) + C(10,2) + C(10,3) = 1 + 10 + 45 + 120 = 176
    # p = 2 * 176 / 1024 = 352 / 1024 = 0.34375
    assert sum(math.comb(10, k) for k in range(4)) == 176
    assert mcnemar_exact(3, 7) == 0.34375
    assert mcnemar_exact(7, 3) == 0.34375


def test_mcnemar_large_counts_do_not_overflow() -> None:
    # 2 / 2**1074 = 2**-1073, the second-smallest subnormal double: exact, not 0 and not NaN.
    assert mcnemar_exact(0, 1074) == 2.0**-1073
    p = mcnemar_exact(4_900, 5_100)
    assert 0.0 < p < 1.0
    assert p == mcnemar_exact(5_100, 4_900)
    # Normal approximation: z = (5100 - 4900) / sqrt(10000) = 2, two-sided p ~ 0.0455
    assert p == pytest.approx(0.0455, abs=0.002)
    assert mcnemar_exact(0, 10_000) == 0.0  # 2**-9999 is below the smallest double


def test_mcnemar_matches_the_textbook_formula() -> None:
    for b in range(25):
        for c in range(25):
            n = b + c
            tail = Fraction(sum(math.comb(n, k) for k in range(min(b, c) + 1)), 2**n)
            expected = 1.0 if n == 0 else float(min(Fraction(1), 2 * tail))
            assert mcnemar_exact(b, c) == expected, (b, c)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


# --- compare -------------------------------------------------------------------------------


def _pair() -> tuple[list[FixtureResult], list[FixtureResult]]:
    truths = {"f1": P, "f2": P, "f3": U, "f4": N, "f5": N, "f6": U}
    a_pred: dict[str, str | None] = {"f1": P, "f2": N, "f3": U, "f4": P, "f5": N, "f6": None}
    b_pred: dict[str, str | None] = {"f1": P, "f2": P, "f3": N, "f4": N, "f5": N, "f6": N}
    a = [outcome(truths[i], a_pred[i], id=i) for i in truths]
    b = [outcome(truths[i], b_pred[i], id=i) for i in reversed(truths)]  # order must not matter
    return a, b


def test_compare_worked_pair() -> None:
    a, b = _pair()

    result = compare(a, b)

    #        truth  A        B
    # f1     pos    pos  ok  pos  ok   both right
    # f2     pos    neg  x   pos  ok   B only
    # f3     neu    neu  ok  neg  x    A only
    # f4     neg    pos  x   neg  ok   B only
    # f5     neg    neg  ok  neg  ok   both right
    # f6     neu    fail x   neg  x    both wrong (but different predictions)
    assert result["both_right"] == 2
    assert result["a_only_right"] == 1
    assert result["b_only_right"] == 2
    assert result["both_wrong"] == 1
    # n = 3, min = 1: 2 * (C(3,0) + C(3,1)) / 2**3 = 2 * 4 / 8 = 1
    assert result["mcnemar_p"] == 1.0
    assert result["a"] == compute_metrics(a)
    assert result["b"] == compute_metrics(b)
    assert result["a"]["accuracy"] == exact(Fraction(3, 6))
    assert result["b"]["accuracy"] == exact(Fraction(4, 6))
    assert result["disagreements"] == [
        {"id": "f2", "text": "a positive comment", "truth": P, "a": N, "b": P},
        {"id": "f3", "text": "a neutral comment", "truth": U, "a": U, "b": N},
        {"id": "f4", "text": "a negative comment", "truth": N, "a": P, "b": N},
        {"id": "f6", "text": "a neutral comment", "truth": U, "a": None, "b": N},
    ]
    json.dumps(result, allow_nan=False)


def test_compare_identical_runs() -> None:
    a, _ = _pair()

    result = compare(a, a)

    assert result["disagreements"] == []
    assert result["a_only_right"] == result["b_only_right"] == 0
    assert result["mcnemar_p"] == 1.0


def test_compare_requires_the_same_fixtures() -> None:
    a, b = _pair()
    with pytest.raises(ValueError, match="different fixtures"):
        compare(a, b[:-1])
    with pytest.raises(ValueError, match="twice"):
        compare([*a, a[0]], b)
    changed = [outcome(N if o.id == "f1" else o.truth, o.predicted, id=o.id) for o in b]
    with pytest.raises(ValueError, match="different truths"):
        compare(a, changed)
