"""The classifying request on the wire: the same bytes the ollama client sends, for less CPU.

One ``/api/generate`` request per comment is the batch's hottest path, and most of its CPU
went to the client rather than to the request: a pydantic request model built and dumped, an
httpx request built, its URL merged and its cookies extracted, the body encoded again by
the transport, and a pydantic response model validated (every log probability of it). Only the
prompt changes from one request to the next, so the body is the ollama client's own
serialisation of its ``GenerateRequest`` cut once around the prompt, and each request only
encodes the prompt between the two halves. The response is read as plain JSON.

Everything else (listing models, the warm-up, the log-probability probe, creating models)
still goes through the ollama client. Errors look as the client's do: an HTTP error status
raises ``ollama.ResponseError`` with the server's message; the rest is left to
``host.describe``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import ollama

# Not exported by the package; the version is pinned (pyproject.toml) and tests/unit/test_wire.py
# compares the bytes with the client's own, so a change of either shows at once.
from ollama._client import CONNECTION_ERROR_MESSAGE
from ollama._types import GenerateRequest

GENERATE_PATH = "/api/generate"
# Stands for the prompt in the serialised template; private-use characters, never in JSON's
# own syntax, so it is found exactly once.
_SENTINEL = "\ue000prompt\ue001"


def _dumps(value: Any) -> str:
    # Exactly how httpx encodes ``json=`` (httpx._content.encode_json), which the ollama
    # client uses: the bytes on the wire stay those of the official client.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class Generated:
    """What a classification needs of Ollama's answer."""

    response: str | None
    # Ollama's ``logprobs`` entries as plain mappings (``token``, ``logprob``, ``top_logprobs``).
    logprobs: list[Any] | None


class GenerateBody:
    """The request body for one model and set of request fields, any prompt."""

    def __init__(self, model: str, fields: dict[str, Any]) -> None:
        request = GenerateRequest(model=model, prompt=_SENTINEL, stream=False, **fields)
        text = _dumps(request.model_dump(exclude_none=True))
        marker = _dumps(_SENTINEL)
        if text.count(marker) != 1:
            raise AssertionError("the prompt's place in the request body is ambiguous")
        before, after = text.split(marker)
        self._before = before.encode("utf-8")
        self._after = after.encode("utf-8")

    def encode(self, prompt: str) -> bytes:
        return b"".join((self._before, _dumps(prompt).encode("utf-8"), self._after))


def parse(raw: bytes) -> Generated:
    """The answer's text and log probabilities; ValueError when it is not Ollama's JSON."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the response is not a JSON object")
    response = data.get("response")
    logprobs = data.get("logprobs")
    # What the client's response model would refuse.
    if not (response is None or isinstance(response, str)):
        raise ValueError("the response's text is not a string")
    if not (logprobs is None or isinstance(logprobs, list)):
        raise ValueError("the response's logprobs are not a list")
    return Generated(response, logprobs)


class Sender(Protocol):
    async def post(self, body: bytes) -> bytes: ...
    async def close(self) -> None: ...


class HttpxSender:
    """Through the ollama client's own httpx client: respx sees these requests, and tests
    that assert request bodies see the bytes every transport sends."""

    def __init__(self, client: ollama.AsyncClient) -> None:
        self._client: httpx.AsyncClient = client._client

    async def post(self, body: bytes) -> bytes:
        try:
            response = await self._client.post(GENERATE_PATH, content=body)
        except httpx.ConnectError:
            # As the ollama client maps it.
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        if response.is_error:
            raise ollama.ResponseError(response.text, response.status_code)
        return response.content

    async def close(self) -> None:
        """The client belongs to the host, which closes it."""


class AiohttpSender:
    """Straight through aiohttp, with the ollama client's headers and base URL."""

    def __init__(self, client: ollama.AsyncClient, connections: int, ssl: Any) -> None:
        base: httpx.URL = client._client.base_url
        self._url = str(base.join(GENERATE_PATH.lstrip("/")))
        self._headers = dict(client._client.headers)
        self._connections = connections
        self._ssl = ssl
        self._session: Any = None

    def _open(self) -> Any:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl)
        # No timeout of aiohttp's own: the caller's asyncio.timeout bounds the whole call.
        return aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def post(self, body: bytes) -> bytes:
        if self._session is None:
            self._session = self._open()  # inside the running loop, where aiohttp wants it
        async with self._session.post(self._url, data=body) as response:
            raw: bytes = await response.read()
            if response.status >= 400:
                raise ollama.ResponseError(raw.decode("utf-8", "replace"), response.status)
            return raw

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
