"""A scripted in-process classifier, for pipeline tests that are not about HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from moderation.model.host import Verdict
from moderation.model.labels import Label, parse_label
from moderation.storage.memory import Identity

Answer = str | Exception | Callable[[str], str]


class FakeClassifier:
    """Answers by the first rule whose key is in the text; records every text it was asked."""

    def __init__(
        self,
        rules: dict[str, Answer] | None = None,
        default: Answer = '{"label": "positive"}',
        *,
        slots: int = 1,
        digest: str = "sha256:fake",
        prompt_hash: str = "p" * 64,
        delay: float = 0.0,
        server_errors: set[str] | None = None,
        confidence: float | None = 1.0,
        confidences: dict[str, float | None] | None = None,
    ) -> None:
        self.rules = rules or {}
        self.default = default
        self.slots = slots
        self.circuit_open = False
        self.digest = digest
        self.prompt_hash = prompt_hash
        self.delay = delay
        self.server_errors = server_errors or set()
        # The confidence of a parsed answer: by the first key of ``confidences`` in the text.
        self.confidence = confidence
        self.confidences = confidences or {}
        self.asked: list[str] = []
        self.closed = False
        self.warm_ups = 0

    async def prepare(self) -> Identity:
        return Identity("sentiments", self.digest, self.prompt_hash, {"temperature": 0.0})

    async def warm_up(self) -> None:
        self.warm_ups += 1

    async def classify(self, text: str) -> Verdict:
        self.asked.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = next((a for key, a in self.rules.items() if key in text), self.default)
        if any(key in text for key in self.server_errors):
            return Verdict(None, None, "HTTP 500: boom", 0.001, "fake", server_error=True)
        if callable(answer):
            answer = answer(text)
        if isinstance(answer, Exception):
            return Verdict(None, None, str(answer), 0.001, "fake", server_error=True)
        label: Label | None = parse_label(answer)
        error = None if label else "unparseable answer"
        confidence = next(
            (c for key, c in self.confidences.items() if key in text), self.confidence
        )
        return Verdict(
            label, answer, error, 0.001, "fake", confidence=confidence if label else None
        )

    async def close(self) -> None:
        self.closed = True
