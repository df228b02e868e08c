"""The figures of ``moderate outcomes``: counts per outcome, overall and per variant, and rates.

The reversal rate is reversed / approved by the tool: the share of the tool's approvals that a
human took back, i.e. the false-approval rate on the site's own traffic. The release rate is
released / held by the tool (held or failed): the share of holds a human overruled. Both are
None when their denominator is 0. A decision whose comment the system itself took away
(``system``: a trashed post, a purged pending comment) says nothing about the tool: it is in
``decided`` but in neither denominator.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moderation.formatting import percent
from moderation.humans.outcomes import (
    OUTCOMES,
    PAGE_SIZE,
    RELEASED,
    REVERSED,
    SYSTEM,
    Judged,
    judge_pages,
)
from moderation.humans.since import Window
from moderation.settings import Settings
from moderation.storage.engines import connected

MAX_REVERSED_IDS = 100
Variant = tuple[str | None, str]  # (model digest, prompt hash)


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    # The denominators of the rates: decisions whose outcome is not the system's doing.
    approved_by_tool: int = 0
    held_by_tool: int = 0

    def add(self, judged: Judged) -> None:
        self.counts[judged.outcome] += 1
        if judged.outcome == SYSTEM:
            return
        if judged.approved_by_tool:
            self.approved_by_tool += 1
        else:
            self.held_by_tool += 1

    @property
    def decided(self) -> int:
        return self.approved_by_tool + self.held_by_tool + self.counts[SYSTEM]

    @property
    def reversal_rate(self) -> float | None:
        return _ratio(self.counts[REVERSED], self.approved_by_tool)

    @property
    def release_rate(self) -> float | None:
        return _ratio(self.counts[RELEASED], self.held_by_tool)

    def to_json(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            **{name: self.counts[name] for name in OUTCOMES},
            "reversal_rate": self.reversal_rate,
            "release_rate": self.release_rate,
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class OutcomesReport:
    window: Window
    overall: Tally = field(default_factory=Tally)
    by_variant: dict[Variant, Tally] = field(default_factory=dict)
    # The newest reversals: the ones worth reading first.
    reversed_ids: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_REVERSED_IDS))

    def add(self, judged: Judged) -> None:
        self.overall.add(judged)
        variant = (judged.model_digest, judged.prompt_hash)
        self.by_variant.setdefault(variant, Tally()).add(judged)
        if judged.outcome == REVERSED:
            self.reversed_ids.append(judged.comment_id)

    def to_json(self) -> dict[str, Any]:
        """The documented ``--json`` object (exactly these top-level keys)."""
        return {
            "since": self.window.since.isoformat(timespec="seconds"),
            "until": self.window.until.isoformat(timespec="seconds"),
            **self.overall.to_json(),
            "by_variant": [
                {"model_digest": digest, "prompt_hash": prompt, **tally.to_json()}
                for (digest, prompt), tally in self.variants()
            ],
            "reversed_ids": list(reversed(self.reversed_ids)),
        }

    def variants(self) -> list[tuple[Variant, Tally]]:
        """Variants with the most decisions first (ties by digest and prompt, for stable output)."""
        return sorted(
            self.by_variant.items(),
            key=lambda item: (-item[1].decided, item[0][0] or "", item[0][1]),
        )


def measure(settings: Settings, window: Window, page_size: int = PAGE_SIZE) -> OutcomesReport:
    """Outcomes of every decision in the window (records newly seen human outcomes)."""
    report = OutcomesReport(window)
    with connected(settings.database_url) as engine:
        for page in judge_pages(engine, settings, window, page_size):
            for judged in page:
                report.add(judged)
    return report


# --- text table, 80 columns -------------------------------------------------------------------

LABEL_WIDTH = 16
CELL_WIDTH = 12
CELLS_PER_BLOCK = 5  # 16 + 5 * 12 = 76 columns


def _rows(tally: Tally) -> list[tuple[str, str]]:
    return [
        ("decided", str(tally.decided)),
        *((name, str(tally.counts[name])) for name in OUTCOMES),
        ("reversal rate", percent(tally.reversal_rate)),
        ("release rate", percent(tally.release_rate)),
    ]


def render_table(report: OutcomesReport) -> list[str]:
    """The figures as lines of at most 80 characters: one column for all, one per variant."""
    columns: list[tuple[str, str, Tally]] = [("all", "", report.overall)]
    for (digest, prompt), tally in report.variants():
        columns.append(((digest or "no digest")[:10], prompt[:10], tally))
    lines = [
        f"outcomes of the tool's decisions from {report.window.since:%Y-%m-%d %H:%M} "
        f"to {report.window.until:%Y-%m-%d %H:%M} UTC"
    ]
    for start in range(0, len(columns), CELLS_PER_BLOCK):
        block = columns[start : start + CELLS_PER_BLOCK]
        lines.append("")
        lines.append(_line("model", (c[0] for c in block)))
        lines.append(_line("prompt", (c[1] for c in block)))
        rows = [_rows(c[2]) for c in block]
        for index, (name, _) in enumerate(rows[0]):
            lines.append(_line(name, (r[index][1] for r in rows)))
    return lines


def _line(label: str, cells: Iterable[str]) -> str:
    return (label.ljust(LABEL_WIDTH) + "".join(c.rjust(CELL_WIDTH) for c in cells)).rstrip()
