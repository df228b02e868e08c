"""Real-world text of several scripts through import, batch and evaluation, with exact counts.

The two human-labelled corpora in ``shared/corpora`` (beside the repository, in CI too) keep
their text byte for byte: CR/LF, HTML entities, emoji, astral-plane characters, Greek and
Cyrillic, look-alike letters. They are read in place and never copied into the repository:
their ShareAlike licence would follow them, and they are large.

The test server labels by a visible property of the comment ("!" negative, "?" neutral, else
positive), so every count below is known exactly from the corpus itself.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from moderation.model.host import PROBE_PROMPT
from moderation.site.importer import sanitise
from tests.fakeollama import FakeOllama
from tests.helpers import read_table
from tests.processes import moderate as run_moderate

pytestmark = pytest.mark.integration

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"
if not CORPORA.is_dir():
    pytest.skip(
        f"the shared corpora are not here ({CORPORA}); they sit beside the repository in CI "
        "(CONTRIBUTING.md, 'The shared corpora')",
        allow_module_level=True,
    )
# Rows as documented in shared/corpora/README.md; a changed file must fail loudly here
# rather than quietly shift every expected count.
DOCUMENTED_ROWS = {"sentimp21.jsonl": 1389, "opensentimentcorpus_ru.jsonl": 4487}

RULES = [
    {"contains": "!", "answer": '{"label": "negative"}'},
    {"contains": "?", "answer": '{"label": "neutral"}'},
]
PARALLEL = "8"
OPEN, CLOSE = "<comment>\n", "\n</comment>"


def expected_label(text: str) -> str:
    """What the test server answers for this comment (its rules are case-insensitive)."""
    lowered = text.lower()
    for rule in RULES:
        if rule["contains"] in lowered:
            return str(json.loads(rule["answer"])["label"])
    return "positive"


@dataclass(frozen=True)
class Corpus:
    name: str
    lines: int  # non-blank lines of the file, counted from its bytes
    rows: tuple[dict[str, str], ...]

    @property
    def texts(self) -> list[str]:
        return [row["text"] for row in self.rows]

    @property
    def held(self) -> int:
        return sum(expected_label(t) == "negative" for t in self.texts)

    @property
    def path(self) -> Path:
        return CORPORA / self.name


@cache
def load_corpus(name: str) -> Corpus:
    raw = (CORPORA / name).read_bytes()
    # Split on b"\n" only: a str.splitlines() would also split inside a text holding U+2028
    # or U+0085, which JSON allows unescaped, and so miscount the very rows under test.
    lines = [line for line in raw.split(b"\n") if line.strip()]
    rows = tuple(json.loads(line) for line in lines)
    return Corpus(name, len(lines), rows)


@pytest.fixture(scope="module", params=sorted(DOCUMENTED_ROWS), ids=lambda n: n.split(".")[0])
def corpus(request: pytest.FixtureRequest) -> Corpus:
    found = load_corpus(request.param)
    assert found.lines == len(found.rows) == DOCUMENTED_ROWS[found.name]
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None}, rules=RULES, parallel=int(PARALLEL)) as fake:
        yield fake


@pytest.fixture
def ollama(server: FakeOllama) -> FakeOllama:
    server.configure(rules=RULES, faults=[], parallel=int(PARALLEL), reset_stats=True)
    return server


def moderate(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_moderate(*args, env=env, cwd=cwd)


def env_for(url: str, ollama: FakeOllama) -> dict[str, str]:
    return {
        "MODERATION_DATABASE_URL": url,
        "OLLAMA_HOST": ollama.url,
        "MODERATION_CONCURRENCY": PARALLEL,
        "MODERATION_BATCH_SIZE": "200",
        # Generous: two cores shared with other jobs, and a slow answer must not turn into a
        # failure that would change the exact counts.
        "MODERATION_TIMEOUT": "30",
        "MODERATION_LOAD_TIMEOUT": "30",
        # These tests follow every text to the model and back intact; the rules that hold
        # some before the model (links, hidden characters, floods) have tests of their own.
        "MODERATION_HOLD_LINKS": "0",
        "MODERATION_HOLD_HIDDEN": "false",
        "MODERATION_MAX_DUPLICATES": "0",
    }


def classified_prompts(ollama: FakeOllama) -> list[str]:
    """Prompts of real classification requests: not the warm-ups (an empty prompt) nor the
    start-up probe for log probabilities."""
    bodies = ollama.stats()["generate_bodies"]
    return [str(b["prompt"]) for b in bodies if b.get("prompt") and b["prompt"] != PROBE_PROMPT]


def between_markers(prompt: str) -> str:
    _, opened, rest = prompt.partition(OPEN)
    inner, closed, _ = rest.rpartition(CLOSE)
    assert opened and closed, f"no comment markers in {prompt!r}"
    return inner


def samples(corpus: Corpus) -> dict[str, str]:
    """One text per kind of tricky content the corpus has, so the prompt check is not vacuous."""
    kinds = {
        "crlf": lambda t: "\r\n" in t,
        "astral": lambda t: any(ord(c) > 0xFFFF for c in t),
        "greek": lambda t: any("\u0370" <= c <= "\u03ff" for c in t),
        "cyrillic": lambda t: any("\u0400" <= c <= "\u04ff" for c in t),
        "entity": lambda t: "&amp;" in t,
    }
    found = {}
    for kind, test in kinds.items():
        match = next((t for t in corpus.texts if test(t)), None)
        if match is not None:
            found[kind] = match
    return found


def import_corpus(url: str, corpus: Corpus, ollama: FakeOllama, cwd: Path) -> None:
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    sanitised = sum(sanitise(t, dialect) != t for t in corpus.texts)
    # Neither corpus has lone surrogates or NUL, so nothing may be altered on the way in.
    assert sanitised == 0
    result = moderate("import", str(corpus.path), env=env_for(url, ollama), cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert f"imported {corpus.lines} comments" in result.stdout
    assert "unstorable" not in result.stdout
    stored = read_table(url, "SELECT body FROM comments ORDER BY id")
    bodies = [row[0] for row in stored]
    assert len(bodies) == corpus.lines
    # Compared row by row so that a failure names the first differing text, not 4,487 of them.
    for index, (body, text) in enumerate(zip(bodies, corpus.texts, strict=True), start=1):
        assert body.encode("utf-8") == text.encode("utf-8"), f"row {index} differs"


def batch_and_check(url: str, corpus: Corpus, ollama: FakeOllama, cwd: Path) -> None:
    n, held = corpus.lines, corpus.held
    result = moderate("--json", env=env_for(url, ollama), cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    counts = {k: report[k] for k in ("considered", "approved", "held", "failed", "skipped")}
    assert counts == {
        "considered": n,
        "approved": n - held,
        "held": held,
        "failed": 0,
        "skipped": 0,
    }
    assert report["status"] == "done"

    # Ids are 1..N in file order (a fresh table), so each decision is checked against its text.
    labels = {d["comment_id"]: d["label"] for d in report["decisions"]}
    assert len(report["decisions"]) == n
    assert labels == {i: expected_label(t) for i, t in enumerate(corpus.texts, start=1)}

    assert read_table(url, "SELECT count(*) FROM comments WHERE approved") == [(n - held,)]
    pending = read_table(url, "SELECT id FROM comments WHERE NOT approved ORDER BY id")
    assert [row[0] for row in pending] == sorted(
        i for i, label in labels.items() if label == "negative"
    )
    per_comment = read_table(
        url, "SELECT comment_id, count(*) FROM moderation_decisions GROUP BY comment_id"
    )
    assert sorted(int(cid) for cid, _ in per_comment) == list(range(1, n + 1))
    assert {count for _, count in per_comment} == {1}

    prompts = classified_prompts(ollama)
    assert len(prompts) == n
    inner = [between_markers(p) for p in prompts]
    # Requests run 8 at a time, so their order is not the file's; the multiset must match.
    assert Counter(inner) == Counter(corpus.texts)
    for kind, text in samples(corpus).items():
        assert any(between_markers(p) == text for p in prompts), kind


def rerun_asks_nothing(url: str, corpus: Corpus, ollama: FakeOllama, cwd: Path) -> None:
    ollama.reset_stats()
    result = moderate("--json", env=env_for(url, ollama), cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    # Only the held comments are still pending, and they were decided with the same text,
    # model and prompt: none is asked again.
    assert (report["considered"], report["skipped"]) == (0, corpus.held)
    assert classified_prompts(ollama) == []
    assert read_table(url, "SELECT count(*) FROM moderation_decisions") == [(corpus.lines,)]


def test_import_batch_and_rerun_on_sqlite(
    corpus: Corpus, ollama: FakeOllama, tmp_path: Path
) -> None:
    kinds = samples(corpus)
    assert "cyrillic" in kinds or {"crlf", "astral", "greek"} <= kinds.keys()
    url = f"sqlite:///{tmp_path / 'site.db'}"
    import_corpus(url, corpus, ollama, tmp_path)
    batch_and_check(url, corpus, ollama, tmp_path)
    rerun_asks_nothing(url, corpus, ollama, tmp_path)


@pytest.mark.postgres
def test_import_and_batch_on_postgres(
    postgres_url: str, ollama: FakeOllama, tmp_path: Path
) -> None:
    # The multilingual tweets: astral characters and CR/LF are what a text column could mangle.
    corpus = load_corpus("sentimp21.jsonl")
    import_corpus(postgres_url, corpus, ollama, tmp_path)
    batch_and_check(postgres_url, corpus, ollama, tmp_path)
    rerun_asks_nothing(postgres_url, corpus, ollama, tmp_path)


def test_evaluation(corpus: Corpus, ollama: FakeOllama, tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'unused.db'}", ollama)
    result = moderate("eval", str(corpus.path), "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["n"] == corpus.lines
    assert summary["failed"] == 0

    by_label = Counter(row["label"] for row in corpus.rows)
    confusion = summary["confusion"]
    assert {truth: sum(row.values()) for truth, row in confusion.items()} == {
        label: by_label[label] for label in ("positive", "neutral", "negative")
    }
    expected: dict[str, Counter[str]] = {label: Counter() for label in by_label}
    for row in corpus.rows:
        expected[row["label"]][expected_label(row["text"])] += 1
    for truth, row in confusion.items():
        assert {col: count for col, count in row.items() if count} == dict(expected[truth])

    by_lang = Counter(row["lang"] for row in corpus.rows)
    assert {lang: figures["n"] for lang, figures in summary["per_lang"].items()} == dict(by_lang)
    assert len(classified_prompts(ollama)) == corpus.lines
