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
        "MODERATION_REVIEW_TOKEN (16 characters or more; make one with "
        '`python -c "import secrets; print(secrets.token_urlsafe(24))"`) to serve beyond loopback'
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
    weak = "k" * 16
    repeated = moderate(
        "review",
        "--port",
        "0",
        env={"MODERATION_DATABASE_URL": url, "MODERATION_REVIEW_TOKEN": weak},
        timeout=30,
    )
    assert repeated.returncode == 2 and repeated.stdout == ""
    assert len(repeated.stderr.strip().splitlines()) == 1
    assert 'python -c "import secrets; print(secrets.token_urlsafe(24))"' in repeated.stderr
    assert weak not in repeated.stderr


def test_secure_cookie_flag_marks_the_session_cookie_secure(tmp_path: Path) -> None:
    import http.client
    import re
    import secrets

    from tests.processes import start_moderate

    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["a comment"])
    token = secrets.token_urlsafe(24)
    process = start_moderate(
        "review",
        "--port",
        "0",
        "--secure-cookie",
        env={"MODERATION_DATABASE_URL": url, "MODERATION_REVIEW_TOKEN": token},
    )
    try:
        assert process.stdout is not None
        page = process.stdout.readline().strip()
        port = int(page.rsplit(":", 1)[1].strip("/"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/login")
        form = connection.getresponse().read().decode()
        connection.close()
        match = re.search(r'name="csrf" value="([^"]+)"', form)
        assert match is not None
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = f"csrf={match.group(1)}&token={token}"
        connection.request(
            "POST",
            "/login",
            body=body,
            headers={
                "Origin": f"http://127.0.0.1:{port}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        signed = connection.getresponse()
        connection.close()
        assert signed.status == 303
        cookie = signed.getheader("Set-Cookie") or ""
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "secure" in attributes and "httponly" in attributes
        assert token not in cookie
    finally:
        process.terminate()
        process.communicate(timeout=15)
    assert process.returncode == 0


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
