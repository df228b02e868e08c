"""The generated references match the code: docs/configuration.md, the README's exit codes, and
the exit codes in ``moderate --help``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from moderation import reference
from moderation.cli.app import app
from moderation.cli.common import EXIT_CODES
from moderation.reference import (
    EXIT_CODES_END,
    EXIT_CODES_START,
    configuration_reference,
    exit_code_block,
    write_references,
)
from moderation.settings import Settings, environment_name
from moderation.vocabulary import ExitCode, exit_code_help, exit_code_table

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"


def _squeeze(text: str) -> str:
    """``text`` without white space: the help formatter re-wraps lines and splits at hyphens."""
    return "".join(text.split())


def _configuration_rows() -> dict[str, list[str]]:
    rows = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `([A-Z_]+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip("|").split(" | ")]
    return rows


def test_committed_configuration_reference_is_generated_from_the_settings() -> None:
    assert CONFIGURATION.read_text(encoding="utf-8") == configuration_reference(), (
        "docs/configuration.md is out of date: run `python -m moderation.reference`"
    )


def test_configuration_reference_says_it_is_generated_and_how_to_regenerate_it() -> None:
    first_line = configuration_reference().splitlines()[0]
    assert "Generated" in first_line
    assert "python -m moderation.reference" in first_line


def test_every_setting_has_a_description_and_a_row() -> None:
    rows = _configuration_rows()
    names = [environment_name(name) for name in Settings.model_fields]
    assert list(rows) == names
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert rows[environment_name(name)][-1] == field.description


def test_every_moderation_variable_appears_in_the_configuration_reference() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    variables = [environment_name(name) for name in Settings.model_fields]
    moderation_variables = [name for name in variables if name.startswith("MODERATION_")]
    assert len(moderation_variables) >= 30
    for name in variables:
        assert f"`{name}`" in text, name
    # Ollama's own names, read through their aliases.
    assert {"OLLAMA_HOST", "OLLAMA_HOSTS"} <= set(variables)


def test_configuration_reference_shows_the_defaults_and_never_a_secret() -> None:
    rows = _configuration_rows()
    assert rows["MODERATION_DATABASE_URL"][1] == "`sqlite:///moderation.db`"
    assert rows["MODERATION_MIN_CONFIDENCE"][1] == "`0.9`"
    assert rows["MODERATION_TIMEOUT"][1] == "`30`"
    assert rows["MODERATION_AUTO_MIGRATE"][1] == "`true`"
    assert rows["MODERATION_LIMIT"][1] == ""
    assert rows["MODERATION_REVIEW_TOKEN"][1] == ""


def test_readme_exit_code_block_is_the_generated_table() -> None:
    readme = README.read_text(encoding="utf-8")
    assert readme.count(EXIT_CODES_START) == 1
    assert readme.count(EXIT_CODES_END) == 1
    assert exit_code_block(readme) == exit_code_table(), (
        "the README's exit codes are out of date: run `python -m moderation.reference`"
    )


def test_help_epilog_is_the_generated_exit_code_help() -> None:
    assert exit_code_help() == EXIT_CODES
    assert typer.main.get_command(app).epilog == exit_code_help()


def test_help_output_mentions_every_exit_code() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert _squeeze(exit_code_help()) in _squeeze(result.output)
    epilog = result.output[result.output.index("Exit codes:") :]
    for code in ExitCode:
        first_word = re.escape(code.meaning.split()[0])
        assert re.search(rf"[\s:;]{code.value}\s+{first_word}", epilog), code


def test_regenerating_rewrites_a_stale_readme_block_and_configuration(tmp_path: Path) -> None:
    stale = f"# Site\n\n{EXIT_CODES_START}\n| code |\n{EXIT_CODES_END}\n\nAfter.\n"
    (tmp_path / "README.md").write_text(stale, encoding="utf-8")
    assert reference.main(["--check", str(tmp_path)]) == 1
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == stale

    assert reference.main([str(tmp_path)]) == 0
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    block = f"{EXIT_CODES_START}\n{exit_code_table()}{EXIT_CODES_END}"
    assert readme == f"# Site\n\n{block}\n\nAfter.\n"
    written = (tmp_path / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == configuration_reference()
    assert write_references(tmp_path, check=True) == []


def test_regenerating_refuses_a_readme_without_markers(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Site\n", encoding="utf-8")
    assert reference.main([str(tmp_path)]) == 2
    assert not (tmp_path / "docs").exists()


def test_reference_module_imports_neither_typer_nor_rich() -> None:
    code = (
        "import sys, moderation.reference; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'rich', 'click'}))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"


def test_readme_grants_name_every_table_of_the_tool() -> None:
    from moderation.storage.migrate import VERSION_TABLE
    from moderation.storage.tables import metadata

    readme = README.read_text(encoding="utf-8")
    grants = readme[readme.index("## Database grants") :]
    grants = grants[: grants.index("\n## ", 1)]
    for table in [*metadata.tables, VERSION_TABLE]:
        assert f"`{table}`" in grants, table
