"""The label parser: what it accepts, what it refuses, and that it never raises.

A wrong label can publish a comment nobody reviewed, so every refusal rule is tested as
carefully as every acceptance rule, and the property tests check both directions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.model.labels import LABEL_SCHEMA, MAX_ANSWER_CHARS, Label, parse_label

P, U, N = Label.POSITIVE, Label.NEUTRAL, Label.NEGATIVE


def cases(table: dict[str, tuple[object, Label | None]]) -> list[object]:
    return [pytest.param(raw, want, id=case_id) for case_id, (raw, want) in table.items()]


def nested_json(value: str, levels: int) -> str:
    """`{"label": "{\\"label\\": ...}"}`: a JSON object in a JSON string, `levels` deep."""
    for _ in range(levels):
        value = json.dumps({"label": value})
    return value


# --- accepted ---------------------------------------------------------------------------------

BARE = {
    "upper-bare": ("POSITIVE", P),
    "lower": ("positive", P),
    "title": ("Positive", P),
    "mixed-case": ("nEuTrAl", U),
    "negative": ("negative", N),
    "upper-period": ("POSITIVE.", P),
    "exclamation": ("Negative!", N),
    "colon-after": ("neutral:", U),
    "whitespace-newline": (" positive \n", P),
    "tabs-crlf": ("\t\tNEUTRAL\r\n", U),
    "unicode-spaces": ("\u00a0negative\u00a0", N),
    "double-quotes": ('"negative"', N),
    "single-quotes": ("'neutral'", U),
    "smart-quotes": ("“Positive”", P),
    "square-brackets": ("[positive]", P),
    "parentheses": ("(neutral)", U),
    "angle-brackets": ("<negative>", N),
    "quoted-period": ('"Positive".', P),
    "ellipsis": ("Positive...", P),
    "list-dash": ("- neutral", U),
}

MARKDOWN = {
    "bold": ("**Positive**", P),
    "italic-star": ("*negative*", N),
    "bold-underscore": ("__neutral__", U),
    "italic-underscore": ("_positive_", P),
    "inline-code": ("`neutral`", U),
    "bold-italic": ("***NEGATIVE***", N),
    "bold-period-inside": ("**Positive.**", P),
    "bold-period-outside": ("**Positive**.", P),
    "heading": ("# Positive", P),
    "heading-2": ("## neutral", U),
    "heading-bold": ("### **Negative**", N),
    "fence-plain": ("```\npositive\n```", P),
    "fence-lang": ("```text\nNEUTRAL\n```", U),
    "fence-tilde": ("~~~\nnegative\n~~~", N),
    "fence-one-line": ("```positive```", P),
    "fence-padded": ("  ```\n  negative  \n```  \n", N),
}

PREFIXES = {
    "sentiment-colon-upper": ("Sentiment: NEGATIVE", N),
    "label-bold-period": ("Label: **neutral**.", U),
    "answer-colon": ("answer: positive", P),
    "prefix-upper": ("SENTIMENT: Positive", P),
    "prefix-no-space": ("label:negative", N),
    "prefix-dash": ("Sentiment - positive", P),
    "prefix-em-dash": ("Sentiment — neutral", U),
    "prefix-equals": ("Label = neutral", U),
    "prefix-bold-key": ("**Label**: neutral", U),
    "prefix-bold-all": ("**Sentiment: Negative**", N),
    "prefix-heading": ("## Sentiment: Positive", P),
    "prefix-newline": ("Sentiment:\nPositive", P),
    "prefix-quoted": ('Answer: "neutral"', U),
    "prefix-twice": ("Answer: Sentiment: negative", N),
}

THINKING = {
    "think-before": ("<think>hmm, maybe negative</think>\nPositive", P),
    "thinking-tag": ("<thinking>not positive at all</thinking>NEGATIVE", N),
    "think-empty": ("<think>\n\n</think>\n\nneutral", U),
    "think-upper-tag": ("<THINK>positive?</THINK> Negative.", N),
    "think-multiline": ("<think>\nline one\nline two: positive\n</think>\n**Neutral**", U),
    "think-then-json": ('<think>x</think>{"label": "negative"}', N),
    "think-two-blocks": ("<think>a</think><think>b</think>positive", P),
    "think-after-answer": ("positive <think>done</think>", P),
}

JSON_OBJECTS = {
    "json-label": ('{"label": "positive"}', P),
    "json-sentiment-upper": ('{"sentiment": "NEGATIVE"}', N),
    "json-answer": ('{"answer": "neutral"}', U),
    "json-extra-key": ('{"label":"positive","confidence":0.9}', P),
    "json-keys-agree": ('{"label": "neutral", "sentiment": "Neutral."}', U),
    "json-key-case": ('{"Label": "negative"}', N),
    "json-decorated-value": ('{"label": "**Positive**."}', P),
    "json-value-explained": ('{"label": "Negative\\nThe comment insults the author."}', N),
    "json-nested-json-string": ('{"label": "{\\"label\\": \\"neutral\\"}"}', U),
    "json-in-json-within-bound": (nested_json("neutral", levels=4), U),
    "json-pretty": ('{\n  "label": "negative"\n}\n', N),
    "json-fenced": ('```json\n{"label": "negative"}\n```', N),
    "json-fenced-no-lang": ('```\n{"sentiment": "positive"}\n```', P),
    "json-unicode-escape": ('{"label": "\\u0070ositive"}', P),
    "json-other-keys-ignored": ('{"label": "positive", "reason": "not negative"}', P),
}

EXPLAINED = {
    "newline-explanation": ("Negative\n\nThe comment insults the author.", N),
    "bold-newline": ("**Neutral**\nIt asks a question", U),
    "prefix-newline-explanation": ("Sentiment: Positive\n\nExplanation: thanks the author.", P),
    "newline-names-others-negated": ("Neutral\nIt is neither positive nor negative.", U),
    "newline-not-other": ("Negative\nThe comment is not positive at all.", N),
    "newline-non-other": ("Positive\nA non-negative, friendly remark.", P),
    "newline-same-label-again": ("Positive\nClearly positive.", P),
    "separator-period": ("Positive. The reader thanks the author.", P),
    "separator-colon": ("Negative: the comment insults the author.", N),
    "separator-comma": ("Neutral, the reader asks a question.", U),
    "separator-dash": ("Positive - the reader thanks the author.", P),
    "separator-em-dash": ("Neutral — a question about the post.", U),
    "separator-em-dash-tight": ("Neutral—a question about the post.", U),
    "separator-bold": ("**Positive**: the reader thanks the author.", P),
    "separator-bold-period-inside": ("**Negative.** Insults the author.", N),
    "separator-with-prefix": ("Label: Positive. The reader thanks the author.", P),
    "separator-then-lines": ("Positive. Thanks the author.\nAlso asks for more posts.", P),
    "separator-non-other": ("Positive, a non-negative remark.", P),
    "prefix-own-line-explained": ("Sentiment:\npositive\n\nThe reader thanks the author.", P),
    "rule-line-first": ("---\nNeutral. It asks a question.", U),
    "inline-triple-code-explained": ("```positive```\n\nThe reader thanks the author.", P),
}


# --- refused ----------------------------------------------------------------------------------

SEVERAL = {
    "or": ("positive or neutral", None),
    "two-upper": ("POSITIVE NEGATIVE", None),
    "mixed-prefix": ("Mixed: positive and negative", None),
    "slash": ("positive/negative", None),
    "and": ("Neutral and negative", None),
    "two-lines": ("Positive\nNegative", None),
    "two-lines-bold": ("**NEGATIVE**\n**POSITIVE**", None),
    "newline-then-other": ("Positive\nActually, negative.", None),
    "newline-other-in-prose": ("Negative\nThe reader is positive about the post.", None),
    "separator-comma-other": ("Positive, negative", None),
    "separator-or": ("Positive, or maybe neutral.", None),
    "separator-other-later": ("Positive. The tone is neutral overall.", None),
    "separator-other-negated": ("Positive. Not negative.", None),
    "separator-other-next-line": ("Positive. Thanks the author.\nBut negative too.", None),
    "bullets": ("- positive\n- negative", None),
    "two-fences": ("```\npositive\n```\n```\nnegative\n```", None),
}

NEGATIONS = {
    "not": ("not positive", None),
    "not-upper": ("NOT NEGATIVE", None),
    "isnt": ("isn't negative", None),
    "isnt-curly": ("isn’t negative", None),
    "no": ("no positive", None),
    "never": ("never negative", None),
    "non-hyphen": ("non-negative", None),
    "not-hyphen": ("not-positive", None),
    "bold-not": ("**Not positive**", None),
    "prefix-not": ("Sentiment: not positive", None),
    "json-not": ('{"label": "not positive"}', None),
    "newline-takes-back": ("Positive\nNot really.", None),
    "newline-negates-label": ("Positive\nWell, it is not positive.", None),
    "newline-negates-compound": ("Negative\nIt is non-negative.", None),
    "separator-not-really": ("Positive: not really.", None),
    "separator-no": ("Positive. No.", None),
    "separator-negates-label": ("Positive. The comment is not at all positive.", None),
    "not-then-label": ("Not. Positive", None),
    "strikethrough": ("~~positive~~", None),
}

UNKNOWN = {
    "mixed": ("mixed", None),
    "spam": ("spam", None),
    "ok": ("ok", None),
    "spanish": ("bueno", None),
    "russian": ("положительный", None),
    "positively": ("positively", None),
    "prefix-of-word": ("positiveness", None),
    "suffix-hyphen": ("positive-ish", None),
    "question": ("Positive?", None),
    "cyrillic-o": ("pоsitive", None),
    "fullwidth": ("ｐｏｓｉｔｉｖｅ", None),
    "sentence": ("The sentiment of this comment is positive", None),
    "sentence-colon": ("I think the answer is: positive", None),
    "prefix-without-separator": ("Sentiment positive", None),
    "unknown-prefix": ("Verdict: positive", None),
    "heading-then-label": ("## Answer\nPositive", None),
    "label-word-then-word": ("Positive sentiment", None),
    "separator-no-space": ("positive.com is great", None),
    "separator-exclamation": ("Positive! The reader is happy", None),
    "nul-inside": ("posi\x00tive", None),
}

EMPTY = {
    "empty": ("", None),
    "spaces": ("   ", None),
    "newlines": ("\n\n\t\n", None),
    "punctuation-only": ("**.**", None),
    "empty-fence": ("```\n```", None),
    "only-thinking": ("<think>positive</think>", None),
    "only-prefix": ("Sentiment:", None),
}

BROKEN_THINKING = {
    "unclosed-think": ("<think>the comment is positive", None),
    "unclosed-after-answer": ("Positive <think>wait", None),
    "unclosed-thinking": ("<thinking>positive", None),
    "stray-close": ("hmm</think>positive", None),
    "mismatched-tags": ("<think>x</thinking>positive", None),
    "nested": ("<think>a<think>b</think>c</think>positive", None),
}

BROKEN_JSON = {
    "truncated": ('{"label": "posi', None),
    "truncated-after-value": ('{"label": "positive"', None),
    "not-json": ("{positive}", None),
    "single-quotes": ("{'label': 'positive'}", None),
    "keys-disagree": ('{"label": "positive", "sentiment": "negative"}', None),
    "duplicate-keys-disagree": ('{"label": "positive", "label": "negative"}', None),
    "value-null": ('{"label": null}', None),
    "value-number": ('{"label": 1}', None),
    "value-list": ('{"label": ["positive"]}', None),
    "value-object": ('{"label": {"label": "positive"}}', None),
    "one-key-unparseable": ('{"label": "positive", "sentiment": "mixed"}', None),
    "one-key-null": ('{"label": "positive", "answer": null}', None),
    "no-known-key": ('{"result": "positive"}', None),
    "empty-object": ("{}", None),
    "value-unknown": ('{"label": "mixed"}', None),
    "trailing-text": ('{"label": "positive"}\nThe reader thanks the author.', None),
    "unclosed-fence": ('```json\n{"label": "positive"}', None),
    "text-after-fence": ("```\npositive\n```\nThe reader thanks the author.", None),
    "prefixed-json": ('Answer: {"label": "positive"}', None),
    "deep-nesting": ("{" + '"a":[' * 2000, None),
    "huge-int": ('{"label": "positive", "n": ' + "9" * 5000 + "}", None),
    "json-in-json-too-deep": (nested_json("positive", levels=6), None),
}


@pytest.mark.parametrize(("raw", "want"), cases(BARE))
def test_bare_and_punctuated_labels(raw: str, want: Label) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(MARKDOWN))
def test_markdown_is_removed(raw: str, want: Label) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(PREFIXES))
def test_prefixes_are_removed(raw: str, want: Label) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(THINKING))
def test_thinking_blocks_are_removed(raw: str, want: Label) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(JSON_OBJECTS))
def test_json_objects_are_unwrapped(raw: str, want: Label) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(EXPLAINED))
def test_label_followed_by_explanation(raw: str, want: Label) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(SEVERAL))
def test_several_labels_are_refused(raw: str, want: None) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(NEGATIONS))
def test_negations_are_refused(raw: str, want: None) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(UNKNOWN))
def test_unknown_words_and_sentences_are_refused(raw: str, want: None) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(EMPTY))
def test_empty_answers_are_refused(raw: str, want: None) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(BROKEN_THINKING))
def test_broken_thinking_is_refused(raw: str, want: None) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(("raw", "want"), cases(BROKEN_JSON))
def test_broken_or_ambiguous_json_is_refused(raw: str, want: None) -> None:
    assert parse_label(raw) is want


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="none"),
        pytest.param(b"positive", id="bytes"),
        pytest.param(bytearray(b"positive"), id="bytearray"),
        pytest.param(1, id="int"),
        pytest.param(["positive"], id="list"),
        pytest.param({"label": "positive"}, id="dict"),
        pytest.param(object(), id="object"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param("positive\ud800", id="label-and-surrogate"),
        pytest.param("\x00", id="nul"),
        pytest.param("😀", id="emoji"),
        pytest.param("😀 positive 😀", id="emoji-around"),
    ],
)
def test_odd_inputs_are_refused(raw: object) -> None:
    assert parse_label(raw) is None


def test_a_str_subclass_is_read_as_its_text() -> None:
    class Weird(str):
        def strip(self, chars: str | None = None) -> str:
            raise RuntimeError("boom")

    assert parse_label(Weird("Positive")) is P
    assert parse_label(Label.NEGATIVE) is N


def test_length_bound_is_inclusive() -> None:
    padded = "positive".center(MAX_ANSWER_CHARS)
    assert len(padded) == MAX_ANSWER_CHARS
    assert parse_label(padded) is P
    assert parse_label(padded + " ") is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("x" * 10_000_000, id="ten-megabytes"),
        pytest.param("<think>" * (MAX_ANSWER_CHARS // 7), id="many-unclosed-think"),
        pytest.param("`" * MAX_ANSWER_CHARS, id="backticks"),
        pytest.param("```\n" + "`" * (MAX_ANSWER_CHARS - 8) + "\n", id="unclosed-long-fence"),
        pytest.param("[" * MAX_ANSWER_CHARS, id="brackets"),
        pytest.param("{" + "[" * (MAX_ANSWER_CHARS - 1), id="deep-json"),
        pytest.param("positive, " * (MAX_ANSWER_CHARS // 10), id="repeated-label"),
        pytest.param("Positive" + "." * (MAX_ANSWER_CHARS - 8), id="long-tail"),
        pytest.param("Sentiment:" * (MAX_ANSWER_CHARS // 10), id="repeated-prefix"),
        pytest.param("not " * (MAX_ANSWER_CHARS // 4), id="many-negations"),
    ],
)
def test_large_inputs_are_fast(raw: str) -> None:
    started = time.perf_counter()
    parse_label(raw)
    assert time.perf_counter() - started < 1.0


def test_approves() -> None:
    assert Label.POSITIVE.approves is True
    assert Label.NEUTRAL.approves is True
    assert Label.NEGATIVE.approves is False


def test_schema_enum_is_the_labels_in_order() -> None:
    assert LABEL_SCHEMA == {"type": "string", "enum": ["positive", "neutral", "negative"]}
    assert LABEL_SCHEMA["enum"] == [label.value for label in Label]
    assert json.loads(json.dumps(LABEL_SCHEMA)) == LABEL_SCHEMA


def test_labels_are_their_values() -> None:
    assert [str(label) for label in Label] == ["positive", "neutral", "negative"]


# --- properties -------------------------------------------------------------------------------

Decorate = Callable[[str], str]

# Applied to the label word, in any number and order.
WORD_DECORATIONS: list[Decorate] = [
    str.upper,
    str.lower,
    str.title,
    lambda s: f"**{s}**",
    lambda s: f"*{s}*",
    lambda s: f"__{s}__",
    lambda s: f"_{s}_",
    lambda s: f"`{s}`",
    lambda s: f'"{s}"',
    lambda s: f"'{s}'",
    lambda s: f"“{s}”",
    lambda s: f"[{s}]",
    lambda s: f"({s})",
    lambda s: f"<{s}>",
    lambda s: f"{s}.",
    lambda s: f"{s}!",
    lambda s: f"{s}:",
    lambda s: f" {s} \n",
    lambda s: f"\t{s}",
]

PREFIX_WORDS = ["Sentiment", "sentiment", "LABEL", "Label", "answer", "Answer"]
PREFIX_SEPARATORS = [": ", ":", " - ", " = ", " — ", ":\n"]

# Applied once to the decorated word: the line it sits on.
LINE_DECORATIONS: list[Decorate] = [
    lambda s: s,
    lambda s: f"# {s}",
    lambda s: f"## {s}",
    *((lambda s, p=p, sep=sep: f"{p}{sep}{s}") for p in PREFIX_WORDS for sep in PREFIX_SEPARATORS),
]

# Explanations deliberately mention no label word.
EXPLANATIONS: list[Decorate] = [
    lambda s: s,
    lambda s: f"{s}\n\nThe reader thanks the author.",
    lambda s: f"{s}\nIt asks a question about the post.",
    lambda s: f"{s}. The reader thanks the author.",
    lambda s: f"{s}: the reader asks a question.",
    lambda s: f"{s}, because the reader is grateful.",
    lambda s: f"{s} - the reader thanks the author.",
    lambda s: f"{s} — a question about the post.",
]

# The whole answer's container.
CONTAINERS: list[Decorate] = [
    lambda s: s,
    lambda s: json.dumps({"label": s}),
    lambda s: json.dumps({"sentiment": s}),
    lambda s: json.dumps({"answer": s}),
    lambda s: json.dumps({"label": s, "confidence": 0.9}),
    lambda s: json.dumps({"label": s}, indent=2),
    lambda s: f"```\n{s}\n```",
    lambda s: f"```json\n{json.dumps({'label': s})}\n```",
]

THOUGHTS: list[Decorate] = [
    lambda s: s,
    lambda s: f"<think>maybe negative, or not positive? neutral?</think>\n{s}",
    lambda s: f"<thinking>\nThe comment...\n</thinking>\n\n{s}",
    lambda s: f"<think></think>{s}",
]

OUTER: list[Decorate] = [lambda s: s, lambda s: f"  {s}\n", lambda s: f"\n\n{s}\n\n"]


@st.composite
def decorated(draw: st.DrawFn, core: str) -> str:
    text = core
    for decorate in draw(st.lists(st.sampled_from(WORD_DECORATIONS), max_size=4)):
        text = decorate(text)
    for layer in (LINE_DECORATIONS, EXPLANATIONS, CONTAINERS, THOUGHTS, OUTER):
        text = draw(st.sampled_from(layer))(text)
    return text


@st.composite
def decorated_label(draw: st.DrawFn) -> tuple[Label, str]:
    label = draw(st.sampled_from(list(Label)))
    return label, draw(decorated(label.value))


# Fragments that reach the parser's interesting branches far more often than random text.
FRAGMENTS = [
    "positive", "Neutral", "NEGATIVE", "not", "non-", "isn't", " ", "\n", ".", ":", ",", " - ",
    "**", "_", "`", "```", "```json\n", "#", '"', "'", "{", "}", '"label"', '"sentiment"',
    "[", "]", "<think>", "</think>", "<thinking>", "</thinking>", "Sentiment:", "Label =",
    "answer -", "null", "0.9", "\\", "\ud800", "\x00", "😀", "mixed", "or", "and",
]  # fmt: skip

fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)


@given(st.text())
def test_never_raises_on_text(raw: str) -> None:
    assert parse_label(raw) in (None, *Label)


@given(st.binary())
def test_never_raises_on_bytes(raw: bytes) -> None:
    assert parse_label(raw) is None


@given(fragment_text)
@settings(max_examples=500)
def test_never_raises_on_answer_like_text(raw: str) -> None:
    result = parse_label(raw)
    assert result is None or isinstance(result, Label)
    # Soundness: a label is only ever read from an answer that spells it out
    # (the fragments contain no JSON \u escapes that could spell it otherwise).
    if result is not None:
        assert result.value in raw.lower()


@given(decorated_label())
@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
def test_decorated_label_is_read(case: tuple[Label, str]) -> None:
    label, raw = case
    assert parse_label(raw) is label


@given(st.data())
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_negated_label_is_refused(data: st.DataObject) -> None:
    label = data.draw(st.sampled_from(list(Label)))
    negation = data.draw(st.sampled_from(["not", "NOT", "isn't", "no", "never", "Not"]))
    raw = data.draw(decorated(f"{negation} {label.value}"))
    assert parse_label(raw) is None


@given(st.data())
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_two_different_labels_are_refused(data: st.DataObject) -> None:
    first, second = data.draw(st.permutations(list(Label)))[:2]
    joiner = data.draw(st.sampled_from([" ", " or ", " and ", ", ", "/", "\n", "\n\n", " | "]))
    raw = data.draw(st.sampled_from(WORD_DECORATIONS))(first.value)
    raw += joiner + data.draw(st.sampled_from(WORD_DECORATIONS))(second.value)
    raw = data.draw(st.sampled_from(CONTAINERS))(raw)
    raw = data.draw(st.sampled_from(THOUGHTS))(raw)
    assert parse_label(raw) is None
