"""Inline SVG charts for the evaluation report: no script, no library, no network.

Only numbers and fixed words go into the markup (never a fixture's text or a model's answer),
which is why the result may be marked safe for the autoescaping template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 34, 44
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
# One colour per variant; A solid, B the second colour.
COLOURS = ("#1f5fa8", "#c0542a")


def _x(value: float) -> float:
    return LEFT + value * (WIDTH - LEFT - RIGHT)


def _y(value: float) -> float:
    return HEIGHT - BOTTOM - value * (HEIGHT - TOP - BOTTOM)


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    parts = [
        # Inline SVG in HTML needs no namespace: the report references no URL at all.
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" class="chart">',
        f"<title>{title}</title>",
        f'<text x="{WIDTH / 2:.0f}" y="18" text-anchor="middle" class="chart-title">{title}</text>',
    ]
    for tick in TICKS:
        parts.append(
            f'<line x1="{_x(0):.1f}" y1="{_y(tick):.1f}" x2="{_x(1):.1f}" y2="{_y(tick):.1f}" '
            'stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{_y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
        parts.append(
            f'<text x="{_x(tick):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<rect x="{_x(0):.1f}" y="{_y(1):.1f}" width="{_x(1) - _x(0):.1f}" '
        f'height="{_y(0) - _y(1):.1f}" fill="none" stroke="#888"/>'
    )
    parts.append(
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">{x_label}</text>'
    )
    parts.append(
        f'<text x="14" y="{HEIGHT / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {HEIGHT / 2:.0f})">{y_label}</text>'
    )
    return parts


def _polyline(points: Sequence[tuple[float, float]], colour: str, dashed: bool) -> str:
    coordinates = " ".join(f"{_x(x):.1f},{_y(y):.1f}" for x, y in points)
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return (
        f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
    )


def tradeoff_chart(
    variants: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], configured: float | None
) -> Markup:
    """Share auto-approved (solid) and false-approval rate (dashed) against the threshold.

    ``variants`` are (name, the metrics' ``thresholds`` rows); names are fixed words ("A").
    """
    parts = _frame("Trade-off per confidence threshold", "confidence threshold", "share")
    if configured:
        parts.append(
            f'<line x1="{_x(configured):.1f}" y1="{_y(0):.1f}" x2="{_x(configured):.1f}" '
            f'y2="{_y(1):.1f}" stroke="#555" stroke-dasharray="2 3"/>'
        )
    legend_y = TOP + 14
    for index, (name, rows) in enumerate(variants):
        colour = COLOURS[index % len(COLOURS)]
        for key, dashed, label in (
            ("auto_approved", False, "auto-approved"),
            ("false_approval_rate", True, "false approvals"),
        ):
            points = [(r["threshold"], r[key]) for r in rows if r[key] is not None]
            if points:
                parts.append(_polyline(points, colour, dashed))
            parts.append(_legend(legend_y, colour, dashed, f"{escape(name)}: {label}"))
            legend_y += 16
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend(y: float, colour: str, dashed: bool, text: str) -> str:
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    x = _x(1) - 150
    return (
        f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 24:.1f}" y2="{y - 4:.1f}" '
        f'stroke="{colour}" stroke-width="2"{dash}/>'
        f'<text x="{x + 30:.1f}" y="{y:.1f}">{text}</text>'
    )


def reliability_chart(
    variants: Sequence[tuple[str, Sequence[Mapping[str, Any]], float | None]],
) -> Markup:
    """Accuracy per confidence bin against the diagonal of perfect calibration.

    ``variants`` are (name, the metrics' ``reliability`` bins, ECE). Bars for the first
    variant, dots for the second.
    """
    parts = _frame("Reliability (accuracy per confidence bin)", "confidence", "accuracy")
    parts.append(
        f'<line x1="{_x(0):.1f}" y1="{_y(0):.1f}" x2="{_x(1):.1f}" y2="{_y(1):.1f}" '
        'stroke="#888" stroke-dasharray="4 4"/>'
    )
    legend_y = TOP + 14
    for index, (name, bins, ece) in enumerate(variants):
        colour = COLOURS[index % len(COLOURS)]
        for b in bins:
            if not b["n"]:
                continue
            if index == 0:
                parts.append(
                    f'<rect x="{_x(b["lower"]) + 1:.1f}" y="{_y(b["accuracy"]):.1f}" '
                    f'width="{_x(b["upper"]) - _x(b["lower"]) - 2:.1f}" '
                    f'height="{_y(0) - _y(b["accuracy"]):.1f}" fill="{colour}" '
                    f'fill-opacity="0.35" stroke="{colour}"><title>{b["n"]} answers</title></rect>'
                )
            else:
                parts.append(
                    f'<circle cx="{_x(b["confidence"]):.1f}" cy="{_y(b["accuracy"]):.1f}" '
                    f'r="4" fill="{colour}"><title>{b["n"]} answers</title></circle>'
                )
        shown = "n/a" if ece is None else f"{ece:.3f}"
        parts.append(
            f'<text x="{_x(0) + 8:.1f}" y="{legend_y:.1f}" fill="{colour}">'
            f"{escape(name)}: ECE {shown}</text>"
        )
        legend_y += 16
    parts.append("</svg>")
    return Markup("".join(parts))
