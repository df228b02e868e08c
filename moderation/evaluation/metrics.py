"""Quality metrics for an evaluation run: pure functions over outcomes, no I/O.

The figure that matters most for moderation is the *false-approval rate*: a negative comment
that gets approved is published without a human ever seeing it. A failed prediction (timeout,
error, unparseable answer) never approves, because the pipeline holds such comments, so here it
counts as wrong for accuracy, as "not approved" for the approval rates, and as its own
``"failed"`` column in the confusion matrix.

Conventions, chosen to match ``sklearn.metrics`` with ``zero_division=0`` and
``labels=["positive", "neutral", "negative"]`` (a failure being an extra predicted value that is
not one of the labels):

* precision of a label = 0 when nothing was predicted as that label;
* recall of a label = 0 when no fixture has that label (support 0);
* F1 = 0 when precision + recall = 0;
* macro-F1 is the unweighted mean over all three labels, including one with support 0, so a
  fixture set without, say, neutral comments caps macro-F1 at 2/3 unless it is fixed;
* latency percentiles use the *nearest-rank* method: the smallest observed value such that at
  least p% of the observations are less than or equal to it, so a percentile is always a latency
  that was actually measured.

Two kinds of truth. A *labelled* fixture has a sentiment ``truth`` (positive, neutral,
negative); a fixture exported from a site has only the human's ``expected`` decision (approve or
hold), because people decide whether to publish, not what the sentiment is. The approval rates
count every fixture (a label of positive or neutral means approve); accuracy, macro-F1, the
per-label scores and the confusion matrix count the labelled ones only. For McNemar's test a
fixture with an expected decision is right when the decision would have matched it.

Approval follows the batch's own rule (``policy.rule``): with a confidence threshold, a
positive or neutral answer less sure than it is held, so the approval rates, like a batch,
count it as not approved. Accuracy and the confusion matrix are about the labels only.

An empty run has ``accuracy`` and ``macro_f1`` None (there is nothing to score), like the
rates over an empty group. Nothing is rounded: formatting is the presenter's job.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from moderation.evaluation.calibration import (
    expected_calibration_error,
    reliability,
    threshold_table,
)
from moderation.policy import approves
from moderation.vocabulary import APPROVING_LABELS, LABELS, Expected, Outcome

FAILED = Outcome.FAILED  # predicted column for timeouts, errors, unparseable answers
PREDICTED_COLUMNS: tuple[str, ...] = (*LABELS, FAILED)
EXPECTED: tuple[str, ...] = tuple(Expected)
UNKNOWN_LANG = "unknown"


@dataclass(frozen=True)
class FixtureResult:
    """One evaluated fixture: its ground truth and what the model answered."""

    id: str
    text: str
    truth: str | None  # a label, or None for a fixture with only an expected decision
    predicted: str | None  # a label, or None when the model failed
    lang: str | None
    tags: tuple[str, ...]
    latency_s: float | None
    error: str | None = None
    raw_answer: str | None = None
    confidence: float | None = None  # of the predicted label, when the server gave one
    expected: str | None = None  # approve or hold: a human's decision, when there is no label

    @property
    def labelled(self) -> bool:
        return self.truth is not None

    @property
    def should_approve(self) -> bool:
        """The truth as a publish decision: the human's, or the label's."""
        if self.truth is None:
            return _expected(self.expected) == Expected.APPROVE
        return _label(self.truth) in APPROVING_LABELS

    @property
    def correct(self) -> bool:
        if self.truth is None:
            return self.approved == self.should_approve
        return self.predicted is not None and self.predicted == self.truth

    @property
    def approved(self) -> bool:
        """Approved with the confidence gate off."""
        return self.approved_at(0.0)

    def approved_at(self, min_confidence: float) -> bool:
        """Whether a batch with this threshold would publish the comment."""
        predicted = None if self.predicted is None else str(self.predicted)
        return approves(predicted, self.confidence, min_confidence)

    @property
    def column(self) -> str:
        """The confusion-matrix column this prediction falls in."""
        return FAILED if self.predicted is None else _label(self.predicted)


def _label(value: str) -> str:
    """Normalise a label (a plain string or a ``Label``) to its plain value, or raise."""
    plain = str(value)
    if plain not in LABELS:
        raise ValueError(f"unknown label {value!r}; expected one of {', '.join(LABELS)}")
    return plain


def _expected(value: str | None) -> str:
    if value not in EXPECTED:
        raise ValueError(f"unknown expected decision {value!r}; expected approve or hold")
    return value


def _check_truth(outcome: FixtureResult) -> None:
    """Exactly one kind of truth, and a valid one."""
    if outcome.truth is not None and outcome.expected is not None:
        raise ValueError(f"fixture {outcome.id!r} has both a label and an expected decision")
    _ = outcome.should_approve


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def compute_metrics(
    outcomes: Sequence[FixtureResult], min_confidence: float = 0.0
) -> dict[str, Any]:
    """All metrics of one run, as a JSON-serialisable dict (see the module docstring).

    The approval rates apply ``min_confidence`` exactly as a batch would; ``thresholds``,
    ``ece`` and ``reliability`` show how they would change with it (see calibration.py).
    """
    for outcome in outcomes:
        _check_truth(outcome)
        _ = outcome.column  # validates the prediction too
    labelled = [o for o in outcomes if o.labelled]
    confusion = confusion_matrix(labelled)
    per_label = per_label_scores(confusion)
    return {
        "n": len(outcomes),
        "n_labelled": len(labelled),
        "n_expected": len(outcomes) - len(labelled),
        "accuracy": accuracy(labelled),
        "macro_f1": macro_f1(per_label) if labelled else None,
        "per_label": per_label,
        "confusion": confusion,
        "false_approval_rate": false_approval_rate(outcomes, min_confidence),
        "missed_approval_rate": missed_approval_rate(outcomes, min_confidence),
        "failed": sum(1 for o in outcomes if o.predicted is None),
        "latency": latency_percentiles(o.latency_s for o in outcomes),
        "per_tag": _breakdown(outcomes, lambda o: o.tags, min_confidence),
        "per_lang": _breakdown(outcomes, lambda o: (o.lang or UNKNOWN_LANG,), min_confidence),
        "min_confidence": min_confidence,
        "held_uncertain": sum(
            1 for o in outcomes if o.approved and not o.approved_at(min_confidence)
        ),
        "thresholds": threshold_table(outcomes, min_confidence),
        "ece": expected_calibration_error(outcomes),
        "reliability": reliability(outcomes),
    }


def macro_f1(per_label: dict[str, dict[str, Any]]) -> float:
    """Unweighted mean F1 over all three labels, a label with no support included (as 0)."""
    return sum(per_label[label]["f1"] for label in LABELS) / len(LABELS)


def accuracy(outcomes: Sequence[FixtureResult]) -> float | None:
    """Share of correct labels among labelled fixtures; a failure is wrong. None without any."""
    labelled = [o for o in outcomes if o.labelled]
    return _ratio(sum(1 for o in labelled if o.correct), len(labelled))


def false_approval_rate(
    outcomes: Sequence[FixtureResult], min_confidence: float = 0.0
) -> float | None:
    """Share of comments to hold (negative, or held by a human) that would have been approved."""
    holds = [o for o in outcomes if not o.should_approve]
    return _ratio(sum(1 for o in holds if o.approved_at(min_confidence)), len(holds))


def missed_approval_rate(
    outcomes: Sequence[FixtureResult], min_confidence: float = 0.0
) -> float | None:
    """Share of comments to approve (positive/neutral, or approved by a human) held (negative,
    uncertain or failed)."""
    approvable = [o for o in outcomes if o.should_approve]
    held = sum(1 for o in approvable if not o.approved_at(min_confidence))
    return _ratio(held, len(approvable))


def confusion_matrix(outcomes: Iterable[FixtureResult]) -> dict[str, dict[str, int]]:
    """``{truth: {predicted: count}}`` with every cell present, zeros included (labelled only)."""
    matrix: dict[str, dict[str, int]] = {
        truth: dict.fromkeys(PREDICTED_COLUMNS, 0) for truth in LABELS
    }
    for outcome in outcomes:
        if outcome.truth is not None:
            matrix[_label(outcome.truth)][outcome.column] += 1
    return matrix


def per_label_scores(confusion: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and support of each label, from a confusion matrix."""
    scores: dict[str, dict[str, Any]] = {}
    for label in LABELS:
        true_positive = confusion[label][label]
        predicted = sum(confusion[truth][label] for truth in LABELS)
        support = sum(confusion[label].values())  # failures count: they are missed recalls
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        total = precision + recall
        f1 = 2 * precision * recall / total if total else 0.0
        scores[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return scores


def nearest_rank(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of already sorted, non-empty values."""
    if not sorted_values:
        raise ValueError("no values")
    # Exact rational arithmetic: 0.95 * 100 in floats is 95.00000000000001, whose ceiling
    # would skip a rank.
    rank = max(1, math.ceil(Fraction(percent) * len(sorted_values) / 100))
    return sorted_values[rank - 1]


def latency_percentiles(latencies: Iterable[float | None]) -> dict[str, float | None]:
    """p50 and p95 (nearest rank) over the measured latencies; None when there are none."""
    values = sorted(v for v in latencies if v is not None)
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": nearest_rank(values, 50), "p95": nearest_rank(values, 95)}


def _breakdown(
    outcomes: Sequence[FixtureResult],
    keys: Callable[[FixtureResult], Iterable[str]],
    min_confidence: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """n, accuracy and false-approval rate per group; an outcome may be in several groups."""
    groups: dict[str, list[FixtureResult]] = {}
    for outcome in outcomes:
        for key in dict.fromkeys(keys(outcome)):  # a tag listed twice counts once
            groups.setdefault(key, []).append(outcome)
    return {
        key: {
            "n": len(members),
            "accuracy": accuracy(members),
            "false_approval_rate": false_approval_rate(members, min_confidence),
        }
        for key, members in sorted(groups.items())
    }


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pair counts.

    ``b`` = fixtures only A got right, ``c`` = fixtures only B got right. Under the null
    hypothesis each discordant pair is a fair coin, so the p-value is
    ``min(1, 2 * P[X <= min(b, c)])`` for ``X ~ Binomial(b + c, 1/2)``.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    # Integer arithmetic throughout: sum(C(n, k)) / 2**n is exact, and Python's int / int is
    # correctly rounded even when both are thousands of digits long, so nothing overflows.
    tail = _binomial_tail(n, min(b, c))
    return min(1.0, (2 * tail) / (2**n))


def _binomial_tail(n: int, m: int) -> int:
    """``sum(math.comb(n, k) for k in range(m + 1))``, one step per term.

    Each coefficient follows from the previous one (C(n, k+1) = C(n, k) * (n-k) / (k+1),
    an exact integer division) instead of being recomputed from scratch, which keeps
    b + c = 10,000 well under a second.
    """
    term = total = 1  # C(n, 0)
    for k in range(m):
        term = term * (n - k) // (k + 1)
        total += term
    return total


def compare(
    a: Sequence[FixtureResult], b: Sequence[FixtureResult], min_confidence: float = 0.0
) -> dict[str, Any]:
    """Metrics of two runs over the same fixtures, paired by fixture id, with McNemar's test."""
    by_id_a = _index(a, "a")
    by_id_b = _index(b, "b")
    if by_id_a.keys() != by_id_b.keys():
        only_a = sorted(by_id_a.keys() - by_id_b.keys())
        only_b = sorted(by_id_b.keys() - by_id_a.keys())
        raise ValueError(f"runs cover different fixtures: only in a {only_a}, only in b {only_b}")
    counts: Counter[tuple[bool, bool]] = Counter()
    disagreements: list[dict[str, Any]] = []
    for fixture_id, first in by_id_a.items():
        second = by_id_b[fixture_id]
        if (first.truth, first.expected) != (second.truth, second.expected):
            raise ValueError(f"fixture {fixture_id!r} has different truths in the two runs")
        counts[first.correct, second.correct] += 1
        if first.column != second.column:
            disagreements.append(
                {
                    "id": fixture_id,
                    "text": first.text,
                    "truth": _truth_name(first),
                    "a": _plain(first.predicted),
                    "b": _plain(second.predicted),
                }
            )
    a_only, b_only = counts[True, False], counts[False, True]
    return {
        "a": compute_metrics(a, min_confidence),
        "b": compute_metrics(b, min_confidence),
        "both_right": counts[True, True],
        "a_only_right": a_only,
        "b_only_right": b_only,
        "both_wrong": counts[False, False],
        "mcnemar_p": mcnemar_exact(a_only, b_only),
        "disagreements": disagreements,
    }


def _truth_name(outcome: FixtureResult) -> str:
    """A label, or the human's expected decision for a fixture without one."""
    return _expected(outcome.expected) if outcome.truth is None else _label(outcome.truth)


def _plain(predicted: str | None) -> str | None:
    return None if predicted is None else _label(predicted)


def _index(outcomes: Sequence[FixtureResult], name: str) -> dict[str, FixtureResult]:
    index: dict[str, FixtureResult] = {}
    for outcome in outcomes:
        if outcome.id in index:
            raise ValueError(f"run {name} has fixture {outcome.id!r} twice")
        index[outcome.id] = outcome
    return index
