"""A model server and a WordPress behind a private certificate authority, over real TLS.

The real `moderate` program runs in a subprocess against the Ollama-compatible test server
and a fake WordPress, each served on 127.0.0.1 with a certificate signed by a CA made for the
test, which no bundle trusts. Without that CA a batch fails closed in one line that says the
certificate is not trusted; with it, given as ``MODERATION_CA_BUNDLE`` or the standard
``SSL_CERT_FILE``/``SSL_CERT_DIR``, the batch runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from tests.fakeollama import FakeOllama
from tests.helpers import NEGATIVE, create_site_table, read_table
from tests.processes import moderate
from tests.tlsfiles import PrivateCA, hashed_directory, make_private_ca, serve_https
from tests.unit.test_wordpress_rest import PASSWORD, FakeWordPress

pytestmark = pytest.mark.integration

RULES = [{"contains": "idiot", "answer": NEGATIVE}]
CERTIFICATE_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(scope="module")
def ollama_rules() -> list[dict[str, Any]]:
    return RULES


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return make_private_ca(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(scope="module")
def tls_ollama(authority: PrivateCA) -> Iterator[FakeOllama]:
    with FakeOllama(tls=(authority.cert, authority.key), rules=RULES) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _no_ambient_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own SSL_CERT_FILE/SSL_CERT_DIR never reach the child: each test says what
    it trusts."""
    for name in CERTIFICATE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def trusting(authority: PrivateCA, how: str, tmp_path: Path) -> dict[str, str]:
    """The variables that make the child trust the private CA, one way or another."""
    ca = str(authority.ca)
    if how == "none":
        return {}
    if how == "bundle":
        return {"MODERATION_CA_BUNDLE": ca}
    if how == "bundle directory":
        directory = tmp_path / "cas"
        directory.mkdir()
        (directory / "internal.crt").write_bytes(authority.ca.read_bytes())
        return {"MODERATION_CA_BUNDLE": str(directory)}
    if how == "bundle over the standard variables":
        return {"MODERATION_CA_BUNDLE": ca, "SSL_CERT_FILE": certifi.where()}
    if how == "SSL_CERT_FILE":
        return {"SSL_CERT_FILE": ca}
    if how == "SSL_CERT_DIR beside SSL_CERT_FILE":
        directory = hashed_directory(authority, tmp_path / "hashed")
        return {"SSL_CERT_FILE": certifi.where(), "SSL_CERT_DIR": str(directory)}
    raise AssertionError(how)


def the_error(stderr: str) -> str:
    """The one error line, which must also be the last line."""
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert errors == [stderr.strip().splitlines()[-1]], stderr
    assert "Traceback" not in stderr
    return errors[0]


# -- the model server ---------------------------------------------------------------------


def batch_env(tmp_path: Path, host: str, **extra: str) -> tuple[str, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    create_site_table(url, ["thanks, lovely", "you idiot"])
    env = {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": host,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        **extra,
    }
    return url, env


def test_an_untrusted_model_server_fails_closed_in_one_line_naming_the_setting(
    tmp_path: Path, tls_ollama: FakeOllama
) -> None:
    url, env = batch_env(tmp_path, tls_ollama.url)

    result = moderate("--json", env=env)

    assert result.returncode == 4, result.stderr
    error = the_error(result.stderr)
    assert error.startswith(f"moderate: error: Ollama at {tls_ollama.url} is unreachable: TLS:")
    assert "certificate is not trusted" in error and "MODERATION_CA_BUNDLE" in error
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(0,), (0,)]


@pytest.mark.parametrize(
    ("transport", "how"),
    [
        ("aiohttp", "bundle"),
        ("aiohttp", "SSL_CERT_FILE"),
        ("aiohttp", "bundle directory"),
        ("aiohttp", "bundle over the standard variables"),
        ("aiohttp", "SSL_CERT_DIR beside SSL_CERT_FILE"),
        # The transports differ only in the clients they build: two ways suffice for httpx's.
        ("httpx", "bundle"),
        ("httpx", "SSL_CERT_FILE"),
    ],
)
def test_a_model_server_behind_a_private_ca_is_trusted_once_its_ca_is_given(
    transport: str, how: str, tmp_path: Path, authority: PrivateCA, tls_ollama: FakeOllama
) -> None:
    tls_ollama.configure(rules=RULES, reset_stats=True)
    trust = trusting(authority, how, tmp_path)
    url, env = batch_env(tmp_path, tls_ollama.url, MODERATION_HTTP_TRANSPORT=transport, **trust)

    result = moderate("--json", env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["approved"], report["held"], report["failed"]) == (1, 1, 0)
    assert read_table(url, "SELECT approved FROM comments ORDER BY id") == [(1,), (0,)]
    # The probe, the warm-up and every comment went to the TLS server.
    assert tls_ollama.stats()["requests"].get("/api/generate", 0) >= 3


