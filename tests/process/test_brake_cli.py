"""The reversal brake through the program, reading its running figures: a moderator deletes an
approval in the site's own table, and the next batch sees it (its re-reading of the approvals)
and stops approving; `moderate outcomes` counts the same."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, execute, read_table
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'
POS = '{"label": "positive"}'


def right_on_every_fixture() -> list[dict[str, Any]]:
    """The test server's rules for a model that is right on every shipped fixture (it holds
    the negative ones), so that it qualifies; anything else it approves, sure."""
    negatives = [f for f in load_fixtures(default_fixture_paths()) if f.label == "negative"]
    # A piece of each that the prompt carries as it is: free of markup, which the prompt
    # defuses, and short enough to lie in one window.
    pieces = (max(re.split(r"[<>&\n]", f.text), key=len).strip()[:30].lower() for f in negatives)
    return [{"contains": piece, "answer": NEG} for piece in pieces]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "default_answer": POS,
        "default_confidence": 0.99,
        "logprobs": True,
        "models": {"sentiments": None},
        "faults": [],
    }


def test_an_approval_deleted_in_the_site_brakes_the_next_batch(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(rules=right_on_every_fixture())
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["Thank you, this was really useful.", "Lovely photo.", "Nice."])
    env = {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "10",
        "MODERATION_QUALIFY": "auto",
        "MODERATION_EVAL_HISTORY": str(tmp_path / "history.jsonl"),
        "MODERATION_MAX_REVERSAL_RATE": "0.3",
        "MODERATION_REVERSAL_MIN_APPROVALS": "3",
    }
    first = moderate("--json", env=env)
    assert first.returncode == 0 and json.loads(first.stdout)["approved"] == 3, first.stderr
    # The figures count the three approvals as they were written.
    figures = "SELECT sum(approved), sum(reversed) FROM moderation_brake_figures WHERE seconds = 60"
    assert read_table(url, figures) == [(3, 0)]
    # A moderator deletes one in the site's own table; a new comment arrives.
    execute(url, "DELETE FROM comments WHERE id = 2")
    execute(url, "INSERT INTO comments (id, body, approved) VALUES (4, 'Great post!', 0)")

    braked = moderate("--json", env=env)

    assert braked.returncode == 8, braked.stderr
    report = json.loads(braked.stdout)
    assert report["approved"] == 0
    assert report["unqualified"].startswith(
        "reversal-rate brake: humans took back 33.3% of 3 approvals since "
    )
    assert read_table(url, figures) == [(3, 1)]
    outcomes = moderate("outcomes", "--json", env=env)
    assert outcomes.returncode == 0, outcomes.stderr
    assert (json.loads(outcomes.stdout)["reversed"], json.loads(outcomes.stdout)["kept"]) == (1, 2)
