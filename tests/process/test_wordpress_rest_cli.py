"""`moderate` with MODERATION_PRESET=wordpress-rest: its configuration errors and an unreachable
WordPress, each one line with its exit code, the password nowhere."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.processes import moderate

PASSWORD = "abcd EFGH ijkl MNOP qrst UVWX"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_variables_are_named(tmp_path: Path) -> None:
    result = moderate(
        env={"MODERATION_PRESET": "wordpress-rest", "MODERATION_WORDPRESS_URL": "https://x.test"},
        cwd=tmp_path,
    )

    assert result.returncode == 2
    assert "MODERATION_WORDPRESS_USER" in result.stderr
    assert "MODERATION_WORDPRESS_APP_PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_wordpress_fails_closed_in_one_line(tmp_path: Path) -> None:
    env = {
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": f"http://127.0.0.1:{closed_port()}",
        "MODERATION_WORDPRESS_USER": "mod",
        "MODERATION_WORDPRESS_APP_PASSWORD": PASSWORD,
        "MODERATION_WORDPRESS_TIMEOUT": "2",
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}",
        "OLLAMA_HOST": f"http://127.0.0.1:{closed_port()}",
    }

    result = moderate("--json", env=env, cwd=tmp_path)

    assert result.returncode == 5, result.stderr
    # Retries are logged as they happen; the error is one line, the last.
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("moderate: error: WordPress at http://127.0.0.1")
    assert "unreachable" in errors[0]
    assert PASSWORD not in result.stdout + result.stderr
    assert PASSWORD.replace(" ", "") not in result.stdout + result.stderr
