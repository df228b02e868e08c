"""Fixtures whose truth is a human's decision (`expected`) beside labelled ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation.errors import FixtureError
from moderation.evaluation.evaluate import load_fixtures
from moderation.evaluation.metrics import FixtureResult, compare, compute_metrics
from moderation.evaluation.report import misclassified


def labelled(fid: str, truth: str, predicted: str | None) -> FixtureResult:
    return FixtureResult(fid, f"text {fid}", truth, predicted, "en", ("shipped",), 0.01)


def site(fid: str, expected: str, predicted: str | None) -> FixtureResult:
    return FixtureResult(
        fid, f"text {fid}", None, predicted, None, ("site",), 0.01, expected=expected
    )


MIXED = [
    labelled("l1", "positive", "positive"),  # right, approved
    labelled("l2", "negative", "neutral"),  # wrong: a false approval
    labelled("l3", "neutral", "negative"),  # wrong: a missed approval
    labelled("l4", "negative", "negative"),  # right, held
    site("s1", "hold", "positive"),  # a false approval
    site("s2", "hold", "negative"),
    site("s3", "hold", None),  # failed: held
    site("s4", "approve", "negative"),  # a missed approval
    site("s5", "approve", "neutral"),
]


def test_rates_count_every_fixture_and_scores_count_labelled_ones() -> None:
    metrics = compute_metrics(MIXED)

    assert (metrics["n"], metrics["n_labelled"], metrics["n_expected"]) == (9, 4, 5)
    # To hold: l2, l4, s1, s2, s3; approved among them: l2, s1.
    assert metrics["false_approval_rate"] == 2 / 5
    # To approve: l1, l3, s4, s5; held among them: l3, s4.
    assert metrics["missed_approval_rate"] == 2 / 4
    assert metrics["accuracy"] == 2 / 4  # l1 and l4 of the labelled four
    assert sum(sum(row.values()) for row in metrics["confusion"].values()) == 4
    assert metrics["confusion"]["negative"] == {
        "positive": 0,
        "neutral": 1,
        "negative": 1,
        "failed": 0,
    }
    assert metrics["failed"] == 1
    assert metrics["per_tag"]["site"] == {"n": 5, "accuracy": None, "false_approval_rate": 1 / 3}
    assert metrics["per_tag"]["shipped"]["accuracy"] == 0.5


def test_only_expected_fixtures_have_no_accuracy_but_have_rates() -> None:
    metrics = compute_metrics([o for o in MIXED if o.truth is None])
    assert metrics["accuracy"] is None and metrics["macro_f1"] is None
    assert metrics["false_approval_rate"] == 1 / 3
    assert metrics["missed_approval_rate"] == 1 / 2


def test_compare_pairs_decisions_for_expected_fixtures() -> None:
    a = [site("s1", "hold", "positive"), site("s2", "approve", "positive")]
    b = [site("s1", "hold", "negative"), site("s2", "approve", "negative")]
    result = compare(a, b)
    assert (result["a_only_right"], result["b_only_right"]) == (1, 1)
    assert [(d["id"], d["truth"]) for d in result["disagreements"]] == [
        ("s1", "hold"),
        ("s2", "approve"),
    ]


def test_report_lists_wrong_decisions_on_expected_fixtures() -> None:
    from dataclasses import asdict

    rows = misclassified([asdict(o) for o in MIXED])
    assert [(r["id"], r["truth"], r["false_approval"]) for r in rows] == [
        ("l2", "negative", True),
        ("s1", "hold", True),
        ("l3", "neutral", False),
        ("s4", "approve", False),
    ]


def test_loader_reads_both_kinds_from_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "site.jsonl"
    jsonl.write_text(
        json.dumps({"id": "site-1", "text": "hi", "expected": "hold", "tags": ["site"]})
        + "\n"
        + json.dumps({"id": "l-1", "text": "great", "label": "positive"})
        + "\n",
        encoding="utf-8",
    )
    csv = tmp_path / "mixed.csv"
    csv.write_text("text,label,expected\nfine,positive,\nspam!,,hold\n", encoding="utf-8")

    fixtures = load_fixtures([jsonl, csv])

    assert [(f.id, f.label, f.expected) for f in fixtures] == [
        ("site-1", None, "hold"),
        ("l-1", "positive", None),
        ("mixed.csv:2", "positive", None),
        ("mixed.csv:3", None, "hold"),
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"text": "a", "label": "positive", "expected": "hold"}, 'either "label" or "expected"'),
        ({"text": "a", "expected": "publish"}, '"expected" must be approve or hold'),
        ({"text": "a", "expected": ["hold"]}, '"expected" must be approve or hold'),
        ({"text": "a"}, '"label" must be one of positive, neutral, negative'),
    ],
)
def test_bad_expected_values_name_the_line(
    tmp_path: Path, record: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(FixtureError) as caught:
        load_fixtures([path])
    assert caught.value.message.startswith(f"{path}:1: ")
    assert message in caught.value.message


def test_the_threshold_table_counts_expected_fixtures() -> None:
    from moderation.evaluation.calibration import at_threshold, target_threshold

    def sure(fid: str, expected: str, confidence: float) -> FixtureResult:
        return FixtureResult(
            fid, fid, None, "positive", None, (), 0.01, expected=expected, confidence=confidence
        )

    outcomes = [sure("s1", "hold", 0.9), sure("s2", "hold", 0.6), sure("s3", "approve", 0.7)]

    everything = at_threshold(outcomes, 0.0)
    assert (everything["false_approval_rate"], everything["missed_approval_rate"]) == (1.0, 0.0)
    some = at_threshold(outcomes, 0.65)  # s2 is held as uncertain
    assert (some["auto_approved_count"], some["false_approval_rate"]) == (2, 0.5)
    target = target_threshold(outcomes, 0.0)
    assert target is not None and target["threshold"] == 0.9001
    assert compute_metrics(outcomes, 0.65)["false_approval_rate"] == 0.5
