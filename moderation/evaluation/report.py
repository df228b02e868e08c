"""The evaluation report: one self-contained HTML file rendered from an evaluation result.

The file is meant to be archived next to the run and opened anywhere, offline, years later, so
it carries its own ``<style>`` and references nothing on the network. Comment texts and model
answers come from the fixtures and the model: both are untrusted and full of markup on purpose,
so the environment autoescapes everything and nothing user-supplied is ever marked safe; what
they say goes through the ``visible`` filter, which also shows the characters that reorder or
hide text (bidi controls, zero widths, escapes) as their codes, as the review page does.

The template stays dumb: numbers are formatted and heat-map colours computed here, where they
can be tested, and the template only lays them out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from moderation.evaluation.charts import reliability_chart, tradeoff_chart
from moderation.evaluation.metrics import FAILED, PREDICTED_COLUMNS
from moderation.formatting import percent
from moderation.resources import html_templates
from moderation.text import inert
from moderation.vocabulary import APPROVING_LABELS, LABELS, Expected, Label

TEMPLATE = "eval_report.html.j2"
TEXT_LIMIT = 500  # characters of a comment or answer shown; the full text is in the JSON
MISSING = "—"

# Heat-map colours: correct predictions in green, every kind of mistake in red. The alpha is
# the cell's share of its row, so a row reads as "where did comments with this truth go".
_GREEN = (40, 150, 70)
_RED = (200, 40, 40)
_DARK_INK_UNTIL = 0.55  # above this alpha, white text keeps the count readable


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return html_templates(
        "moderation.evaluation",
        pct=fmt_percent,
        dec=fmt_decimal,
        secs=fmt_seconds,
        pval=fmt_p_value,
        visible=visible,
    )


def render_report(result: dict[str, Any]) -> str:
    """The report for one evaluation result.

    ``result`` holds ``title``, ``generated_at``, ``model``, ``model_digest`` (or None),
    ``prompt``, ``prompt_hash``, ``fixtures`` (paths), ``fixtures_hash``, ``metrics`` (from
    ``compute_metrics``), ``outcomes`` (``FixtureResult`` fields as dicts) and ``comparison`` (from
    ``compare``, or None). A comparison may add ``a_name``/``b_name`` (column headings, "A" and
    "B" by default) and ``b_model``/``b_prompt``/``b_prompt_hash`` to describe variant B.
    """
    template = _environment().get_template(TEMPLATE)
    return template.render(**_view(result))


# --- formatting ------------------------------------------------------------------------------


def visible(text: object) -> Markup:
    """Untrusted text escaped, every reordering or invisible character shown as its code."""
    return Markup(inert.html(str(text)))


def fmt_percent(value: float | None, digits: int = 1) -> str:
    return percent(value, digits, MISSING)


def fmt_decimal(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return MISSING
    # Sub-second latencies are the common case for small models; show them in milliseconds.
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def fmt_p_value(value: float | None) -> str:
    if value is None:
        return MISSING
    # Tiny p-values would all print as 0.000; scientific notation keeps their magnitude.
    return f"{value:.3f}" if value >= 0.001 else f"{value:.2e}"


def truncate(text: str | None, limit: int = TEXT_LIMIT) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def prediction_name(predicted: str | None) -> str:
    return FAILED if predicted is None else str(predicted)


# --- view model ------------------------------------------------------------------------------


def _view(result: Mapping[str, Any]) -> dict[str, Any]:
    comparison = result["comparison"]
    return {
        "title": result["title"],
        "generated_at": result["generated_at"],
        "model": result["model"],
        "model_digest": result["model_digest"],
        "prompt": result["prompt"],
        "prompt_hash": result["prompt_hash"],
        "fixtures": [str(path) for path in result["fixtures"]],
        "fixtures_hash": result["fixtures_hash"],
        "labels": LABELS,
        "text_limit": TEXT_LIMIT,
        "columns": PREDICTED_COLUMNS,
        "metrics": result["metrics"],
        "heatmap": heatmap(result["metrics"]["confusion"]),
        "misclassified": misclassified(result["outcomes"]),
        "comparison": _comparison_view(result, comparison) if comparison is not None else None,
        "confidence": _confidence_view(result["metrics"], comparison),
        # Whether the model would qualify at the floor the headline rates are taken at (a
        # 0.0% false-approval rate may only mean that nothing was sure enough to approve).
        "qualification": result.get("qualification"),
        "qualification_headline": result.get("qualification_headline"),
        "qualified": result.get("qualified"),
    }


def _confidence_view(
    metrics: Mapping[str, Any], comparison: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The threshold table and its two charts; None for metrics computed without them."""
    if "thresholds" not in metrics:
        return None
    variants = [("A" if comparison else "this run", metrics)]
    if comparison is not None:
        variants.append((comparison.get("b_name", "B"), comparison["b"]))
    configured = metrics.get("min_confidence")
    return {
        "min_confidence": configured,
        "held_uncertain": metrics.get("held_uncertain"),
        "ece": metrics.get("ece"),
        "rows": metrics["thresholds"],
        "tradeoff": tradeoff_chart([(n, m["thresholds"]) for n, m in variants], configured),
        "reliability": reliability_chart(
            [(n, m["reliability"], m.get("ece")) for n, m in variants]
        ),
    }


