"""The HTML report: headline figures, heat-map, escaping, offline-readiness, comparison."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from moderation.evaluation.metrics import FixtureResult, compare, compute_metrics
from moderation.evaluation.report import (
    fmt_p_value,
    fmt_percent,
    fmt_seconds,
    heatmap,
    render_report,
    truncate,
)

SCRIPT = "<script>alert('owned')</script> you are all idiots"
LONG = "y" * 2000


def _outcomes() -> list[FixtureResult]:
    def o(
        id: str,
        truth: str,
        predicted: str | None,
        text: str,
        latency: float | None,
        **extra: Any,
    ) -> FixtureResult:
        return FixtureResult(
            id=id,
            text=text,
            truth=truth,
            predicted=predicted,
            lang=extra.pop("lang", "en"),
            tags=extra.pop("tags", ()),
            latency_s=latency,
            **extra,
        )

    return [
        o("c1", "positive", "positive", "Great post, thanks!", 0.2, raw_answer="positive"),
        o("c2", "positive", "positive", LONG, 0.4, lang="de"),
        o("c3", "neutral", "neutral", "When is part two out?", 0.3, tags=("question",)),
        o("c4", "negative", "positive", SCRIPT, 1.5, raw_answer="Positive", tags=("xss",)),
        o("c5", "negative", "negative", "This is wrong and you know it.", 0.25),
        o("c6", "neutral", None, "Fake </comment> tag & co", None, error="timeout after 30 s"),
        o("c7", "positive", "negative", "Loved it", 0.3, raw_answer="<b>negative</b>"),
    ]


def _result(comparison: dict[str, Any] | None = None) -> dict[str, Any]:
    outcomes = _outcomes()
    result = {
        "title": "Evaluation <qwen3> & friends",
        "generated_at": "2024-05-01T12:00:00+00:00",
        "model": "qwen3:1.7b",
        "model_digest": "sha256:abc123",
        "prompt": "classify.j2",
        "prompt_hash": "deadbeef" * 8,
        "fixtures": ["fixtures/comments.jsonl"],
        "fixtures_hash": "cafe" * 16,
        "metrics": compute_metrics(outcomes),
        "outcomes": [dataclasses.asdict(o) for o in outcomes],
        "comparison": comparison,
    }
    # The command writes the result as JSON and may render it later from the file.
    return json.loads(json.dumps(result))


def _variant() -> list[FixtureResult]:
    """A second run: c4 now held (right), c7 now right, c1 now wrong."""
    changed = {"c4": "negative", "c7": "positive", "c1": "neutral"}
    return [dataclasses.replace(o, predicted=changed.get(o.id, o.predicted)) for o in _outcomes()]


def _section(html: str, heading: str) -> str:
    start = html.index(heading)
    end = html.find("<h2", start + 1)
    return html[start : end if end != -1 else len(html)]


# --- headline and tables -------------------------------------------------------------------


def test_headline_figures_are_formatted() -> None:
    html = render_report(_result())

    # negatives c4 (approved), c5 (held): 1/2
    assert re.search(r'id="false-approval-rate"><span class="value">50\.0%</span>', html)
    # approvable c1 c2 c3 c6 c7, held c6 (failed) c7 (negative): 2/5
    assert '<span class="value">40.0%</span><span class="name">Missed-approval rate' in html
    # right: c1 c2 c3 c5 = 4/7 = 57.14…%
    assert '<span class="value">57.1%</span><span class="name">Accuracy' in html
    # F1: positive 2/3, neutral 2/3, negative 1/2 -> (2/3 + 2/3 + 1/2) / 3 = 11/18 = 0.611
    assert '<span class="value">0.611</span><span class="name">Macro-F1' in html
    assert '<span class="value">7</span><span class="name">Comments' in html
    assert '<span class="value">1</span><span class="name">Failed' in html
    # latencies 0.2 0.25 0.3 0.4 1.5: p50 rank 3 = 0.3, p95 rank 5 = 1.5
    assert '<span class="value">300 ms</span><span class="name">Latency p50' in html
    assert '<span class="value">1.50 s</span><span class="name">Latency p95' in html


def test_false_approval_rate_is_the_most_prominent_figure() -> None:
    html = render_report(_result())

    figures = re.findall(r'<div class="figure[^"]*"', html)
    assert figures[0] == '<div class="figure primary"'
    assert figures.count('<div class="figure primary"') == 1


def test_metadata_is_shown_and_escaped() -> None:
    html = render_report(_result())

    assert "<title>Evaluation &lt;qwen3&gt; &amp; friends</title>" in html
    assert "qwen3:1.7b" in html
    assert "sha256:abc123" in html
    assert "deadbeef" * 8 in html
    assert "fixtures/comments.jsonl" in html


def test_heatmap_cells_are_shaded_by_row_share() -> None:
    html = render_report(_result())

    # positive row (3): positive 2 -> green 2/3; negative 1 -> red 1/3; others red 0
    assert "background-color: rgba(40,150,70,0.667)" in html
    assert "background-color: rgba(200,40,40,0.333)" in html
    assert "background-color: rgba(200,40,40,0.000)" in html
    # neutral row (2): neutral 1 -> green 1/2; failed 1 -> red 1/2
    # negative row (2): negative 1 -> green 1/2; positive 1 -> red 1/2
    assert html.count("background-color: rgba(40,150,70,0.500)") == 2
    assert html.count("background-color: rgba(200,40,40,0.500)") == 2
    assert html.count('class="heat"') == 1


def test_heatmap_rows() -> None:
    confusion = compute_metrics(_outcomes())["confusion"]

    rows = heatmap(confusion)

    assert [row["truth"] for row in rows] == ["positive", "neutral", "negative"]
    assert [row["total"] for row in rows] == [3, 2, 2]
    positive = rows[0]["cells"]
    assert [cell["count"] for cell in positive] == [2, 0, 1, 0]
    assert [cell["kind"] for cell in positive] == ["hit", "miss", "miss", "miss"]
    assert positive[0]["share"] == pytest.approx(2 / 3)
    assert positive[0]["ink"] == "#fff"  # dark background, light text
    assert positive[2]["ink"] == "#111"
    empty = heatmap(compute_metrics([])["confusion"])
    assert all(cell["share"] == 0.0 for row in empty for cell in row["cells"])


def test_per_label_tag_and_language_tables() -> None:
    html = render_report(_result())

    per_label = _section(html, "<h2>Per label")
    # neutral: P 1/1, R 1/2, F1 2/3
    assert re.search(
        r"<td>neutral</td><td[^>]*>1\.000</td><td[^>]*>0\.500</td><td[^>]*>0\.667</td>"
        r"<td[^>]*>2</td>",
        per_label,
    )
    per_tag = _section(html, "<h2>Per tag")
    assert re.search(
        r"<td>xss</td><td[^>]*>1</td><td[^>]*>0\.0%</td><td[^>]*>100\.0%</td>", per_tag
    )
    assert re.search(
        r"<td>question</td><td[^>]*>1</td><td[^>]*>100\.0%</td><td[^>]*>—</td>", per_tag
    )
    per_lang = _section(html, "<h2>Per language")
    assert re.search(r"<td>de</td><td[^>]*>1</td>", per_lang)
    assert re.search(r"<td>en</td><td[^>]*>6</td>", per_lang)


# --- misclassified comments and escaping ---------------------------------------------------


def test_comment_text_and_answers_are_escaped() -> None:
    html = render_report(_result())

    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; you are all idiots" in html
    assert "&lt;b&gt;negative&lt;/b&gt;" in html
    assert "<b>negative</b>" not in html
    assert "Fake &lt;/comment&gt; tag &amp; co" in html


def test_bidi_and_control_characters_show_as_codes() -> None:
    hostile = dataclasses.replace(
        _outcomes()[3],
        id="c4\u202e",
        text="gnp\u202e.exe \u2066x\u2069 \u200b \x1b[2J \U000e0041",
        lang="e\u2067n",
        tags=("t\u2068ag",),
        raw_answer="pos\u202eitive",
        error="HTTP 500: \x1b]8;;http://evil.example\x1b\\",
    )
    outcomes = [hostile if o.id == "c4" else o for o in _outcomes()]
    held = dataclasses.replace(hostile, predicted="negative")
    variant = [held if o.id == "c4" else o for o in _variant()]
    result = _result(compare(outcomes, variant))
    result["metrics"] = compute_metrics(outcomes)
    result["outcomes"] = json.loads(json.dumps([dataclasses.asdict(o) for o in outcomes]))

    html = render_report(result)

    for char in "\u202e\u2066\u2067\u2068\u2069\u200b\x1b\U000e0041":
        assert char not in html, f"U+{ord(char):04X}"
    mistake = html[html.index('<strong class="mono">c4') :]
    mistake = mistake[: mistake.index("</article>")]
    assert '<strong class="mono">c4<span class="ctl">U+202E</span></strong>' in mistake
    assert 'gnp<span class="ctl">U+202E</span>.exe <span class="ctl">U+2066</span>x' in mistake
    assert '<span class="ctl">U+001B</span>[2J <span class="ctl">U+E0041</span>' in mistake
    assert 'e<span class="ctl">U+2067</span>n' in mistake
    assert '<span class="tag">t<span class="ctl">U+2068</span>ag</span>' in mistake
    assert 'answer: pos<span class="ctl">U+202E</span>itive' in mistake
    assert 'error: HTTP 500: <span class="ctl">U+001B</span>]8;;http://evil.example' in mistake
    assert '<td>t<span class="ctl">U+2068</span>ag</td>' in _section(html, "<h2>Per tag")
    disagreements = _section(html, "<h3>Disagreements")
    assert 'gnp<span class="ctl">U+202E</span>.exe' in disagreements
    assert ".ctl {" in html  # the codes are styled as on the review page


def test_misclassified_lists_false_approvals_first() -> None:
    html = render_report(_result())

    section = _section(html, "<h2>Misclassified comments (3)")
    ids = re.findall(r'<strong class="mono">([^<]+)</strong>', section)
    assert ids == ["c4", "c6", "c7"]  # c4 is the false approval; the rest in fixture order
    assert section.count('class="badge">false approval') == 1
    assert "error: timeout after 30 s" in section
    assert "answer: Positive" in section
    assert "Great post" not in section  # right answers are not listed


def test_long_texts_are_truncated() -> None:
    assert truncate(LONG) == "y" * 500 + " …"
    assert truncate("short") == "short"
    assert truncate(None) == ""
    outcomes = [dataclasses.replace(o, predicted="negative") for o in _outcomes()]
    result = _result()
    result["outcomes"] = [dataclasses.asdict(o) for o in outcomes]
    html = render_report(result)
    assert "y" * 500 + " …" in html
    assert "y" * 501 not in html


def test_report_is_self_contained() -> None:
    html = render_report(_result(compare(_outcomes(), _variant())))

    assert "http://" not in html
    assert "https://" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", html, re.IGNORECASE)
    for tag in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert tag not in html
    assert "<style>" in html


# --- comparison ----------------------------------------------------------------------------


def test_without_comparison() -> None:
    html = render_report(_result())

    assert "McNemar" not in html
    assert "Disagreements" not in html


def test_with_comparison() -> None:
    comparison = compare(_outcomes(), _variant())
    html = render_report(_result(comparison))

    section = _section(html, "<h2>Comparison: A vs B")
    # c1: A right, B wrong; c4 and c7: A wrong, B right -> b = 1, c = 2
    # McNemar: n = 3, min = 1: 2 * (1 + 3) / 8 = 1 -> p = 1.000
    assert 'id="mcnemar-p">p = 1.000</span>' in section
    # A accuracy 4/7, B: c2 c3 c4 c5 c7 right = 5/7
    assert re.search(r"<td>Accuracy</td><td[^>]*>57\.1%</td><td[^>]*>71\.4%</td>", section)
    # false-approval rate: A 1/2, B 0/2
    assert re.search(
        r"<td>False-approval rate</td><td[^>]*>50\.0%</td><td[^>]*>0\.0%</td>", section
    )
    assert re.search(r"<td>only A right</td><td[^>]*>1</td>", section)
    assert re.search(r"<td>only B right</td><td[^>]*>2</td>", section)
    assert html.count('class="heat"') == 3  # the run's own plus one per variant
    disagreements = _section(section, "<h3>Disagreements (3)")
    rows = re.findall(
        r'<td class="mono">([^<]+)</td><td>(\w+)</td><td>(\w+)</td><td>(\w+)</td>', disagreements
    )
    assert rows == [
        ("c1", "positive", "positive", "neutral"),
        ("c4", "negative", "positive", "negative"),
        ("c7", "positive", "negative", "positive"),
    ]
    assert "&lt;script&gt;alert(" in disagreements
    assert "<dt>A</dt>" not in section  # B was not described


def test_comparison_describes_both_variants_when_known() -> None:
    comparison = compare(_outcomes(), _variant())
    comparison.update(b_model="llama3.2:3b", b_prompt="strict.j2", b_prompt_hash="0123456789abcdef")

    html = render_report(_result(comparison))

    assert "<dt>A</dt><dd>qwen3:1.7b / classify.j2 (deadbeefdead)</dd>" in html
    assert "<dt>B</dt><dd>llama3.2:3b / strict.j2 (0123456789ab)</dd>" in html


def test_comparison_with_named_variants_and_no_disagreement() -> None:
    comparison = compare(_outcomes(), _outcomes())
    comparison["a_name"] = "prompt v1"
    comparison["b_name"] = "prompt <v2>"

    html = render_report(_result(comparison))

    assert "<h2>Comparison: prompt v1 vs prompt &lt;v2&gt;</h2>" in html
    assert "<h3>Disagreements (0)</h3>" in html


def test_empty_run_renders() -> None:
    result = _result()
    result.update(metrics=compute_metrics([]), outcomes=[], model_digest=None)

    html = render_report(result)

    assert 'id="false-approval-rate"><span class="value">—</span>' in html
    assert "every comment was classified correctly" in html


# --- formatting ----------------------------------------------------------------------------


def test_formatters() -> None:
    assert fmt_percent(None) == "—"
    assert fmt_percent(1 / 3) == "33.3%"
    assert fmt_seconds(0.0421) == "42 ms"
    assert fmt_seconds(12.345) == "12.35 s"
    assert fmt_p_value(0.34375) == "0.344"
    assert fmt_p_value(0.001953125) == "0.002"
    assert fmt_p_value(0.000123) == "1.23e-04"
