"""How figures are written for people: one spelling of a rate, everywhere it is shown."""

from __future__ import annotations


def percent(value: float | None, digits: int = 1, missing: str = "n/a") -> str:
    """``0.1234`` as ``12.3%``; ``missing`` when there is no figure (nothing to divide by)."""
    return missing if value is None else f"{value * 100:.{digits}f}%"