def test_model_create_trusts_the_private_ca(
    tmp_path: Path, authority: PrivateCA, tls_ollama: FakeOllama
) -> None:
    tls_ollama.configure(models={}, reset_stats=True)
    env = {"MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}"}
    env["OLLAMA_HOST"] = tls_ollama.url

    refused = moderate("model", "create", "--no-qualify", env=env)
    assert refused.returncode == 4, refused.stderr
    assert "certificate is not trusted" in the_error(refused.stderr)

    created = moderate(
        "model", "create", "--no-qualify", env={**env, "MODERATION_CA_BUNDLE": str(authority.ca)}
    )
    assert created.returncode == 0, created.stderr
    assert tls_ollama.stats()["create_bodies"][-1]["model"] == "sentiments"
    tls_ollama.configure(models={"sentiments": None})


def test_a_bundle_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no.pem")
    _, env = batch_env(tmp_path, "https://127.0.0.1:9", MODERATION_CA_BUNDLE=missing)

    result = moderate(env=env)

    assert result.returncode == 2
    error = the_error(result.stderr)
    assert error.startswith("moderate: error: invalid configuration: MODERATION_CA_BUNDLE:")
    assert missing in error


# -- WordPress's REST API -------------------------------------------------------------------


@pytest.fixture
def wordpress(authority: PrivateCA) -> Iterator[tuple[FakeWordPress, str]]:
    site = FakeWordPress({1: "thanks, lovely", 2: "you idiot"})
    with serve_https(site.handle, authority) as url:
        yield site, url


def wordpress_env(tmp_path: Path, url: str, ollama: FakeOllama, **extra: str) -> dict[str, str]:
    return {
        "MODERATION_PRESET": "wordpress-rest",
        "MODERATION_WORDPRESS_URL": url,
        "MODERATION_WORDPRESS_USER": "mod",
        "MODERATION_WORDPRESS_APP_PASSWORD": PASSWORD,
        "MODERATION_WORDPRESS_ROUTES": "query",
        "MODERATION_WORDPRESS_TIMEOUT": "5",
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'own.db'}",
        "OLLAMA_HOST": ollama.url,
        "MODERATION_TIMEOUT": "5",
        **extra,
    }


def test_an_untrusted_wordpress_fails_closed_in_one_line_naming_the_setting(
    tmp_path: Path, wordpress: tuple[FakeWordPress, str], ollama: FakeOllama
) -> None:
    site, url = wordpress

    result = moderate("--json", env=wordpress_env(tmp_path, url, ollama))

    assert result.returncode == 5, result.stderr
    error = the_error(result.stderr)
    assert error.startswith(f"moderate: error: WordPress at {url} failed: TLS:")
    assert "certificate is not trusted" in error and "MODERATION_CA_BUNDLE" in error
    assert {c["status"] for c in site.comments.values()} == {"hold"}
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "how", ["bundle", "SSL_CERT_FILE", "bundle directory", "SSL_CERT_DIR beside SSL_CERT_FILE"]
)
def test_a_wordpress_behind_a_private_ca_is_trusted_once_its_ca_is_given(
    how: str,
    tmp_path: Path,
    authority: PrivateCA,
    wordpress: tuple[FakeWordPress, str],
    ollama: FakeOllama,
) -> None:
    site, url = wordpress
    env = wordpress_env(tmp_path, url, ollama, **trusting(authority, how, tmp_path))

    result = moderate("--json", env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["approved"] == 1
    assert [site.comments[i]["status"] for i in (1, 2)] == ["approved", "hold"]
