"""Talking to Ollama: with ``wire`` (the classifying request's bytes), the only module that
knows the ollama client and its exceptions.

Every foreign failure (``ollama.ResponseError``, the builtin ``ConnectionError``, httpx timeouts
and transport errors, a body that is not JSON) becomes either a failed :class:`Verdict` (one
comment stays pending) or, before the batch, :class:`OllamaUnavailable` / :class:`ModelMissing`.
Nothing here approves anything: it only reports what the model said.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import ollama

from moderation.errors import LogprobsUnsupported, ModelMissing, OllamaUnavailable
from moderation.model.confidence import label_confidence
from moderation.model.labels import LABEL_SCHEMA, Label, parse_label
from moderation.model.wire import AiohttpSender, GenerateBody, Generated, HttpxSender, Sender, parse
from moderation.redact import redact, redact_url
from moderation.settings import HostSpec, Settings
from moderation.tls import certificate_failure, tls_context

log = logging.getLogger(__name__)

# Sent with every request: greedy decoding, so one model + prompt + comment gives one answer.
REQUEST_OPTIONS: dict[str, Any] = {"temperature": 0.0}
# Alternatives per answer token, from which the label's confidence is computed. The three
# labels' first tokens are among the first few for any model that follows the prompt; more
# would only make every response larger. Ollama accepts up to 20.
TOP_LOGPROBS = 10
# The start-up check for log probabilities: any prompt does, one token is enough.
PROBE_PROMPT = "ok"
# The first Ollama release that returns log probabilities (``logprobs``/``top_logprobs``).
LOGPROBS_SINCE = (0, 12, 11)


def answer_request(structured_output: bool) -> dict[str, Any]:
    """What every classifying request sends beside the model and prompt, as ``generate``'s
    keyword arguments; also the record of it in the decisions' identity (``answer_identity``)."""
    return {
        "format": LABEL_SCHEMA if structured_output else None,
        "options": REQUEST_OPTIONS,
        "logprobs": True,
        "top_logprobs": TOP_LOGPROBS,
    }


def answer_identity(structured_output: bool) -> dict[str, Any]:
    """``answer_request`` flattened, in the order the decisions' memory has always stored it."""
    request = answer_request(structured_output)
    flat: dict[str, Any] = dict(request["options"])
    if request["format"] is not None:
        flat["format"] = request["format"]
    flat.update(logprobs=request["logprobs"], top_logprobs=request["top_logprobs"])
    return flat


