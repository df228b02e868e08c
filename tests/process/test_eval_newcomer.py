"""What `moderate eval` and `moderate qualify` tell a first-time reader: where the report went,
whether the model would qualify at the floor, and progress when nobody watches a terminal.

The test server plays a model right on every fixture but never sure enough: every answer has
a confidence of 0.85, below the shipped floor (MODERATION_MIN_CONFIDENCE=0.9); at 0.9 it
approves nothing, so its false-approval rate there is a flattering 0.0%.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, prompt_needle
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEGATIVES = [f for f in load_fixtures(default_fixture_paths()) if f.label == "negative"]
UNQUALIFIED_AT_FLOOR = "unqualified at MODERATION_MIN_CONFIDENCE=0.9 (the shipped floor)"


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [
        {"contains": prompt_needle(f.text), "answer": '{"label": "negative"}'} for f in NEGATIVES
    ]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "default_answer": '{"label": "positive"}',
        "default_confidence": 0.85,
        "logprobs": True,
        "latency": 0.0,
        "models": {"sentiments": None},
    }


def env_for(tmp_path: Path, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    return {
        "OLLAMA_HOST": ollama.url,
        "MODERATION_EVAL_HISTORY": str(tmp_path / "history.jsonl"),
        **extra,
    }


def test_the_report_path_is_printed(tmp_path: Path, ollama: FakeOllama) -> None:
    report = tmp_path / "out" / "report.html"
    env = env_for(tmp_path, ollama)

    shown = moderate("eval", "--limit", "12", "--report", str(report), env=env, cwd=tmp_path)
    as_json = moderate(
        "eval", "--limit", "12", "--json", "--report", str(report), env=env, cwd=tmp_path
    )

    assert shown.returncode == 0, shown.stderr
    assert f"report written to {report}" in shown.stdout
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["report"] == str(report)


def test_eval_says_the_model_is_unqualified_at_the_floor(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    report = tmp_path / "report.html"
    env = env_for(tmp_path, ollama)

    # All the shipped fixtures: fewer than 59 to hold cannot bound the rate within 5%.
    shown = moderate("eval", "--report", str(report), env=env, cwd=tmp_path)
    as_json = moderate("eval", "--json", env=env, cwd=tmp_path)

    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert UNQUALIFIED_AT_FLOOR in text, text
    assert "set MODERATION_MIN_CONFIDENCE=0.85 to allow it" in text
    verdict = json.loads(as_json.stdout)["qualification"]
    assert verdict["qualified"] is False and verdict["threshold"] is None
    assert verdict["min_confidence"] == 0.9
    assert verdict["reason"].startswith("no answer reaches the floor")
    # The red box's 0.0% says what it means.
    page = report.read_text(encoding="utf-8")
    box = page[page.index('id="false-approval-rate"') :].split("</div>", 1)[0]
    assert "0.0%" in box and UNQUALIFIED_AT_FLOOR in " ".join(box.split())
    assert "a batch would approve nothing" in box
    note = page[page.index('id="qualification"') :].split("</p>", 1)[0]
    assert "set MODERATION_MIN_CONFIDENCE=0.85 to allow it" in note


def test_a_model_that_would_qualify_says_so(tmp_path: Path, ollama: FakeOllama) -> None:
    env = env_for(tmp_path, ollama, MODERATION_MIN_CONFIDENCE="0.8")
    result = moderate("eval", "--json", env=env, cwd=tmp_path)

    verdict = json.loads(result.stdout)["qualification"]
    assert verdict["qualified"] is True and verdict["threshold"] == 0.8
    assert verdict["reason"] is None


def progress_lines(stderr: str, title: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.search(rf"{title}: \d+ of \d+", line)]


def test_eval_prints_progress_lines_outside_a_terminal(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(latency=0.02)
    env = env_for(tmp_path, ollama, MODERATION_PROGRESS_EVERY="0.1")
    try:
        result = moderate("eval", "--limit", "40", env=env, cwd=tmp_path)
    finally:
        ollama.configure(latency=0.0)

    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stderr, "evaluating sentiments")
    assert len(lines) >= 3, result.stderr
    assert re.search(r"evaluating sentiments: \d+ of 40 fixtures, \d+ s$", lines[0]), lines


def test_qualify_prints_progress_lines_outside_a_terminal(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["Thanks!"])
    env = env_for(
        tmp_path,
        ollama,
        MODERATION_DATABASE_URL=url,
        MODERATION_QUALIFY="auto",
        MODERATION_PROGRESS_EVERY="0.05",
    )
    ollama.configure(latency=0.002)
    try:
        result = moderate("qualify", env=env, cwd=tmp_path)
    finally:
        ollama.configure(latency=0.0)

    assert result.returncode == 8, result.stderr
    lines = progress_lines(result.stderr, "qualifying sentiments")
    assert len(lines) >= 2, result.stderr
    assert re.search(r"qualifying sentiments: \d+ of 367 fixtures, \d+ s$", lines[0]), lines
