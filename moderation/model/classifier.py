"""Spread classification over one or more Ollama hosts, never over their capacity.

Each host has ``slots`` requests in flight at most: Ollama queues the rest, and time spent in
its queue counts against the request timeout, so more would only turn into timeouts. A request
goes to the healthy host with the lowest share of busy slots; a host that keeps failing is
rested for a while and its requests go to the others; a run of consecutive server failures
opens the circuit and the batch stops asking.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from moderation.errors import ConfigurationError, ModelMissing, OllamaUnavailable
from moderation.model.host import (
    OllamaHost,
    TransportFactory,
    Verdict,
    answer_identity,
    default_transport_factory,
)
from moderation.model.prompts import PromptTemplate
from moderation.settings import Settings
from moderation.storage.memory import Identity

log = logging.getLogger(__name__)

HOST_FAILURES_BEFORE_REST = 3
HOST_REST_SECONDS = 30.0


class Classifier(Protocol):
    """What the pipeline needs; tests pass a fake with the same shape."""

    slots: int
    circuit_open: bool

    async def prepare(self) -> Identity: ...
    async def warm_up(self) -> None: ...
    async def classify(self, text: str) -> Verdict: ...
    async def close(self) -> None: ...


class OllamaClassifier:
    def __init__(
        self,
        settings: Settings,
        prompt: PromptTemplate,
        transport: TransportFactory | None = None,
    ) -> None:
        self.settings = settings
        self.prompt = prompt
        factory = transport or default_transport_factory(settings)
        self.hosts = [OllamaHost(spec, settings, factory) for spec in settings.hosts]
        self._all_hosts = list(self.hosts)
        self.slots = sum(host.slots for host in self.hosts)
        self.circuit_open = False
        self._consecutive_failures = 0
        self._busy = {host.url: 0 for host in self.hosts}
        self._freed = asyncio.Condition()

    async def prepare(self) -> Identity:
        """Check the model on every host (cheap: one listing); drop hosts that cannot serve."""
        model = self.settings.model
        await self._on_every_host(lambda host: host.check_model(model))
        return self._identity(model)

    async def warm_up(self) -> None:
        """Load the model everywhere before the first comment; skipped when there is no work,
        so an hourly run with nothing pending never makes Ollama load the model."""
        model = self.settings.model
        await self._on_every_host(lambda host: host.warm_up(model))
        if self.settings.min_confidence > 0:
            await self.check_logprobs()

    async def check_logprobs(self) -> None:
        """Leave out hosts that send no log probabilities; refuse when none does."""
        model = self.settings.model
        await self._on_every_host(lambda host: host.check_logprobs(model))

    async def _on_every_host(self, action: Callable[[OllamaHost], Awaitable[object]]) -> None:
        results = await asyncio.gather(*(action(h) for h in self.hosts), return_exceptions=True)
        ready = [
            h for h, r in zip(self.hosts, results, strict=True) if not isinstance(r, BaseException)
        ]
        errors = [r for r in results if isinstance(r, BaseException)]
        if not ready:
            missing = [e for e in errors if isinstance(e, ModelMissing)]
            raise (missing or errors)[0]
        for host, result in zip(self.hosts, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("leaving out %s for this batch: %s", host.name, result)
        self.hosts = ready
        self.slots = sum(host.slots for host in ready)
        self._busy = {host.url: 0 for host in ready}

    def _identity(self, model: str) -> Identity:
        digests = {host.digest for host in self.hosts}
        if len(digests) > 1:
            raise ConfigurationError(
                f"the hosts serve different versions of {model!r}; "
                "run `moderate model create` against each of them"
            )
        return Identity(
            model,
            self.hosts[0].digest,
            self.prompt.hash,
            answer_identity(self.settings.structured_output),
            min_confidence=self.settings.min_confidence,
        )

    async def classify(self, text: str) -> Verdict:
        prompt = self.prompt.render(text, self.settings.max_comment_chars)
        tried: set[str] = set()
        while True:
            host = await self._take_slot(exclude=tried)
            try:
                verdict = await host.classify(self.settings.model, prompt)
            finally:
                await self._give_slot(host)
            self._note(host, verdict)
            tried.add(host.url)
            # A server failure on one host is not the comment's fault: try it on another.
            if not verdict.server_error or self.circuit_open or not self._others(tried):
                return verdict

    def _others(self, tried: set[str]) -> bool:
        now = time.monotonic()
        return any(h.url not in tried and h.rested_until <= now for h in self.hosts)

    async def _take_slot(self, exclude: set[str]) -> OllamaHost:
        async with self._freed:
            while True:
                host = self._least_busy(exclude)
                if host is not None:
                    self._busy[host.url] += 1
                    return host
                await self._freed.wait()

    def _least_busy(self, exclude: set[str]) -> OllamaHost | None:
        now = time.monotonic()
        candidates = [h for h in self.hosts if h.url not in exclude and self._busy[h.url] < h.slots]
        healthy = [h for h in candidates if h.rested_until <= now]
        # When every host is resting, probe them anyway: the circuit breaker bounds the cost.
        pool = healthy or candidates
        if not pool:
            return None
        return min(pool, key=lambda h: self._busy[h.url] / h.slots)

    async def _give_slot(self, host: OllamaHost) -> None:
        async with self._freed:
            self._busy[host.url] -= 1
            self._freed.notify()

    def _note(self, host: OllamaHost, verdict: Verdict) -> None:
        if not verdict.server_error:
            host.consecutive_failures = 0
            self._consecutive_failures = 0
            return
        host.consecutive_failures += 1
        self._consecutive_failures += 1
        if host.consecutive_failures >= HOST_FAILURES_BEFORE_REST:
            host.rested_until = time.monotonic() + HOST_REST_SECONDS
            log.warning(
                "resting %s for %.0fs after repeated failures", host.name, HOST_REST_SECONDS
            )
        if self._consecutive_failures >= self.settings.circuit_breaker and not self.circuit_open:
            self.circuit_open = True
            log.error(
                "%d consecutive server failures: stopping this batch", self._consecutive_failures
            )

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self._all_hosts), return_exceptions=True)


__all__ = ["Classifier", "OllamaClassifier", "OllamaUnavailable"]
