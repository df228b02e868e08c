"""``moderate eval``: measure a model + prompt against labelled fixtures.

A fixture's truth is a sentiment ``label``, or a human's ``expected`` decision (``approve`` or
``hold``) for fixtures exported from a site; one file may mix both (see metrics.py).

It reuses the batch's classifier (same prompt rendering, parsing, timeouts, concurrency and
hosts) but reads fixtures instead of the database and writes nothing there. Every evaluation
is appended to a JSON Lines history file, so accuracy can be followed over time.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moderation.errors import FixtureError
from moderation.evaluation.metrics import EXPECTED, FixtureResult, compare, compute_metrics
from moderation.model.classifier import Classifier, OllamaClassifier
from moderation.model.prompts import load_prompt
from moderation.model.reading import read_whole
from moderation.resources import resource_path
from moderation.rules import RULES, RuleContext, check
from moderation.settings import Settings
from moderation.vocabulary import LABELS


@dataclass(frozen=True, slots=True)
class Fixture:
    id: str
    text: str
    label: str | None  # a sentiment, or None when the truth is a human's decision
    lang: str | None
    tags: tuple[str, ...]
    expected: str | None = None  # approve or hold, when there is no label

    @property
    def truth(self) -> str:
        """The label, or the human's decision for a fixture exported from a site."""
        return self.label if self.label is not None else f"expected {self.expected}"


@dataclass(frozen=True)
class Variant:
    """What is evaluated: a model name and a prompt template."""

    model: str
    prompt: str

    @classmethod
    def parse(cls, spec: str, base: Variant) -> Variant:
        """'NAME', 'model=NAME', 'prompt=PATH' or 'model=NAME,prompt=PATH'."""
        if "=" not in spec:
            return cls(spec.strip(), base.prompt)
        values = {"model": base.model, "prompt": base.prompt}
        for part in spec.split(","):
            key, _, value = part.partition("=")
            if key.strip() not in values or not value.strip():
                raise FixtureError(f"invalid --compare {spec!r}; use model=NAME,prompt=PATH")
            values[key.strip()] = value.strip()
        return cls(values["model"], values["prompt"])


SAMPLE_SEED = 20240601


def stratified_sample(
    fixtures: Sequence[Fixture], n: int, seed: int = SAMPLE_SEED
) -> list[Fixture]:
    """``n`` fixtures drawn with a fixed seed, each truth in proportion to its share.

    The first N lines of a file are usually one label (files are written label by label), so a
    limited evaluation of them says nothing about the others. Largest-remainder rounding, at
    least one of each label when ``n`` allows, and the original order kept.
    """
    import random

    if n >= len(fixtures):
        return list(fixtures)
    by_label: dict[str, list[int]] = {}
    for index, fixture in enumerate(fixtures):
        by_label.setdefault(fixture.truth, []).append(index)
    labels = sorted(by_label)
    exact = {label: n * len(by_label[label]) / len(fixtures) for label in labels}
    quota = {label: int(exact[label]) for label in labels}
    if n >= len(labels):
        for label in labels:
            quota[label] = max(quota[label], 1)
    by_remainder = sorted(labels, key=lambda lb: (quota[lb] - exact[lb], lb))
    while sum(quota.values()) < n:
        label = next(lb for lb in by_remainder if quota[lb] < len(by_label[lb]))
        quota[label] += 1
        by_remainder.remove(label)
        by_remainder.append(label)
    while sum(quota.values()) > n:
        label = max(labels, key=lambda lb: (quota[lb] - exact[lb], lb))
        quota[label] -= 1
    rng = random.Random(seed)
    chosen = sorted(i for label in labels for i in rng.sample(by_label[label], quota[label]))
    return [fixtures[i] for i in chosen]


def default_fixture_paths() -> list[Path]:
    return sorted(resource_path("fixtures").glob("*.jsonl"))


def load_fixtures(paths: Sequence[Path]) -> list[Fixture]:
    """Every file read and validated before anything is evaluated."""
    fixtures: list[Fixture] = []
    seen: dict[str, str] = {}  # id -> "path:line" of its first occurrence
    for path in paths:
        reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
        for number, fixture in reader(path):
            # Name the line of the second occurrence, like every other fixture error: in a
            # file of hundreds of lines a bare list of ids leaves the user searching.
            if fixture.id in seen:
                raise FixtureError(
                    f"{path}:{number}: duplicate fixture id {fixture.id!r} "
                    f"(first at {seen[fixture.id]})"
                )
            seen[fixture.id] = f"{path}:{number}"
            fixtures.append(fixture)
    if not fixtures:
        names = ", ".join(str(p) for p in paths) or "no files given"
        raise FixtureError(f"no fixtures to evaluate ({names})")
    return fixtures


