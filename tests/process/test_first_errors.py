"""The errors a newcomer meets first say what to do next, in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakeollama import FakeOllama, free_port
from tests.helpers import create_site_table
from tests.processes import moderate

START_OLLAMA = "start it with `ollama serve`, or set OLLAMA_HOST to where it listens"


def site(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["Thank you, this was really useful."])
    return url


@pytest.mark.parametrize("args", [[], ["--dry-run"], ["model", "create", "--no-qualify"]])
def test_ollama_unreachable_says_how_to_start_it(tmp_path: Path, args: list[str]) -> None:
    env = {
        "MODERATION_DATABASE_URL": site(tmp_path),
        "OLLAMA_HOST": f"http://127.0.0.1:{free_port()}",
        "MODERATION_TIMEOUT": "5",
    }
    result = moderate(*args, env=env)

    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is unreachable: connection refused" in lines[0], lines
    assert lines[0].endswith(START_OLLAMA), lines[0]


@pytest.mark.parametrize(
    "url", ["postgres://app:s3cret@127.0.0.1/app", "postgres+psycopg://app:s3cret@127.0.0.1/app"]
)
def test_a_postgres_url_suggests_postgresql(tmp_path: Path, url: str) -> None:
    result = moderate("--json", env={"MODERATION_DATABASE_URL": url}, cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "write postgresql:// instead of postgres://" in lines[0]
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def ollama_settings() -> dict[str, Any]:
    # Sure of everything, and wrong on every negative fixture: never qualifies.
    return {"default_answer": '{"label": "positive"}', "default_confidence": 0.99}


@pytest.mark.integration
def test_an_unqualified_batch_says_what_it_means_for_the_site(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    env = {
        "MODERATION_DATABASE_URL": site(tmp_path),
        "OLLAMA_HOST": ollama.url,
        "MODERATION_QUALIFY": "auto",
    }
    result = moderate(env=env)

    assert result.returncode == 8, result.stderr
    closing = " ".join(result.stdout.split())
    assert "nothing approved: unqualified:" in closing
    assert (
        "the model may not approve: every comment waits for a human (`moderate review`); "
        "`moderate qualify` shows why" in closing
    ), closing
