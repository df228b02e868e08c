"""The ``moderate`` command. Thin: build Settings, call the core, map errors to exit codes.

Heavy modules (SQLAlchemy, ollama, pydantic) are imported inside the commands, so that
``moderate --help`` and cron's every-hour start-up stay fast.
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from moderation.cli.check import check_command
from moderation.cli.common import (
    EXIT_CODES,
    check_writable,
    errors_to_exit_codes,
    fail,
    failure_document,
    importing,
    load_settings,
    print_json,
    promise_json,
    require_database,
    say_error,
)
from moderation.cli.evaluate import eval_command
from moderation.cli.history import history_command
from moderation.cli.humans import fixtures_app, outcomes_command
from moderation.cli.qualify import qualify_command
from moderation.cli.review import review_command
from moderation.errors import ConfigurationError
from moderation.vocabulary import ExitCode

if TYPE_CHECKING:
    from moderation.batch.pipeline import RunReport
    from moderation.settings import Settings

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
app.command("eval")(eval_command)
app.command("history")(history_command)
app.command("outcomes")(outcomes_command)
app.add_typer(fixtures_app, name="fixtures")
app.command("review")(review_command)
app.command("qualify")(qualify_command)
app.command("check")(check_command)

log = logging.getLogger("moderation.cli")

__all__ = ["app", "errors_to_exit_codes", "fail", "load_settings", "main"]


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
    promise_json(as_json)
    settings = load_settings()
    with errors_to_exit_codes():
        if metrics_file is not None:
            check_writable(metrics_file, "--metrics-file")
        report = _run_with_progress(settings, dry_run, limit, show=not as_json)
    code = report.exit_code
    metrics_error = None
    if metrics_file is not None:
        metrics_error = _write_metrics(metrics_file, report)
        if metrics_error is not None and code == 0:
            code = ExitCode.METRICS
    if as_json:
        document = {**report.to_json(), "exit_code": code}
        if metrics_error is not None:
            document["error"] = metrics_error
        print_json(document)
    else:
        _print_report(report)
    if metrics_error is not None:
        say_error(metrics_error)
    raise typer.Exit(code)


def _write_metrics(path: Path, report: RunReport) -> str | None:
    """Write the metrics file; the reason it failed, or None. The batch itself is done."""
    from moderation.batch.prometheus import write_metrics

    try:
        write_metrics(path, report)
    except OSError as exc:
        return f"could not write the metrics file {path}: {exc.strerror or exc}"
    return None


def _run_with_progress(
    settings: Settings, dry_run: bool, limit: int | None, show: bool
) -> RunReport:
    with importing():
        from moderation.batch.pipeline import run_batch

    if not (show and sys.stderr.isatty()):
        return run_batch(settings, dry_run=dry_run, limit=limit)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from moderation.batch.pipeline import Progress as Hooks

    # The bar counts comments dealt with: answered, and (without a limit, which only counts
    # model calls) skipped as decided before. Its total is the pending count, or the limit.
    cap = limit or settings.limit
    columns = (TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # redirect_stderr: log lines are printed above the bar instead of through it.
    with Progress(
        *columns, console=Console(stderr=True), transient=True, redirect_stderr=True
    ) as progress:
        # Shown once the total is known, not as "0/?" during start-up.
        task = progress.add_task("classifying", total=cap, visible=False)

        def pending(count: int) -> None:
            total = count if cap is None else min(cap, count)
            progress.update(task, total=total, visible=True)

        def skipped(count: int) -> None:
            if cap is None:
                progress.advance(task, count)

        hooks = Hooks(pending=pending, answered=lambda: progress.advance(task), skipped=skipped)
        return run_batch(settings, dry_run=dry_run, limit=limit, progress=hooks)


def _print_report(report: RunReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from moderation.cli.untrusted import cell

    console = Console()
    if report.dry_run and report.decisions:
        table = Table(title="Dry run: nothing was written")
        # The author's record, where the site tells who wrote each comment (site.authors).
        authors = any(d.author is not None for d in report.decisions)
        columns = ("id", "comment", *(("author",) if authors else ()), "label", "confidence")
        for column in (*columns, "would", "read", "latency"):
            table.add_column(column, overflow="fold")
        for d in report.decisions:
            latency = "" if d.latency is None else f"{d.latency * 1000:.0f} ms"
            confidence = "-" if d.confidence is None else f"{d.confidence:.2f}"
            would = {"approved": "approve", "held": "hold", "failed": "stay pending"}[d.outcome]
            if d.error:
                would += f": {d.error}"  # why a comment is held or stays pending
            # The comment, and reasons that may quote a server's text: shown, never obeyed.
            record = (d.author or "-",) if authors else ()
            row = (cell(d.comment_id), cell(d.excerpt), *record, d.label or "-", confidence)
            row = (*row, cell(would))
            table.add_row(*row, d.coverage, latency)
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
    if report.unqualified:
        # What it means for the site, and where to go: the approvals are a human's now.
        summary += (
            f"; nothing approved: {report.unqualified}; the model may not approve: every "
            "comment waits for a human (`moderate review`); `moderate qualify` shows why"
        )
    if report.notifications["failed"]:
        summary += f"; {report.notifications['failed']} notifications could not be sent"
    console.print(summary, markup=False, highlight=False)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help='JSON Lines, one {"body": ...} per line.')],
) -> None:
    """Insert comments from a JSONL file as pending (creates a default table if none exists)."""
    from moderation.site.importer import import_comments
    from moderation.storage.engines import connected

    settings = load_settings()
    with errors_to_exit_codes():
        if settings.preset == "wordpress-rest":
            raise ConfigurationError(
                "`moderate import` writes to a comments table; with MODERATION_PRESET="
                "wordpress-rest the comments live in WordPress (add them there)"
            )
    with errors_to_exit_codes(), connected(settings.database_url) as engine:
        inserted, sanitised, created = import_comments(engine, settings, file)
    note = f" (created table {settings.comments_table!r})" if created else ""
    typer.echo(f"imported {inserted} comments into {settings.safe_database_url}{note}")
    if sanitised:
        typer.echo(f"{sanitised} bodies had unstorable characters replaced by U+FFFD")


@db_app.command("upgrade")
def db_upgrade_command() -> None:
    """Create or upgrade the tool's tables (the site's tables are never touched)."""
    from moderation.storage import migrate
    from moderation.storage.engines import connected

    settings = load_settings()
    with errors_to_exit_codes(), connected(settings.database_url) as engine:
        revision = migrate.upgrade(engine)
    typer.echo(f"{settings.safe_database_url} is at revision {revision}")


@model_app.command("create")
def model_create_command(
    modelfile: Annotated[
        Path | None, typer.Option("--modelfile", help="Default: the shipped Modelfile.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: MODERATION_MODEL.")] = None,
    qualify: Annotated[
        bool,
        typer.Option(
            "--qualify/--no-qualify",
            help="Qualify the model on labelled comments once built (see `moderate qualify`).",
        ),
    ] = True,
) -> None:
    """Build the model on every configured Ollama host from the Modelfile, then qualify it."""
    from moderation.model.host import create_model
    from moderation.model.modelfile import load_modelfile

    settings = load_settings()
    qualifying_too = qualify and settings.qualify != "off"
    with errors_to_exit_codes():
        spec = load_modelfile(modelfile)
        if qualifying_too:
            # Refused before the model is built: the verdict is stored in the tool's tables.
            require_database(settings, rest_creates=True)
        target = name or settings.model
        for host in settings.hosts:
            status = create_model(host.url, target, spec.create_kwargs(), settings.load_timeout)
            typer.echo(f"{target!r} on {host.safe_url} from {spec.from_}: {status}")
        if not qualifying_too:
            return
        from moderation.cli import qualify as qualifying

        made = settings.model_copy(update={"model": target})
        qualification, table = qualifying.run(made, [], force=False, show=True)
    # The model was built: that succeeded whatever the verdict, which the batch acts on.
    qualifying.report(qualification, table, as_json=False, exit_unqualified=False)


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

    from moderation.batch.scheduler import PeriodicModerator

    settings = load_settings()

    def report(result: object) -> None:
        if metrics_file is not None:
            error = _write_metrics(metrics_file, result)  # type: ignore[arg-type]
            if error is not None:
                log.error("%s; the next tick runs as scheduled", error)

    with errors_to_exit_codes():
        # Refused now rather than logged at every tick for as long as the process lives; a
        # WordPress REST site's batch makes its own database, as `moderate` does.
        require_database(settings, rest_creates=True)
        if metrics_file is not None:
            check_writable(metrics_file, "--metrics-file")
        moderator = PeriodicModerator(
            settings, every=every, cron=cron, jitter=jitter, run_now=run_now, on_report=report
        )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    moderator.start()
    log.info("moderate serve: %s", f"every {every}" if every else f"cron {cron}")
    while not stopping.wait(1.0):
        if not moderator.running:
            fail("the scheduler thread stopped unexpectedly", 1)
    # In-flight answers are still written; nothing new is asked. Bounded by one request.
    finished = moderator.stop(timeout=settings.timeout + 15)
    raise typer.Exit(0 if finished else 1)


def main() -> None:
    """The console script: like ``app()``, but a usage error under ``--json`` still prints
    the one JSON object (and, with JSON logs, a JSON log line)."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors
        from moderation.cli.common import _json_logs

        code = getattr(exc, "exit_code", 2)
        if _json_logs():
            log.error("moderate: error: %s", exc.format_message())
        else:
            exc.show()  # type: ignore[attr-defined]
        if "--json" in sys.argv[1:]:
            print_json(failure_document(exc.format_message(), code))
    except typer.Abort:
        code = 130
    except Exception as exc:
        # A bug, not an operator's mistake: the traceback is wanted (with credentials hidden,
        # like in every other output), and so is the JSON line.
        import traceback

        from moderation.redact import redact

        if "--json" in sys.argv[1:]:
            print_json(failure_document(redact(f"internal error: {type(exc).__name__}: {exc}"), 1))
        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        raise SystemExit(1) from None
    # The command is done: the interpreter's exit would otherwise walk every object once
    # more in its final collections (about 0.15 s of every batch), only to free them all.
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)
