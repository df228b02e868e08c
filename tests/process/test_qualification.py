"""A model approves only once it has qualified on labelled comments; the program end to end.

The Ollama-compatible test server plays three models on the 367 shipped fixtures: an
overconfident one (``positive`` at 0.99 to everything), one that is right on positives and
confidently wrong on a share of the negatives, and one that is right on them all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from tests.fakeollama import FakeOllama
from tests.helpers import create_site_table, execute, prompt_needle, read_table
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'
POS = '{"label": "positive"}'
FIXTURES = load_fixtures(default_fixture_paths())
NEGATIVES = [f for f in FIXTURES if f.label == "negative"]
COMMENTS = ["Thank you, this was really useful.", "What a lovely photo of the lake."]


def rules_wrong_on(every: int | None) -> list[dict[str, Any]]:
    """Negative fixtures answered negative, except every ``every``-th answered positive, sure."""
    rules = []
    for index, fixture in enumerate(NEGATIVES):
        wrong = every is not None and index % every == 0
        rules.append({"contains": prompt_needle(fixture.text), "answer": POS if wrong else NEG})
    return rules


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "default_answer": POS,
        "default_confidence": 0.99,
        "logprobs": True,
        "models": {"sentiments": None},
        "faults": [],
    }


def site(tmp_path: Path, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, COMMENTS)
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "10",
        "MODERATION_QUALIFY": "auto",
        "MODERATION_EVAL_HISTORY": str(tmp_path / "history.jsonl"),
        **extra,
    }


def generated(ollama: FakeOllama) -> int:
    return int(ollama.stats()["requests"].get("/api/generate", 0))


def test_an_overconfident_model_is_unqualified_and_approves_nothing(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = site(tmp_path, ollama)
    result = moderate("--json", env=env)
    assert result.returncode == 8, result.stderr
    report = json.loads(result.stdout)
    reason = (
        "unqualified: the 95% bound of false approval is above the 5.0% limit at every "
        "threshold that approves anything on 367 fixtures (lowest: 100.0% at 0.9900, from a "
        "false-approval rate of 100.0%); a model or prompt wrong less often on comments to "
        "hold, or more fixtures to hold (MODERATION_QUALIFY_FIXTURES), would lower it"
    )
    assert (report["status"], report["unqualified"], report["approved"]) == (
        "unqualified",
        reason,
        0,
    )
    assert [(d["outcome"], d["error"]) for d in report["decisions"]] == [("held", reason)] * 2
    assert read_table(env["MODERATION_DATABASE_URL"], "SELECT approved FROM comments") == [
        (0,),
        (0,),
    ]
    # The evidence is stored, and explains the hold afterwards from the database alone.
    stored = read_table(
        env["MODERATION_DATABASE_URL"],
        "SELECT n, n_negative, n_hold, threshold, best_false_approval_rate "
        "FROM moderation_qualifications",
    )
    assert stored == [(367, 139, 139, None, 1.0)]
    audit = read_table(
        env["MODERATION_DATABASE_URL"], "SELECT DISTINCT error FROM moderation_decisions"
    )
    assert audit == [(reason,)]


def test_a_model_confidently_wrong_on_some_negatives_is_unqualified(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(rules=rules_wrong_on(10))  # 14 of 139 negatives approved, at 0.99
    result = moderate("qualify", "--json", env=site(tmp_path, ollama))
    assert result.returncode == 8, result.stderr
    document = json.loads(result.stdout)
    assert document["qualified"] is False and document["threshold"] is None
    found = re.search(
        r"above the 5\.0% limit at every threshold that approves anything on 367 fixtures "
        r"\(lowest: [\d.]+% at 0\.9900, from a false-approval rate of ([\d.]+)%\)",
        document["reason"],
    )
    assert found is not None and 7 <= float(found[1]) <= 15, document["reason"]
    # Every threshold that approves anything approves the wrong ones: above the 5% limit.
    rows = [row for row in document["thresholds"] if row["auto_approved_count"]]
    assert rows and all(row["false_approval_bound"] > 0.05 for row in rows)


def test_a_right_model_qualifies_once_and_approves_at_its_threshold(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(rules=rules_wrong_on(None))
    env = site(tmp_path, ollama)
    before = generated(ollama)
    first = moderate("--json", env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["status"], report["unqualified"], report["approved"]) == ("done", None, 2)
    assert report["threshold"] == 0.9  # the floor: no wrong approval at any threshold
    # The fixtures were asked once (367, the long ones in windows) plus the two comments.
    asked = generated(ollama) - before
    assert asked >= 367 + 2

    # Unchanged model, prompt and fixtures: the next batch does not ask the fixtures again.
    again = generated(ollama)
    second = moderate("--json", env=env)
    assert second.returncode == 0, second.stderr
    assert generated(ollama) - again == 0  # both comments decided before, fixtures stored

    # A new digest (an `ollama pull`) qualifies afresh.
    ollama.configure(models={"sentiments": "sha256:" + "1" * 64})
    pulled = generated(ollama)
    third = moderate("--json", env=env)
    assert third.returncode == 0, third.stderr
    assert generated(ollama) - pulled >= 367
    stored = read_table(
        env["MODERATION_DATABASE_URL"],
        "SELECT model_digest, threshold, false_approval_bound FROM moderation_qualifications "
        "ORDER BY id",
    )
    assert len(stored) == 2 and stored[0][0] != stored[1][0]
    assert all(row[1] == 0.9 and row[2] == pytest.approx(0.0213, abs=1e-4) for row in stored)


def test_a_dry_run_never_qualifies_and_holds_until_a_batch_has(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(rules=rules_wrong_on(None))
    env = site(tmp_path, ollama)
    assert moderate("db", "upgrade", env=env).returncode == 0
    before = generated(ollama)
    result = moderate("--dry-run", "--json", env=env)
    assert result.returncode == 8, result.stderr
    report = json.loads(result.stdout)
    assert report["unqualified"].startswith("unqualified: not qualified yet")
    assert report["approved"] == 0
    # The comments (and the model check), no fixture; and nothing stored.
    prompts = [str(b.get("prompt") or "") for b in ollama.stats()["generate_bodies"]]
    assert sum(1 for p in prompts if any(c in p for c in COMMENTS)) == 2
    assert not any(prompt_needle(f.text) in p.lower() for f in NEGATIVES for p in prompts)
    assert generated(ollama) - before <= 4
    assert read_table(
        env["MODERATION_DATABASE_URL"], "SELECT count(*) FROM moderation_qualifications"
    ) == [(0,)]


def test_qualify_off_approves_on_the_models_word_and_says_so(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = site(tmp_path, ollama, MODERATION_QUALIFY="off")
    result = moderate("--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["approved"] == 2
    assert "MODERATION_QUALIFY=off" in result.stderr


def test_qualify_reuses_a_stored_qualification_unless_forced(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(rules=rules_wrong_on(None))
    env = site(tmp_path, ollama)
    first = moderate("qualify", env=env)
    assert first.returncode == 0, first.stderr
    assert "qualified at threshold 0.9000" in first.stdout
    before = generated(ollama)
    again = moderate("qualify", env=env)
    assert again.returncode == 0 and "qualified before" in again.stdout
    assert generated(ollama) == before
    forced = moderate("qualify", "--force", "--json", env=env)
    assert forced.returncode == 0, forced.stderr
    assert generated(ollama) - before >= 367
    assert json.loads(forced.stdout)["threshold"] == 0.9


def test_the_reversal_rate_brake_stops_approvals_until_requalified(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(rules=rules_wrong_on(None))
    env = site(
        tmp_path,
        ollama,
        MODERATION_MAX_REVERSAL_RATE="0.4",
        MODERATION_REVERSAL_MIN_APPROVALS="2",
    )
    url = env["MODERATION_DATABASE_URL"]
    first = moderate("--json", env=env)
    assert first.returncode == 0 and json.loads(first.stdout)["approved"] == 2, first.stderr
    # A moderator takes one approval back, and new comments arrive.
    execute(url, "UPDATE comments SET approved = 0 WHERE id = 1")
    execute(url, "INSERT INTO comments (id, body, approved) VALUES (3, 'Nice pictures!', 0)")
    braked = moderate("--json", env=env)
    assert braked.returncode == 8, braked.stderr
    report = json.loads(braked.stdout)
    assert report["status"] == "unqualified" and report["approved"] == 0
    assert report["unqualified"].startswith(
        "reversal-rate brake: humans took back 50.0% of 2 approvals since "
    )
    assert report["unqualified"].endswith("UTC, above 40.0%")
    assert {d["error"] for d in report["decisions"]} == {report["unqualified"]}
    # A human re-qualifies: the count starts afresh, and the model approves again.
    assert moderate("qualify", "--force", env=env).returncode == 0
    resumed = moderate("--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    # Comment 3, held while braked, is asked again; comment 1 stays as its moderator left it.
    assert [(d["comment_id"], d["outcome"]) for d in json.loads(resumed.stdout)["decisions"]] == [
        (3, "approved")
    ]
    assert read_table(url, "SELECT id, approved FROM comments ORDER BY id") == [
        (1, 0),
        (2, 1),
        (3, 1),
    ]


def test_a_qualification_the_server_broke_off_is_not_stored(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    # A server failing during qualification must not leave the model unqualified for good.
    ollama.configure(
        rules=rules_wrong_on(None),
        faults=[{"every": 5, "kind": "status", "status": 400, "body": {"error": "bad"}}],
    )
    env = site(tmp_path, ollama, MODERATION_RETRIES="0")
    broken = moderate("--json", env=env)
    assert broken.returncode == 8, broken.stderr
    reason = json.loads(broken.stdout)["unqualified"]
    assert re.fullmatch(
        r"unqualified: qualification incomplete \(\d+ of 367 fixtures failed\); "
        r"it is tried again by the next batch",
        reason,
    ), reason
    stored = "SELECT count(*) FROM moderation_qualifications"
    assert read_table(env["MODERATION_DATABASE_URL"], stored) == [(0,)]
    ollama.configure(faults=[])
    mended = moderate("--json", env=env)
    assert mended.returncode == 0, mended.stderr
    assert read_table(env["MODERATION_DATABASE_URL"], stored) == [(1,)]


def test_model_create_qualifies_what_it_built_and_says_the_verdict(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = site(tmp_path, ollama)
    created = moderate("model", "create", env=env)
    # Built: exit 0 whatever the verdict; the verdict and its table are printed.
    assert created.returncode == 0, created.stderr
    assert "'sentiments' on " in created.stdout
    assert "367 fixtures (139 to hold)" in created.stdout
    assert (
        created.stdout.rstrip()
        .splitlines()[-1]
        .startswith(
            "sentiments: unqualified: the 95% bound of false approval is above the 5.0% limit at "
            "every threshold that approves anything on 367 fixtures (lowest: 100.0% at 0.9900"
        )
    )
    # The batch's summary says why nothing was approved.
    batch = moderate(env=env)
    assert batch.returncode == 8, batch.stderr
    assert "; nothing approved: unqualified: the 95% bound of false approval is above" in " ".join(
        batch.stdout.split()
    )
    # Stored: `moderate qualify` reports it without asking again, and exits 8.
    before = generated(ollama)
    again = moderate("qualify", env=env)
    assert again.returncode == 8 and "qualified before" in again.stdout
    assert generated(ollama) == before
