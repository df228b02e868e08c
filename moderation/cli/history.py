"""``moderate history``: the recent runs, readable at 80 columns, or as JSON with zoned times."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from moderation.cli.common import (
    errors_to_exit_codes,
    load_settings,
    promise_json,
    require_database,
)


def history_command(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List recent runs of this site with their counts."""
    from moderation.storage import migrate, runs
    from moderation.storage.claim import claim
    from moderation.storage.engines import connected, read_transaction

    promise_json(as_json)
    settings = load_settings()
    with errors_to_exit_codes():
        require_database(settings)
    with errors_to_exit_codes(), connected(settings.database_url) as engine:
        recent = []
        if migrate.current_revision(engine) is not None:
            # Older tables have no site key yet: bring them up to date (as a batch would).
            migrate.ensure_current(engine, settings.auto_migrate)
            claim(engine, settings.site_key)
            with read_transaction(engine) as conn:
                recent = runs.recent_runs(conn, settings.site_key, limit)
    recent = [_with_time_zones(run) for run in recent]
    if as_json:
        typer.echo(json.dumps(recent, default=str))
        return
    _print_history(recent, limit)


def _with_time_zones(run: dict[str, Any]) -> dict[str, Any]:
    """Times as ISO 8601 with their offset; SQLite returns the stored UTC times without one."""
    from datetime import UTC, datetime

    return {
        key: (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
        if isinstance(value, datetime)
        else value
        for key, value in run.items()
    }


# (key, header, justify): short headers, so that the table fits 80 columns without cutting.
_HISTORY_COLUMNS = (
    ("started_at", "started (UTC)", "left"),
    ("id", "run", "left"),
    ("status", "status", "left"),
    ("considered", "asked", "right"),
    ("approved", "appr", "right"),
    ("held", "held", "right"),
    ("failed", "fail", "right"),
    ("skipped", "skip", "right"),
    ("exit_code", "exit", "right"),
)


def _print_history(runs: list[dict[str, Any]], limit: int) -> None:
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    console = Console()
    models = sorted({str(run["model"]) for run in runs if run.get("model")})
    # The model column only when there is room; otherwise the model goes in the title.
    wide = console.width >= 100 or len(models) > 1
    title = f"Last {limit} runs" + ("" if wide or not models else f", model {models[0]}")
    table = Table(title=title, box=None, pad_edge=False, header_style="bold")
    columns = _HISTORY_COLUMNS + ((("model", "model", "left"),) if wide else ())
    for _key, header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for run in runs:
        cells = []
        for key, _header, _justify in columns:
            value = run.get(key)
            if key == "started_at" and value:
                started = datetime.fromisoformat(str(value)).astimezone(UTC)
                value = started.strftime("%Y-%m-%d %H:%M")
            elif key == "id" and value:
                value = str(value)[:8]
            cells.append("" if value is None else str(value))
        table.add_row(*cells)
    console.print(table)
