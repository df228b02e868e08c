"""Every `pip install` the README and docs/ give installs the checkout or a real package.

The project is on no package index: `pip install moderation` fetches nothing (or a stranger's
package of that name). No network is needed here: the only packages a line may name besides
the checkout are those pyproject.toml itself depends on.
"""

from __future__ import annotations

import pytest

from tests.readme_lines import ROOT, install_lines, pip_commands, problem, requirements

LINES = install_lines()


def test_the_documents_have_install_lines() -> None:
    assert any(path.name == "README.md" for path, _ in LINES)
    assert len(LINES) >= 5


@pytest.mark.parametrize(
    ("path", "line"), LINES, ids=[f"{p.relative_to(ROOT)}:{line[:40]}" for p, line in LINES]
)
def test_each_install_line_names_the_checkout_or_a_real_package(path: object, line: str) -> None:
    commands = pip_commands(line)
    assert commands, f"{path}: no pip install parsed from {line!r}"
    for arguments in commands:
        wanted = requirements(arguments)
        assert wanted, f"{path}: {line!r} installs nothing"
        for requirement in wanted:
            assert problem(requirement) is None, f"{path}: {line!r}: {problem(requirement)}"


@pytest.mark.parametrize(
    ("requirement", "ok"),
    [
        (".", True),
        (".[postgres]", True),
        (".[test,mysql]", True),
        (".[nope]", False),
        ("moderation", False),
        ("moderation[postgres]", False),
        ("Moderation==0.1", False),
        ("psycopg[binary]", True),
        ("apprise", True),
        ("left-pad", False),
    ],
)
def test_what_counts_as_installable(requirement: str, ok: bool) -> None:
    assert (problem(requirement) is None) is ok
