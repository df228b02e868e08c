"""Sentiment labels and the parser that turns a model's free-form answer into one.

Models ignore instructions: they add punctuation, markdown, explanations, thinking blocks,
JSON wrappers. The parser strips those, and accepts an answer only when exactly one label
remains. Anything ambiguous (two labels, a negation, an unknown word) is None: a failure the
pipeline treats as "do not approve", never a guess. It never raises.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any


class Label(enum.StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"

    @property
    def approves(self) -> bool:
        return self is not Label.NEGATIVE


# Sent to Ollama as `format`: the server compiles it to a grammar, so `enum` constrains the
# answer when the model honours it.
LABEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": [label.value for label in Label]}},
    "required": ["label"],
}

MAX_ANSWER_CHARS = 10_000
_JSON_KEYS = ("label", "sentiment", "answer")

_THINK = re.compile(r"<(think|thinking)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_UNCLOSED_THINK = re.compile(r"<(think|thinking)>", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_PREFIX = re.compile(r"^(?:sentiment|label|answer)\s*[:=\-–—]\s*", re.IGNORECASE)
_EDGE = " \t\r\n.,;:!?\"'`*_#()[]{}<>«»“”‘’-–—="
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
_SEPARATOR = re.compile(r"^([A-Za-z*_`\"']+)\s*(?:[.:,]|\s-\s|\s—\s)\s*(.+)$", re.DOTALL)


def parse_label(raw: object) -> Label | None:
    """The single label in a model's answer, or None when there is not exactly one."""
    try:
        return _parse(raw)
    except Exception:  # a parser bug must fail closed, not crash the batch
        return None


def _parse(raw: object) -> Label | None:
    if not isinstance(raw, str) or len(raw) > MAX_ANSWER_CHARS:
        return None
    text = raw
    if _UNCLOSED_THINK.search(text):
        text = _THINK.sub("", text)
        if _UNCLOSED_THINK.search(text):
            return None  # cut off while thinking: no answer at all
    text = text.strip()
    if not text:
        return None
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if text.startswith("{"):
        return _from_json(text)
    exact = _exact(text)
    if exact is not None:
        return exact
    return _from_first_line(text)


def _from_json(text: str) -> Label | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None  # truncated or invalid: ambiguous
    if not isinstance(value, dict):
        return None
    found = {
        _parse(value[key]) if isinstance(value[key], str) else None
        for key in _JSON_KEYS
        if key in value
    }
    if len(found) != 1:
        return None
    return found.pop()


def _clean(text: str) -> str:
    text = text.strip().strip(_EDGE)
    text = _PREFIX.sub("", text)
    return text.strip().strip(_EDGE)


def _exact(text: str) -> Label | None:
    """The whole (cleaned) text is one label word."""
    cleaned = _clean(text).lower()
    try:
        return Label(cleaned)
    except ValueError:
        return None


def _from_first_line(text: str) -> Label | None:
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0]
    if len(lines) > 1:
        label = _exact(first)
        if label is not None:
            return label  # "Negative\n\nThe comment insults the author."
    # "Positive. The reader thanks the author." only when nothing else points elsewhere.
    match = _SEPARATOR.match(_PREFIX.sub("", first.strip()))
    if not match:
        return None
    label = _exact(match.group(1))
    if label is None:
        return None
    rest = (match.group(2) + "\n" + "\n".join(lines[1:])).lower()
    others = {w for w in _WORD.findall(rest) if w in {lab.value for lab in Label}}
    if others - {label.value} or _negated(rest):
        return None
    return label


def _negated(text: str) -> bool:
    return any(
        re.search(rf"\b(?:not|no|isn't|isnt|never|non)\b[\s\-]+(?:\w+\s+){{0,2}}?{lab}\b", text)
        for lab in (label.value for label in Label)
    )
