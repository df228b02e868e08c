"""What `moderate eval` and `moderate qualify` tell a first-time reader: where the report went,
and progress when nobody watches a terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table
from tests.processes import moderate

pytestmark = pytest.mark.integration


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