# A transport for a host's URL with so many connections; None: the client's own.
TransportFactory = Callable[[str, int], httpx.AsyncBaseTransport | None]
# Whether the classifying requests go straight through aiohttp (see ``wire``): the default
# transport factory says so; any other (a test's, httpx's own) keeps them on the client's.
_DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one model call produced. ``label`` is None whenever the call failed in any way."""

    label: Label | None
    raw_answer: str | None
    error: str | None
    latency: float
    host: str | None
    # The server failed (not the answer): counts toward resting a host and the circuit breaker.
    server_error: bool = False
    # Probability of the label among the three (see confidence.py); None when the server sent
    # no log probabilities or the label could not be traced in them.
    confidence: float | None = None


class ServerFailure(Exception):
    """A request failed at the server or on the wire; the message is safe to store."""


def default_transport_factory(settings: Settings) -> TransportFactory:
    """aiohttp for the classifying requests, straight (see ``wire``); httpx's own transport
    for the few others the ollama client makes (the model check, the warm-up, the probe).

    aiohttp is imported only when the first comment is classified: a batch with nothing to
    ask never pays for it. The httpx transport stays selectable for every request
    (MODERATION_HTTP_TRANSPORT=httpx): respx only sees requests that go through it, and the
    classifying requests then go through the client's own httpx client, with the same bytes.
    """
    if settings.http_transport == "httpx":
        return lambda _url, _slots: None

    trust = settings.certificate_authorities

    def make(url: str, slots: int) -> httpx.AsyncBaseTransport:
        limits = httpx.Limits(max_connections=slots + 4, max_keepalive_connections=slots + 4)
        verify = tls_context(url, trust)
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=verify)

    make.sends = _DIRECT  # type: ignore[attr-defined]
    return make


class OllamaHost:
    """One model server: a client per timeout, a digest once checked, and its health."""

    def __init__(self, spec: HostSpec, settings: Settings, transport: TransportFactory) -> None:
        self.url = spec.url  # for the client only: it may hold credentials
        self.name = spec.safe_url  # for everything shown or stored
        self.slots = spec.concurrency
        self.settings = settings
        direct = getattr(transport, "sends", None) == _DIRECT
        # Used by the clients' own transports when the factory gives none (httpx's).
        verify = tls_context(spec.url, settings.certificate_authorities)
        self.client = _client(
            spec.url, settings.timeout, transport(spec.url, spec.concurrency), verify
        )
        self.load_client = _client(spec.url, settings.load_timeout, transport(spec.url, 2), verify)
        # With aiohttp, the classifying requests go straight through it (the client's own
        # transport then serves only the log-probability probe).
        self.sender: Sender = (
            AiohttpSender(self.client, spec.concurrency + 4, verify)
            if direct
            else HttpxSender(self.client)
        )
        self._bodies: dict[str, GenerateBody] = {}
        self.digest: str | None = None
        self.consecutive_failures = 0
        self.rested_until = 0.0

    async def close(self) -> None:
        await self.sender.close()
        await self.client.close()
        await self.load_client.close()

    async def check_model(self, model: str) -> str:
        """The model's digest on this host; ModelMissing or OllamaUnavailable otherwise."""
        try:
            listing = await asyncio.wait_for(self.load_client.list(), self.settings.timeout)
        except Exception as exc:
            raise OllamaUnavailable(
                f"Ollama at {self.name} is unreachable: {describe(exc)}{start_hint(exc)}"
            ) from exc
        for entry in listing.models:
            if entry.model in (model, f"{model}:latest"):
                self.digest = entry.digest or ""
                return self.digest
        raise ModelMissing(
            f"model {model!r} not found on {self.name}; run `moderate model create` first"
        )

    async def server_version(self) -> str | None:
        """The server's own version (``/api/version``: a read that loads no model); None when
        it does not say. The ollama client has no call for it, so its raw request is used."""
        try:
            response = await asyncio.wait_for(
                self.load_client._request_raw("GET", "/api/version"), self.settings.timeout
            )
            version = response.json().get("version")
        except Exception:
            return None
        return str(version) if version else None

    async def warm_up(self, model: str) -> None:
        """Load the model with the long load timeout, so that no comment pays the cold start.

        An empty prompt only loads the model. If a short timeout cut the load off, the server
        would abort it, and every following request would start the load again.
        """
        try:
            await asyncio.wait_for(
                self.load_client.generate(model=model, prompt=""), self.settings.load_timeout
            )
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise ModelMissing(
                    f"model {model!r} not found on {self.name}; run `moderate model create` first"
                ) from exc
            raise OllamaUnavailable(
                f"loading {model!r} on {self.name} failed: {describe(exc)}"
            ) from exc
        except Exception as exc:
            raise OllamaUnavailable(
                f"loading {model!r} on {self.name} failed: {describe(exc)}"
            ) from exc

    async def classify(self, model: str, prompt: str) -> Verdict:
        started = time.perf_counter()
        try:
            response = await self._generate_with_retries(model, prompt)
        except ServerFailure as exc:
            return Verdict(None, None, str(exc), time.perf_counter() - started, self.name, True)
        latency = time.perf_counter() - started
        raw = response.response or ""
        label = parse_label(raw)
        error = None
        confidence = None
        if label is None:
            error = "empty answer" if not raw.strip() else "unparseable answer"
        else:
            confidence = label_confidence(label.value, response.logprobs)
        return Verdict(label, raw, error, latency, self.name, confidence=confidence)

    async def check_logprobs(self, model: str) -> None:
        """Refuse a host that ignores ``logprobs`` (Ollama before 0.12.11).

        Without log probabilities no answer has a confidence, and with the gate on nothing
        would ever be approved; better to say so once than to hold every comment. One tiny
        real request, after the warm-up, so it costs a token and no load.
        """
        try:
            response = await self._generate_with_retries(model, PROBE_PROMPT, probe=True)
        except ServerFailure as exc:
            raise OllamaUnavailable(f"probing {model!r} on {self.name} failed: {exc}") from exc
        if not response.logprobs or not response.logprobs[0].top_logprobs:
            raise LogprobsUnsupported(
                f"Ollama at {self.name} returned no logprobs, so no answer can have a "
                "confidence: upgrade Ollama to 0.12.11 or later, or set "
                "MODERATION_MIN_CONFIDENCE=0 to approve without one"
            )

    async def _generate_with_retries(
        self, model: str, prompt: str, probe: bool = False
    ) -> Generated:
        settings = self.settings
        # The first attempt is made outside the retry machinery, whose set-up costs more CPU
        # than the request itself; only a transient failure brings it in.
        started = time.monotonic()
        try:
            return await self._generate_once(model, prompt, probe)
        except _Transient as exc:
            first = exc
        remaining = settings.timeout - (time.monotonic() - started)
        if settings.retries == 0 or remaining <= 0:
            raise first
        failure: _Transient | None = first
        import stamina  # only once a request has failed: most batches never retry

        # Retries stay inside the request's own budget: a comment never costs more than
        # MODERATION_TIMEOUT, so the batch deadline and the lease stay predictable. The first
        # failure is replayed as the context's first attempt, so that waits, attempt counts
        # and stamina's retry notices are those of one context around every attempt.
        async for attempt in stamina.retry_context(
            on=_is_transient,
            attempts=settings.retries + 1,
            timeout=remaining,
            wait_initial=0.1,
            wait_max=2.0,
            wait_jitter=0.2,
        ):
            with attempt:
                if failure is not None:
                    replay, failure = failure, None
                    raise replay
                return await self._generate_once(model, prompt, probe)
        raise AssertionError("unreachable")

    async def _generate_once(self, model: str, prompt: str, probe: bool = False) -> Generated:
        try:
            # asyncio's timeout bounds the whole call; httpx's only bounds each socket read.
            # A timeout scope rather than wait_for: wait_for wraps every request in a task of
            # its own, a cost paid on each of thousands of calls per batch.
            async with asyncio.timeout(self.settings.timeout):
                if probe:
                    probed = await self.client.generate(
                        model=model,
                        prompt=prompt,
                        options={**REQUEST_OPTIONS, "num_predict": 1},
                        logprobs=True,
                        top_logprobs=1,
                    )
                    logprobs = None if probed.logprobs is None else list(probed.logprobs)
                    return Generated(probed.response, logprobs)
                return parse(await self.sender.post(self._body(model).encode(prompt)))
        except _Transient:
            raise
        except Exception as exc:
            failure = ServerFailure(describe(exc, self.settings.timeout))
            if _is_transient_cause(exc):
                raise _Transient(str(failure)) from exc
            raise failure from exc

    def _body(self, model: str) -> GenerateBody:
        body = self._bodies.get(model)
        if body is None:
            fields = answer_request(self.settings.structured_output)
            body = self._bodies[model] = GenerateBody(model, fields)
        return body