def heatmap(confusion: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """One row per true label; each cell carries its count, row share and colours."""
    rows = []
    for truth in LABELS:
        counts = confusion[truth]
        total = sum(counts[column] for column in PREDICTED_COLUMNS)
        cells = [
            _cell(counts[column], total, correct=(column == truth)) for column in PREDICTED_COLUMNS
        ]
        rows.append({"truth": truth, "total": total, "cells": cells})
    return rows


def _cell(count: int, total: int, *, correct: bool) -> dict[str, Any]:
    share = count / total if total else 0.0
    red, green, blue = _GREEN if correct else _RED
    return {
        "count": count,
        "share": share,
        "background": f"rgba({red},{green},{blue},{share:.3f})",
        "ink": "#fff" if share > _DARK_INK_UNTIL else "#111",
        "kind": "hit" if correct else "miss",
    }


def misclassified(outcomes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Wrong predictions, false approvals first (the costly mistake), in fixture order."""
    wrong = [_row(o) for o in outcomes if _is_wrong(o)]
    return sorted(wrong, key=lambda row: not row["false_approval"])  # stable: order kept


def _truth(outcome: Mapping[str, Any]) -> str:
    """The label, or for a fixture from a site the human's decision (approve or hold)."""
    return str(outcome.get("expected") if outcome["truth"] is None else outcome["truth"])


def _is_wrong(outcome: Mapping[str, Any]) -> bool:
    if outcome["truth"] is None:
        return (_prediction(outcome) in APPROVING_LABELS) != (
            outcome.get("expected") == Expected.APPROVE
        )
    return _prediction(outcome) != str(outcome["truth"])


def _prediction(outcome: Mapping[str, Any]) -> str:
    return prediction_name(outcome["predicted"])


def _row(outcome: Mapping[str, Any]) -> dict[str, Any]:
    predicted = _prediction(outcome)
    truth = _truth(outcome)
    return {
        "id": str(outcome["id"]),
        "truth": truth,
        "predicted": predicted,
        "false_approval": truth in (Label.NEGATIVE, Expected.HOLD)
        and predicted in APPROVING_LABELS,
        "text": truncate(outcome["text"]),
        "lang": outcome.get("lang") or "",
        "tags": [str(tag) for tag in outcome.get("tags") or ()],
        "raw_answer": truncate(outcome.get("raw_answer")),
        "error": truncate(outcome.get("error")),
    }


def _comparison_view(result: Mapping[str, Any], comparison: Mapping[str, Any]) -> dict[str, Any]:
    """Variant A is the run the report is about; B is described by optional ``b_*`` keys."""
    a, b = comparison["a"], comparison["b"]
    return {
        "a_name": comparison.get("a_name", "A"),
        "b_name": comparison.get("b_name", "B"),
        "a_variant": _variant_line(result["model"], result["prompt"], result["prompt_hash"]),
        "b_variant": _variant_line(
            comparison.get("b_model"), comparison.get("b_prompt"), comparison.get("b_prompt_hash")
        ),
        "a": a,
        "b": b,
        "a_heatmap": heatmap(a["confusion"]),
        "b_heatmap": heatmap(b["confusion"]),
        "rows": _side_by_side(a, b),
        "both_right": comparison["both_right"],
        "a_only_right": comparison["a_only_right"],
        "b_only_right": comparison["b_only_right"],
        "both_wrong": comparison["both_wrong"],
        "mcnemar_p": comparison["mcnemar_p"],
        "disagreements": [
            {
                "id": str(d["id"]),
                "text": truncate(d["text"]),
                "truth": str(d["truth"]),
                "a": prediction_name(d["a"]),
                "b": prediction_name(d["b"]),
            }
            for d in comparison["disagreements"]
        ],
    }


def _variant_line(model: str | None, prompt: str | None, prompt_hash: str | None) -> str:
    """Model / prompt (hash prefix), or an empty string when the variant was not described."""
    if not model and not prompt:
        return ""
    line = " / ".join(str(part) for part in (model, prompt) if part)
    # Twelve hex digits tell prompt revisions apart; the full hash is in the JSON.
    return f"{line} ({prompt_hash[:12]})" if prompt_hash else line


_SIDE_BY_SIDE: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("Comments", lambda m: str(m["n"])),
    ("False-approval rate", lambda m: fmt_percent(m["false_approval_rate"])),
    ("Missed-approval rate", lambda m: fmt_percent(m["missed_approval_rate"])),
    ("Accuracy", lambda m: fmt_percent(m["accuracy"])),
    ("Macro-F1", lambda m: fmt_decimal(m["macro_f1"])),
    ("Failed", lambda m: str(m["failed"])),
    ("Latency p50", lambda m: fmt_seconds(m["latency"]["p50"])),
    ("Latency p95", lambda m: fmt_seconds(m["latency"]["p95"])),
)


def _side_by_side(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, value for A, value for B), already formatted."""
    return [(name, value(a), value(b)) for name, value in _SIDE_BY_SIDE]
