"""The certificate authorities that verify https servers: which settings name them, the
context every client is given (nothing loaded for plain http), and a handshake refused over an
untrusted certificate reported as such, never retried."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from moderation.errors import ConfigurationError, SiteUnavailable
from moderation.model.host import OllamaHost, default_transport_factory
from moderation.settings import CertificateSource, Settings
from moderation.site.wordpress_http import WordPressApi
from moderation.tls import certificate_failure, tls_context
from tests.tlsfiles import PrivateCA, hashed_directory, make_private_ca, serve_https

CERTIFICATE_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return make_private_ca(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture(autouse=True)
def _no_ambient_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CERTIFICATE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server(authority: PrivateCA) -> Iterator[str]:
    with serve_https(lambda _request: httpx.Response(200, json={"ok": True}), authority) as url:
        yield url


def pool_context(client: httpx.Client | httpx.AsyncClient) -> ssl.SSLContext:
    """The TLS context of an httpx client's own transport."""
    context: ssl.SSLContext = client._transport._pool._ssl_context  # type: ignore[union-attr]
    return context


def wordpress_settings(url: str, **values: Any) -> Settings:
    return Settings(
        preset="wordpress-rest",
        wordpress_url=url,
        wordpress_user="mod",
        wordpress_app_password="abcd EFGH ijkl MNOP qrst UVWX",
        **values,
    )


# -- which settings name them ---------------------------------------------------------------


