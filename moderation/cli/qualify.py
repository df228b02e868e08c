"""``moderate qualify``: earn (or lose) the right to approve, on labelled comments, on demand.

``moderate model create`` runs the same after building the model. A batch qualifies by itself
when it finds no qualification for its model, prompt and fixtures; this command shows the
evidence, adds the site's own fixtures (``--fixtures``) and, with ``--force``, asks again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moderation.cli.common import (
    errors_to_exit_codes,
    load_settings,
    promise_json,
    require_database,
)
from moderation.cli.progress import progress
from moderation.formatting import percent
from moderation.vocabulary import ExitCode

if TYPE_CHECKING:
    from moderation.settings import Settings
    from moderation.storage.qualifications import Qualification


def qualify_command(
    fixtures: Annotated[
        list[Path] | None,
        typer.Option(
            "--fixtures",
            help="Labelled fixtures read beside the shipped ones (repeatable; adds to "
            "MODERATION_QUALIFY_FIXTURES).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Ask the fixtures again even if qualified before.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Qualify the model and prompt on labelled comments: the threshold it may approve at, or
    none (exit 8)."""
    promise_json(as_json)
    settings = load_settings()
    with errors_to_exit_codes():
        # Where the verdict is stored; a WordPress REST site's database is the tool's own.
        require_database(settings, rest_creates=True)
        qualification, table = run(settings, list(fixtures or []), force, show=not as_json)
    report(qualification, table, as_json)


def run(
    settings: Settings, extra: list[Path], force: bool, show: bool
) -> tuple[Qualification, list[dict[str, Any]] | None]:
    """The stored qualification (``table`` None), or a new one and its threshold table."""
    import asyncio  # here, not at the top: `moderate --help` need not load it

    return asyncio.run(_run(settings, extra, force, show))


async def _run(
    settings: Settings, extra: list[Path], force: bool, show: bool
) -> tuple[Qualification, list[dict[str, Any]] | None]:
    import asyncio

    from moderation.evaluation.evaluate import fixtures_hash, load_fixtures
    from moderation.evaluation.qualify import fixture_paths, qualification_key, qualify
    from moderation.model.classifier import OllamaClassifier
    from moderation.model.prompts import load_prompt
    from moderation.storage import migrate, qualifications
    from moderation.storage.engines import connected, read_transaction, run_write

    prompt = load_prompt(settings.prompt)
    paths = fixture_paths(settings, extra)
    count = len(load_fixtures(paths))  # a broken file is refused before any request
    with connected(settings.database_url) as engine:
        await asyncio.to_thread(migrate.ensure_current, engine, settings.auto_migrate)
        classifier = OllamaClassifier(settings, prompt)
        try:
            identity = await classifier.prepare()
            key = qualification_key(settings, identity, fixtures_hash(paths))
            if not force:
                with read_transaction(engine) as conn:
                    found = qualifications.find(conn, key)
                if found is not None:
                    return found, None
            # Confidences are what qualification judges: a server without them cannot qualify.
            await classifier.check_logprobs()
            title = f"qualifying {identity.model}"
            with progress(title, count, settings.progress_every, bar=show) as advance:
                qualification, table = await qualify(settings, classifier, identity, paths, advance)
        finally:
            await classifier.close()
        if qualification.complete:
            await asyncio.to_thread(
                run_write, engine, lambda conn: qualifications.save(conn, qualification)
            )
    return qualification, table


def report(
    qualification: Qualification,
    table: list[dict[str, Any]] | None,
    as_json: bool,
    exit_unqualified: bool = True,
) -> None:
    """Print the verdict and the table it came from (``table`` None: the stored result, whose
    table is shown as it was stored); exit 8 when the model is unqualified (unless
    ``exit_unqualified`` is off: the verdict is then all there is to say)."""
    settled = qualification.qualified and qualification.complete
    code = ExitCode.OK if settled else ExitCode.UNQUALIFIED
    rows = table if table is not None else _stored_rows(qualification)
    if as_json:
        document = {
            **qualification.to_json(),
            "stored": table is None,
            "thresholds": rows,
            "exit_code": code,
        }
        typer.echo(json.dumps(document, default=str))
    else:
        if table is None:
            typer.echo(f"qualified before, on {qualification.qualified_at:%Y-%m-%d %H:%M} UTC")
        if rows is not None:
            _print_table(rows, qualification)
        else:
            typer.echo(
                "its threshold table was not kept (qualified before this version stored it): "
                "`moderate qualify --force` asks the fixtures again to show it"
            )
        typer.echo(qualification.verdict())
        if not qualification.complete:
            typer.echo(qualification.incomplete_reason + " (not stored)")
    if code != ExitCode.OK and exit_unqualified:
        raise typer.Exit(code)


def _stored_rows(qualification: Qualification) -> list[dict[str, Any]] | None:
    return None if qualification.thresholds is None else list(qualification.thresholds)


def _print_table(table: list[dict[str, Any]], qualification: Qualification) -> None:
    floor = qualification.min_confidence
    rule = f"the 95% bound of false approval at most {percent(qualification.max_false_approval)}"
    rule += " (MODERATION_MAX_FALSE_APPROVAL), approving something"
    if floor is not None:
        rule += f", and at least the floor {floor:g} (MODERATION_MIN_CONFIDENCE)"
    typer.echo(
        f"{qualification.n} fixtures ({qualification.n_hold} to hold), "
        f"{qualification.seconds:.1f} s; a threshold qualifies with {rule}"
    )
    typer.echo(f"{'threshold':>9}  {'approves':>9}  {'false appr.':>11}  {'95% bound':>9}")
    for row in table:
        note = qualification.row_note(row)
        typer.echo(
            f"{row['threshold']:>9.4f}  {percent(row['auto_approved']):>9}  "
            f"{percent(row['false_approval_rate']):>11}  "
            f"{percent(row['false_approval_bound']):>9}" + (f"  {note}" if note else "")
        )
