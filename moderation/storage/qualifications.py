"""Qualifications (``moderation_qualifications``): the evidence a model must have before it
approves anything, found again by the key of everything that changes its answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.formatting import percent
from moderation.storage.tables import qualifications

# Failed answers (timeouts, server errors, unparseable) a qualification may have and stand.
MAX_FAILED_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class Qualification:
    """A model and prompt evaluated on labelled fixtures as a batch would ask them."""

    key: str
    model: str
    model_digest: str | None
    prompt_hash: str
    fixtures_hash: str
    n: int
    n_positive: int
    n_neutral: int
    n_negative: int
    n_approve: int  # fixtures whose truth is a human's approval (exported from a site)
    n_hold: int  # fixtures that must be held: negative, or a human's hold
    max_false_approval: float
    threshold: float | None  # None: no threshold keeps the bound within the limit
    false_approval_rate: float | None
    false_approval_bound: float | None
    auto_approval_share: float | None
    missed_approval_rate: float | None
    best_false_approval_rate: float | None
    failed: int
    seconds: float
    qualified_at: datetime

    @property
    def qualified(self) -> bool:
        return self.threshold is not None

    @property
    def complete(self) -> bool:
        """Whether enough fixtures were answered for the verdict to stand: a server failing
        during qualification must not leave a model unqualified (or qualified) for good."""
        return self.failed <= MAX_FAILED_SHARE * self.n

    @property
    def incomplete_reason(self) -> str:
        return (
            f"unqualified: qualification incomplete ({self.failed} of {self.n} fixtures "
            "failed); it is tried again by the next batch"
        )

    @property
    def reason(self) -> str:
        """Why this model may not approve (for an unqualified one), in the audit trail."""
        if self.qualified:
            return ""
        best = self.best_false_approval_rate
        if self.n_hold == 0:
            return f"unqualified: none of its {self.n} fixtures is one to hold"
        if best is None:
            return f"unqualified: it approves none of {self.n} fixtures at any threshold"
        return f"unqualified: false approval >= {best:.2f} at every threshold on {self.n} fixtures"

    def verdict(self) -> str:
        """One line for a person."""
        if not self.qualified:
            return f"{self.model}: {self.reason}"
        return (
            f"{self.model}: qualified at threshold {self.threshold:.4f}: false approval "
            f"{percent(self.false_approval_rate)} (95% bound {percent(self.false_approval_bound)}"
            f" <= {percent(self.max_false_approval)}), auto-approves "
            f"{percent(self.auto_approval_share)} of {self.n} fixtures"
        )

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["qualified_at"] = self.qualified_at.isoformat()
        document["qualified"] = self.qualified
        document["reason"] = self.reason or None
        return document


def save(conn: Connection, qualification: Qualification) -> None:
    conn.execute(sa.insert(qualifications).values(**_row(qualification)))


def find(conn: Connection, key: str) -> Qualification | None:
    """The newest qualification with this key, or None when the model was never qualified."""
    row = conn.execute(
        sa.select(qualifications)
        .where(qualifications.c.key == key)
        .order_by(qualifications.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    values = {f.name: row._mapping[f.name] for f in fields(Qualification)}
    return Qualification(**values)


def _row(qualification: Qualification) -> dict[str, Any]:
    return {f.name: getattr(qualification, f.name) for f in fields(Qualification)}
