"""`moderate eval` with confidences: the threshold applied as a batch would, the per-threshold
table, the target search, and the report's charts, against the Ollama-compatible server.

Six fixtures whose answers and confidences are scripted (the same six as in
test_calibration.py, where every figure is worked out by hand).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from moderation.model.host import PROBE_PROMPT
from tests.fakeollama import FakeOllama
from tests.processes import moderate as run_moderate

pytestmark = pytest.mark.integration

FIXTURES = [
    ("p1", "positive", "positive", 0.95),
    ("p2", "positive", "positive", 0.70),
    ("u1", "neutral", "neutral", 0.85),
    ("g1", "negative", "positive", 0.80),
    ("g2", "negative", "negative", 0.90),
    ("g3", "negative", "neutral", 0.60),
]
RULES = [
    {"contains": f"qx-{fid}", "answer": json.dumps({"label": answer}), "confidence": confidence}
    for fid, _, answer, confidence in FIXTURES
]
# Variant B's prompt puts "B:" before the comment; its rules are sure of everything.
B_RULES = [
    {**rule, "contains": f"b: qx-{rule['contains'][3:]}", "confidence": 0.99} for rule in RULES
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}) as fake:
        yield fake


@pytest.fixture
def ollama(server: FakeOllama) -> FakeOllama:
    server.configure(rules=B_RULES + RULES, logprobs=True, reset_stats=True)
    return server


@pytest.fixture
def fixtures_file(tmp_path: Path) -> Path:
    lines = [
        json.dumps({"id": fid, "text": f"qx-{fid} comment", "label": truth})
        for fid, truth, _, _ in FIXTURES
    ]
    path = tmp_path / "six.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def moderate(
    *args: str, ollama: FakeOllama, cwd: Path, threshold: str = "0.9"
) -> subprocess.CompletedProcess[str]:
    env = {
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_EVAL_HISTORY": str(cwd / "history.jsonl"),
        "MODERATION_MIN_CONFIDENCE": threshold,
        "COLUMNS": "200",
    }
    return run_moderate("eval", *args, env=env, cwd=cwd, timeout=60)


def test_headline_rates_apply_the_configured_threshold(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    run = moderate(str(fixtures_file), "--json", ollama=ollama, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["min_confidence"] == 0.9
    assert result["false_approval_rate"] == 0.0  # g1 (0.80) and g3 (0.60) held
    assert result["missed_approval_rate"] == 2 / 3  # p2 (0.70) and u1 (0.85) held
    assert result["held_uncertain"] == 4
    assert result["accuracy"] == 4 / 6  # the labels themselves do not change
    assert result["ece"] == pytest.approx(1.7 / 6)
    rows = {row["threshold"]: row for row in result["thresholds"]}
    assert len(rows) == 21 and set(rows[0.8]) >= {"auto_approved", "false_approval_rate"}
    assert rows[0.8]["auto_approved"] == 0.5 and rows[0.8]["false_approval_rate"] == 1 / 3
    assert rows[0.0]["auto_approved"] == 5 / 6 and rows[0.0]["false_approval_rate"] == 2 / 3
    # One probe for log probabilities, then one call per fixture asking for them.
    bodies = ollama.stats()["generate_bodies"]
    assert [b["prompt"] for b in bodies].count(PROBE_PROMPT) == 1
    assert all(b["logprobs"] is True for b in bodies)


def test_the_gate_decides_the_exit_code_of_the_false_approval_gate(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    gated = ("--json", "--max-false-approval", "0.1")
    at_90 = moderate(str(fixtures_file), *gated, ollama=ollama, cwd=tmp_path)
    assert at_90.returncode == 0, at_90.stderr
    off = moderate(str(fixtures_file), *gated, ollama=ollama, cwd=tmp_path, threshold="0")
    assert off.returncode == 6
    assert off.stderr == "moderate: gate failed: false-approval rate 66.7% is above 10.0%\n"


def test_target_false_approval_prints_the_lowest_threshold(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    run = moderate(
        str(fixtures_file), "--target-false-approval", "0.34", ollama=ollama, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert (
        "lowest threshold keeping the false-approval rate at or under 34.0%: 0.6001 "
        "(false approvals 33.3%; 4 of 6 comments still auto-approved, 66.7%)"
    ) in run.stdout
    assert "per confidence threshold" in run.stdout and "0.9 (set)" in run.stdout
    assert "calibration error (ECE)" in run.stdout and "0.283" in run.stdout

    as_json = moderate(
        str(fixtures_file), "--json", "--target-false-approval", "0", ollama=ollama, cwd=tmp_path
    )
    target = json.loads(as_json.stdout)["target_false_approval"]
    assert target["threshold"] == 0.8001 and target["auto_approved_count"] == 2


def test_no_threshold_can_reach_the_target_when_a_wrong_answer_is_sure(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    ollama.configure(rules=[{**RULES[3], "confidence": 1.0}, *RULES])
    run = moderate(str(fixtures_file), "--target-false-approval", "0", ollama=ollama, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "no confidence threshold keeps the false-approval rate at or under 0.0%" in run.stdout


def test_report_has_both_variants_curves_and_the_reliability_diagram(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    template = tmp_path / "b.j2"
    template.write_text("B: {{ comment }}", encoding="utf-8")
    report = tmp_path / "report.html"
    run = moderate(
        str(fixtures_file),
        "--json",
        "--compare",
        f"prompt={template}",
        "--report",
        str(report),
        ollama=ollama,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    b = result["comparison"]["b"]
    assert b["false_approval_rate"] == 2 / 3  # B is sure of its wrong g1 and g3 too
    assert b["ece"] == pytest.approx(0.99 - 4 / 6)  # one bin: 0.99 sure, right 4 of 6
    html = report.read_text(encoding="utf-8")
    assert html.count("<svg") == 2
    assert "A: auto-approved" in html and "B: auto-approved" in html
    assert "A: ECE 0.283" in html and "B: ECE" in html
    assert "Confidence threshold" in html and 'class="configured"' in html


def test_a_server_without_logprobs_is_refused_while_the_gate_is_on(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    ollama.configure(logprobs=False)
    run = moderate(str(fixtures_file), "--json", ollama=ollama, cwd=tmp_path)
    message = (
        f"Ollama at {ollama.url} returned no logprobs, so no answer can have a confidence: "
        "upgrade Ollama to 0.12.11 or later, or set MODERATION_MIN_CONFIDENCE=0 to approve "
        "without one"
    )
    assert run.returncode == 4
    assert json.loads(run.stdout) == {
        "run_id": None,
        "status": "failed",
        "exit_code": 4,
        "error": message,
    }
    assert run.stderr == f"moderate: error: {message}\n"
    assert not (tmp_path / "history.jsonl").exists()
    # With the gate off the figures are those of the labels alone, and no confidence is known.
    off = moderate(str(fixtures_file), "--json", ollama=ollama, cwd=tmp_path, threshold="0")
    assert off.returncode == 0, off.stderr
    result = json.loads(off.stdout)
    assert result["false_approval_rate"] == 2 / 3 and result["ece"] is None