def fixtures_hash(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _open(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        # utf-8-sig: spreadsheets export CSV with a byte-order mark, which would otherwise
        # become part of the first column's name (and of the first JSON line).
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start]
        raise FixtureError(f"{path}:{line}: not UTF-8 text (byte 0x{bad:02x})") from exc


def _read_jsonl(path: Path) -> Iterator[tuple[int, Fixture]]:
    # Only "\n" ends a JSON Lines record: str.splitlines() would also split at U+2028 and
    # U+0085, which JSON allows unescaped inside strings.
    for number, line in enumerate(_open(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FixtureError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
        yield number, _fixture(record, path, number)


def _read_csv(path: Path) -> Iterator[tuple[int, Fixture]]:
    # StringIO keeps line breaks inside quoted fields; splitting into lines would lose them.
    rows = csv.DictReader(io.StringIO(_open(path), newline=""))
    columns = set(rows.fieldnames or ())
    if "text" not in columns or not columns & {"label", "expected"}:
        raise FixtureError(f"{path}:1: a CSV needs the columns text,label|expected[,lang,tags]")
    for row in rows:
        number = rows.line_num  # the line the record ends on, for error messages
        tags = [t for t in (row.get("tags") or "").split("|") if t]
        # An empty cell is no value: a CSV may mix labelled and expected rows.
        values = {key: value for key, value in row.items() if value != ""}
        yield number, _fixture({**values, "tags": tags}, path, number)


def _fixture(record: object, path: Path, number: int) -> Fixture:
    where = f"{path}:{number}"
    if not isinstance(record, dict):
        raise FixtureError(f"{where}: expected an object")
    text, label, expected = record.get("text"), record.get("label"), record.get("expected")
    if not isinstance(text, str) or not text:
        raise FixtureError(f'{where}: "text" must be a non-empty string')
    if label is not None and expected is not None:
        raise FixtureError(f'{where}: give either "label" or "expected", not both')
    if label is None and expected is None:
        raise FixtureError(
            f'{where}: "label" must be one of positive, neutral, negative '
            '(or "expected" approve or hold)'
        )
    # The isinstance checks first: a list or object value is unhashable, and the set lookup
    # would raise TypeError (a traceback) instead of this message.
    if label is not None and (not isinstance(label, str) or label not in LABELS):
        raise FixtureError(f'{where}: "label" must be one of positive, neutral, negative')
    if expected is not None and (not isinstance(expected, str) or expected not in EXPECTED):
        raise FixtureError(f'{where}: "expected" must be approve or hold')
    tags = record.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise FixtureError(f'{where}: "tags" must be a list of strings')
    lang = record.get("lang") or None
    return Fixture(
        id=str(record.get("id") or f"{path.name}:{number}"),
        text=text,
        label=label,
        lang=str(lang) if lang else None,
        tags=tuple(tags),
        expected=expected,
    )


Progress = Callable[[], None]


async def classify_fixtures(
    settings: Settings,
    variant: Variant,
    fixtures: Sequence[Fixture],
    progress: Progress | None = None,
) -> tuple[list[FixtureResult], str | None, str]:
    """(outcomes, model digest, prompt hash) for one variant."""
    prompt = load_prompt(variant.prompt)
    classifier = OllamaClassifier(settings.model_copy(update={"model": variant.model}), prompt)
    try:
        identity = await classifier.prepare()
        if settings.min_confidence > 0:
            # As a batch does: a server without log probabilities would make every figure
            # under the threshold meaningless (nothing approved), so refuse it up front.
            await classifier.check_logprobs()
        outcomes = await answer_fixtures(classifier, settings, fixtures, progress)
    finally:
        await classifier.close()
    return outcomes, identity.model_digest, prompt.hash


async def answer_fixtures(
    classifier: Classifier,
    settings: Settings,
    fixtures: Sequence[Fixture],
    progress: Progress | None = None,
) -> list[FixtureResult]:
    """Every fixture read by a prepared classifier exactly as a batch reads a comment: the same
    request, long texts in the same windows, as many in flight as the classifier has slots."""
    slots = asyncio.Semaphore(classifier.slots)

    async def one(fixture: Fixture) -> FixtureResult:
        async with slots:
            reading = await read_whole(
                classifier,
                fixture.text,
                size=settings.max_comment_chars,
                overlap=settings.window_overlap,
                max_windows=settings.max_windows,
            )
        if progress is not None:
            progress()
        assert reading is not None  # only a stop signal leaves a reading unfinished
        verdict = reading.verdict
        label = None if verdict is None else verdict.label
        return FixtureResult(
            id=fixture.id,
            text=fixture.text,
            truth=fixture.label,
            expected=fixture.expected,
            predicted=None if label is None else label.value,
            lang=fixture.lang,
            tags=fixture.tags,
            latency_s=None if verdict is None else verdict.latency,
            error=reading.unread_reason if verdict is None else verdict.error,
            raw_answer=None if verdict is None else verdict.raw_answer,
            confidence=None if verdict is None else verdict.confidence,
        )

    return list(await asyncio.gather(*(one(f) for f in fixtures)))


@dataclass
class Evaluation:
    variant: Variant
    model_digest: str | None
    prompt_hash: str
    outcomes: list[FixtureResult]
    metrics: dict[str, Any]


def evaluate(
    settings: Settings,
    variant: Variant,
    fixtures: Sequence[Fixture],
    progress: Progress | None = None,
) -> Evaluation:
    outcomes, digest, prompt_hash = asyncio.run(
        classify_fixtures(settings, variant, fixtures, progress)
    )
    metrics = compute_metrics(outcomes, settings.min_confidence)
    return Evaluation(variant, digest, prompt_hash, outcomes, metrics)


def summary(
    main: Evaluation,
    paths: Sequence[Path],
    other: Evaluation | None = None,
    min_confidence: float = 0.0,
    rules: RuleContext | None = None,
) -> dict[str, Any]:
    """The ``--json`` object: the metrics plus what was evaluated (and, given the rules'
    context, what they change: see ``rules_effect``)."""
    result: dict[str, Any] = {
        **main.metrics,
        "model": main.variant.model,
        "model_digest": main.model_digest,
        "prompt": main.variant.prompt,
        "prompt_hash": main.prompt_hash,
        "fixtures": [str(p) for p in paths],
        "fixtures_hash": fixtures_hash(paths),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if other is not None:
        comparison = compare(main.outcomes, other.outcomes, min_confidence)
        comparison["b_model"] = other.variant.model
        comparison["b_prompt"] = other.variant.prompt
        comparison["b_model_digest"] = other.model_digest
        comparison["b_prompt_hash"] = other.prompt_hash
        result["comparison"] = comparison
    if rules is not None:
        result["rules"] = rules_effect(main.outcomes, rules, min_confidence)
    return result


def rules_effect(
    outcomes: Sequence[FixtureResult], context: RuleContext, min_confidence: float = 0.0
) -> dict[str, Any]:
    """Which fixtures each rule holds, and the approvals of the rules and the model together
    against the model alone.

    Every fixture is still read by the model (the figures above are the model's alone); a
    fixture a rule holds is then never approved, as in a batch. Floods are counted over the
    fixtures evaluated, as a batch counts them over the comments it reads.
    """
    context.count(o.text for o in outcomes)
    by_rule: dict[str, list[str]] = {}
    for outcome in outcomes:
        hold = check(outcome.text, context)
        if hold is not None:
            by_rule.setdefault(hold.rule, []).append(outcome.id)
    held = {name: by_rule[name] for name in RULES if name in by_rule}  # in the rules' order
    ruled = {i for ids in held.values() for i in ids}

    def approved(o: FixtureResult, with_rules: bool) -> bool:
        return not (with_rules and o.id in ruled) and o.approved_at(min_confidence)

    holds = [o for o in outcomes if not o.should_approve]
    approvable = [o for o in outcomes if o.should_approve]
    figures: dict[str, Any] = {"held": held, "n_held": len(ruled)}
    for key, with_rules in (("model", False), ("with_rules", True)):
        false = sum(1 for o in holds if approved(o, with_rules))
        missed = sum(1 for o in approvable if not approved(o, with_rules))
        figures[key] = {
            "false_approvals": false,
            "missed_approvals": missed,
            "false_approval_rate": false / len(holds) if holds else None,
            "missed_approval_rate": missed / len(approvable) if approvable else None,
        }
    return figures


HISTORY_KEYS = (
    "generated_at",
    "model",
    "model_digest",
    "prompt",
    "prompt_hash",
    "fixtures_hash",
    "n",
    "n_labelled",
    "n_expected",
    "accuracy",
    "macro_f1",
    "false_approval_rate",
    "missed_approval_rate",
    "failed",
    "min_confidence",
    "ece",
)


def save_history(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {key: result.get(key) for key in HISTORY_KEYS}
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line from an interrupted write
    return entries
