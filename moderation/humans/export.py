"""``moderate fixtures export``: the site's own comments that a human ruled on, as fixtures.

Each line is in the fixtures format ``moderate eval`` reads, with the human's decision as the
truth: ``"expected": "approve"`` (kept, released) or ``"hold"`` (reversed, confirmed). People
decide whether to publish, not what the sentiment is, so there is no ``label``.

The file holds the site's users' words: it is created with mode 0600, and an existing file is
only replaced when asked to. It is written to a temporary file beside the target and renamed
into place, so a failure never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moderation.errors import ConfigurationError
from moderation.humans.outcomes import CONFIRMED, KEPT, RELEASED, REVERSED, Judged, judge_pages
from moderation.humans.since import Window
from moderation.settings import Settings
from moderation.storage.engines import connected

EXPECTED = {KEPT: "approve", RELEASED: "approve", REVERSED: "hold", CONFIRMED: "hold"}
FILE_MODE = 0o600


@dataclass
class ExportResult:
    path: Path
    lines: int = 0
    gone: int = 0  # ruled on, but the row is no longer in the site's table
    changed: int = 0  # ruled on, but its text is not the one the tool decided on


def export_fixtures(settings: Settings, window: Window, out: Path, force: bool) -> ExportResult:
    """Write one fixture per comment a human ruled on in the window; return what was written."""
    if out.is_dir():
        # Not even --force replaces a directory: it is never what was meant.
        raise ConfigurationError(f"{out} is a directory; give a file name for --out")
    if out.exists() and not force:
        raise ConfigurationError(f"{out} exists; use --force to overwrite it")
    if not out.parent.is_dir():
        raise ConfigurationError(f"{out.parent} is not a directory")
    result = ExportResult(out)
    descriptor, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            with connected(settings.database_url) as engine:
                for page in judge_pages(engine, settings, window):
                    for judged in page:
                        line = _fixture_line(judged, result)
                        if line is not None:
                            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        _move_into_place(Path(temporary), out, force)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return result


def _fixture_line(judged: Judged, result: ExportResult) -> str | None:
    if judged.outcome not in EXPECTED:
        return None  # waiting, edited, other: no human ruling to learn from
    row = judged.row
    if row is None:
        result.gone += 1
        return None
    if not row.body.strip() or row.text_hash != judged.text_hash:
        # Isso blanks a deleted comment, Commento replaces it: that text was never judged.
        result.changed += 1
        return None
    record: dict[str, Any] = {
        "id": f"site-{judged.comment_id}",
        "text": row.body,
        "expected": EXPECTED[judged.outcome],
        "tags": ["site", judged.outcome],
    }
    result.lines += 1
    return json.dumps(record, ensure_ascii=False)


def _move_into_place(temporary: Path, out: Path, force: bool) -> None:
    if force:
        try:
            os.replace(temporary, out)
        except IsADirectoryError:  # a directory appeared there meanwhile
            raise ConfigurationError(f"{out} is a directory; give a file name for --out") from None
        except OSError as exc:
            raise ConfigurationError(f"cannot write {out}: {exc.strerror or exc}") from None
        return
    try:
        # A hard link fails if the target appeared meanwhile: never clobber without --force.
        os.link(temporary, out)
    except FileExistsError:
        raise ConfigurationError(f"{out} exists; use --force to overwrite it") from None
    temporary.unlink()
