"""``moderate eval``: accuracy of a model + prompt on labelled fixtures, with CI gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moderation.cli.common import (
    check_writable,
    errors_to_exit_codes,
    load_settings,
    print_json,
    promise_json,
    say_error,
)
from moderation.cli.progress import progress
from moderation.formatting import percent
from moderation.vocabulary import ExitCode, RunStatus

if TYPE_CHECKING:
    from moderation.evaluation.evaluate import Evaluation, Fixture, Variant
    from moderation.settings import Settings


def eval_command(
    fixtures: Annotated[
        list[Path] | None, typer.Argument(help="JSONL or CSV files; default: the shipped ones.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model to evaluate.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Prompt template.")] = None,
    modelfile: Annotated[
        Path | None, typer.Option("--modelfile", help="Build a model from this file first.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="A seeded sample of N, stratified by label."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report.")] = None,
    min_accuracy: Annotated[
        float | None, typer.Option("--min-accuracy", min=0, max=1, help="Exit 6 below this.")
    ] = None,
    max_false_approval: Annotated[
        float | None,
        typer.Option("--max-false-approval", min=0, max=1, help="Exit 6 above this."),
    ] = None,
    compare_spec: Annotated[
        str | None, typer.Option("--compare", help="Second variant: model=NAME,prompt=PATH.")
    ] = None,
    history: Annotated[bool, typer.Option("--history", help="Show past evaluations.")] = False,
    target_false_approval: Annotated[
        float | None,
        typer.Option(
            "--target-false-approval",
            min=0,
            max=1,
            help="Print the lowest confidence threshold keeping false approvals at or under this.",
        ),
    ] = None,
) -> None:
    """Evaluate the model and prompt against labelled fixtures (writes nothing to the database)."""
    from moderation import rules
    from moderation.evaluation import evaluate as ev
    from moderation.evaluation.qualify import at_floor
    from moderation.model.prompts import load_prompt

    promise_json(as_json)
    settings = load_settings()
    history_path = settings.eval_history_path
    if history:
        _print_history(ev.read_history(history_path), as_json)
        return
    with errors_to_exit_codes():
        # Checked before the first request: an unwritable path found after a long run would
        # lose the whole evaluation.
        check_writable(history_path, "MODERATION_EVAL_HISTORY")
        if report is not None:
            check_writable(report, "--report")
        paths = list(fixtures or ev.default_fixture_paths())
        items = ev.load_fixtures(paths)
        if limit is not None:
            items = ev.stratified_sample(items, limit)
        base = ev.Variant(model or settings.model, prompt or settings.prompt)
        # Parse the second variant and load both prompts before asking anything (building a
        # model included): a typo in --compare or in a template must not surface only after
        # a request, or after the first variant's whole run.
        second = ev.Variant.parse(compare_spec, base) if compare_spec else None
        for variant in (base, second):
            if variant is not None:
                load_prompt(variant.prompt)
        if modelfile is not None:
            base = _build_variant_model(settings, modelfile, base)
            second = ev.Variant.parse(compare_spec, base) if compare_spec else None
        main = _run(settings, base, items, show=not as_json)
        other = None if second is None else _run(settings, second, items, show=not as_json)
    result = ev.summary(
        main, paths, other, settings.min_confidence, rules=rules.context_from(settings)
    )
    # The headline rates are those at the floor: say whether the model would qualify there.
    result["qualification"] = at_floor(main.outcomes, settings)
    if target_false_approval is not None:
        result["target_false_approval"] = _target(main, target_false_approval)
    failures = _gate_failures(result, min_accuracy, max_false_approval)
    ev.save_history(history_path, result)
    if report is not None:
        _write_report(report, result, main, other)
    if as_json:
        print_json(
            {
                **result,
                **({} if report is None else {"report": str(report)}),
                "status": RunStatus.DONE,
                "exit_code": ExitCode.GATE if failures else ExitCode.OK,
            }
        )
    else:
        _print_result(result)
        if report is not None:
            typer.echo(f"report written to {report}")
    for failure in failures:
        say_error(failure, "gate failed")
    raise typer.Exit(ExitCode.GATE if failures else ExitCode.OK)


def _build_variant_model(settings: Settings, path: Path, base: Variant) -> Variant:
    """Build the Modelfile under a name derived from its content, so variants never collide."""
    from moderation.evaluation.evaluate import Variant
    from moderation.model.host import create_model
    from moderation.model.modelfile import load_modelfile

    spec = load_modelfile(path)
    name = f"{base.model.split(':')[0]}-eval-{spec.digest()[:12]}"
    for host in settings.hosts:
        create_model(host.url, name, spec.create_kwargs(), settings.load_timeout, settings)
    return Variant(name, base.prompt)


def _run(settings: Settings, variant: Variant, items: list[Fixture], show: bool) -> Evaluation:
    from moderation.evaluation.evaluate import evaluate

    title = f"evaluating {variant.model}"
    with progress(title, len(items), settings.progress_every, bar=show) as advance:
        return evaluate(settings, variant, items, advance)


def _target(main: Evaluation, rate: float) -> dict[str, Any]:
    from moderation.evaluation.calibration import target_threshold

    found = target_threshold(main.outcomes, rate)
    return {"max_false_approval_rate": rate, **(found or {"threshold": None})}


def _gate_failures(
    result: dict[str, Any], min_accuracy: float | None, max_false_approval: float | None
) -> list[str]:
    failures = []
    accuracy = result.get("accuracy")
    if min_accuracy is not None and (accuracy is None or accuracy < min_accuracy):
        failures.append(f"accuracy {percent(accuracy)} is below {percent(min_accuracy)}")
    rate = result.get("false_approval_rate")
    # Without negative fixtures the rate cannot be measured; like accuracy above, a gate that
    # cannot be checked fails rather than passing silently.
    if max_false_approval is not None and rate is None:
        failures.append("false-approval rate n/a: no negative fixtures")
    elif max_false_approval is not None and rate is not None and rate > max_false_approval:
        failures.append(
            f"false-approval rate {percent(rate)} is above {percent(max_false_approval)}"
        )
    return failures


def _write_report(
    path: Path, result: dict[str, Any], main: Evaluation, other: Evaluation | None
) -> None:
    from dataclasses import asdict

    from moderation.evaluation.qualify import describe_at_floor, headline_at_floor
    from moderation.evaluation.report import render_report

    document = {
        "title": f"Evaluation of {result['model']}",
        "generated_at": result["generated_at"],
        "model": result["model"],
        "model_digest": result["model_digest"],
        "prompt": result["prompt"],
        "prompt_hash": result["prompt_hash"],
        "fixtures": result["fixtures"],
        "fixtures_hash": result["fixtures_hash"],
        "metrics": main.metrics,
        "outcomes": [asdict(o) for o in main.outcomes],
        "comparison": result.get("comparison"),
        "qualification": describe_at_floor(result["qualification"]),
        "qualification_headline": headline_at_floor(result["qualification"]),
        "qualified": result["qualification"]["qualified"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(document), encoding="utf-8")


def _print_result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from moderation.cli.untrusted import cell
    from moderation.evaluation.qualify import describe_at_floor

    console = Console()
    console.print(
        f"{result['model']} ({(result['model_digest'] or '')[:12]}), prompt {result['prompt']} "
        f"({result['prompt_hash'][:12]}), {result['n']} fixtures",
        markup=False,
        highlight=False,
    )
    console.print(_kinds(result), markup=False, highlight=False)
    headline = Table(show_header=False)
    latency = result["latency"]
    for name, value in (
        ("accuracy", percent(result["accuracy"])),
        ("macro F1", "n/a" if result["macro_f1"] is None else f"{result['macro_f1']:.3f}"),
        ("false-approval rate", percent(result["false_approval_rate"])),
        ("missed-approval rate", percent(result["missed_approval_rate"])),
        ("failed", str(result["failed"])),
        ("latency p50 / p95", _latency(latency)),
        ("confidence threshold", _threshold_line(result)),
        ("calibration error (ECE)", "n/a" if result["ece"] is None else f"{result['ece']:.3f}"),
    ):
        headline.add_row(name, value)
    console.print(headline)
    console.print(describe_at_floor(result["qualification"]), markup=False, highlight=False)
    _print_thresholds(console, result)
    labels = ("positive", "neutral", "negative")
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for column in (*labels, "failed"):
        confusion.add_column(column, justify="right")
    for truth in labels:
        row = result["confusion"][truth]
        confusion.add_row(truth, *(str(row[c]) for c in (*labels, "failed")))
    console.print(confusion)
    for title, key in (("per tag", "per_tag"), ("per language", "per_lang")):
        table = Table(title=title)
        for column in ("", "n", "accuracy", "false approvals"):
            table.add_column(column)
        for name, figures in sorted(result[key].items()):
            table.add_row(
                cell(name),  # the fixtures' own tags and languages
                str(figures["n"]),
                percent(figures["accuracy"]),
                percent(figures["false_approval_rate"]),
            )
        console.print(table)
    _print_rules(console, result.get("rules"))
    comparison = result.get("comparison")
    if comparison:
        b = comparison["b"]
        console.print(
            f"compared with {comparison['b_model']} / {comparison['b_prompt']}: accuracy "
            f"{percent(result['accuracy'])} vs {percent(b['accuracy'])}, false approvals "
            f"{percent(result['false_approval_rate'])} vs {percent(b['false_approval_rate'])}, "
            f"{len(comparison['disagreements'])} disagreements, "
            f"McNemar exact p = {comparison['mcnemar_p']:.4g}",
            markup=False,
            highlight=False,
        )


def _print_rules(console: Any, figures: dict[str, Any] | None) -> None:
    """The rules applied before the model: what they held, and what they change."""
    if not figures:
        return
    held = ", ".join(f"{name} {len(ids)}" for name, ids in figures["held"].items())
    model, both = figures["model"], figures["with_rules"]
    console.print(
        f"rules held {figures['n_held']} fixtures{f' ({held})' if held else ''}; "
        f"false approvals {model['false_approvals']} with the model alone, "
        f"{both['false_approvals']} with the rules too; missed approvals "
        f"{model['missed_approvals']} and {both['missed_approvals']}",
        markup=False,
        highlight=False,
    )


def _kinds(result: dict[str, Any]) -> str:
    """How many fixtures of each kind: accuracy and the confusion count the labelled only."""
    return (
        f"read {result['n_labelled']} labelled, "
        f"{result['n_expected']} with a human's expected decision "
        "(accuracy, macro F1 and the confusion count the labelled ones)"
    )


def _threshold_line(result: dict[str, Any]) -> str:
    threshold = result["min_confidence"]
    if not threshold:
        return "off"
    return f"{threshold:g} ({result['held_uncertain']} approving answers held as uncertain)"


def _print_thresholds(console: Any, result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="per confidence threshold (as a batch would decide)")
    for column in ("threshold", "auto-approved", "false-approval rate", "missed-approval rate"):
        table.add_column(column, justify="right")
    for row in result["thresholds"]:
        mark = " (set)" if row["threshold"] == result["min_confidence"] else ""
        table.add_row(
            f"{row['threshold']:g}{mark}",
            f"{percent(row['auto_approved'])} ({row['auto_approved_count']})",
            percent(row["false_approval_rate"]),
            percent(row["missed_approval_rate"]),
        )
    console.print(table)
    target = result.get("target_false_approval")
    if target is None:
        return
    wanted = percent(target["max_false_approval_rate"])
    if target["threshold"] is None:
        line = f"no confidence threshold keeps the false-approval rate at or under {wanted}"
    else:
        line = (
            f"lowest threshold keeping the false-approval rate at or under {wanted}: "
            f"{target['threshold']:g} (false approvals {percent(target['false_approval_rate'])}; "
            f"{target['auto_approved_count']} of {result['n']} comments still auto-approved, "
            f"{percent(target['auto_approved'])})"
        )
    console.print(line, markup=False, highlight=False)


def _latency(latency: dict[str, float | None]) -> str:
    p50, p95 = latency.get("p50"), latency.get("p95")
    if p50 is None or p95 is None:
        return "n/a"
    return f"{p50 * 1000:.0f} ms / {p95 * 1000:.0f} ms"


def _print_history(entries: list[dict[str, Any]], as_json: bool) -> None:
    from moderation.text.inert import json_text

    if as_json:
        typer.echo(json_text(json.dumps(entries, ensure_ascii=False)))
        return
    from rich.console import Console
    from rich.table import Table

    from moderation.cli.untrusted import cell

    table = Table(title="Evaluations")
    for column in ("when", "model", "digest", "prompt", "n", "accuracy", "false approvals"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            cell(e.get("generated_at")),
            cell(e.get("model")),
            cell(str(e.get("model_digest") or "")[:12]),
            cell(str(e.get("prompt_hash") or "")[:12]),
            str(e.get("n")),
            percent(e.get("accuracy")),
            percent(e.get("false_approval_rate")),
        )
    Console().print(table)
