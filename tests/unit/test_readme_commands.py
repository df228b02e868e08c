"""The README's list of commands names every command `moderate --help` offers."""

from __future__ import annotations

from typing import Any

import typer

from moderation.cli.app import app
from tests.readme_lines import ROOT


def command_paths(group: Any, prefix: str = "") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer's own click, or click's)
            paths += command_paths(command, f"{prefix}{name} ")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def listed() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```text\nmoderate [--dry-run]", 1)[1].split("```", 1)[0]
    return [line.split("  ")[0] for line in ("moderate [--dry-run]" + block).splitlines()]


def test_every_command_is_in_the_readme() -> None:
    group = typer.main.get_command(app)
    paths = command_paths(group)
    assert "eval" in paths and "db upgrade" in paths
    lines = listed()
    missing = [p for p in paths if not any(line.startswith(f"moderate {p}") for line in lines)]
    assert missing == []
