"""The classifying request sent without the ollama client carries the client's exact bytes.

A recording server on a real loopback socket keeps each request's raw body and headers; the
official client's ``generate`` and the batch's direct request are sent to it with the same
prompts, and must be indistinguishable on the wire.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import ollama
import pytest
from aiohttp import web

from moderation.model.host import OllamaHost, answer_request, default_transport_factory
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