def test_the_bundle_wins_over_the_standard_variables(
    authority: PrivateCA, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().certificate_authorities == ()
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/bundle.pem")
    monkeypatch.setenv("SSL_CERT_DIR", "/etc/certs")
    assert Settings().certificate_authorities == (
        CertificateSource("SSL_CERT_FILE", "/etc/bundle.pem", "file"),
        CertificateSource("SSL_CERT_DIR", "/etc/certs", "hashed directory"),
    )
    monkeypatch.setenv("MODERATION_CA_BUNDLE", str(authority.ca))
    assert Settings().certificate_authorities == (
        CertificateSource("MODERATION_CA_BUNDLE", str(authority.ca), "file"),
    )
    monkeypatch.setenv("MODERATION_CA_BUNDLE", str(tmp_path))
    assert Settings().certificate_authorities == (
        CertificateSource("MODERATION_CA_BUNDLE", str(tmp_path), "pem directory"),
    )
    # Set but empty, each is unset.
    for name in ("MODERATION_CA_BUNDLE", *CERTIFICATE_VARIABLES):
        monkeypatch.setenv(name, "")
    assert Settings().certificate_authorities == ()


def test_a_bundle_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(ca_bundle=str(tmp_path / "missing.pem"))
    assert raised.value.errors()[0]["loc"] == ("ca_bundle",)
    assert str(tmp_path / "missing.pem") in raised.value.errors()[0]["msg"]


# -- the contexts ---------------------------------------------------------------------------


def handshake(url: str, context: ssl.SSLContext) -> int:
    with httpx.Client(verify=context, trust_env=False) as client:
        return client.get(url).status_code


@pytest.mark.parametrize("kind", ["file", "pem directory", "hashed directory"])
def test_each_kind_of_source_trusts_the_private_ca_and_nothing_else(
    kind: str, authority: PrivateCA, server: str, tmp_path: Path
) -> None:
    if kind == "file":
        source = CertificateSource("MODERATION_CA_BUNDLE", str(authority.ca), "file")
    elif kind == "pem directory":
        (tmp_path / "README").write_text("not a certificate", encoding="utf-8")
        (tmp_path / ".hidden.pem").write_text("-----BEGIN CERTIFICATE-----\nbad", encoding="ascii")
        (tmp_path / "ca.crt").write_bytes(authority.ca.read_bytes())
        source = CertificateSource("MODERATION_CA_BUNDLE", str(tmp_path), kind)  # type: ignore[arg-type]
    else:
        directory = hashed_directory(authority, tmp_path / "hashed")
        source = CertificateSource("SSL_CERT_DIR", str(directory), "hashed directory")
    context = tls_context("https://127.0.0.1", (source,))
    assert handshake(server, context) == 200
    if kind != "hashed directory":  # OpenSSL reads a hashed directory at each lookup
        assert context.cert_store_stats()["x509_ca"] == 1  # certifi's are not there
    with pytest.raises(httpx.ConnectError) as refused:
        handshake(server, tls_context("https://127.0.0.1"))  # certifi's bundle
    assert "MODERATION_CA_BUNDLE" in (certificate_failure(refused.value) or "")


def test_a_standard_file_and_directory_are_read_together(
    authority: PrivateCA, server: str, tmp_path: Path
) -> None:
    import certifi

    directory = str(hashed_directory(authority, tmp_path))
    sources = (
        CertificateSource("SSL_CERT_FILE", certifi.where(), "file"),
        CertificateSource("SSL_CERT_DIR", directory, "hashed directory"),
    )
    assert handshake(server, tls_context("https://127.0.0.1", sources)) == 200


@pytest.mark.parametrize(
    ("variable", "kind", "content", "says"),
    [
        ("SSL_CERT_FILE", "file", None, "does not exist"),
        ("SSL_CERT_DIR", "hashed directory", None, "is not a directory"),
        ("MODERATION_CA_BUNDLE", "file", "not a certificate", "no certificate authority"),
        ("MODERATION_CA_BUNDLE", "pem directory", "not a certificate", "no PEM certificate"),
    ],
)
def test_a_source_that_cannot_be_read_is_a_configuration_error_naming_its_variable(
    variable: str, kind: str, content: str | None, says: str, tmp_path: Path
) -> None:
    path = tmp_path / "ca"
    if content is not None and kind == "file":
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        path.mkdir()
        (path / "ca.pem").write_text(content, encoding="utf-8")
    source = CertificateSource(variable, str(path), kind)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as raised:
        tls_context("https://ollama.example", (source,))
    assert raised.value.message.startswith(f"{variable}: ")
    assert says in raised.value.message


def test_no_source_is_read_for_a_plain_http_server(tmp_path: Path) -> None:
    """Not even a bundle that would be refused: nothing is loaded for http."""
    unreadable = tmp_path / "not-a-ca.pem"
    unreadable.write_text("not a certificate", encoding="utf-8")
    settings = wordpress_settings(
        "http://blog.example", ca_bundle=str(unreadable), ollama_host="http://127.0.0.1:11434"
    )
    plain = tls_context("http://127.0.0.1")
    assert plain.cert_store_stats()["x509_ca"] == 0

    api = WordPressApi(settings)
    assert pool_context(api.client) is plain
    api.close()
    for transport in ("aiohttp", "httpx"):
        chosen = settings.model_copy(update={"http_transport": transport})
        host = OllamaHost(chosen.hosts[0], chosen, default_transport_factory(chosen))
        if transport == "aiohttp":
            assert host.sender._ssl is plain  # type: ignore[attr-defined]
        assert pool_context(host.client._client) is plain
        assert pool_context(host.load_client._client) is plain
        asyncio.run(host.close())


def test_every_client_of_an_https_server_verifies_with_the_settings_authorities(
    authority: PrivateCA,
) -> None:
    settings = wordpress_settings(
        "https://blog.example", ca_bundle=str(authority.ca), ollama_host="https://ollama.example"
    )
    trusted = tls_context("https://x", settings.certificate_authorities)
    assert trusted is not tls_context("https://x")  # not certifi's

    api = WordPressApi(settings)
    assert pool_context(api.client) is trusted
    api.close()
    for transport in ("aiohttp", "httpx"):
        chosen = settings.model_copy(update={"http_transport": transport})
        host = OllamaHost(chosen.hosts[0], chosen, default_transport_factory(chosen))
        if transport == "aiohttp":
            assert host.sender._ssl is trusted  # type: ignore[attr-defined]
        assert pool_context(host.client._client) is trusted
        assert pool_context(host.load_client._client) is trusted
        asyncio.run(host.close())


# -- an untrusted certificate ---------------------------------------------------------------


def test_an_untrusted_wordpress_is_asked_once_and_named(server: str) -> None:
    api = WordPressApi(wordpress_settings(server, retries=2, wordpress_routes="query"))
    with pytest.raises(SiteUnavailable) as raised:
        api.send("GET", "/wp/v2/comments", {})
    api.close()
    assert api.requests == 1  # a certificate does not become trusted by asking again
    assert raised.value.message.startswith(f"WordPress at {server} failed: TLS: ")
    assert "unable to get local issuer certificate" in raised.value.message


def test_an_untrusted_model_server_fails_the_comment_with_a_tls_reason(server: str) -> None:
    """The classifying request goes straight through aiohttp, whose error says so too."""
    settings = Settings(ollama_host=server, retries=2)
    host = OllamaHost(settings.hosts[0], settings, default_transport_factory(settings))

    async def classify() -> Any:
        try:
            return await host.classify("sentiments", "a comment")
        finally:
            await host.close()

    verdict = asyncio.run(classify())
    assert verdict.label is None and verdict.server_error
    assert verdict.error.startswith("TLS: the server's certificate is not trusted")
    assert "MODERATION_CA_BUNDLE" in verdict.error


def test_https_to_a_plain_http_port_is_a_failed_handshake_and_a_closed_one_is_not() -> None:
    import http.server
    import threading

    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        with pytest.raises(httpx.ConnectError) as raised:
            handshake(f"https://127.0.0.1:{plain.server_address[1]}", tls_context("https://x"))
    finally:
        plain.shutdown()
        plain.server_close()
    assert (certificate_failure(raised.value) or "").startswith("the TLS handshake failed")
    # A server that closed the connection may answer the next one: that stays a reset.
    try:
        raise httpx.ConnectError("closed") from ssl.SSLEOFError(8, "EOF occurred")
    except httpx.ConnectError as closed:
        assert certificate_failure(closed) is None
