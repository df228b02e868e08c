"""Sentiment labels, the schema that asks the model for one, and the parser for its answer.

The model is asked for a JSON string matching LABEL_SCHEMA, but models ignore formats and
instructions: answers arrive with punctuation, markdown, explanations, thinking blocks or a
JSON wrapper. `parse_label` peels those decorations off and accepts an answer only when exactly
one label word is left. Its result decides whether a comment is published without a human
looking at it, so it fails closed: anything ambiguous (two labels, a negation, an unknown word,
a truncated answer) is None, which the pipeline treats as "do not approve". It never raises,
whatever it is given, because one odd answer must not stop a batch.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moderation.vocabulary import Label

# Sent to Ollama as `format`: the server compiles it to a grammar, so the enum constrains the
# answer when the model honours it. The parser below does not rely on that.
# A bare JSON string ("positive") rather than an object ({"label": "positive"}): measured on a
# real model with the shipped few-shots written the same way, it needs 3 output tokens instead
# of 6 and about 30 fewer prompt tokens per comment, with no parse failures either way and an
# accuracy as good (see "Answer format" in docs/how-a-batch-works.md). One word without a schema is
# cheaper still but was less accurate and failed to parse now and then.
LABEL_SCHEMA: dict[str, Any] = {"type": "string", "enum": [label.value for label in Label]}

# Real answers are a word or a short paragraph. The bound is checked before any other work so a
# runaway generation costs nothing to reject.
MAX_ANSWER_CHARS = 10_000

# A label inside a JSON string inside a fence inside ... is parsed again; real answers need one
# or two levels, and the bound keeps hostile nesting from recursing deeply.
_MAX_DEPTH = 4

_LABELS: dict[str, Label] = {label.value: label for label in Label}
_JSON_KEYS = frozenset({"label", "sentiment", "answer"})

# Decoration around a label that does not change its meaning: whitespace, sentence
# punctuation, quotes, brackets, markdown emphasis / code / heading markers, list dashes.
# Deliberately absent: "?" ("Positive?" is a question, not an answer) and "~" ("~~positive~~"
# is struck through, i.e. retracted).
_EDGE = " \t\r\n\v\f\u00a0\u200b\ufeff.,;:!\"'`*_#()[]{}<>«»“”‘’„-–—="

# What may follow the label word on a first line before (or around) the separator.
_CLOSERS = "*_`\"'’”)]}>!.:,"
_SEPARATOR_MARKS = ".:,"
_DASH = re.compile(r"\s+[-–—]\s+|\s*—\s*")

_PREFIX = re.compile(r"(?:sentiment|label|answer)[\s*_`]*[:=\-–—]", re.IGNORECASE)
_THINK_TAG = re.compile(r"<(/?)(think|thinking)>", re.IGNORECASE)
# A fence opens a line of its own; "```positive```" is an inline code span (as in CommonMark, a
# backtick fence's info string cannot contain a backtick).
_FENCE_OPEN = re.compile(r"(?:`{3,}[^`\n]*|~{3,}[^\n]*)(?:\n|$)")
_FENCE = re.compile(r"(`{3,}|~{3,})[^\n]*\n(.*?)\n?[ \t]*\1[ \t]*", re.DOTALL)
_LEADING_WORD = re.compile(r"[A-Za-z]+")
# Hyphenated and apostrophised words stay whole, so "non-negative" is not "negative" and
# "isn't" is one negation.
_WORD = re.compile(r"[a-z]+(?:['’-][a-z]+)*")

_NEGATIONS = frozenset(
    {
        "not", "no", "never", "neither", "nor", "none", "non", "without", "hardly", "barely",
        "cannot", "nothing", "isnt", "arent", "wasnt", "werent", "dont", "doesnt", "didnt",
        "cant", "couldnt", "wont", "wouldnt", "shouldnt", "aint", "hasnt", "havent", "hadnt",
    }
)  # fmt: skip
# How many words before a label a negation still applies to: "not at all positive".
_NEGATION_WINDOW = 3
# "neither positive nor negative", "not offensive or negative": the negation carries over.
_CONJUNCTIONS = frozenset({"or", "nor", "and"})


def parse_label(raw: object) -> Label | None:
    """The single label in a model's answer, or None when there is not exactly one."""
    try:
        if not isinstance(raw, str) or len(raw) > MAX_ANSWER_CHARS:
            return None
        # A plain copy: a str subclass (a Label, say) must not bring its own methods along.
        return _parse(str.__str__(raw), depth=0)
    except Exception:  # a parser bug must fail closed, not stop the batch
        return None


def _parse(text: str, depth: int) -> Label | None:
    if depth > _MAX_DEPTH:
        return None
    answer = _drop_thinking(text)
    if answer is None:
        return None
    answer = answer.strip()
    if not answer:
        return None
    if _FENCE_OPEN.match(answer):
        fenced = _FENCE.fullmatch(answer)
        if fenced:
            return _parse(fenced.group(2), depth + 1)
        if "\n" in answer:
            return None  # an unclosed fence (cut off) or text after it: not one answer
    if answer.startswith("{"):
        return _from_json(answer, depth)
    label = _as_label(_clean(answer))
    if label is not None:
        return label
    return _from_explained(answer)


