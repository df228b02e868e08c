"""The qualification's threshold table says the floor, which rows it leaves out and what would
change the verdict; it is stored, and `moderate qualify` shows it again without asking.

The test server plays a model right on every fixture but never sure enough: every answer has
a confidence of 0.85, below the shipped floor (MODERATION_MIN_CONFIDENCE=0.9).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, execute, prompt_needle
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'
POS = '{"label": "positive"}'
NEGATIVES = [f for f in load_fixtures(default_fixture_paths()) if f.label == "negative"]


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": prompt_needle(f.text), "answer": NEG} for f in NEGATIVES]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "default_answer": POS,
        "default_confidence": 0.85,
        "logprobs": True,
        "models": {"sentiments": None},
        "faults": [],
    }


def site(tmp_path: Path, ollama: FakeOllama) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["Thank you, this was really useful."])
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "10",
        "MODERATION_QUALIFY": "auto",
    }


def generated(ollama: FakeOllama) -> int:
    return int(ollama.stats()["requests"].get("/api/generate", 0))


def table_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.match(r"^\s+\d\.\d{4}\s", line)]


ADVICE = "set MODERATION_MIN_CONFIDENCE=0.85 to allow it"


def test_the_table_and_the_verdict_say_the_floor_and_what_would_change_it(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = site(tmp_path, ollama)
    created = moderate("model", "create", env=env)

    assert created.returncode == 0, created.stderr
    out = created.stdout
    assert "at least the floor 0.9 (MODERATION_MIN_CONFIDENCE)" in out
    assert "at most 5.0% (MODERATION_MAX_FALSE_APPROVAL)" in out
    rows = {line.split()[0]: line for line in table_lines(out)}
    # Rows below the floor are marked; those that would qualify but for it say so.
    assert rows["0.8000"].endswith("below the floor (would qualify)"), rows["0.8000"]
    assert rows["0.8500"].endswith("below the floor (would qualify)"), rows["0.8500"]
    assert rows["0.9000"].endswith("approves nothing"), rows["0.9000"]
    verdict = out.rstrip().splitlines()[-1]
    assert verdict.startswith(
        "sentiments: unqualified: no answer reaches the floor MODERATION_MIN_CONFIDENCE=0.9, "
        "so it approves nothing (the rows below the floor do not count); "
    )
    assert "at 0.8500 the 95% bound of false approval is 2.1% (limit 5.0%)" in verdict
    assert verdict.endswith(ADVICE), verdict


def test_qualify_shows_the_stored_table_and_json_without_asking(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = site(tmp_path, ollama)
    created = moderate("model", "create", env=env)
    assert created.returncode == 0, created.stderr
    before = generated(ollama)

    shown = moderate("qualify", env=env)
    as_json = moderate("qualify", "--json", env=env)

    assert generated(ollama) == before  # nothing asked again
    assert shown.returncode == 8 and as_json.returncode == 8
    assert shown.stdout.startswith("qualified before, on ")
    assert table_lines(shown.stdout) == table_lines(created.stdout)
    assert shown.stdout.rstrip().endswith(ADVICE)
    document = json.loads(as_json.stdout)
    assert document["stored"] is True and document["min_confidence"] == 0.9
    rows = {row["threshold"]: row for row in document["thresholds"]}
    assert rows[0.85]["false_approval_bound"] == pytest.approx(0.0213, abs=1e-3)
    assert rows[0.9]["auto_approved_count"] == 0
    assert document["reason"].endswith(ADVICE)

    # The advice works: with that floor the stored answers qualify (a new key: asked again).
    lowered = moderate("qualify", "--json", env={**env, "MODERATION_MIN_CONFIDENCE": "0.85"})
    assert lowered.returncode == 0, lowered.stdout
    assert json.loads(lowered.stdout)["threshold"] == 0.85


def test_a_qualification_stored_without_its_table_says_how_to_see_it(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = site(tmp_path, ollama)
    assert moderate("model", "create", env=env).returncode == 0
    # As a qualification stored before the table was kept.
    execute(
        env["MODERATION_DATABASE_URL"],
        "UPDATE moderation_qualifications SET thresholds = NULL, min_confidence = NULL",
    )

    shown = moderate("qualify", env=env)
    as_json = moderate("qualify", "--json", env=env)

    assert shown.returncode == 8
    assert "`moderate qualify --force` asks the fixtures again to show it" in shown.stdout
    assert json.loads(as_json.stdout)["thresholds"] is None
