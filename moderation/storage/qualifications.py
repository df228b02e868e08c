"""Qualifications (``moderation_qualifications``): the evidence a model must have before it
approves anything, found again by the key of everything that changes its answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    # The floor (MODERATION_MIN_CONFIDENCE) the threshold was chosen above, and the threshold
    # table it was chosen from: what `moderate qualify` shows again from the stored result.
    # None in qualifications stored before revision 0014.
    min_confidence: float | None = None
    thresholds: tuple[dict[str, Any], ...] | None = None

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
        if self.thresholds is None or self.min_confidence is None:
            if self.n_hold == 0:
                return f"unqualified: none of its {self.n} fixtures is one to hold"
            if best is None:
                return f"unqualified: it approves none of {self.n} fixtures at any threshold"
            return (
                f"unqualified: false approval >= {best:.2f} at every threshold on {self.n} fixtures"
            )
        return "unqualified: " + explain(
            self.thresholds, self.min_confidence, self.max_false_approval, self.n, self.n_hold
        )

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
        document["thresholds"] = None if self.thresholds is None else list(self.thresholds)
        return document

    def row_note(self, row: Mapping[str, Any]) -> str:
        """Why a row of the threshold table is or is not the chosen threshold."""
        threshold = row["threshold"]
        if threshold == self.threshold:
            return "< chosen"
        if self.min_confidence is not None and threshold < self.min_confidence:
            return "below the floor" + (" (would qualify)" if _passes(row, self) else "")
        if not row.get("auto_approved_count"):
            return "approves nothing"
        if not _within(row, self.max_false_approval):
            return "bound above the limit"
        return ""


def _within(row: Mapping[str, Any], limit: float) -> bool:
    bound = row.get("false_approval_bound")
    return bound is not None and bound <= limit


def _passes(row: Mapping[str, Any], qualification: Qualification) -> bool:
    """Whether this row would qualify, were the floor no obstacle: it approves something and
    its bound is within the limit (``calibration.bounded_threshold``'s test)."""
    return bool(row.get("auto_approved_count")) and _within(row, qualification.max_false_approval)


def explain(
    rows: Sequence[Mapping[str, Any]], floor: float, limit: float, n: int, n_hold: int
) -> str:
    """Why no threshold of the table qualifies (any case), and what would change it."""
    if n_hold == 0:
        return f"none of its {n} fixtures is one to hold"
    if not any(r.get("auto_approved_count") for r in rows):
        return f"it approves none of {n} fixtures at any threshold"
    return why_unqualified(rows, floor, limit, n)


def why_unqualified(rows: Sequence[Mapping[str, Any]], floor: float, limit: float, n: int) -> str:
    """Why no threshold qualifies, and what would change that, from the threshold table.

    The bound only falls as the threshold rises (fewer wrong approvals), until nothing is
    approved; so a threshold within the limit below the floor means that no answer is as
    sure as the floor, and lowering it is what would change the verdict. With none within
    the limit anywhere, the floor does not matter: the answers to hold are wrong too often.
    """
    approving = [r for r in rows if r.get("auto_approved_count")]
    passing = sorted(
        (r for r in approving if _within(r, limit)), key=lambda r: float(r["threshold"])
    )
    surest = max(approving, key=lambda r: float(r["threshold"]), default=None)
    floor_text = f"the floor MODERATION_MIN_CONFIDENCE={floor:g}"
    if passing:
        # Of the thresholds within the limit, the highest that still approves as much as the
        # lowest one: the smallest change to the floor for the same approvals.
        most = passing[0]["auto_approved_count"]
        best = [r for r in passing if r["auto_approved_count"] == most][-1]
        return (
            f"no answer reaches {floor_text}, so it approves nothing (the rows below the "
            f"floor do not count); at {best['threshold']:.4f} the 95% bound "
            f"of false approval is {percent(best['false_approval_bound'])} (limit "
            f"{percent(limit)}), auto-approving {percent(best['auto_approved'])} of {n} "
            f"fixtures: set MODERATION_MIN_CONFIDENCE={best['threshold']:g} to allow it"
        )
    where = ""
    if surest is not None:
        where = (
            f" (lowest: {percent(surest['false_approval_bound'])} at "
            f"{surest['threshold']:.4f}, from a false-approval rate of "
            f"{percent(surest['false_approval_rate'])})"
        )
    below = (
        f"; no answer reaches {floor_text} either"
        if surest is None or float(surest["threshold"]) < floor
        else ""
    )
    return (
        f"the 95% bound of false approval is above the {percent(limit)} limit at every "
        f"threshold that approves anything on {n} fixtures{where}{below}; a model or prompt "
        "wrong less often on comments to hold, or more fixtures to hold "
        "(MODERATION_QUALIFY_FIXTURES), would lower it"
    )


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
    stored = values["thresholds"]
    values["thresholds"] = None if stored is None else tuple(json.loads(stored))
    return Qualification(**values)


def _row(qualification: Qualification) -> dict[str, Any]:
    row = {f.name: getattr(qualification, f.name) for f in fields(Qualification)}
    rows = qualification.thresholds
    row["thresholds"] = None if rows is None else json.dumps(list(rows), separators=(",", ":"))
    return row
