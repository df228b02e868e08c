"""A SQLite database that does not exist is refused, and left not existing.

Only `moderate import` and `moderate db upgrade` create the tool's database (and, for a
`wordpress-rest` site, whose database holds nothing but the tool's own tables, the commands
that store what they learn there: a batch, `moderate serve`, `moderate qualify`,
`moderate model create`). Every other command, run in an empty folder with the default
`sqlite:///moderation.db`, exits 2 with one line and leaves no file behind: a mistyped path
must not become an empty database that later errors mistake for a site.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakeollama import FakeOllama, free_port
from tests.processes import moderate

MISSING = "the SQLite database moderation.db does not exist"
# Nothing listens here: a command that reached for the model server would exit 4, not 2.
NOBODY = f"http://127.0.0.1:{free_port()}"

COMMANDS = [
    ["--dry-run"],
    [],
    ["outcomes"],
    ["outcomes", "--json"],
    ["qualify"],
    ["review", "--port", "0"],
    ["fixtures", "export", "--out", "fixtures.jsonl"],
    ["history"],
    ["model", "create"],
    ["serve", "--every", "1h"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "batch")
def test_a_command_refuses_a_database_that_does_not_exist(tmp_path: Path, args: list[str]) -> None:
    env = {"OLLAMA_HOST": NOBODY, "MODERATION_QUALIFY": "auto"}
    result = moderate(*args, env=env, cwd=tmp_path, timeout=60)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("moderate: error: " + MISSING), lines[0]
    assert "`moderate import`" in lines[0]
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    if "--json" in args:
        assert json.loads(result.stdout)["exit_code"] == 2


@pytest.mark.parametrize(
    "args", [["outcomes"], ["review", "--port", "0"], ["history"]], ids=" ".join
)
def test_a_wordpress_rest_site_is_refused_too_where_a_command_only_reads(
    tmp_path: Path, args: list[str]
) -> None:
    env = {
        "OLLAMA_HOST": NOBODY,
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": f"http://127.0.0.1:{free_port()}",
        "MODERATION_WORDPRESS_USER": "moderator",
        "MODERATION_WORDPRESS_APP_PASSWORD": "abcd efgh ijkl mnop qrst uvwx",
    }
    result = moderate(*args, env=env, cwd=tmp_path, timeout=60)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("moderate: error: " + MISSING), result.stderr
    # Importing is refused with the REST preset: the message names what does create it.
    assert "a batch (`moderate`) and `moderate db upgrade` create one" in result.stderr
    assert "abcd" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["db", "upgrade"], ["import", "comments.jsonl"]], ids=" ".join)
def test_import_and_db_upgrade_create_it(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "comments.jsonl").write_text('{"body": "Thanks!"}\n', encoding="utf-8")

    result = moderate(*args, env={"OLLAMA_HOST": NOBODY}, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "moderation.db").is_file()


@pytest.mark.integration
def test_model_create_without_qualifying_needs_no_database(
    tmp_path: Path, ollama: FakeOllama
) -> None:
    result = moderate(
        "model", "create", "--no-qualify", env={"OLLAMA_HOST": ollama.url}, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert "'sentiments'" in result.stdout
    assert list(tmp_path.iterdir()) == []