class _Transient(ServerFailure):
    """A failure worth retrying: the server said busy, or the connection was reset."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient)


def _is_transient_cause(exc: BaseException) -> bool:
    if isinstance(exc, ollama.ResponseError):
        return exc.status_code in (429, 502, 503, 504)
    # A reset or a refused connection; not a timeout, which already spent the budget.
    return _wire_failure(exc) in ("refused", "reset")


def _wire_failure(exc: BaseException) -> str | None:
    """'tls', 'refused', 'reset', 'timeout' or None, whichever transport raised it.

    The httpx transport gives ConnectionError (via the ollama client) or RemoteProtocolError;
    the direct classifying request gives aiohttp's own exceptions (and a transport that wraps
    aiohttp in httpx, such as httpx-aiohttp, chains them). A failed TLS handshake looks like a
    refused connection to both, and is not one: no retry makes the certificate trusted.
    """
    if certificate_failure(exc) is not None:
        return "tls"
    # Not imported here: until the first classifying request, no aiohttp error can exist.
    aiohttp: Any = sys.modules.get("aiohttp")
    for raised in (exc, exc.__cause__) if aiohttp is not None else ():
        if isinstance(raised, aiohttp.ClientConnectorError):
            return "refused"
        if isinstance(raised, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
            return "reset"
    if isinstance(exc, ConnectionError):
        return "refused"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "reset"
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    return None


def _is_aiohttp_error(exc: BaseException) -> bool:
    aiohttp: Any = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def offers_logprobs(version: str) -> bool | None:
    """Whether an Ollama of this version returns log probabilities; None when the version
    cannot be read (a development build says 0.0.0)."""
    parts = version.split("-", 1)[0].lstrip("v").split(".")
    try:
        numbers = tuple(int(part) for part in parts[:3])
    except ValueError:
        return None
    if len(numbers) < 3 or numbers == (0, 0, 0):
        return None
    return numbers >= LOGPROBS_SINCE


def start_hint(exc: BaseException) -> str:
    """What to do when nothing answers at the model server's address (not when it answered
    badly, or its certificate is not trusted: starting it again would not help)."""
    if _wire_failure(exc) == "refused" or isinstance(exc, httpx.ConnectError):
        return "; start it with `ollama serve`, or set OLLAMA_HOST to where it listens"
    return ""


def describe(exc: BaseException, timeout: float | None = None) -> str:
    """A short, storable reason for a failed call (no secrets, no huge bodies)."""
    if isinstance(exc, ollama.ResponseError):
        return f"HTTP {exc.status_code}: {redact(str(exc.error))[:200]}"
    wire = _wire_failure(exc)
    if wire == "tls":
        return f"TLS: {certificate_failure(exc)}"
    if wire == "refused":
        return "connection refused"
    if wire == "reset":
        return "connection reset by the server"
    if wire == "timeout":
        return f"timed out after {timeout:g}s" if timeout else "timed out"
    if isinstance(exc, httpx.TransportError) or _is_aiohttp_error(exc):
        return f"connection error: {type(exc).__name__}"
    if isinstance(exc, json.JSONDecodeError | ValueError):
        return "invalid response from server (not the expected JSON)"
    # Redacted before it is cut: a cut could fall inside a URL and hide the "@" it needs.
    return f"{type(exc).__name__}: {redact(str(exc))[:200]}"


def _client(
    url: str,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None,
    verify: ssl.SSLContext,
) -> ollama.AsyncClient:
    # A transport of the factory's has its own TLS context; httpx's own is given ``verify``
    # (and, as before, trusts the environment's proxy variables).
    extra: dict[str, Any] = {"verify": verify} if transport is None else {"transport": transport}
    # host= is always explicit: the client would otherwise read OLLAMA_HOST itself.
    return ollama.AsyncClient(host=url, timeout=timeout, **extra)


def create_model(
    url: str,
    name: str,
    create_kwargs: dict[str, Any],
    timeout: float,
    settings: Settings | None = None,
) -> str:
    """Build ``name`` on one host from a parsed Modelfile; returns the server's last status.

    ``settings`` name the certificate authorities that verify an https host; without them,
    they are read from the environment as every command reads its settings.
    """
    if settings is None:
        settings = Settings()
    verify = tls_context(url, settings.certificate_authorities)
    client = ollama.Client(host=url, timeout=timeout, verify=verify)
    shown = redact_url(url)
    try:
        response = client.create(model=name, **create_kwargs)
    except ollama.ResponseError as exc:
        base = create_kwargs.get("from_")
        hint = f"; is the base model pulled (`ollama pull {base}`)?" if base else ""
        raise OllamaUnavailable(
            f"creating {name!r} on {shown} failed: {describe(exc)}{hint}"
        ) from exc
    except Exception as exc:
        raise OllamaUnavailable(
            f"Ollama at {shown} is unreachable: {describe(exc, timeout)}{start_hint(exc)}"
        ) from exc
    finally:
        client.close()
    return str(getattr(response, "status", "") or "success")
