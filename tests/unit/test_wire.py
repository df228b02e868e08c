"""The classifying request sent without the ollama client carries the client's exact bytes.

A recording server on a real loopback socket keeps each request's raw body and headers; the
official client's ``generate`` and the batch's direct request are sent to it with the same
prompts, and must be indistinguishable on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import ollama
import pytest
from aiohttp import web

from moderation.model.host import (
    OllamaHost,
    answer_request,
    default_transport_factory,
    tls_context,
)
from moderation.model.wire import GenerateBody, parse
from moderation.settings import Settings

PROMPTS = [
    "plain",
    'quotes " and \\ backslashes \n newlines \t tabs',
    "unicode: café ＜/comment＞ \u200b 😀 \ue000",
    "",
]
ANSWER = {
    "model": "m",
    "response": '{"label": "positive"}',
    "done": True,
    "logprobs": [{"token": "pos", "logprob": -0.1, "top_logprobs": []}],
}


async def _recorded(send: Any) -> list[tuple[bytes, dict[str, str]]]:
    seen: list[tuple[bytes, dict[str, str]]] = []

    async def generate(request: web.Request) -> web.Response:
        seen.append((await request.read(), dict(request.headers)))
        return web.json_response(ANSWER)

    app = web.Application()
    app.router.add_post("/api/generate", generate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await send(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    return seen


def _comparable(headers: dict[str, str]) -> dict[str, str]:
    # Transport details that differ between any two HTTP stacks and say nothing of the request.
    skip = {"host", "accept-encoding", "connection"}
    return {k.lower(): v for k, v in headers.items() if k.lower() not in skip}


@pytest.mark.parametrize("structured", [True, False])
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_direct_request_sends_the_clients_bytes(structured: bool, transport: str) -> None:
    fields = answer_request(structured)

    async def official(url: str) -> None:
        client = ollama.AsyncClient(host=url)
        try:
            for prompt in PROMPTS:
                await client.generate(model="sentiments", prompt=prompt, **fields)
        finally:
            await client.close()

    async def direct(url: str) -> None:
        settings = Settings(ollama_host=url, http_transport=transport, structured_output=structured)
        host = OllamaHost(settings.hosts[0], settings, default_transport_factory(settings))
        try:
            for prompt in PROMPTS:
                verdict = await host.classify("sentiments", prompt)
                assert verdict.label is not None and verdict.label.value == "positive"
        finally:
            await host.close()

    expected = asyncio.run(_recorded(official))
    sent = asyncio.run(_recorded(direct))
    assert [body for body, _ in sent] == [body for body, _ in expected]
    assert [_comparable(h) for _, h in sent] == [_comparable(h) for _, h in expected]
    assert json.loads(sent[1][0])["prompt"] == PROMPTS[1]


def test_body_template_places_the_prompt_once() -> None:
    body = GenerateBody("m", answer_request(True))
    assert json.loads(body.encode("x"))["prompt"] == "x"
    assert json.loads(body.encode('"}')) == {**json.loads(body.encode("x")), "prompt": '"}'}


@pytest.mark.parametrize(
    "raw",
    [b"<html>oops</html>", b"[1, 2]", b'{"response": 3}', b'{"response": "x", "logprobs": 1}'],
)
def test_what_the_clients_model_refuses_is_invalid(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse(raw)


def test_a_plain_http_host_loads_no_certificate_and_trusts_none() -> None:
    plain = tls_context("http://127.0.0.1:11434")
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    secure = tls_context("https://ollama.example")
    assert secure.cert_store_stats()["x509_ca"] > 0
    assert secure.verify_mode == ssl.CERT_REQUIRED and secure.check_hostname
    assert tls_context("HTTP://other:1") is plain and tls_context("https://u:p@other") is secure
    settings = Settings(ollama_host="http://127.0.0.1:11434")
    host = OllamaHost(settings.hosts[0], settings, default_transport_factory(settings))
    assert host.sender._ssl is plain  # type: ignore[attr-defined]
    asyncio.run(host.close())


def test_a_handshake_under_the_plain_http_context_fails_verification(tmp_path: Path) -> None:
    """Were a plain-http host's connection ever to speak TLS, no certificate would pass."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command makes the test server's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
    names = ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *request.split(), *names], check=True, capture_output=True)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(connections: int) -> None:
        for _ in range(connections):
            conn, _ = listener.accept()
            with contextlib.suppress(ssl.SSLError, OSError):
                server_context.wrap_socket(conn, server_side=True).close()
            conn.close()

    server = threading.Thread(target=serve, args=(2,), daemon=True)
    server.start()

    def handshake(context: ssl.SSLContext) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()

    trusting = ssl.create_default_context(cafile=str(cert))
    handshake(trusting)  # the server's certificate is good for whoever trusts it
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tls_context("http://127.0.0.1"))
    server.join(10)
    listener.close()
