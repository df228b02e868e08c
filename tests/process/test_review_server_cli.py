"""`moderate review` refusing to start: off loopback without a token, a port in use."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import create_site_table
from tests.processes import moderate


def test_off_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["a comment"])
    result = moderate(
        "review",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        env={"MODERATION_DATABASE_URL": url},
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "moderate: error: refusing to serve the review page on 0.0.0.0: set "
        "MODERATION_REVIEW_TOKEN (16 characters or more) to serve beyond loopback"
    )
    short = moderate(
        "review",
        "--port",
        "0",
        env={"MODERATION_DATABASE_URL": url, "MODERATION_REVIEW_TOKEN": "short"},
        timeout=30,
    )
    assert short.returncode == 2 and "at least 16 characters" in short.stderr
    assert "short" not in short.stderr.replace("at least", "")


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["a comment"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = moderate(
            "review", "--port", str(port), env={"MODERATION_DATABASE_URL": url}, timeout=30
        )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"moderate: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(result.stderr.strip().splitlines()) == 1
