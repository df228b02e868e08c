"""The README's install and set-up lines, run exactly as written, in a fresh clone.

A newcomer's first hour is these lines: each `pip install` of the README (the Install section
and the quick starts) in one fresh virtualenv, then the set-up line, which makes its own, with
`moderate` pointed at the Ollama-compatible test server through `OLLAMA_HOST`. The clone is of
the repository's committed state (in CI, the submission itself); pip takes its packages from
its cache when it can.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from tests.fakeollama import FakeOllama
from tests.helpers import prompt_needle
from tests.readme_lines import ROOT, install_lines, setup_line

pytestmark = pytest.mark.integration

NEG = '{"label": "negative"}'


def clean_environment(**extra: str) -> dict[str, str]:
    """The environment of a reader's shell: no virtualenv active (this test's own left out of
    PATH), none of the tool's variables."""
    own = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != own)
    drop = ("MODERATION_", "OLLAMA_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "PATH": path, **extra}


def shell(line: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> Any:
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout to clone")
    target = tmp_path_factory.mktemp("readme") / "moderation"
    cloned = subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cloned.returncode == 0, cloned.stderr
    return target


def test_every_install_line_of_the_readme_works(clone: Path, tmp_path: Path) -> None:
    # The lines that are an install and nothing else, as written (their comments too), each
    # once, the plain install first (the others add to it). The set-up line is the next
    # test's; the test line (an install, then the whole suite) is what CI runs itself.
    lines = [
        line.strip()
        for path, line in install_lines(clone)
        if path.name == "README.md" and line.startswith("pip install ")
    ]
    by_command = {line.split("#")[0].strip(): line for line in reversed(lines)}
    commands = [by_command[command] for command in sorted(by_command, key=len)]
    assert commands[0].startswith("pip install . ") and len(commands) >= 4, commands
    venv = tmp_path / "venv"
    made = subprocess.run(["python3", "-m", "venv", str(venv)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    env = clean_environment(VIRTUAL_ENV=str(venv))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    for command in commands:
        result = shell(command, clone, env)
        assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    probe = "import moderation, psycopg, pymysql, apprise; print(moderation.__file__)"
    imported = shell(f"python -c {shlex.quote(probe)}", tmp_path, env)  # not the checkout
    assert imported.returncode == 0, imported.stderr
    assert str(venv) in imported.stdout  # installed, not read from the checkout


def test_the_set_up_line_runs_as_written(clone: Path) -> None:
    line = setup_line(clone)
    assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install . && ")
    negatives = [f for f in load_fixtures(default_fixture_paths()) if f.label == "negative"]
    rules = [{"contains": prompt_needle(f.text), "answer": NEG} for f in negatives]
    # A model right on the fixtures and sure of it: it qualifies, and the batch approves.
    with FakeOllama(models={}, rules=rules, default_confidence=0.99) as ollama:
        result = shell(line, clone, clean_environment(OLLAMA_HOST=ollama.url))
        created = ollama.stats()["create_bodies"]

    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert "imported 40 comments into sqlite:///moderation.db (created table 'comments')" in out
    assert created and created[0]["model"] == "sentiments"
    assert re.search(r"sentiments: qualified at threshold 0\.9000", out), out
    summary = re.search(
        r"40 considered: (\d+) approved, (\d+) held, 0 failed", " ".join(out.split())
    )
    assert summary is not None, out
    assert int(summary[1]) > 0 and int(summary[2]) > 0  # the rules hold the spam with links
    assert (clone / ".venv" / "bin" / "moderate").exists()
    assert (clone / "moderation.db").is_file()
