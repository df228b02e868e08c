"""Qualification: a model earns the right to approve on labelled comments, or approves nothing.

A model's own confidence says how sure it is, not whether it is right: an overconfident model
is sure of its wrong answers. So before a model + prompt approves anything, it answers the
shipped labelled fixtures (and the site's own, ``MODERATION_QUALIFY_FIXTURES``) with exactly
the batch's request: the same prompt, Modelfile, answer format, options and long-comment
windows. Its threshold is the lowest at which the one-sided 95% upper confidence bound of the
false-approval rate on the fixtures that must be held stays within
``MODERATION_MAX_FALSE_APPROVAL`` (``calibration.bounded_threshold``), never below
``MODERATION_MIN_CONFIDENCE``. If none does, the model is unqualified and approves nothing.

The result is stored under a key of everything that changes the answers or the judgement, so a
new model digest (``ollama pull``), prompt, fixture file, request or limit qualifies afresh,
and an unchanged one is never asked the fixtures again.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moderation.evaluation.calibration import (
    at_threshold,
    bounded_threshold,
    threshold_grid,
    with_bound,
)
from moderation.evaluation.evaluate import (
    Fixture,
    Progress,
    answer_fixtures,
    default_fixture_paths,
    fixtures_hash,
    load_fixtures,
)
from moderation.evaluation.metrics import FixtureResult
from moderation.formatting import percent
from moderation.model.classifier import Classifier
from moderation.model.confidence import METHOD as CONFIDENCE_METHOD
from moderation.model.host import answer_identity
from moderation.settings import DEFAULT_MIN_CONFIDENCE, Settings
from moderation.storage.memory import Identity
from moderation.storage.qualifications import Qualification, explain
from moderation.vocabulary import Label


def fixture_paths(settings: Settings, extra: Sequence[Path] = ()) -> list[Path]:
    """The shipped fixtures, then the site's own (settings, then ``extra``), each once."""
    paths = [*default_fixture_paths(), *(Path(p) for p in settings.qualify_fixtures), *extra]
    return list(dict.fromkeys(paths))


