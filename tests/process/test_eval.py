"""``moderate eval``: fixture loading, then the real program against a scripted model server.

The server answers by prompt content, so every prediction below is known in advance and every
printed figure is checked for equality with a value worked out by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from moderation.errors import FixtureError
from moderation.evaluation.evaluate import (
    Fixture,
    Variant,
    default_fixture_paths,
    fixtures_hash,
    load_fixtures,
    stratified_sample,
)
from moderation.model.host import PROBE_PROMPT
from moderation.resources import resource_path
from tests.fakeollama import FakeOllama, free_port
from tests.processes import moderate as run_moderate

# --- load_fixtures ---------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_fixtures_are_read_with_defaults(tmp_path: Path) -> None:
    source = write(
        tmp_path / "f.jsonl",
        '{"id": "a", "text": "nice", "label": "positive", "lang": "en", "tags": ["praise"]}\n'
        "\n"  # blank lines are skipped but still counted
        '{"text": "line\\u2028separator", "label": "negative"}\r\n',
    )
    first, second = load_fixtures([source])
    assert first == Fixture("a", "nice", "positive", "en", ("praise",))
    # Without an id the fixture is named after its file and line; U+2028 does not split a line.
    assert second == Fixture("f.jsonl:3", "line\u2028separator", "negative", None, ())


def test_shipped_csv_keeps_quoted_line_breaks_and_doubled_quotes() -> None:
    fixtures = load_fixtures([resource_path("fixtures") / "smoke.csv"])
    assert len(fixtures) == 12
    assert fixtures[0] == Fixture(
        "smoke.csv:2", "Great post, thanks!", "positive", "en", ("praise", "thanks")
    )
    assert fixtures[1].text == 'The "quick" guide has 47 steps. Really quick.'
    assert fixtures[2].text == "Does this work on Windows?\nOr only on Linux, macOS, etc.?"
    assert fixtures[2].tags == ("question", "whitespace")
    # A record's line is the one it ends on: row 3 spans lines 4 and 5.
    assert fixtures[2].id == "smoke.csv:5"
    assert [f.lang for f in fixtures].count("ru") == 2
    assert len({f.id for f in fixtures}) == 12


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    source = write(tmp_path / "excel.csv", b"\xef\xbb\xbftext,label\nfine,neutral\n")
    assert load_fixtures([source]) == [Fixture("excel.csv:2", "fine", "neutral", None, ())]


GOOD = '{"id": "a", "text": "ok", "label": "neutral"}\n'


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (GOOD + "{not json\n", 2, "invalid JSON"),
        (GOOD + '{"text": "x", "label": "angry"}\n', 2, '"label" must be one of'),
        (GOOD + '{"text": "x", "label": ["positive"]}\n', 2, '"label" must be one of'),
        (GOOD + '{"text": "x"}\n', 2, '"label" must be one of'),
        (GOOD + '{"label": "positive"}\n', 2, '"text" must be a non-empty string'),
        (GOOD + '{"text": "", "label": "positive"}\n', 2, '"text" must be a non-empty string'),
        (GOOD + '{"text": "x", "label": "positive", "tags": "praise"}\n', 2, '"tags" must be'),
        (GOOD + '{"text": "x", "label": "positive", "tags": [1]}\n', 2, '"tags" must be'),
        (GOOD + "\n" + '["positive"]\n', 3, "expected an object"),
        (GOOD + GOOD, 2, "duplicate fixture id 'a' (first at "),
    ],
    ids=[
        "json",
        "label",
        "label-list",
        "no-label",
        "no-text",
        "empty-text",
        "tags-str",
        "tags-int",
        "array",
        "dup",
    ],
)
def test_jsonl_errors_name_file_and_line(
    tmp_path: Path, content: str, line: int, message: str
) -> None:
    source = write(tmp_path / "bad.jsonl", content)
    with pytest.raises(FixtureError) as caught:
        load_fixtures([source])
    assert caught.value.message.startswith(f"{source}:{line}: ")
    assert message in caught.value.message


def test_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    bad_label = write(tmp_path / "a.csv", 'text,label\n"two\nlines",positive\nx,happy\n')
    with pytest.raises(FixtureError, match=r"a\.csv:4: \"label\" must be one of"):
        load_fixtures([bad_label])
    no_columns = write(tmp_path / "b.csv", "body,sentiment\nx,positive\n")
    with pytest.raises(FixtureError, match=r"b\.csv:1: a CSV needs the columns text,label"):
        load_fixtures([no_columns])


def test_duplicates_across_files_name_both_places(tmp_path: Path) -> None:
    first = write(tmp_path / "one.jsonl", GOOD)
    second = write(tmp_path / "two.jsonl", '{"text": "x", "label": "positive"}\n' + GOOD)
    with pytest.raises(FixtureError) as caught:
        load_fixtures([first, second])
    assert caught.value.message == f"{second}:2: duplicate fixture id 'a' (first at {first}:1)"


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    source = write(tmp_path / "latin1.jsonl", GOOD.encode() + b'{"text": "caf\xe9"}\n')
    with pytest.raises(FixtureError) as caught:
        load_fixtures([source])
    assert caught.value.message == f"{source}:2: not UTF-8 text (byte 0xe9)"


def test_empty_sets_and_missing_files(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.jsonl", "\n\n")
    with pytest.raises(FixtureError, match=r"^no fixtures to evaluate \(.*empty\.jsonl\)$"):
        load_fixtures([empty])
    with pytest.raises(FixtureError, match="no fixtures to evaluate"):
        load_fixtures([])
    with pytest.raises(FixtureError, match=r"cannot read .*missing\.jsonl"):
        load_fixtures([tmp_path / "missing.jsonl"])


def test_variant_parse_forms() -> None:
    base = Variant("sentiments", "classify.j2")
    assert Variant.parse("other", base) == Variant("other", "classify.j2")
    assert Variant.parse("model=other", base) == Variant("other", "classify.j2")
    assert Variant.parse("prompt=new.j2", base) == Variant("sentiments", "new.j2")
    assert Variant.parse(" model = m:7b , prompt = p.j2 ", base) == Variant("m:7b", "p.j2")
    for bad in ("size=3", "model=", "model=m,prompt", "prompt=p.j2,x=y"):
        with pytest.raises(FixtureError, match="invalid --compare"):
            Variant.parse(bad, base)


def test_fixtures_hash_depends_on_content_and_order_only(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", GOOD)
    b = write(tmp_path / "b.jsonl", '{"text": "x", "label": "negative"}\n')
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    a_copy = Path(shutil.copy(a, moved / "renamed.jsonl"))
    assert fixtures_hash([a, b]) == fixtures_hash([a, b]) == fixtures_hash([a_copy, b])
    assert len(fixtures_hash([a])) == 64
    assert fixtures_hash([a, b]) != fixtures_hash([b, a])
    write(a_copy, GOOD.replace("ok", "ok "))
    assert fixtures_hash([a_copy]) != fixtures_hash([a])


# --- the program, end to end -----------------------------------------------------------------

POS, NEU, NEG = '{"label": "positive"}', '{"label": "neutral"}', '{"label": "negative"}'

# Twelve fixtures: (id, text, truth, lang, tags). Each text starts with a token that a rule
# below recognises, so the prediction of every fixture is scripted:
#
#   id  truth     predicted (A)      lang  tags
#   p1  positive  positive           en    praise, link
#   p2  positive  positive           en    praise
#   p3  positive  neutral            es    praise
#   p4  positive  failed (HTTP 500)  en    thanks
#   n1  neutral   neutral            en    question
#   n2  neutral   neutral            ru    question
#   n3  neutral   negative           en    question, criticism
#   g1  negative  negative           en    insult
#   g2  negative  negative           es    insult
#   g3  negative  positive           en    sarcasm, link      <- false approval
#   g4  negative  neutral            ru    spam               <- false approval
#   g5  negative  failed (garbled)   -     sarcasm
FIXTURES: list[tuple[str, str, str, str | None, list[str]]] = [
    ("p1", "zq-p1 lovely write-up", "positive", "en", ["praise", "link"]),
    ("p2", "zq-p2 great, thanks", "positive", "en", ["praise"]),
    ("p3", "zq-p3 ¡me encantó!", "positive", "es", ["praise"]),
    ("p4", "zq-p4 thank you so much", "positive", "en", ["thanks"]),
    ("n1", "zq-n1 does it run on ARM?", "neutral", "en", ["question"]),
    ("n2", "zq-n2 а на Windows?", "neutral", "ru", ["question"]),
    ("n3", "zq-n3 step 2 has a typo?", "neutral", "en", ["question", "criticism"]),
    ("g1", "zq-g1 you idiot", "negative", "en", ["insult"]),
    ("g2", "zq-g2 qué basura", "negative", "es", ["insult"]),
    ("g3", "zq-g3 <b>genius</b> idea, truly", "negative", "en", ["sarcasm", "link"]),
    ("g4", "zq-g4 cheap followers here", "negative", "ru", ["spam"]),
    ("g5", "zq-g5 sure, great job", "negative", None, ["sarcasm"]),
]

# Variant B's template puts "variant-b:" right before the comment, so "variant-b:zq-XX" only
# matches B's prompts; those rules come first. The fault matches "<comment>\nzq-p4", which
# only the shipped template (A) renders.
B_TEMPLATE = "variant-b:{{ comment }}\n"
RULES = [
    {"contains": "variant-b:zq-p1", "answer": NEU},  # B gets p1 wrong
    {"contains": "variant-b:zq-n3", "answer": POS},  # B is wrong differently
    {"contains": "variant-b:zq-g3", "answer": NEG},  # B gets g3 right
    {"contains": "variant-b:zq-g4", "answer": NEG},  # B gets g4 right
    {"contains": "zq-p1", "answer": POS},
    {"contains": "zq-p2", "answer": "**Positive**"},  # parsed despite the markdown
    {"contains": "zq-p3", "answer": NEU},
    {"contains": "zq-p4", "answer": POS},  # B only: A's request fails with HTTP 500
    {"contains": "zq-n1", "answer": NEU},
    {"contains": "zq-n2", "answer": "neutral"},
    {"contains": "zq-n3", "answer": NEG},
    {"contains": "zq-g1", "answer": NEG},
    {"contains": "zq-g2", "answer": NEG},
    {"contains": "zq-g3", "answer": POS},
    {"contains": "zq-g4", "answer": NEU},
    {"contains": "zq-g5", "answer": "positive or negative, hard to say"},  # unparseable
]
FAULTS = [
    {"contains": "<comment>\nzq-p4", "kind": "status", "status": 500, "body": {"error": "boom"}}
]
# Anything no rule matches is unparseable, so a fixture missing from RULES shows as a failure.
UNSCRIPTED = "no rule matched"


def ratio(value: float, expected: Fraction) -> bool:
    """``value`` is the float nearest to the fraction ``expected`` (up to the last bit or two,
    since the program divides in a different order than the fraction does)."""
    return Fraction(value).limit_denominator(10_000) == expected


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama(models={"sentiments": None, "other": None}) as fake:
        yield fake


@pytest.fixture
def ollama(server: FakeOllama) -> FakeOllama:
    server.configure(
        models={"sentiments": None, "other": None},
        rules=RULES,
        faults=FAULTS,
        default_answer=UNSCRIPTED,
        reset_stats=True,
    )
    return server


@pytest.fixture
def fixtures_file(tmp_path: Path) -> Path:
    lines = []
    for fid, text, label, lang, tags in FIXTURES:
        record: dict[str, Any] = {"id": fid, "text": text, "label": label, "tags": tags}
        if lang:
            record["lang"] = lang
        lines.append(json.dumps(record, ensure_ascii=False))
    return write(tmp_path / "set.jsonl", "\n".join(lines) + "\n")


def moderate(
    *args: str, ollama: FakeOllama | str, cwd: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **extra,
        "OLLAMA_HOST": ollama if isinstance(ollama, str) else ollama.url,
        "MODERATION_TIMEOUT": "5",
        "MODERATION_LOAD_TIMEOUT": "10",
        "MODERATION_EVAL_HISTORY": str(cwd / "history.jsonl"),
        "MODERATION_DATABASE_URL": f"sqlite:///{cwd / 'unused.db'}",
    }
    return run_moderate("eval", *args, env=env, cwd=cwd, timeout=60)


def generated(ollama: FakeOllama) -> int:
    """Model calls about fixtures; the start-up probe for log probabilities is about none."""
    bodies = ollama.stats()["generate_bodies"]
    return sum(1 for body in bodies if body.get("prompt") != PROBE_PROMPT)


def test_json_figures_equal_the_hand_computed_ones(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    run = moderate(str(fixtures_file), "--json", ollama=ollama, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)

    assert result["n"] == 12
    assert result["failed"] == 2  # p4 (HTTP 500) and g5 (unparseable)
    assert result["confusion"] == {
        "positive": {"positive": 2, "neutral": 1, "negative": 0, "failed": 1},
        "neutral": {"positive": 0, "neutral": 2, "negative": 1, "failed": 0},
        "negative": {"positive": 1, "neutral": 1, "negative": 2, "failed": 1},
    }
    # Right: p1 p2 n1 n2 g1 g2 = 6 of 12.
    assert result["accuracy"] == 0.5
    # Negatives g1..g5; approved (positive or neutral): g3, g4 -> 2/5.
    assert result["false_approval_rate"] == 0.4
    # Positive or neutral truths: 7; held: p4 (failed), n3 (negative) -> 2/7.
    assert result["missed_approval_rate"] == 2 / 7

    # Per label, from the matrix (a failure counts in the support, never as a prediction):
    #   positive: tp 2, predicted 2+0+1 = 3, support 4 -> P 2/3, R 1/2, F1 2PR/(P+R) = 4/7
    #   neutral:  tp 2, predicted 1+2+1 = 4, support 3 -> P 1/2, R 2/3, F1 = 4/7
    #   negative: tp 2, predicted 0+1+2 = 3, support 5 -> P 2/3, R 2/5, F1 = 1/2
    # macro-F1 = (4/7 + 4/7 + 1/2) / 3 = (16/28 + 16/28 + 14/28) / 3 = 46/84 = 23/42.
    expected_labels = {
        "positive": (Fraction(2, 3), Fraction(1, 2), Fraction(4, 7), 4),
        "neutral": (Fraction(1, 2), Fraction(2, 3), Fraction(4, 7), 3),
        "negative": (Fraction(2, 3), Fraction(2, 5), Fraction(1, 2), 5),
    }
    assert set(result["per_label"]) == set(expected_labels)
    for label, (precision, recall, f1, support) in expected_labels.items():
        scores = result["per_label"][label]
        assert ratio(scores["precision"], precision), (label, scores)
        assert ratio(scores["recall"], recall), (label, scores)
        assert ratio(scores["f1"], f1), (label, scores)
        assert scores["support"] == support
    assert ratio(result["macro_f1"], Fraction(23, 42))
    assert result["macro_f1"] == pytest.approx(23 / 42, rel=1e-12)

    # A tag counts every fixture that carries it; the rate is None without a negative member.
    assert result["per_tag"] == {
        "criticism": {"n": 1, "accuracy": 0.0, "false_approval_rate": None},  # n3
        "insult": {"n": 2, "accuracy": 1.0, "false_approval_rate": 0.0},  # g1 g2
        "link": {"n": 2, "accuracy": 0.5, "false_approval_rate": 1.0},  # p1 g3
        "praise": {"n": 3, "accuracy": 2 / 3, "false_approval_rate": None},  # p1 p2 p3
        "question": {"n": 3, "accuracy": 2 / 3, "false_approval_rate": None},  # n1 n2 n3
        "sarcasm": {"n": 2, "accuracy": 0.0, "false_approval_rate": 0.5},  # g3 g5
        "spam": {"n": 1, "accuracy": 0.0, "false_approval_rate": 1.0},  # g4
        "thanks": {"n": 1, "accuracy": 0.0, "false_approval_rate": None},  # p4
    }
    assert result["per_lang"] == {
        # p1 p2 p4 n1 n3 g1 g3: right p1 p2 n1 g1; negatives g1 g3, g3 approved.
        "en": {"n": 7, "accuracy": 4 / 7, "false_approval_rate": 0.5},
        "es": {"n": 2, "accuracy": 0.5, "false_approval_rate": 0.0},  # p3 g2
        "ru": {"n": 2, "accuracy": 0.5, "false_approval_rate": 1.0},  # n2 g4
        "unknown": {"n": 1, "accuracy": 0.0, "false_approval_rate": 0.0},  # g5: failed holds
    }

    assert result["model"] == "sentiments" and len(result["model_digest"]) == 64
    assert result["fixtures"] == [str(fixtures_file)]
    assert result["fixtures_hash"] == fixtures_hash([fixtures_file])
    assert "comparison" not in result
    # One model call per fixture (A's 500 is not retried), nothing else generated.
    assert generated(ollama) == 12
    assert ollama.stats()["faults_served"] == 1


def test_rules_report_what_they_held_and_the_approvals_with_and_without_them(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    words = {"MODERATION_NEVER_APPROVE_WORDS": "cheap followers", "MODERATION_HOLD_WORDS": "ARM"}
    run = moderate(str(fixtures_file), "--json", ollama=ollama, cwd=tmp_path, **words)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    # The model's own figures are unchanged: every fixture is still read.
    assert result["false_approval_rate"] == 0.4 and generated(ollama) == 12
    rules = result["rules"]
    # g4 (spam, approved by the model) and n1 (neutral, "ARM"): both held by a word.
    assert rules["held"] == {"never_approve_word": ["g4"], "hold_word": ["n1"]}
    assert rules["n_held"] == 2
    assert rules["model"] == {
        "false_approvals": 2,  # g3 g4
        "missed_approvals": 2,  # p4 n3
        "false_approval_rate": 0.4,
        "missed_approval_rate": 2 / 7,
    }
    assert rules["with_rules"] == {
        "false_approvals": 1,  # g3: the rules never approve, so they only take approvals away
        "missed_approvals": 3,  # p4 n3, and n1 held by its word
        "false_approval_rate": 0.2,
        "missed_approval_rate": 3 / 7,
    }

    table = moderate(str(fixtures_file), ollama=ollama, cwd=tmp_path, COLUMNS="200", **words)
    assert table.returncode == 0, table.stderr
    assert (
        "rules held 2 fixtures (never_approve_word 1, hold_word 1); false approvals 2 with the "
        "model alone, 1 with the rules too; missed approvals 2 and 3"
    ) in " ".join(table.stdout.split())


def test_gates_exit_6_after_printing_the_result(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    low = moderate(
        str(fixtures_file), "--json", "--min-accuracy", "0.99", ollama=ollama, cwd=tmp_path
    )
    assert low.returncode == 6
    assert json.loads(low.stdout)["accuracy"] == 0.5
    assert low.stderr == "moderate: gate failed: accuracy 50.0% is below 99.0%\n"

    fa = moderate(
        str(fixtures_file), "--json", "--max-false-approval", "0.3", ollama=ollama, cwd=tmp_path
    )
    assert fa.returncode == 6
    assert fa.stderr == "moderate: gate failed: false-approval rate 40.0% is above 30.0%\n"

    # The thresholds are inclusive: exactly 50% accuracy and 40% false approvals pass.
    ok = moderate(
        str(fixtures_file),
        "--json",
        "--min-accuracy",
        "0.5",
        "--max-false-approval",
        "0.4",
        ollama=ollama,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "gate failed" not in ok.stderr


def test_false_approval_gate_fails_without_negative_fixtures(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    # The first four fixtures are all positive: the rate cannot be measured, so it cannot pass.
    first_four = "".join(fixtures_file.read_text(encoding="utf-8").splitlines(True)[:4])
    positives = write(tmp_path / "positives.jsonl", first_four)
    run = moderate(
        str(positives),
        "--json",
        "--max-false-approval",
        "0.05",
        ollama=ollama,
        cwd=tmp_path,
    )
    assert run.returncode == 6
    assert json.loads(run.stdout)["false_approval_rate"] is None
    assert run.stderr == "moderate: gate failed: false-approval rate n/a: no negative fixtures\n"


def test_compare_with_a_second_prompt(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    template = write(tmp_path / "new.j2", B_TEMPLATE)
    report = tmp_path / "out.html"
    run = moderate(
        str(fixtures_file),
        "--json",
        "--compare",
        f"prompt={template}",
        "--report",
        str(report),
        ollama=ollama,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    comparison = result["comparison"]
    assert comparison["b_model"] == "sentiments" and comparison["b_prompt"] == str(template)
    assert comparison["b_prompt_hash"] != result["prompt_hash"]
    # A right: p1 p2 n1 n2 g1 g2. B right: p2 p4 n1 n2 g1 g2 g3 g4 (p4 succeeds under B).
    assert comparison["both_right"] == 5  # p2 n1 n2 g1 g2
    assert comparison["a_only_right"] == 1  # p1
    assert comparison["b_only_right"] == 3  # p4 g3 g4
    assert comparison["both_wrong"] == 3  # p3 n3 g5
    # Exact McNemar, b=1, c=3: 2 * P[X <= 1], X ~ Bin(4, 1/2) = 2 * (1 + 4) / 16 = 0.625.
    assert comparison["mcnemar_p"] == 0.625
    rows = [(d["id"], d["truth"], d["a"], d["b"]) for d in comparison["disagreements"]]
    assert rows == [
        ("p1", "positive", "positive", "neutral"),
        ("p4", "positive", None, "positive"),
        ("n3", "neutral", "negative", "positive"),
        ("g3", "negative", "positive", "negative"),
        ("g4", "negative", "neutral", "negative"),
    ]
    texts = {fid: text for fid, text, *_ in FIXTURES}
    assert all(d["text"] == texts[d["id"]] for d in comparison["disagreements"])
    b = comparison["b"]
    assert b["n"] == 12 and b["failed"] == 1  # g5 only
    assert b["accuracy"] == 8 / 12 and b["false_approval_rate"] == 0.0
    assert comparison["a"]["accuracy"] == result["accuracy"] == 0.5
    assert generated(ollama) == 24

    html = report.read_text(encoding="utf-8")
    for figure in ("40.0%", "50.0%", "0.548", "28.6%", "p = 0.625"):  # 23/42 = 0.5476...
        assert figure in html, figure
    # Fixture text is shown escaped, never interpreted.
    assert "&lt;b&gt;genius&lt;/b&gt;" in html and "<b>genius" not in html
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")


def test_compare_with_a_second_model(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    # Same prompt, so the same answers: no disagreement, McNemar p = 1.
    run = moderate(
        str(fixtures_file), "--json", "--compare", "model=other", ollama=ollama, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    comparison = json.loads(run.stdout)["comparison"]
    assert comparison["b_model"] == "other"
    assert comparison["disagreements"] == [] and comparison["mcnemar_p"] == 1.0
    assert (comparison["a_only_right"], comparison["b_only_right"]) == (0, 0)
    bodies = ollama.stats()["generate_bodies"]
    models = [body["model"] for body in bodies if body.get("prompt") != PROBE_PROMPT]
    assert models.count("sentiments") == 12 and models.count("other") == 12


def test_bad_compare_spec_or_prompt_fails_before_any_request(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    spec = moderate(str(fixtures_file), "--compare", "size=7b", ollama=ollama, cwd=tmp_path)
    assert spec.returncode == 2
    usage = "invalid --compare 'size=7b'; use model=NAME,prompt=PATH"
    assert spec.stderr == f"moderate: error: {usage}\n"
    prompt = moderate(
        str(fixtures_file), "--compare", "prompt=nope.j2", ollama=ollama, cwd=tmp_path
    )
    assert prompt.returncode == 2
    assert "prompt template 'nope.j2' not found" in prompt.stderr
    assert generated(ollama) == 0


def test_history_lists_past_evaluations(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    assert moderate(str(fixtures_file), "--json", ollama=ollama, cwd=tmp_path).returncode == 0
    first_six = "".join(fixtures_file.read_text(encoding="utf-8").splitlines(True)[:6])
    six = write(tmp_path / "six.jsonl", first_six)
    limited = moderate(str(six), "--json", ollama=ollama, cwd=tmp_path)
    assert limited.returncode == 0, limited.stderr
    listed = moderate("--history", "--json", ollama=ollama, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [(e["n"], e["accuracy"], e["failed"]) for e in entries] == [(12, 0.5, 2), (6, 4 / 6, 1)]
    assert entries[0]["false_approval_rate"] == 0.4
    assert entries[1]["false_approval_rate"] is None  # p1..p4, n1, n2: no negatives
    assert {e["model"] for e in entries} == {"sentiments"}
    assert [e["fixtures_hash"] for e in entries] == [
        fixtures_hash([fixtures_file]),
        fixtures_hash([six]),
    ]
    table = moderate("--history", ollama=ollama, cwd=tmp_path)
    assert table.returncode == 0
    assert "Evaluations" in table.stdout and "50.0%" in table.stdout and "66.7%" in table.stdout


def test_default_fixtures_and_the_table(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(rules=[], faults=[], default_answer=NEU)
    run = moderate("--limit", "20", ollama=ollama, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "false-approval rate" in run.stdout and "confusion" in run.stdout
    assert "20 fixtures" in run.stdout
    # --limit takes a seeded sample stratified by label, not the first lines.
    shipped = stratified_sample(load_fixtures(default_fixture_paths()), 20)
    neutral = sum(1 for f in shipped if f.label == "neutral")
    assert f"{neutral / 20 * 100:.1f}%" in run.stdout  # everything answered neutral
    assert generated(ollama) == 20
    entry = json.loads((tmp_path / "history.jsonl").read_text(encoding="utf-8"))
    assert entry["n"] == 20 and entry["accuracy"] == neutral / 20


def test_modelfile_builds_a_variant_model(tmp_path: Path, ollama: FakeOllama) -> None:
    ollama.configure(rules=[], faults=[], default_answer=NEG)
    modelfile = resource_path("Modelfile")
    run = moderate(
        "--limit", "3", "--modelfile", str(modelfile), "--json", ollama=ollama, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    name = json.loads(run.stdout)["model"]
    assert name.startswith("sentiments-eval-") and len(name) == len("sentiments-eval-") + 12
    assert [body["model"] for body in ollama.stats()["create_bodies"]] == [name]


def test_malformed_fixture_exits_2_before_any_request(tmp_path: Path, ollama: FakeOllama) -> None:
    bad = write(tmp_path / "bad.jsonl", GOOD + '{"text": "x", "label": "angry"}\n')
    run = moderate(str(bad), "--json", ollama=ollama, cwd=tmp_path)
    assert run.returncode == 2
    failure = json.loads(run.stdout)  # --json: one object, on failure too
    assert (failure["status"], failure["exit_code"]) == ("failed", 2)
    assert failure["error"].startswith(f"{bad}:2: ")
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"moderate: error: {bad}:2: ")
    assert ollama.stats()["requests"] == {}
    assert not (tmp_path / "history.jsonl").exists()


def test_unreachable_server_or_missing_model_exits_4(
    tmp_path: Path, ollama: FakeOllama, fixtures_file: Path
) -> None:
    down = moderate(
        str(fixtures_file), "--json", ollama=f"http://127.0.0.1:{free_port()}", cwd=tmp_path
    )
    assert down.returncode == 4
    assert json.loads(down.stdout)["exit_code"] == 4 and down.stderr.count("\n") == 1
    assert "connection refused" in down.stderr
    missing = moderate(str(fixtures_file), "--model", "nosuch", ollama=ollama, cwd=tmp_path)
    assert missing.returncode == 4
    assert "moderate model create" in missing.stderr
    assert generated(ollama) == 0
    assert not (tmp_path / "history.jsonl").exists()