def _drop_thinking(text: str) -> str | None:
    """The text outside `<think>` blocks; None when a block is unclosed, stray or nested."""
    kept: list[str] = []
    position = 0
    open_name: str | None = None
    for tag in _THINK_TAG.finditer(text):
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        if open_name is None:
            if closing:
                return None  # which part was thinking is a guess
            kept.append(text[position : tag.start()])
            open_name = name
        elif closing and name == open_name:
            open_name = None
            position = tag.end()
        else:
            return None
    if open_name is not None:
        return None  # cut off while thinking: there is no answer yet
    kept.append(text[position:])
    return "".join(kept)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs, so duplicate keys cannot hide each other."""


def _from_json(text: str, depth: int) -> Label | None:
    try:
        value = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None  # truncated or invalid: we cannot tell what it would have said
    if not isinstance(value, _Pairs):
        return None
    answers = [item for key, item in value if key.strip().lower() in _JSON_KEYS]
    if not answers:
        return None
    labels = {_parse(item, depth + 1) if isinstance(item, str) else None for item in answers}
    # Several keys (or a repeated key) must agree; one unparseable value spoils the object.
    if len(labels) != 1:
        return None
    return labels.pop()


def _trim(text: str) -> str:
    """Strip decoration from both ends until nothing more comes off."""
    while True:
        trimmed = text.strip().strip(_EDGE)
        if trimmed == text:
            return text
        text = trimmed


def _clean(text: str) -> str:
    """The text without surrounding decoration and leading `sentiment:`-style prefixes."""
    # The start first: trimming both ends at once would eat the colon of a bare "Sentiment:".
    return _trim(_clean_start(text))


def _clean_start(line: str) -> str:
    """Like _clean, but only at the start: the end of the line is the explanation."""
    while True:
        stripped = line.lstrip().lstrip(_EDGE)
        prefix = _PREFIX.match(stripped)
        if prefix:
            stripped = stripped[prefix.end() :]
        if stripped == line:
            return line
        line = stripped


def _as_label(word: str) -> Label | None:
    # ASCII only: lookalike letters ("pоsitive" with a Cyrillic о) are not the word we asked for.
    if not word.isascii():
        return None
    return _LABELS.get(word.lower())


def _from_explained(answer: str) -> Label | None:
    """A label on the first line, followed by an explanation."""
    lines = [line for line in answer.splitlines() if line.strip()]
    # Lines with nothing left after cleaning ("Sentiment:", "**", "---") carry no words; the
    # answer starts after them.
    while len(lines) > 1 and not _clean(lines[0]):
        lines.pop(0)
    first, rest = lines[0], "\n".join(lines[1:])
    label = _as_label(_clean(first))
    if label is not None:
        # "Negative\n\nThe comment insults the author." The explanation may discuss other
        # labels ("neither positive nor negative") but must not contradict the first line.
        if not rest or _contradicts(label, _words(rest)):
            return None
        return label
    return _from_separated(first, answer)


def _from_separated(first: str, answer: str) -> Label | None:
    """`Positive. The reader thanks the author.`: label, separator, explanation on one line."""
    line = _clean_start(first)
    word = _LEADING_WORD.match(line)
    if not word:
        return None
    label = _as_label(word.group())
    if label is None:
        return None
    explanation = _after_separator(line[word.end() :])
    if explanation is None:
        return None
    # Stricter than a label on its own line: the separator could be mid-sentence ("Positive,
    # or maybe negative"), so any other label word anywhere makes the answer ambiguous.
    words = _words(answer)
    if any(w in _LABELS and w != label.value for w in words):
        return None
    if _contradicts(label, _words(explanation)) or label.value in _mentions(words)[1]:
        return None
    return label


def _after_separator(after: str) -> str | None:
    """The explanation after the label word, or None when no accepted separator follows it."""
    remainder = after.lstrip(_CLOSERS)
    tail = after[: len(after) - len(remainder)]
    if any(mark in tail for mark in _SEPARATOR_MARKS):
        # "Positive. The" but not "positive.com": a separator is followed by a space.
        return remainder if not remainder or remainder[0].isspace() else None
    dash = _DASH.match(remainder)
    if dash:
        return remainder[dash.end() :]
    return None


def _words(text: str) -> list[str]:
    return [word.replace("’", "'") for word in _WORD.findall(text.lower())]


def _is_negation(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


def _mentions(words: list[str]) -> tuple[set[str], set[str]]:
    """The label words used plainly and those negated ("not positive", "non-negative")."""
    plain: set[str] = set()
    negated: set[str] = set()
    negated_at: set[int] = set()
    for i, word in enumerate(words):
        if word in _LABELS:
            before = words[max(0, i - _NEGATION_WINDOW) : i]
            carried = i >= 2 and words[i - 1] in _CONJUNCTIONS and i - 2 in negated_at
            if carried or any(_is_negation(w) for w in before):
                negated.add(word)
                negated_at.add(i)
            else:
                plain.add(word)
        elif "-" in word:
            parts = word.split("-")
            named = [part for part in parts if part in _LABELS]
            if named and any(_is_negation(part) or part == "un" for part in parts):
                negated.update(named)
                negated_at.add(i)
    return plain, negated


def _contradicts(label: Label, explanation: list[str]) -> bool:
    """Whether an explanation takes the label back or names a different one."""
    if explanation and _is_negation(explanation[0]):
        return True  # "Positive. Not really."
    plain, negated = _mentions(explanation)
    return label.value in negated or bool(plain - {label.value})
