"""Running the real `moderate` program in a child process, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment without the tool's own variables, plus ``extra``.

    A developer's MODERATION_* or OLLAMA_HOST must never reach a test's child process.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODERATION_", "OLLAMA_"))}
    # Qualification is off unless the test turns it on (see tests/helpers.make_settings).
    env["MODERATION_QUALIFY"] = "off"
    env.update(extra)
    return env


def moderate(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`moderate ARGS` to completion, output captured as UTF-8 text."""
    return subprocess.run(
        [sys.executable, "-m", "moderation", *args],
        env=child_environment(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def start_moderate(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`moderate ARGS` in the background, for tests that signal or race it."""
    return subprocess.Popen(
        [sys.executable, "-m", "moderation", *args],
        env=child_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