def qualification_key(settings: Settings, identity: Identity, fixtures: str) -> str:
    """Everything that changes the answers or the judgement of them, hashed."""
    material = {
        "model_digest": identity.model_digest,
        "model": identity.model if identity.model_digest is None else None,
        "prompt_hash": identity.prompt_hash,
        "fixtures_hash": fixtures,
        "request": answer_identity(settings.structured_output),
        "windows": [settings.max_comment_chars, settings.window_overlap, settings.max_windows],
        "confidence": CONFIDENCE_METHOD,
        "max_false_approval": settings.max_false_approval,
        "floor": settings.min_confidence,
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


async def qualify(
    settings: Settings,
    classifier: Classifier,
    identity: Identity,
    paths: Sequence[Path],
    progress: Progress | None = None,
) -> tuple[Qualification, list[dict[str, Any]]]:
    """Ask the fixtures (the classifier already prepared) and judge the answers: the
    qualification, and the threshold table it was chosen from (``bound_table``)."""
    fixtures = load_fixtures(paths)
    started = time.monotonic()
    outcomes = await answer_fixtures(classifier, settings, fixtures, progress)
    judged = judge(settings, identity, fixtures, outcomes, fixtures_hash(paths), started)
    assert judged.thresholds is not None
    return judged, list(judged.thresholds)


def bound_table(
    outcomes: Sequence[FixtureResult], chosen: float | None, floor: float, max_bound: float
) -> list[dict[str, Any]]:
    """Per threshold of the grid, and of those that explain the verdict: what a batch would
    approve, the false-approval rate and its 95% upper bound.

    Beside the grid: the chosen threshold, the floor (``MODERATION_MIN_CONFIDENCE``), the
    lowest threshold within the limit were there no floor, and the surest approving
    answer's confidence (cut to four decimals: the highest threshold that still approves
    anything, where the bound is lowest). Stored with the qualification, so that
    ``moderate qualify`` can show the table again without asking anything.
    """
    extra = {floor}
    if chosen is not None:
        extra.add(chosen)
    unfloored = bounded_threshold(outcomes, max_bound, 0.0)
    if unfloored is not None:
        extra.add(unfloored["threshold"])
    sure = [o.confidence for o in outcomes if o.confidence is not None and o.approved_at(0.0)]
    if sure:
        extra.add(math.floor(max(sure) * 10_000) / 10_000)
    thresholds = sorted(set(threshold_grid()) | extra)
    return [with_bound(outcomes, t) for t in thresholds]


def judge(
    settings: Settings,
    identity: Identity,
    fixtures: Sequence[Fixture],
    outcomes: Sequence[FixtureResult],
    hashed: str,
    started: float,
) -> Qualification:
    chosen = bounded_threshold(outcomes, settings.max_false_approval, settings.min_confidence)
    # A higher threshold approves a subset, so of the thresholds that approve anything the
    # rate is lowest at the surest approving answer's confidence: "at every threshold".
    sure = [o.confidence for o in outcomes if o.confidence is not None and o.approved_at(0.0)]
    best = at_threshold(outcomes, max(sure))["false_approval_rate"] if sure else None
    labels = [f.label for f in fixtures]
    threshold = None if chosen is None else chosen["threshold"]
    floor = settings.min_confidence
    table = bound_table(outcomes, threshold, floor, settings.max_false_approval)
    return Qualification(
        key=qualification_key(settings, identity, hashed),
        model=identity.model,
        model_digest=identity.model_digest,
        prompt_hash=identity.prompt_hash,
        fixtures_hash=hashed,
        n=len(fixtures),
        n_positive=labels.count(Label.POSITIVE),
        n_neutral=labels.count(Label.NEUTRAL),
        n_negative=labels.count(Label.NEGATIVE),
        n_approve=sum(1 for f in fixtures if f.label is None and f.expected == "approve"),
        n_hold=sum(1 for o in outcomes if not o.should_approve),
        max_false_approval=settings.max_false_approval,
        threshold=threshold,
        false_approval_rate=None if chosen is None else chosen["false_approval_rate"],
        false_approval_bound=None if chosen is None else chosen["false_approval_bound"],
        auto_approval_share=None if chosen is None else chosen["auto_approved"],
        missed_approval_rate=None if chosen is None else chosen["missed_approval_rate"],
        best_false_approval_rate=best,
        failed=sum(1 for o in outcomes if o.predicted is None),
        seconds=round(time.monotonic() - started, 3),
        qualified_at=datetime.now(UTC),
        min_confidence=floor,
        thresholds=tuple(table),
    )


def at_floor(outcomes: Sequence[FixtureResult], settings: Settings) -> dict[str, Any]:
    """What qualification would say of these answers at the configured floor and limit: an
    evaluation's headline rates are those at the floor, and a 0.0% false-approval rate there
    may only mean that nothing is sure enough to be approved."""
    floor, limit = settings.min_confidence, settings.max_false_approval
    chosen = bounded_threshold(outcomes, limit, floor)
    threshold = None if chosen is None else chosen["threshold"]
    holds = sum(1 for o in outcomes if not o.should_approve)
    reason = None
    if chosen is None:
        rows = bound_table(outcomes, threshold, floor, limit)
        reason = explain(rows, floor, limit, len(outcomes), holds)
    return {
        "qualified": chosen is not None,
        "min_confidence": floor,
        "max_false_approval": limit,
        "n": len(outcomes),
        "threshold": threshold,
        "false_approval_bound": None if chosen is None else chosen["false_approval_bound"],
        "auto_approved": None if chosen is None else chosen["auto_approved"],
        "reason": reason,
    }


def headline_at_floor(verdict: dict[str, Any]) -> str:
    """``at_floor``'s verdict in a few words, for the report's headline."""
    floor = verdict["min_confidence"]
    shipped = " (the shipped floor)" if floor == DEFAULT_MIN_CONFIDENCE else ""
    where = f"at MODERATION_MIN_CONFIDENCE={floor:g}{shipped}"
    if verdict["qualified"]:
        return f"qualified {where}: a batch would approve at {verdict['threshold']:.4f}"
    return f"unqualified {where}: a batch would approve nothing"


def describe_at_floor(verdict: dict[str, Any]) -> str:
    """``at_floor``'s verdict in one line for a person."""
    floor = verdict["min_confidence"]
    shipped = " (the shipped floor)" if floor == DEFAULT_MIN_CONFIDENCE else ""
    where = f"at MODERATION_MIN_CONFIDENCE={floor:g}{shipped} on these {verdict['n']} fixtures"
    if verdict["qualified"]:
        return (
            f"qualified {where}: a batch would approve at threshold {verdict['threshold']:.4f} "
            f"(95% bound {percent(verdict['false_approval_bound'])} <= "
            f"{percent(verdict['max_false_approval'])}), auto-approving "
            f"{percent(verdict['auto_approved'])}"
        )
    return f"unqualified {where}, so a batch would approve nothing: {verdict['reason']}"
