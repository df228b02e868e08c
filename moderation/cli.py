"""The ``moderate`` command. Thin: build Settings, call the core, map errors to exit codes.

Heavy modules (SQLAlchemy, ollama, pydantic) are imported inside the commands, so that
``moderate --help`` and cron's every-hour start-up stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from .pipeline import RunReport
    from .settings import Settings

app = typer.Typer(
    name="moderate",
    help="Approve pending comments with a local Ollama sentiment model; hold negative ones.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="The tool's own tables (decisions, runs, lease).", no_args_is_help=True)
model_app = typer.Typer(help="The Ollama model built from the Modelfile.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(model_app, name="model")

EXIT_CODES = """Exit codes: 0 done; 3 done but some comments failed and stay pending; 2 usage or
configuration error; 4 Ollama unreachable or model missing (nothing changed); 5 database error;
6 evaluation below a gate; 75 another batch holds the lease."""


def fail(message: str, code: int) -> NoReturn:
    from .redact import redact

    typer.echo(f"moderate: error: {redact(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    from .errors import ModerationError

    try:
        yield
    except ModerationError as exc:
        fail(exc.message.splitlines()[0] if exc.message else type(exc).__name__, exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)


def load_settings(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from .logs import configure
    from .settings import Settings

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        fail(f"invalid configuration: {where.upper()}: {first['msg']}", 2)
    configure(settings.log_format, settings.log_level)
    return settings


@app.callback(epilog=EXIT_CODES)
def main_command(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Classify and show what would happen; write nothing.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Ask the model about N comments at most.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics-file", help="Write Prometheus text metrics here after the batch."),
    ] = None,
) -> None:
    """Run one batch over the pending comments (the default command)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    with errors_to_exit_codes():
        report = _run_with_progress(settings, dry_run, limit, show=not as_json)
    if metrics_file is not None:
        from .metrics_export import write_metrics

        write_metrics(metrics_file, report)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, default=str))
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def _run_with_progress(
    settings: Settings, dry_run: bool, limit: int | None, show: bool
) -> RunReport:
    from .pipeline import run_batch

    if not (show and sys.stderr.isatty()):
        return run_batch(settings, dry_run=dry_run, limit=limit)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("classifying", total=limit)
        return run_batch(
            settings,
            dry_run=dry_run,
            limit=limit,
            on_decision=lambda _d: progress.advance(task),
        )


def _print_report(report: RunReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if report.dry_run and report.decisions:
        table = Table(title="Dry run: nothing was written")
        for column in ("id", "comment", "label", "would", "read", "latency"):
            table.add_column(column)
        for d in report.decisions:
            latency = "" if d.latency is None else f"{d.latency * 1000:.0f} ms"
            would = {"approved": "approve", "held": "hold", "failed": "stay pending"}[d.outcome]
            table.add_row(str(d.comment_id), d.excerpt, d.label or "-", would, d.coverage, latency)
        console.print(table)
    counts = report.counts()
    verb = "would approve" if report.dry_run else "approved"
    summary = (
        f"{counts['considered']} considered: {counts['approved']} {verb}, {counts['held']} held, "
        f"{counts['failed']} failed, {counts['skipped']} skipped (decided before)"
    )
    if report.run_id:
        summary = f"run {report.run_id}: {summary}"
    if report.circuit_open:
        summary += "; stopped early: the model server kept failing"
    if report.deadline_reached:
        summary += "; stopped at the batch deadline"
    if report.lease_lost:
        summary += f"; lease lost, {report.rejected} decisions not written"
    console.print(summary, markup=False, highlight=False)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help='JSON Lines, one {"body": ...} per line.')],
) -> None:
    """Insert comments from a JSONL file as pending (creates a default table if none exists)."""
    from .db import create_engine
    from .importer import import_comments

    settings = load_settings()
    with errors_to_exit_codes():
        engine = create_engine(settings.database_url)
        try:
            inserted, sanitised, created = import_comments(engine, settings, file)
        finally:
            engine.dispose()
    note = f" (created table {settings.comments_table!r})" if created else ""
    typer.echo(f"imported {inserted} comments into {settings.safe_database_url}{note}")
    if sanitised:
        typer.echo(f"{sanitised} bodies had unstorable characters replaced by U+FFFD")


