"""``moderate outcomes`` and ``moderate fixtures export``: what humans did after the tool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moderation.cli.common import (
    errors_to_exit_codes,
    load_settings,
    print_json,
    promise_json,
    require_database,
    say_error,
)
from moderation.formatting import percent
from moderation.vocabulary import ExitCode

SINCE_HELP = "Window start: 24h, 7d, 30d or an ISO date (UTC)."

fixtures_app = typer.Typer(help="Fixtures from the site's own comments.", no_args_is_help=True)


def outcomes_command(
    since: Annotated[str, typer.Option("--since", help=SINCE_HELP)] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    max_reversal_rate: Annotated[
        float | None,
        typer.Option("--max-reversal-rate", min=0, max=1, help="Exit 6 when above this."),
    ] = None,
) -> None:
    """What humans did after the tool's decisions: kept, reversed, released, confirmed, ..."""
    from moderation.humans.outcome_report import measure, render_table
    from moderation.humans.since import Window

    promise_json(as_json)
    settings = load_settings()
    with errors_to_exit_codes():
        require_database(settings)
        report = measure(settings, Window.parse(since))
    if as_json:
        print_json(report.to_json())  # exactly the documented keys, also when a gate fails
    else:
        for line in render_table(report):
            typer.echo(line)
    if max_reversal_rate is None:
        return
    rate = report.overall.reversal_rate
    if rate is None:
        say_error("no approvals by the tool in the window: the reversal rate gate passes", "note")
    elif rate > max_reversal_rate:
        say_error(
            f"reversal rate {percent(rate)} is above {percent(max_reversal_rate)}",
            "gate failed",
        )
        raise typer.Exit(ExitCode.GATE)


@fixtures_app.command("export")
def fixtures_export_command(
    out: Annotated[Path, typer.Option("--out", help="The JSONL file to write.")],
    since: Annotated[str, typer.Option("--since", help=SINCE_HELP)] = "90d",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write the comments a human ruled on as fixtures for `moderate eval` (mode 0600)."""
    from moderation.humans.export import FILE_MODE, export_fixtures
    from moderation.humans.since import Window

    promise_json(False)
    settings = load_settings()
    with errors_to_exit_codes():
        require_database(settings)
        result = export_fixtures(settings, Window.parse(since), out, force)
    typer.echo(
        f"wrote {result.lines} lines to {out} (mode 0{FILE_MODE:o}: it holds your users' "
        "comments; keep it private)"
    )
    typer.echo(f"{result.gone} rows were gone from the site's table (not exported)")
    if result.changed:
        typer.echo(f"{result.changed} texts changed since the decision (not exported)")
