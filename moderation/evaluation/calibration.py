"""Choosing the approval threshold with evidence: pure functions over evaluated outcomes.

* ``threshold_table``: per threshold, the share of comments a batch would approve on its own
  and the false-approval rate, decided by the same rule as a batch (``FixtureResult.approved_at``).
* ``target_threshold``: the lowest threshold whose false-approval rate is at or under a
  target, on these fixtures.
* ``bounded_threshold``: the lowest threshold whose false-approval rate is at or under a
  limit *beyond the fixtures*: the one-sided 95% upper confidence bound of the rate
  (Clopper-Pearson), not the rate seen. This is what a model must pass to approve anything.
* ``reliability`` and ``expected_calibration_error``: whether a confidence of 0.8 is right
  about 80% of the time. Answers are put in ten equal-width bins by the confidence of their
  label; ECE is the mean gap between each bin's accuracy and its mean confidence, weighted
  by the bin's share of the answers (Guo et al., 2017). Answers without a confidence (failed
  calls, servers without log probabilities) are left out of both, and so are fixtures whose
  truth is a human's decision rather than a label.

The threshold table and the target count every fixture: one to hold is a negative label or a
human's ``hold``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

GRID_STEP = 0.05
BINS = 10
# Thresholds printed for an operator to copy: four decimals, rounded up, so the figures shown
# are those of the printed value itself.
_DECIMALS = 4
_STEP = 10**-_DECIMALS


class Judged(Protocol):
    """An evaluated fixture (``metrics.FixtureResult``)."""

    @property
    def truth(self) -> str | None: ...
    @property
    def should_approve(self) -> bool: ...
    @property
    def predicted(self) -> str | None: ...
    @property
    def confidence(self) -> float | None: ...

    def approved_at(self, min_confidence: float) -> bool: ...


def threshold_grid(configured: float | None = None) -> list[float]:
    """0, 0.05, ..., 1, and the configured threshold if it is not among them."""
    grid = {round(i * GRID_STEP, 2) for i in range(round(1 / GRID_STEP) + 1)}
    if configured is not None:
        grid.add(configured)
    return sorted(grid)


def at_threshold(outcomes: Sequence[Judged], threshold: float) -> dict[str, Any]:
    """What a batch with this threshold would do with these fixtures."""
    approved = [o for o in outcomes if o.approved_at(threshold)]
    negatives = sum(1 for o in outcomes if not o.should_approve)
    false_approvals = sum(1 for o in approved if not o.should_approve)
    approvable = len(outcomes) - negatives
    missed = approvable - (len(approved) - false_approvals)
    return {
        "threshold": threshold,
        "auto_approved": len(approved) / len(outcomes) if outcomes else None,
        "auto_approved_count": len(approved),
        "false_approval_rate": false_approvals / negatives if negatives else None,
        "missed_approval_rate": missed / approvable if approvable else None,
    }


def threshold_table(
    outcomes: Sequence[Judged], configured: float | None = None
) -> list[dict[str, Any]]:
    return [at_threshold(outcomes, t) for t in threshold_grid(configured)]


def target_threshold(outcomes: Sequence[Judged], max_rate: float) -> dict[str, Any] | None:
    """The lowest threshold keeping the false-approval rate at or under ``max_rate``.

    The rate only changes at the confidences of the approving answers: a threshold at one
    keeps that answer, one just above it drops it. So 0 and those two per confidence (at four
    decimals) are the only thresholds worth trying. None when no fixture to hold was
    evaluated (there is no rate), or when even a threshold of 1 is not enough (a wrong
    approval with full confidence).
    """
    if all(o.should_approve for o in outcomes):
        return None
    for threshold in _candidates(outcomes, 0.0):
        figures = at_threshold(outcomes, threshold)
        rate = figures["false_approval_rate"]
        if rate is not None and rate <= max_rate:
            return figures
    return None


def false_approval_bound(wrong: int, holds: int, level: float = 0.95) -> float:
    """The one-sided ``level`` upper confidence bound (Clopper-Pearson) of a rate seen as
    ``wrong`` of ``holds``: the largest rate under which seeing ``wrong`` or fewer still has a
    probability of at least 1 - ``level``. 1.0 when nothing was held or everything was wrong.

    With 139 fixtures to hold, 0 wrong approvals bound the rate at about 2.1%, 2 at about 5.1%.
    """
    if holds <= 0 or wrong >= holds:
        return 1.0
    alpha = 1.0 - level
    low, high = wrong / holds, 1.0
    for _ in range(100):  # bisection: the binomial CDF falls as the rate grows
        middle = (low + high) / 2
        if _binomial_cdf(wrong, holds, middle) > alpha:
            low = middle
        else:
            high = middle
    return high


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n may be thousands)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0 if k < n else 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        total += math.exp(log_term)
    return min(1.0, total)


def bounded_threshold(
    outcomes: Sequence[Judged], max_bound: float, floor: float = 0.0
) -> dict[str, Any] | None:
    """The lowest threshold (at least ``floor``) whose false-approval bound is at most
    ``max_bound``, with its figures (``false_approval_bound`` added); None when none is.

    As in ``target_threshold``, the figures change only at the approving answers'
    confidences, so those (and the floor) are the only thresholds worth trying. A threshold
    that approves no fixture proves nothing (its bound is small only because nothing was
    tried), so it never qualifies.
    """
    holds = sum(1 for o in outcomes if not o.should_approve)
    if holds == 0:
        return None
    for threshold in _candidates(outcomes, floor):
        figures = with_bound(outcomes, threshold)
        if figures["auto_approved_count"] and figures["false_approval_bound"] <= max_bound:
            return figures
    return None


def with_bound(outcomes: Sequence[Judged], threshold: float) -> dict[str, Any]:
    """``at_threshold``'s figures and the 95% upper bound of the false-approval rate (None
    when nothing was to be held)."""
    holds = [o for o in outcomes if not o.should_approve]
    wrong = sum(1 for o in holds if o.approved_at(threshold))
    bound = false_approval_bound(wrong, len(holds)) if holds else None
    return {**at_threshold(outcomes, threshold), "false_approval_bound": bound}


def _candidates(outcomes: Sequence[Judged], floor: float) -> list[float]:
    """The thresholds worth trying, lowest first: the floor, and at each approving answer's
    confidence the threshold that keeps it and the one just above that drops it."""
    candidates = {floor}
    for o in outcomes:
        if o.confidence is not None and o.approved_at(0.0):
            at = _round_up(o.confidence)
            candidates.add(at)
            candidates.add(at if at > o.confidence else round(at + _STEP, _DECIMALS))
    return sorted(c for c in candidates if floor <= c <= 1.0)


def _round_up(value: float) -> float:
    """Up to four decimals; a value a hair's breadth above a step (0.7000000001, from the
    arithmetic of probabilities) stays on it: the figures are recomputed at the result."""
    scale = 10**_DECIMALS
    return math.ceil(round(value * scale, 6)) / scale


def _bin(confidence: float) -> int:
    # Rounded first for the same reason: 0.8 must not land in the 0.7 bin as 0.7999999999.
    return min(int(round(confidence * BINS, 9)), BINS - 1)


def _confident(outcomes: Sequence[Judged]) -> list[tuple[float, bool]]:
    return [
        (float(o.confidence), str(o.predicted) == str(o.truth))
        for o in outcomes
        if o.predicted is not None and o.confidence is not None and o.truth is not None
    ]


def reliability(outcomes: Sequence[Judged]) -> list[dict[str, Any]]:
    """Ten bins of confidence: each with its count, mean confidence and accuracy."""
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(BINS)]
    for confidence, correct in _confident(outcomes):
        bins[_bin(confidence)].append((confidence, correct))
    return [
        {
            "lower": i / BINS,
            "upper": (i + 1) / BINS,
            "n": len(members),
            "confidence": sum(c for c, _ in members) / len(members) if members else None,
            "accuracy": sum(1 for _, ok in members if ok) / len(members) if members else None,
        }
        for i, members in enumerate(bins)
    ]


def expected_calibration_error(outcomes: Sequence[Judged]) -> float | None:
    total = len(_confident(outcomes))
    if not total:
        return None
    return sum(
        b["n"] / total * abs(b["accuracy"] - b["confidence"])
        for b in reliability(outcomes)
        if b["n"]
    )