@app.command("history")
def history_command(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List recent runs with their counts."""
    from . import migrate, store
    from .db import create_engine, read_transaction

    settings = load_settings()
    with errors_to_exit_codes():
        engine = create_engine(settings.database_url)
        try:
            runs = []
            if migrate.current_revision(engine) is not None:
                with read_transaction(engine) as conn:
                    runs = store.recent_runs(conn, limit)
        finally:
            engine.dispose()
    if as_json:
        typer.echo(json.dumps(runs, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Last {limit} runs")
    columns = (
        "started_at",
        "id",
        "status",
        "considered",
        "approved",
        "held",
        "failed",
        "skipped",
        "exit_code",
        "model",
    )
    for column in columns:
        table.add_column(column.replace("_", " "))
    for run in runs:
        table.add_row(*("" if run[c] is None else str(run[c])[:19] for c in columns))
    Console().print(table)


@db_app.command("upgrade")
def db_upgrade_command() -> None:
    """Create or upgrade the tool's tables (the site's tables are never touched)."""
    from . import migrate
    from .db import create_engine

    settings = load_settings()
    with errors_to_exit_codes():
        engine = create_engine(settings.database_url)
        try:
            revision = migrate.upgrade(engine)
        finally:
            engine.dispose()
    typer.echo(f"{settings.safe_database_url} is at revision {revision}")


@model_app.command("create")
def model_create_command(
    modelfile: Annotated[
        Path | None, typer.Option("--modelfile", help="Default: the shipped Modelfile.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: MODERATION_MODEL.")] = None,
) -> None:
    """Build the model on every configured Ollama host from the Modelfile."""
    from .classify import create_model
    from .modelfile import load_modelfile

    settings = load_settings()
    with errors_to_exit_codes():
        spec = load_modelfile(modelfile)
        target = name or settings.model
        for host in settings.hosts:
            status = create_model(host.url, target, spec.create_kwargs(), settings.load_timeout)
            typer.echo(f"{target!r} on {host.safe_url} from {spec.from_}: {status}")


@app.command("serve")
def serve_command(
    every: Annotated[str | None, typer.Option("--every", help="Interval: 90s, 30m, 1h.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Cron expression (UTC).")] = None,
    jitter: Annotated[str, typer.Option("--jitter", help="Random extra delay per tick.")] = "0",
    run_now: Annotated[bool, typer.Option("--run-now", help="Run a batch at start.")] = False,
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics-file", help="Prometheus text metrics file.")
    ] = None,
) -> None:
    """Run batches in the foreground on a schedule until SIGTERM or Ctrl-C."""
    import signal
    import threading

    from .scheduler import PeriodicModerator

    settings = load_settings()

    def report(result: object) -> None:
        if metrics_file is not None:
            from .metrics_export import write_metrics

            write_metrics(metrics_file, result)  # type: ignore[arg-type]

    with errors_to_exit_codes():
        moderator = PeriodicModerator(
            settings, every=every, cron=cron, jitter=jitter, run_now=run_now, on_report=report
        )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    moderator.start()
    typer.echo(f"moderate serve: {'every ' + every if every else 'cron ' + str(cron)}", err=True)
    while not stopping.wait(1.0):
        pass
    # In-flight answers are still written; nothing new is asked. Bounded by one request.
    finished = moderator.stop(timeout=settings.timeout + 15)
    raise typer.Exit(0 if finished else 1)


def main() -> None:
    app()


# Register `moderate eval` and `moderate review` on `app`; at the bottom because they import
# `app` from here.
from . import cli_eval, cli_review  # noqa: E402, F401
