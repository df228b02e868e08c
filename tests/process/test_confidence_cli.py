"""The confidence gate through the real `moderate` program and the Ollama-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, read_table
from tests.processes import moderate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [
        {"contains": "unsure", "answer": '{"label": "positive"}', "confidence": 0.5},
        {"contains": "insult", "answer": '{"label": "negative"}', "confidence": 0.5},
    ]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {"logprobs": True, "default_confidence": 0.99}


def env_for(url: str, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        **extra,
    }


def test_uncertain_answers_are_held_with_their_reason(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["sure praise", "unsure praise", "an insult"])
    result = moderate("--json", env=env_for(url, ollama, MODERATION_MIN_CONFIDENCE="0.8"))
    assert result.returncode == 0, result.stderr
    decisions = json.loads(result.stdout)["decisions"]
    assert [(d["outcome"], d["error"]) for d in decisions] == [
        ("approved", None),
        ("held", "uncertain (positive 0.50 < 0.80)"),
        ("held", None),
    ]
    assert [d["confidence"] for d in decisions] == pytest.approx([0.99, 0.5, 0.5])
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(1,), (0,), (0,)]
    rows = read_table(url, "SELECT confidence, error FROM moderation_decisions ORDER BY id")
    assert rows[1] == (pytest.approx(0.5), "uncertain (positive 0.50 < 0.80)")
    # Every answer asked for log probabilities; a probe after the warm-up checked for them.
    prompts = [b for b in ollama.stats()["generate_bodies"] if b.get("prompt")]
    assert prompts[0]["prompt"] == "ok" and len(prompts) == 4
    assert all(b["logprobs"] is True and b["top_logprobs"] == 10 for b in prompts[1:])


def test_a_server_without_logprobs_is_refused_when_the_gate_is_on(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(logprobs=False)  # as an Ollama older than 0.12.11
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["sure praise"])
    result = moderate(env=env_for(url, ollama))
    assert result.returncode == 4
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        f"moderate: error: Ollama at {ollama.url} returned no logprobs, so no answer can have a "
        "confidence: upgrade Ollama to 0.12.11 or later, or set MODERATION_MIN_CONFIDENCE=0 "
        "to approve without one"
    ]
    assert read_table(url, "SELECT approved FROM comments") == [(0,)]
    asked = [b["prompt"] for b in ollama.stats()["generate_bodies"] if b.get("prompt")]
    assert asked == ["ok"]  # the probe only: no comment was sent


def test_with_the_gate_off_an_older_server_still_works(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(logprobs=False)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["sure praise"])
    result = moderate("--json", env=env_for(url, ollama, MODERATION_MIN_CONFIDENCE="0"))
    assert result.returncode == 0, result.stderr
    [decision] = json.loads(result.stdout)["decisions"]
    assert decision["outcome"] == "approved" and decision["confidence"] is None


def test_the_dry_run_table_shows_confidence_and_reason(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["unsure praise"])
    env = env_for(url, ollama, MODERATION_MIN_CONFIDENCE="0.8", COLUMNS="200")
    result = moderate("--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "confidence" in result.stdout
    assert "0.50" in result.stdout and "hold" in result.stdout
    assert "uncertain (positive 0.50 < 0.80)" in result.stdout  # why it would be held


def test_invalid_threshold_is_a_configuration_error(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = moderate(env=env_for(url, ollama, MODERATION_MIN_CONFIDENCE="1.5"))
    assert result.returncode == 2
    assert result.stderr == (
        "moderate: error: invalid configuration: MODERATION_MIN_CONFIDENCE: "
        "Input should be less than or equal to 1\n"
    )


def test_the_test_server_sends_ollamas_logprobs_shape(ollama: FakeOllama) -> None:
    import ollama as client_library

    from moderation.model.confidence import label_confidence

    client = client_library.Client(host=ollama.url)
    answer = client.generate(
        model="sentiments", prompt="an unsure comment", logprobs=True, top_logprobs=3
    )
    assert answer.response == '{"label": "positive"}' and answer.logprobs
    assert "".join(entry.token for entry in answer.logprobs) == answer.response
    assert label_confidence("positive", answer.logprobs) == pytest.approx(0.5)
    # top_logprobs is honoured: one alternative only, the chosen token's own.
    cut = client.generate(model="sentiments", prompt="unsure", logprobs=True, top_logprobs=1)
    assert cut.logprobs and all(len(e.top_logprobs or []) == 1 for e in cut.logprobs)
    # No rival shown: each unseen label may be as likely as the last one listed (the chosen
    # token itself, at 0.5), so the answer is no surer than one in three.
    assert label_confidence("positive", cut.logprobs) == pytest.approx(1 / 3)
    # Without logprobs asked, none are sent, as by Ollama.
    assert client.generate(model="sentiments", prompt="unsure").logprobs is None
    ollama.configure(logprobs=False)
    older = client.generate(model="sentiments", prompt="unsure", logprobs=True, top_logprobs=3)
    assert older.logprobs is None
    client.close()
