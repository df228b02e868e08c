"""Where the files shipped beside the code live.

In a wheel, ``prompts/``, ``fixtures/`` and the ``Modelfile`` are copied inside the package;
in a source checkout (editable install, tests) they stay at the repository root.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped resource (``"prompts"``, ``"fixtures"`` or ``"Modelfile"``)."""
    inside = _PACKAGE_DIR / name
    if inside.exists():
        return inside
    return _PACKAGE_DIR.parent / name
