"""Credentials in URLs are hidden wherever a URL is shown, logged or stored."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import redact as redact_module
from moderation.logs import JsonFormatter, TextFormatter
from moderation.redact import redact, redact_url, remember_secrets, url_secrets
from moderation.settings import Settings

# Characters that occur only inside the generated secrets: any of them in the output is a leak.
SECRET_LETTERS = "QXZJKW"
PUNCTUATION = "@:/?#%"
secret_text = st.text(alphabet=SECRET_LETTERS + PUNCTUATION, min_size=1, max_size=12).filter(
    lambda text: any(c in SECRET_LETTERS for c in text)
)
plain = st.text(alphabet="abcdefghi0123456789-", min_size=1, max_size=8)
sensitive_keys = st.sampled_from(["password", "sslpassword", "token", "api_key", "client_secret"])


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
            "mysql+pymysql://u:***@h/d?ssl_key=***&api_token=***",
        ),
        (
            "mysql://secq@127.0.0.1/secq?password=Qry@S3cret9",
            "mysql://secq@127.0.0.1/secq?password=***",
        ),
        (
            "mysql://secq@127.0.0.1:3306/secq?password=Qry@S3cret9&charset=utf8mb4",
            "mysql://secq@127.0.0.1:3306/secq?password=***&charset=utf8mb4",
        ),
        (
            "http://127.0.0.1:1/?api_key=K3yHead@K3yTail99",
            "http://127.0.0.1:1/?api_key=***",
        ),
        ("http://tok3n@host", "http://***@host"),
        ("http:///J@127.0.0.1", "http://***@127.0.0.1"),
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


@st.composite
def urls_with_secrets(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["postgresql", "mysql", "mysql+pymysql", "http", "https"]))
    userinfo = ""
    shape = draw(st.sampled_from(["none", "user", "user:password", "token"]))
    if shape == "user":
        userinfo = draw(plain) + "@"
    elif shape == "user:password":
        userinfo = f"{draw(plain)}:{draw(secret_text)}@"
    elif shape == "token" and scheme.startswith("http"):
        # A colon in the user-info separates the user name (shown) from the password.
        userinfo = draw(secret_text.filter(lambda text: ":" not in text)) + "@"
    host = draw(st.sampled_from(["127.0.0.1", "db.example", "[::1]", "localhost"]))
    port = draw(st.sampled_from(["", ":3306", ":11434"]))
    path = draw(st.sampled_from(["", "/", "/site", "/a/b"]))
    params = draw(
        st.lists(
            st.one_of(
                st.tuples(sensitive_keys, secret_text),
                st.tuples(st.sampled_from(["sslmode", "charset", "x"]), plain),
            ),
            max_size=4,
        )
    )
    query = "?" + "&".join(f"{k}={v}" for k, v in params) if params else ""
    return f"{scheme}://{userinfo}{host}{port}{path}{query}"


@settings(max_examples=1000)
@given(urls_with_secrets())
def test_no_secret_survives_redact_url_in_any_position(url: str) -> None:
    shown = redact_url(url)
    assert not any(c in shown for c in SECRET_LETTERS), (url, shown)
    for secret in url_secrets(url):
        assert secret not in shown or not any(c in secret for c in SECRET_LETTERS)


@given(urls_with_secrets())
def test_no_secret_survives_redact_in_a_message(url: str) -> None:
    shown = redact(f"database error on {url}: connection refused ({url})")
    assert not any(c in shown for c in SECRET_LETTERS), (url, shown)


@given(urls_with_secrets())
def test_every_secret_of_a_generated_url_is_remembered(url: str) -> None:
    found = url_secrets(url)
    # Each secret-only letter of the URL lies inside one of the secrets found.
    covered = "".join(found)
    assert all(c in covered for c in url if c in SECRET_LETTERS), (url, found)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://secq@127.0.0.1:3306/secq?password=Qry@S3cret9",
        "postgresql://app@db:5432/app?sslpassword=Ab@Cd3fgh",
    ],
)
def test_a_query_password_that_spills_into_the_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        Settings(database_url=url)
    message = str(raised.value)
    assert "percent-encoded" in message
    assert "S3cret9" not in message and "Cd3fgh" not in message


def test_a_user_name_with_a_raw_at_sign_still_works() -> None:
    settings = Settings(database_url="postgresql://app@server:Pw-Secret1@db.example:5432/app")
    assert settings.safe_database_url == "postgresql://app@server:***@db.example:5432/app"
