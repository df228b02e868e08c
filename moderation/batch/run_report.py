"""What a batch reports: its counts, status, exit code and a compact record per decision.

``RunReport.to_json`` is the documented ``--json`` object; the counts are taken from the
decisions the writer actually recorded, never from what was attempted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moderation.errors import LeaseLost
from moderation.storage.audit import Decision
from moderation.storage.memory import Identity
from moderation.vocabulary import ExitCode, Outcome, RunStatus


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the report keeps of a decision: never the whole body (a backlog can be huge)."""

    comment_id: Any
    label: str | None
    outcome: str
    error: str | None
    latency: float | None
    excerpt: str
    coverage: str
    confidence: float | None = None
    rule: str | None = None
    answer_of: str | None = None
    # The author's record in a few characters (``first``, ``3✓ 1✗``), where the site tells it.
    author: str | None = None

    @classmethod
    def of(cls, decision: Decision) -> DecisionRecord:
        excerpt = " ".join(decision.comment.body[:200].split())[:60]
        return cls(
            decision.comment.id,
            decision.label,
            decision.outcome,
            decision.error,
            decision.latency,
            excerpt,
            decision.coverage,
            decision.confidence,
            decision.rule,
            decision.answer_of,
            None if decision.comment.author is None else decision.comment.author.summary,
        )


@dataclass
class RunReport:
    """The result of one batch; ``to_json`` is the documented ``--json`` object."""

    run_id: str | None
    dry_run: bool
    identity: Identity | None = None
    decisions: list[DecisionRecord] = field(default_factory=list)
    tally: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((Outcome.APPROVED, Outcome.HELD, Outcome.FAILED), 0)
    )
    skipped: int = 0
    rejected: int = 0
    # Decisions on another copy's model answer (same text, model, prompt): requests saved.
    reused: int = 0
    circuit_open: bool = False
    deadline_reached: bool = False
    lease_lost: bool = False
    cancelled: bool = False
    # Why the model may not approve (unqualified, or its reversal-rate brake); None when it may.
    unqualified: str | None = None
    # The confidence threshold the batch applied: the floor, or the model's qualified one.
    threshold: float | None = None
    # Notifications after the batch: deliveries sent, failed and suppressed by the rate limit.
    notifications: dict[str, int] = field(
        default_factory=lambda: {"sent": 0, "failed": 0, "suppressed": 0}
    )

    def add(self, decision: Decision) -> None:
        self.decisions.append(DecisionRecord.of(decision))
        self.tally[decision.outcome] += 1
        if decision.answer_of is not None:
            self.reused += 1

    def count(self, outcome: str) -> int:
        return self.tally[outcome]

    @property
    def exit_code(self) -> int:
        if self.lease_lost:
            return LeaseLost.exit_code
        if self.unqualified is not None:
            return ExitCode.UNQUALIFIED
        incomplete = self.circuit_open or self.deadline_reached or self.cancelled
        return ExitCode.PARTIAL if incomplete or self.count(Outcome.FAILED) else ExitCode.OK

    @property
    def status(self) -> RunStatus:
        if self.lease_lost:
            return RunStatus.FENCED
        if self.circuit_open:
            return RunStatus.CIRCUIT_OPEN
        if self.deadline_reached:
            return RunStatus.DEADLINE
        if self.cancelled:
            return RunStatus.CANCELLED
        if self.unqualified is not None:
            return RunStatus.UNQUALIFIED
        return RunStatus.DONE

    def counts(self) -> dict[str, int]:
        return {
            "considered": len(self.decisions),
            "approved": self.count(Outcome.APPROVED),
            "held": self.count(Outcome.HELD),
            "failed": self.count(Outcome.FAILED),
            "skipped": self.skipped,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            **self.counts(),
            "rejected": self.rejected,
            "reused": self.reused,
            "status": self.status,
            "threshold": self.threshold,
            "unqualified": self.unqualified,
            "model": self.identity.model if self.identity else None,
            "model_digest": self.identity.model_digest if self.identity else None,
            "prompt_hash": self.identity.prompt_hash if self.identity else None,
            "notifications": dict(self.notifications),
            "decisions": [
                {
                    "comment_id": d.comment_id,
                    "label": d.label,
                    "outcome": d.outcome,
                    "error": d.error,
                    "coverage": d.coverage,
                    "confidence": d.confidence,
                    "rule": d.rule,
                    "answer_of": d.answer_of,
                }
                for d in self.decisions
            ],
        }
