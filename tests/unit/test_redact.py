"""Credentials in URLs are hidden wherever a URL is shown, logged or stored."""

from __future__ import annotations

import logging

import pytest

from moderation import redact as redact_module
from moderation.logs import JsonFormatter, TextFormatter
from moderation.redact import redact, redact_url, remember_secrets, url_secrets
from moderation.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:secret@host:11434", "http://admin:***@host:11434"),
        ("postgresql://user:p@ss@host/db", "postgresql://user:***@host/db"),
        (
            "postgresql://user:pa?ss/x#y@h/db?sslmode=require",
            "postgresql://user:***@h/db?sslmode=require",
        ),
        (
            "postgresql://user@host/db?password=sekret&sslmode=require",
            "postgresql://user@host/db?password=***&sslmode=require",
        ),
        ("postgresql://u:pa%40ss@host/db", "postgresql://u:***@host/db"),
        (
            "mysql+pymysql://u:pw@h/d?ssl_key=/k.pem&api_token=t0k3n#f",
            "mysql+pymysql://u:***@h/d?ssl_key=***&api_token=***#f",
        ),
        ("http://tok3n@host", "http://***@host"),
        ("sqlite:///tmp/a@b.db", "sqlite:///tmp/a@b.db"),
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    for secret in url_secrets(url):
        assert secret not in shown


def test_redact_hides_urls_in_text_and_remembered_secrets_anywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redact_module, "_remembered", set())
    text = "failed: connect to postgresql://u:hunter2@db/x?password=hunter3 (retry)"
    assert redact(text) == "failed: connect to postgresql://u:***@db/x?password=*** (retry)"
    remember_secrets(["http://admin:s3cr3t-pw@ollama:11434", "postgresql://u:pw@h/d"])
    assert redact("the server said: bad password s3cr3t-pw") == "the server said: bad password ***"
    assert (
        redact("pw stays: too short to hide everywhere") == "pw stays: too short to hide everywhere"
    )


def test_settings_remember_their_secrets_and_show_safe_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redact_module, "_remembered", set())
    settings = Settings(
        database_url="postgresql://user@db/site?password=d4tabase-pw",
        ollama_hosts=["http://admin:0llama-pw@a:11434*2"],
    )
    assert settings.safe_database_url == "postgresql://user@db/site?password=***"
    assert [h.safe_url for h in settings.hosts] == ["http://admin:***@a:11434"]
    assert redact("d4tabase-pw and 0llama-pw") == "*** and ***"


def test_a_password_with_a_raw_at_sign_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError) as raised:
        Settings(database_url="postgresql://user:p@ss@db/site")
    assert "percent-encoded" in str(raised.value) and "p@ss" not in str(raised.value)


@pytest.mark.parametrize("formatter", [TextFormatter("%(message)s"), JsonFormatter()])
def test_log_lines_and_tracebacks_are_redacted(formatter: logging.Formatter) -> None:
    try:
        raise RuntimeError("cannot reach http://admin:secret@host:1")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "moderation",
            logging.ERROR,
            __file__,
            1,
            "host %s",
            ("http://a:secret@h",),
            sys.exc_info(),
        )
    line = formatter.format(record)
    assert "secret" not in line and "***" in line


def test_a_crash_traceback_hides_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moderation.cli import app as cli

    def crash(**_options: object) -> None:  # main() calls app(standalone_mode=False)
        raise RuntimeError("cannot reach http://admin:crash-s3cret@ollama:11434")

    monkeypatch.setattr(cli, "app", crash)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert "RuntimeError: cannot reach http://admin:***@ollama:11434" in stderr
    assert "crash-s3cret" not in stderr
