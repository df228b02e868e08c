"""The Ollama-compatible test server, driven by the real `ollama` client.

These tests pin down two things the rest of the suite relies on: that the real client
accepts every answer the server gives (so integration tests exercise real parsing), and
which exception types the client raises for each injected fault, with both the default
httpx transport and the aiohttp transport that production uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import ollama
import pytest
from httpx_aiohttp import AiohttpTransport

from tests.fakeollama import BASE_MISSING, BUSY, FakeOllama, free_port

pytestmark = pytest.mark.integration

BASE = "qwen2.5:1.5b-instruct"
NEG = '{"label": "negative"}'
POS = '{"label": "positive"}'
RULES = [{"contains": "IDIOT", "answer": NEG}]
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}}

Transport = Callable[[], httpx.AsyncBaseTransport | None]
TRANSPORTS: dict[str, Transport] = {
    "httpx": lambda: None,
    "aiohttp": lambda: AiohttpTransport(trust_env=False),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}, rules=RULES) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOllama) -> FakeOllama:
    # One process for the module (start-up costs ~0.4 s); each test starts from a known state.
    server.configure(
        latency=0.0,
        load_latency=0.0,
        parallel=1,
        max_queue=512,
        models={"sentiments": None},
        rules=RULES,
        faults=[],
        reset_stats=True,
        unload=True,
    )
    return server


@pytest.fixture
def client(fake: FakeOllama) -> Iterator[ollama.Client]:
    with ollama.Client(host=fake.url, timeout=5) as c:
        yield c


def async_client(url: str, transport: str, timeout: float = 5) -> ollama.AsyncClient:
    made = TRANSPORTS[transport]()
    extra: dict[str, Any] = {} if made is None else {"transport": made}
    return ollama.AsyncClient(host=url, timeout=timeout, **extra)


def generate_once(url: str, transport: str, prompt: str, timeout: float = 5) -> Any:
    """One async generate call; returns the response or the exception it raised."""

    async def run() -> Any:
        c = async_client(url, transport, timeout)
        try:
            return await c.generate(model="sentiments", prompt=prompt)
        except Exception as exc:
            return exc
        finally:
            await c._client.aclose()

    return asyncio.run(run())


def test_tags_show_and_unknown_models(client: ollama.Client) -> None:
    (entry,) = client.list().models
    assert entry.model == "sentiments:latest"
    assert re.fullmatch(r"[0-9a-f]{64}", entry.digest or "")
    shown = client.show("sentiments")
    assert shown.capabilities == ["completion"] and shown.modelfile
    for call in (
        lambda: client.show("nope"),
        lambda: client.generate(model="nope", prompt="hi"),
        lambda: client.chat(model="nope", messages=[{"role": "user", "content": "hi"}]),
    ):
        with pytest.raises(ollama.ResponseError) as caught:
            call()
        assert caught.value.status_code == 404
        assert caught.value.error == "model 'nope' not found"


def test_create_registers_the_model_and_remembers_the_request(
    client: ollama.Client, fake: FakeOllama
) -> None:
    messages = [{"role": "user", "content": "nice"}, {"role": "assistant", "content": POS}]
    done = client.create(
        model="judge",
        from_=BASE,
        system="Label the comment.",
        parameters={"temperature": 0, "num_ctx": 2048},
        messages=messages,
    )
    assert done.status == "success"
    body = fake.stats()["create_bodies"][-1]
    assert body["from"] == BASE and body["messages"] == messages and body["stream"] is False
    recipe = {k: v for k, v in body.items() if k != "stream"}
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digests = {m.model: m.digest for m in client.list().models}
    assert digests["judge:latest"] == hashlib.sha256(canonical.encode()).hexdigest()
    shown = client.show("judge")
    assert "temperature 0" in (shown.parameters or "")
    assert client.generate(model="judge", prompt="fine").response == POS

    streamed = [p.status for p in client.create(model="judge2", from_="judge", stream=True)]
    assert streamed[-1] == "success" and len(streamed) > 1


def test_create_errors_like_ollama(client: ollama.Client, fake: FakeOllama) -> None:
    with pytest.raises(ollama.ResponseError) as neither:
        client.create(model="judge", system="no base")
    assert neither.value.status_code == 400
    assert neither.value.error == "neither 'from' or 'files' was specified"
    # Current Ollama ignores a `modelfile` field (old clients sent one), so such a body has
    # neither either; the current client cannot send it, hence plain httpx.
    modelfile_only = httpx.post(
        fake.url + "/api/create", json={"model": "judge", "modelfile": f"FROM {BASE}"}
    )
    assert modelfile_only.status_code == 400
    assert modelfile_only.json() == {"error": "neither 'from' or 'files' was specified"}
    with pytest.raises(ollama.ResponseError) as no_base:
        client.create(model="judge", from_="never-pulled:7b")
    assert no_base.value.status_code == 500 and no_base.value.error == BASE_MISSING


def test_generate_and_chat_follow_the_rules(client: ollama.Client, fake: FakeOllama) -> None:
    negative = client.generate(model="sentiments", prompt="you idiot", format=SCHEMA)
    assert negative.response == NEG and negative.done_reason == "stop"
    assert isinstance(negative.total_duration, int) and negative.eval_count
    assert client.generate(model="sentiments", prompt="lovely").response == POS
    replied = client.chat(
        model="sentiments",
        messages=[
            {"role": "system", "content": "idiot detector"},  # not the user's words
            {"role": "user", "content": "idiot"},
            {"role": "assistant", "content": NEG},
            {"role": "user", "content": "thanks"},
        ],
    )
    assert replied.message.role == "assistant" and replied.message.content == POS
    chunks = list(client.generate(model="sentiments", prompt="IDIOT!", stream=True))
    assert "".join(c.response or "" for c in chunks) == NEG and chunks[-1].done
    stats = fake.stats()
    assert stats["generate_bodies"][0]["format"] == SCHEMA
    assert stats["requests"] == {"/api/generate": 3, "/api/chat": 1}
    assert stats["completed"] == 4 and stats["in_flight"] == 0


def test_load_latency_only_on_the_first_request(client: ollama.Client, fake: FakeOllama) -> None:
    fake.configure(load_latency=0.4)
    started = time.perf_counter()
    warm = client.generate(model="sentiments", prompt="")
    assert time.perf_counter() - started >= 0.4
    assert warm.done and warm.done_reason == "load" and warm.response == ""
    started = time.perf_counter()
    answer = client.generate(model="sentiments", prompt="hello")
    assert time.perf_counter() - started < 0.2
    assert answer.load_duration == 0
    fake.configure(unload=True)  # a cold model again: a real request pays the load too
    answer = client.generate(model="sentiments", prompt="hello")
    assert (answer.load_duration or 0) >= 400_000_000
    fake.reset_stats()  # a statistics reset starts cold as well
    started = time.perf_counter()
    client.generate(model="sentiments", prompt="")
    assert time.perf_counter() - started >= 0.4


def test_status_faults_by_content_order_and_count(client: ollama.Client, fake: FakeOllama) -> None:
    fake.configure(
        faults=[
            {"contains": "boom", "kind": "status", "status": 503, "body": {"error": "down"}},
            {"first": 2, "kind": "status", "status": 503},
            {"every": 3, "kind": "status", "status": 500, "times": 2},
        ],
        reset_stats=True,
    )
    outcomes = []
    for prompt in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "boom"]:
        try:
            client.generate(model="sentiments", prompt=prompt)
            outcomes.append(200)
        except ollama.ResponseError as exc:
            outcomes.append(exc.status_code)
    # first 2 → 503; every 3rd → 500 twice (requests 3 and 6, not 9); "boom" → 503
    assert outcomes == [503, 503, 500, 200, 200, 500, 200, 200, 200, 503]
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model="sentiments", prompt="BOOM")
    assert caught.value.error == "down"
    assert fake.stats()["faults_served"] == 6


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reset_garbage_and_hang_faults(fake: FakeOllama, transport: str) -> None:
    fake.configure(
        faults=[
            {"contains": "reset", "kind": "reset"},
            {"contains": "garbage", "kind": "garbage"},
            {"contains": "hang", "kind": "hang"},
        ]
    )
    reset = generate_once(fake.url, transport, "reset")
    if transport == "httpx":
        assert isinstance(reset, httpx.RemoteProtocolError)
    else:
        # httpx_aiohttp maps aiohttp's ServerDisconnectedError to ConnectTimeout.
        assert isinstance(reset, httpx.ConnectTimeout)
    assert isinstance(reset, httpx.TransportError)

    garbage = generate_once(fake.url, transport, "garbage")
    assert isinstance(garbage, json.JSONDecodeError)

    async def hang_beside_a_normal_request() -> tuple[Any, Any, float]:
        c = async_client(fake.url, transport, timeout=0.5)
        try:
            started = time.perf_counter()
            hung, fine = await asyncio.gather(
                c.generate(model="sentiments", prompt="hang"),
                c.generate(model="sentiments", prompt="fine"),
                return_exceptions=True,
            )
            return hung, fine, time.perf_counter() - started
        finally:
            await c._client.aclose()

    hung, fine, elapsed = asyncio.run(hang_beside_a_normal_request())
    assert isinstance(hung, httpx.ReadTimeout)
    assert fine.response == POS  # a hung request holds no slot, even with parallel=1
    assert 0.4 < elapsed < 2
    # The client gave up, so the server cancelled the hung handler.
    deadline = time.monotonic() + 2
    while fake.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.stats()["in_flight"] == 0


def test_streaming_calls_see_faults_too(client: ollama.Client, fake: FakeOllama) -> None:
    fake.configure(
        faults=[
            {"contains": "garbage", "kind": "garbage"},
            {"contains": "busy", "kind": "status", "status": 503},
        ]
    )
    with pytest.raises(json.JSONDecodeError):
        list(client.generate(model="sentiments", prompt="garbage", stream=True))
    with pytest.raises(ollama.ResponseError) as caught:
        list(
            client.chat(
                model="sentiments", messages=[{"role": "user", "content": "busy"}], stream=True
            )
        )
    assert caught.value.status_code == 503


def test_fault_defaults_and_warm_ups(client: ollama.Client, fake: FakeOllama) -> None:
    fake.configure(
        faults=[
            {"contains": "", "kind": "status", "status": 500, "times": 1},
            {"contains": "x", "kind": "garbage"},
        ]
    )
    # Warm-ups are never faulted and do not use up a fault's `times`.
    assert client.generate(model="sentiments", prompt="").done_reason == "load"
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model="sentiments", prompt="hi")
    assert caught.value.status_code == 500 and caught.value.error == "injected"
    assert client.generate(model="sentiments", prompt="hi").response == POS  # times: 1
    raw = httpx.post(fake.url + "/api/generate", json={"model": "sentiments", "prompt": "x"})
    assert raw.status_code == 200 and raw.text == "<html>oops</html>"
    stats = fake.stats()
    assert stats["faults_served"] == 2 and stats["peak_in_flight"] == 1


def test_a_failed_start_reports_the_childs_stderr() -> None:
    # The parent passes values through unchecked, so the child's own error must surface.
    with pytest.raises(RuntimeError, match="ValueError"):
        FakeOllama(parallel="many").start()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dead_or_absent_server(transport: str) -> None:
    def assert_refused(outcome: Any) -> None:
        if transport == "httpx":
            assert isinstance(outcome, ConnectionError)  # ollama maps httpx.ConnectError
        else:
            # httpx_aiohttp maps ClientConnectorError to ConnectTimeout, not ConnectError (its
            # ClientConnectionError entry wins), so the client's ConnectionError never appears.
            assert isinstance(outcome, httpx.ConnectTimeout)
            assert "Cannot connect to host" in str(outcome)

    assert_refused(generate_once(f"http://127.0.0.1:{free_port()}", transport, "hi"))
    fake = FakeOllama(models={"sentiments": None}, latency=0.5, parallel=2).start()

    async def kill_mid_batch() -> tuple[list[Any], Any]:
        c = async_client(fake.url, transport)
        try:
            await c.generate(model="sentiments", prompt="warm")  # leaves a pooled connection
            batch = [c.generate(model="sentiments", prompt=str(i)) for i in range(3)]
            running = asyncio.gather(*batch, return_exceptions=True)
            await asyncio.sleep(0.2)
            await asyncio.to_thread(fake.kill)
            cut = await running
            after = await asyncio.gather(
                c.generate(model="sentiments", prompt="x"), return_exceptions=True
            )
            return cut, after[0]
        finally:
            await c._client.aclose()

    try:
        cut, after = asyncio.run(kill_mid_batch())
    finally:
        fake.stop()
        fake.stop()  # idempotent
    # Requests open when the server died: "Server disconnected" (no response came back).
    expected = httpx.RemoteProtocolError if transport == "httpx" else httpx.ConnectTimeout
    assert all(isinstance(r, expected) for r in cut), cut
    assert_refused(after)


def test_parallel_slots_bound_running_requests(fake: FakeOllama) -> None:
    fake.configure(parallel=4, latency=0.2)

    async def burst() -> float:
        c = async_client(fake.url, "aiohttp")
        try:
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(c.generate(model="sentiments", prompt=f"c{i}") for i in range(20))
            )
            assert all(a.response == POS for a in answers)
            return time.perf_counter() - started
        finally:
            await c._client.aclose()

    elapsed = asyncio.run(burst())
    assert 0.95 < elapsed < 1.6  # 20 requests / 4 slots × 0.2 s
    stats = fake.stats()
    assert stats["peak_running"] == 4
    assert stats["peak_in_flight"] == 20
    assert stats["completed"] == 20 and stats["in_flight"] == 0


def test_a_full_queue_answers_503_busy(fake: FakeOllama) -> None:
    fake.configure(parallel=1, max_queue=2, latency=0.3)

    async def burst() -> list[Any]:
        c = async_client(fake.url, "httpx")
        try:
            calls = []
            for i in range(6):
                calls.append(asyncio.ensure_future(c.generate(model="sentiments", prompt=f"{i}")))
                await asyncio.sleep(0.02)  # a known arrival order
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await c._client.aclose()

    results = asyncio.run(burst())
    assert [getattr(r, "response", None) for r in results[:3]] == [POS] * 3
    for refused in results[3:]:
        assert isinstance(refused, ollama.ResponseError)
        assert refused.status_code == 503 and refused.error == BUSY
    stats = fake.stats()
    assert stats["rejected_busy"] == 3 and stats["peak_waiting"] == 2


def test_stats_reset_and_unknown_paths(fake: FakeOllama, client: ollama.Client) -> None:
    client.generate(model="sentiments", prompt="hi")
    with httpx.Client(base_url=fake.url) as raw:
        missing = raw.get("/api/nothing-here")
        assert missing.status_code == 404
        assert raw.get("/").text == "Ollama is running"
        bad = raw.post("/_fake/config", json={"no_such_setting": 1})
        assert bad.status_code == 400
    stats = fake.stats()
    assert stats["requests"]["/api/generate"] == 1 and stats["requests"]["/api/nothing-here"] == 1
    assert len(stats["generate_bodies"]) == 1
    fake.reset_stats()
    stats = fake.stats()
    assert stats["requests"] == {} and stats["generate_bodies"] == [] and stats["completed"] == 0
