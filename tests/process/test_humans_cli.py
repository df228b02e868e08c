"""`moderate outcomes` and `moderate fixtures export`, the real program in a subprocess.

A batch against the Ollama-compatible test server, then scripted humans in the site's table,
then the figures, the export, and `moderate eval` on the exported file.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakeollama import FakeOllama
from tests.helpers import execute
from tests.processes import moderate

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return [{"contains": "idiot", "answer": NEG}]


TOP_KEYS = {
    "since",
    "until",
    "decided",
    "kept",
    "reversed",
    "released",
    "confirmed",
    "waiting",
    "edited",
    "other",
    "system",
    "reversal_rate",
    "release_rate",
    "by_variant",
    "reversed_ids",
}
BODIES = [
    "lovely post",  # 1 approved, kept
    "thanks!",  # 2 approved, then set pending again: reversed
    "you idiot",  # 3 held, approved by a human: released
    "idiot spam",  # 4 held, deleted: confirmed
    "nice",  # 5 approved, deleted: reversed (gone)
    "idiot again",  # 6 held, untouched: waiting
]


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    return {"faults": [], "models": {"sentiments": None}}


def env_for(url: str, ollama: FakeOllama) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        "MODERATION_EVAL_HISTORY": "history.jsonl",
    }


@pytest.fixture
def site(tmp_path: Path, ollama: FakeOllama) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    env = env_for(url, ollama)
    source = tmp_path / "c.jsonl"
    source.write_text("".join(json.dumps({"body": b}) + "\n" for b in BODIES), encoding="utf-8")
    assert moderate("import", str(source), env=env, cwd=tmp_path).returncode == 0
    batch = moderate(env=env, cwd=tmp_path)
    assert batch.returncode == 0, batch.stderr
    execute(
        url,
        "UPDATE comments SET approved = 0 WHERE id = 2",
        "UPDATE comments SET approved = 1 WHERE id = 3",
        "DELETE FROM comments WHERE id IN (4, 5)",
    )
    return env


def test_json_has_exactly_the_documented_keys_and_figures(
    tmp_path: Path, site: dict[str, str]
) -> None:
    runs = [moderate("outcomes", "--json", env=site, cwd=tmp_path) for _ in range(2)]

    results = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        results.append(json.loads(run.stdout))
    first = results[0]
    assert set(first) == TOP_KEYS
    assert [first[k] for k in ("decided", "kept", "reversed", "released", "confirmed")] == [
        6,
        1,
        2,
        1,
        1,
    ]
    assert (first["waiting"], first["edited"], first["other"]) == (1, 0, 0)
    assert first["reversal_rate"] == 2 / 3 and first["release_rate"] == 1 / 3
    assert sorted(first["reversed_ids"]) == ["2", "5"]
    (variant,) = first["by_variant"]
    assert set(variant) == TOP_KEYS - {"since", "until", "by_variant", "reversed_ids"} | {
        "model_digest",
        "prompt_hash",
    }
    engine = sa.create_engine(site["MODERATION_DATABASE_URL"])
    with engine.connect() as conn:
        judges = conn.exec_driver_sql(
            "SELECT DISTINCT model_digest, prompt_hash FROM moderation_decisions"
        ).all()
    engine.dispose()
    assert judges == [(variant["model_digest"], variant["prompt_hash"])]
    assert variant["decided"] == 6 and variant["reversed"] == 2
    moving = ("since", "until")
    assert {k: v for k, v in results[1].items() if k not in moving} == {
        k: v for k, v in first.items() if k not in moving
    }


def test_table_fits_80_columns(tmp_path: Path, site: dict[str, str]) -> None:
    run = moderate("outcomes", "--since", "7d", env=site, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.split() == ["reversed", "2", "2"] for line in lines)
    assert any(line.split() == ["reversal", "rate", "66.7%", "66.7%"] for line in lines)


def test_reversal_rate_gate(tmp_path: Path, site: dict[str, str]) -> None:
    above = moderate("outcomes", "--max-reversal-rate", "0.5", env=site, cwd=tmp_path)
    assert above.returncode == 6
    assert "reversal rate 66.7% is above 50.0%" in above.stderr
    below = moderate("outcomes", "--max-reversal-rate", "0.7", env=site, cwd=tmp_path)
    assert below.returncode == 0, below.stderr
    as_json = moderate("outcomes", "--json", "--max-reversal-rate", "0.5", env=site, cwd=tmp_path)
    assert as_json.returncode == 6
    assert set(json.loads(as_json.stdout)) == TOP_KEYS  # the figures, exactly, gate or not


def test_a_window_without_approvals_passes_the_gate_and_says_so(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'empty.db'}", ollama)
    source = tmp_path / "c.jsonl"
    source.write_text(json.dumps({"body": "you idiot"}) + "\n", encoding="utf-8")
    moderate("import", str(source), env=env, cwd=tmp_path)
    assert moderate(env=env, cwd=tmp_path).returncode == 0

    run = moderate("outcomes", "--max-reversal-rate", "0", "--json", env=env, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert "no approvals by the tool in the window" in run.stderr
    assert json.loads(run.stdout)["reversal_rate"] is None


@pytest.mark.parametrize("since", ["yesterday", "2099-01-01", "5x"])
def test_bad_since_is_a_usage_error(tmp_path: Path, site: dict[str, str], since: str) -> None:
    run = moderate("outcomes", "--since", since, env=site, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("moderate: error: --since")
    assert "Traceback" not in run.stderr
    with_json = moderate("outcomes", "--since", since, "--json", env=site, cwd=tmp_path)
    failure = json.loads(with_json.stdout)  # --json: one object, on failure too
    assert (failure["status"], failure["exit_code"]) == ("failed", 2)


def test_export_writes_private_fixtures_and_refuses_to_overwrite(
    tmp_path: Path, site: dict[str, str]
) -> None:
    out = tmp_path / "site.jsonl"
    run = moderate("fixtures", "export", "--out", str(out), env=site, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    assert f"wrote 3 lines to {out} (mode 0600" in run.stdout
    assert "2 rows were gone" in run.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(records, key=lambda r: r["id"]) == [
        {"id": "site-1", "text": "lovely post", "expected": "approve", "tags": ["site", "kept"]},
        {"id": "site-2", "text": "thanks!", "expected": "hold", "tags": ["site", "reversed"]},
        {"id": "site-3", "text": "you idiot", "expected": "approve", "tags": ["site", "released"]},
    ]

    before = out.read_bytes()
    again = moderate("fixtures", "export", "--out", str(out), env=site, cwd=tmp_path)
    assert again.returncode == 2
    assert "exists; use --force" in again.stderr
    assert out.read_bytes() == before
    out.chmod(0o644)
    forced = moderate("fixtures", "export", "--out", str(out), "--force", env=site, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []


def test_export_then_eval_round_trip(tmp_path: Path, site: dict[str, str]) -> None:
    out = tmp_path / "site.jsonl"
    assert moderate("fixtures", "export", "--out", str(out), env=site, cwd=tmp_path).returncode == 0

    run = moderate("eval", str(out), "--json", env=site, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["n"], result["n_labelled"], result["n_expected"]) == (3, 0, 3)
    # The model approves "thanks!" (which a human took back) and holds "you idiot" (which a
    # human released): one false approval of one hold, one missed approval of two approvals.
    assert result["false_approval_rate"] == 1.0
    assert result["missed_approval_rate"] == 0.5
    assert result["accuracy"] is None
    text = moderate("eval", str(out), env=site, cwd=tmp_path)
    assert "read 0 labelled, 3 with a human's expected decision" in " ".join(text.stdout.split())
