"""The shell lines the README and docs/ give a reader to type: ``pip install`` lines, and the
README's set-up line.

The project is not on any package index: a ``pip install`` that names it would fetch nothing
or, worse, someone else's package. Shared by the unit test that checks what each line names
and the test that runs the README's lines in a fresh clone.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A fenced code block, and a span of inline code.
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_PIP = re.compile(r"\bpip install\b")
# pip's options that take a value (the value is not a requirement).
_VALUED = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-f",
    "--find-links",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-t",
    "--target",
    "--prefix",
    "--root",
}
_SEPARATORS = {"&&", "||", ";", "|"}


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def code_lines(path: Path) -> list[str]:
    """Every line of a fenced block, and every inline code span outside them."""
    text = path.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in _FENCE.findall(text):
        lines += _joined(block.splitlines())
    outside = _FENCE.sub("", text)
    lines += _INLINE.findall(outside)
    return lines


def _joined(lines: list[str]) -> list[str]:
    """Shell lines, continuation backslashes joined."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def pip_commands(line: str) -> list[list[str]]:
    """The arguments of each ``pip install`` in a shell line (comments dropped)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return []
    found: list[list[str]] = []
    for start in range(len(words) - 1):
        if words[start].endswith("pip") and words[start + 1] == "install":
            arguments = []
            for word in words[start + 2 :]:
                if word in _SEPARATORS:
                    break
                arguments.append(word)
            found.append(arguments)
    return found


def install_lines(root: Path = ROOT) -> list[tuple[Path, str]]:
    """Every line of the README and docs/*.md that runs ``pip install``, with its file."""
    return [
        (path, line) for path in documents(root) for line in code_lines(path) if _PIP.search(line)
    ]


def requirements(arguments: list[str]) -> list[str]:
    """The requirements among ``pip install``'s arguments (options and their values left out;
    an editable install's path kept)."""
    out: list[str] = []
    skip = False
    for word in arguments:
        if skip:
            skip = False
            continue
        if word in ("-e", "--editable"):
            continue
        if word in _VALUED:
            skip = True
            continue
        if word.startswith("-"):
            continue
        out.append(word)
    return out


def project() -> tuple[str, set[str], set[str]]:
    """The project's name, its extras, and every package its pyproject.toml names."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = data.get("optional-dependencies", {})
    named = [*data.get("dependencies", []), *(r for rs in extras.values() for r in rs)]
    return data["name"], set(extras), {normalise(_name_of(r)) for r in named}


def _name_of(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problem(requirement: str) -> str | None:
    """Why this requirement cannot be installed as the documents mean it, or None.

    The checkout (``.``, with extras the project declares) is the only way to install the
    project; anything else must be a package pyproject.toml itself depends on, never the
    project by its name.
    """
    name, extras, known = project()
    match = re.fullmatch(r"\.(?:\[([^\]]*)\])?", requirement)
    if match:
        wanted = {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
        unknown = wanted - extras
        return f"unknown extras {sorted(unknown)}" if unknown else None
    bare = normalise(_name_of(requirement))
    if bare == normalise(name):
        return f"{name!r} is not on any package index: install the checkout ('.')"
    if bare not in known:
        return f"{requirement!r} is neither the checkout nor a package pyproject.toml names"
    return None


def setup_line(root: Path = ROOT) -> str:
    """The README's set-up line: the one line of its "Set up" section that runs `moderate`."""
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Set up\n", 1)[1].split("\n## ", 1)[0]
    lines = [
        line
        for block in _FENCE.findall(section)
        for line in _joined(block.splitlines())
        if "moderate" in line
    ]
    assert len(lines) == 1, lines
    return lines[0]


def install_section_lines(root: Path = ROOT) -> list[str]:
    """The lines of the README's "Install" section's code blocks."""
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    return [
        line
        for block in _FENCE.findall(section)
        for line in _joined(block.splitlines())
        if line.strip() and not line.lstrip().startswith("#")
    ]
