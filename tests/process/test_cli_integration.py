"""The real `moderate` program, in a subprocess, against the Ollama-compatible test server.

Real sockets, the real ollama client with its default (aiohttp) transport, real databases.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from moderation.model.host import PROBE_PROMPT
from tests.fakeollama import FakeOllama, free_port
from tests.helpers import create_site_table, read_table
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [
        {"contains": "idiot", "answer": NEG},
        {"contains": "question", "answer": '{"label": "neutral"}'},
        {"contains": "markdown-answer", "answer": "**NEGATIVE**\nThe comment is hostile."},
        {"contains": "bare-answer", "answer": "POSITIVE"},
        {"contains": "thinking-answer", "answer": "<think>hmm, negative?</think>\nNeutral."},
        {"contains": "rambling-answer", "answer": "It could be positive or negative."},
    ]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {
        "faults": [],
        "latency": 0.0,
        "parallel": 1,
        "models": {"sentiments": None},
        "logprobs": True,
        "default_confidence": 0.99,
    }


def env_for(url: str, ollama: FakeOllama | str, **extra: str) -> dict[str, str]:
    host = ollama if isinstance(ollama, str) else ollama.url
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": host,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        **extra,
    }


def write_jsonl(path: Path, bodies: list[str]) -> Path:
    path.write_text("".join(json.dumps({"body": b}) + "\n" for b in bodies), encoding="utf-8")
    return path


def test_import_then_batch_with_json_report(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    env = env_for(url, ollama)
    source = write_jsonl(tmp_path / "c.jsonl", ["Thanks, very useful", "you idiot", "a question?"])

    imported = moderate("import", str(source), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "imported 3 comments" in imported.stdout

    result = moderate("--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"run_id", "dry_run", "considered", "approved", "held", "failed"}
    assert (report["considered"], report["approved"], report["held"], report["failed"]) == (
        3,
        2,
        1,
        0,
    )
    assert report["dry_run"] is False
    whole = {"error": None, "coverage": "whole", "rule": None, "answer_of": None}
    assert [{k: v for k, v in d.items() if k != "confidence"} for d in report["decisions"]] == [
        {"comment_id": 1, "label": "positive", "outcome": "approved", **whole},
        {"comment_id": 2, "label": "negative", "outcome": "held", **whole},
        {"comment_id": 3, "label": "neutral", "outcome": "approved", **whole},
    ]
    # The test server gives every label 0.99 unless a rule says otherwise.
    assert [d["confidence"] for d in report["decisions"]] == pytest.approx([0.99] * 3)
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(1,), (0,), (1,)]
    audit = read_table(url, "SELECT model_digest, host FROM moderation_decisions")
    assert {row[1] for row in audit} == {ollama.url}
    assert all(len(row[0]) >= 64 for row in audit)

    again = moderate("--json", env=env)
    assert json.loads(again.stdout)["considered"] == 0  # the held one is not asked again
    history = moderate("history", "--json", env=env)
    runs = json.loads(history.stdout)
    assert [r["status"] for r in runs] == ["done", "done"]


def imported_modules(stderr: str) -> set[str]:
    """The modules a run imported, from Python's own -X importtime lines."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_batch_with_nothing_to_ask_never_loads_the_model_request_stack(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    """aiohttp (the classifying requests' transport), the retry machinery and httpx's own
    command line (click, rich, pygments) are start-up cost that a run with nothing new to ask
    does not pay."""
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    env = env_for(url, ollama, PYTHONPROFILEIMPORTTIME="1")
    moderate("import", str(write_jsonl(tmp_path / "c.jsonl", ["you idiot", "idiot"])), env=env)

    asking = moderate("--json", env=env)
    assert asking.returncode == 0, asking.stderr
    assert json.loads(asking.stdout)["held"] == 2
    assert "aiohttp" in imported_modules(asking.stderr)

    rerun = moderate("--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["skipped"] == 2
    modules = imported_modules(rerun.stderr)
    assert "sqlalchemy" in modules  # the lines are there to read
    assert "httpx" in modules
    unwanted = ("aiohttp", "stamina", "click", "rich", "pygments")
    assert not {m for m in modules if m.split(".")[0] in unwanted}


def test_answers_that_ignore_the_format_are_parsed_or_fail_closed(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    bodies = ["markdown-answer", "bare-answer", "thinking-answer", "rambling-answer"]
    create_site_table(url, bodies)
    result = moderate("--json", env=env_for(url, ollama))
    assert result.returncode == 3, result.stderr
    decisions = json.loads(result.stdout)["decisions"]
    assert [(d["label"], d["outcome"]) for d in decisions] == [
        ("negative", "held"),
        ("positive", "approved"),
        ("neutral", "approved"),
        (None, "failed"),
    ]
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(0,), (1,), (1,), (0,)]


def test_dry_run_prints_a_table_and_writes_nothing(tmp_path: Path, ollama: FakeOllama) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["lovely post", "what an idiot"])
    before = (tmp_path / "m.db").read_bytes()
    result = moderate("--dry-run", env=env_for(url, ollama))
    assert result.returncode == 0, result.stderr
    assert "Dry run: nothing was written" in result.stdout
    assert "lovely post" in result.stdout and "hold" in result.stdout
    assert (tmp_path / "m.db").read_bytes() == before
    as_json = json.loads(moderate("--dry-run", "--json", env=env_for(url, ollama)).stdout)
    assert as_json["dry_run"] is True and as_json["run_id"] is None
    assert [d["outcome"] for d in as_json["decisions"]] == ["approved", "held"]


def test_server_faults_fail_closed(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(
        faults=[
            {"contains": "five-hundred", "kind": "status", "status": 500, "body": {"error": "x"}},
            {"contains": "garbage", "kind": "garbage"},
            {"contains": "hang", "kind": "hang"},
            {"contains": "reset", "kind": "reset"},
        ]
    )
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["five-hundred", "garbage", "hang", "reset", "fine"])
    result = moderate("--json", env=env_for(url, ollama, MODERATION_TIMEOUT="1"))
    assert result.returncode == 3, result.stderr
    decisions = {d["comment_id"]: d for d in json.loads(result.stdout)["decisions"]}
    assert {i: d["outcome"] for i, d in decisions.items()} == {
        1: "failed",
        2: "failed",
        3: "failed",
        4: "failed",
        5: "approved",
    }
    assert decisions[1]["error"] == "HTTP 500: x"
    assert decisions[3]["error"] == "timed out after 1s"
    assert decisions[4]["error"] == "connection reset by the server"
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(0,)] * 4 + [(1,)]
    errors = read_table(
        url, "SELECT comment_id, error FROM moderation_decisions WHERE outcome = 'failed'"
    )
    assert len(errors) == 4 and all(e for _, e in errors)


def test_unreachable_server_exits_4_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["hello"])
    result = moderate(env=env_for(url, f"http://127.0.0.1:{free_port()}"))
    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0
    assert "unreachable: connection refused" in result.stderr
    assert read_table(url, "SELECT approved FROM comments") == [(0,)]


def test_missing_model_exits_4_and_says_what_to_do(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(models={})
    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_site_table(url, ["hello"])
    result = moderate(env=env_for(url, ollama))
    assert result.returncode == 4
    assert "moderate model create" in result.stderr


def test_model_create_then_run(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(models={})
    url = f"sqlite:///{tmp_path / 'm.db'}"
    created = moderate("model", "create", env=env_for(url, ollama))
    assert created.returncode == 0, created.stderr
    body = ollama.stats()["create_bodies"][-1]
    assert body["model"] == "sentiments" and body["from"]
    assert "modelfile" not in body
    assert body["system"] and len(body["messages"]) >= 6
    create_site_table(url, ["nice"])
    assert moderate(env=env_for(url, ollama)).returncode == 0


def test_configuration_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = moderate(env=env_for(url, "http://127.0.0.1:9", MODERATION_TIMEOUT="soon"))
    assert result.returncode == 2
    assert result.stderr.startswith("moderate: error: invalid configuration: MODERATION_TIMEOUT")
    assert result.stderr.strip().count("\n") == 0
    sqlite3.connect(tmp_path / "m.db").close()  # a database without the site's table
    missing = moderate(env=env_for(url, "http://127.0.0.1:9"))
    assert missing.returncode == 2
    assert "table 'comments' does not exist" in missing.stderr
    usage = moderate("--limit", "zero", env=env_for(url, "http://127.0.0.1:9"))
    assert usage.returncode == 2


def test_database_errors_exit_5_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://moderator:s3cret-pw@127.0.0.1:{free_port()}/site"
    result = moderate(env=env_for(url, "http://127.0.0.1:9"))
    assert result.returncode == 5
    assert "s3cret-pw" not in result.stderr and "***" in result.stderr


def test_hostile_bodies_do_not_crash_or_approve_on_failure(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    ollama.configure(faults=[{"contains": "FAILME", "kind": "status", "status": 500}])
    url = f"sqlite:///{tmp_path / 'm.db'}"
    huge = "A" * 1_000_000
    bodies = [huge, "nul\x00byte", "lone \ud800 surrogate", "🙂🔥👍", "FAILME 🙂" + "\x00"]
    source = tmp_path / "c.jsonl"
    source.write_text("".join(json.dumps({"body": b}) + "\n" for b in bodies), encoding="utf-8")
    imported = moderate("import", str(source), env=env_for(url, ollama))
    assert imported.returncode == 0, imported.stderr
    assert "1 bodies had unstorable characters" in imported.stdout
    result = moderate("--json", env=env_for(url, ollama))
    assert result.returncode == 3, result.stderr
    decisions = json.loads(result.stdout)["decisions"]
    outcomes = [d["outcome"] for d in decisions]
    assert outcomes == ["held", "approved", "approved", "approved", "failed"]
    assert decisions[0]["coverage"] == "none"  # far too long to read: left for a human
    assert read_table(url, "SELECT approved FROM comments WHERE id IN (1, 5)") == [(0,), (0,)]
    bodies = ollama.stats()["generate_bodies"]
    # Comments only: not the warm-up (empty) nor the start-up probe for log probabilities.
    prompts = [b["prompt"] for b in bodies if b.get("prompt") and b["prompt"] != PROBE_PROMPT]
    assert len(prompts) == 4 and max(len(p) for p in prompts) < 5000  # the 1 MB one unsent


@pytest.mark.postgres
@pytest.mark.parametrize("status", [None, ("pending", "approved")], ids=["boolean", "status"])
def test_postgres_with_a_mapped_table(postgres_url: str, ollama: FakeOllama, status: Any) -> None:
    create_site_table(
        postgres_url,
        ["Thank you!", "you idiot", "a question about part 2"],
        table="site_comments",
        id_column="cid",
        body_column="content",
        approved_column="visible" if status is None else "state",
        status=status,
    )
    extra = {
        "MODERATION_COMMENTS_TABLE": "site_comments",
        "MODERATION_COMMENTS_ID_COLUMN": "cid",
        "MODERATION_COMMENTS_BODY_COLUMN": "content",
        "MODERATION_COMMENTS_APPROVED_COLUMN": "visible" if status is None else "state",
    }
    if status is not None:
        extra["MODERATION_COMMENTS_PENDING_VALUE"] = status[0]
        extra["MODERATION_COMMENTS_APPROVED_VALUE"] = status[1]
    result = moderate("--json", env=env_for(postgres_url, ollama, **extra))
    assert result.returncode == 0, result.stderr
    column = "visible" if status is None else "state"
    values = [
        r[0] for r in read_table(postgres_url, f"SELECT {column} FROM site_comments ORDER BY cid")
    ]
    expected = [True, False, True] if status is None else ["approved", "pending", "approved"]
    assert values == expected
    assert read_table(postgres_url, "SELECT count(*) FROM moderation_decisions") == [(3,)]
