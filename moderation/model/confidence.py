"""How sure the model was of its label, from the token log probabilities Ollama returns.

Ollama (0.12.11 and later) answers ``logprobs: true, top_logprobs: N`` with one entry per
generated token: the token, its log probability and the N most likely tokens at that position.
The confidence of an answer is the probability of the chosen label at the point where the
label was decided, normalised over the three labels only, so that the probability of
unrelated tokens (a space, a capital letter elsewhere) does not dilute it.

A label word is usually several tokens (``pos`` + ``itive``), may start inside a token that
also carries a quote or a space (`` "pos``), and two labels share a prefix (``ne``utral and
``ne``gative). So the answer is walked token by token from where the label starts:

* at each position, every alternative token that completes or continues exactly one label
  adds (probability of the path so far) × (its probability) to that label;
* the chosen token, while it is still a prefix of several labels (``ne``), extends the path;
* another alternative that still fits several labels (``N`` beside the chosen ``POS``, or
  ``NE`` beside ``NEG``) counts against the chosen label: where it would have led is unknown,
  and the tool only publishes on evidence;
* the walk ends at the first token where the chosen label is the only one left.

A confidence must not exceed the evidence. A label that none of the N alternatives at a
position leads to is not impossible: its probability is at most that of the last one listed.
So at the first position, and at each position where the labels still part, every such unseen
label is counted at that bound against the chosen one. And a chosen token that is not among
the N at all is one the model did not choose: a grammar (Ollama's ``format``) forced it while
the model's own first choices were other tokens. Its confidence is at most the bound, far
below any threshold, however alone the label is among the labels.

Anything that cannot be traced (no log probabilities, a token sent without any
``top_logprobs`` so that no rival can be weighed, the label not found among the tokens, tokens
that disagree with the text) gives None: no confidence, never a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from moderation.vocabulary import LABELS

LABEL_WORDS: tuple[str, ...] = tuple(LABELS)
# Names how confidences are computed; part of a qualification's key, so that a change here
# qualifies every model afresh.
METHOD = "labels-normalised, unseen labels at the last listed, forced tokens bounded"

# What may stand between the previous text and the label inside the token that starts it,
# without changing which label the token stands for: `` positive``, ``"pos``, `` "neg``.
_LEAD = " \t\r\n\"'`"
_LABEL_WORD = re.compile(r"(?<![a-z])(" + "|".join(LABEL_WORDS) + r")(?![a-z])", re.IGNORECASE)
_THINK_END = re.compile(r"</think(?:ing)?>", re.IGNORECASE)


def label_confidence(label: str | None, logprobs: Sequence[Any] | None) -> float | None:
    """The probability of ``label`` among the three labels, in [0, 1]; None when unknown.

    ``logprobs`` is Ollama's response field: entries with ``token``, ``logprob`` and
    ``top_logprobs`` (mappings or the ollama client's objects).
    """
    shares = label_shares(label, logprobs)
    return None if shares is None or label is None else shares[label.lower()]


def label_shares(label: str | None, logprobs: Sequence[Any] | None) -> dict[str, float] | None:
    """Each label's share of the evidence where ``label`` (the answer) was decided: the
    chosen one's is its confidence; the others' what the alternatives gave them. For
    measuring calibration methods; None when the confidence is unknown."""
    if label is None or not logprobs:
        return None
    try:
        tokens = [_entry(item) for item in logprobs]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return _shares(label.lower(), tokens)


_Entry = tuple[str, float, dict[str, float] | None, bool]


def _entry(item: Any) -> _Entry:
    """(token, its log probability, {alternative token: log probability} or None, whether the
    token itself was among the alternatives listed)."""
    token, logprob = str(_field(item, "token")), float(_field(item, "logprob"))
    tops = _field(item, "top_logprobs", None)
    if not tops:
        return token, logprob, None, False  # no alternatives shown: no rival can be weighed
    alternatives = {str(_field(top, "token")): float(_field(top, "logprob")) for top in tops}
    listed = token in alternatives
    # The chosen token's own figure is authoritative; it may be missing from the top list.
    alternatives[token] = logprob
    return token, logprob, alternatives, listed


def _field(item: Any, name: str, *default: Any) -> Any:
    # A plain dict first: what the batch's requests get, and a cheaper test than the ABC's.
    if type(item) is dict or isinstance(item, Mapping):
        return item[name] if not default else item.get(name, default[0])
    if default:
        return getattr(item, name, default[0])
    return getattr(item, name)


def _shares(label: str, tokens: list[_Entry]) -> dict[str, float] | None:
    text = "".join(token for token, _, _, _ in tokens)
    start = _label_start(text, label)
    if start is None:
        return None
    # The token in which the label starts, and what of that token comes before the label.
    offset = 0
    position = 0
    while offset + len(tokens[position][0]) <= start:
        offset += len(tokens[position][0])
        position += 1
    lead = text[offset:start]
    mass = dict.fromkeys(LABEL_WORDS, 0.0)
    against = 0.0  # alternatives that fit several labels, as many as the chosen one or none
    unseen = 0.0  # labels no listed alternative leads to, each at the last listed one's bound
    cap = 1.0  # the bound on a token the model did not choose (forced by a grammar)
    path = 1.0  # probability of the tokens chosen so far inside the label
    consumed = ""  # the label's letters those tokens spelled
    for index in range(position, len(tokens)):
        token, logprob, alternatives, listed = tokens[index]
        if alternatives is None:
            return None  # a server that sends logprobs without top_logprobs: nothing to weigh
        first = index == position
        still_open = set(_consistent(consumed)) if consumed else set(LABEL_WORDS)
        seen: set[str] = set()
        for alternative, alt_logprob in alternatives.items():
            letters = _letters(alternative, lead) if first else alternative
            if letters is None:
                continue
            matches = _consistent(consumed + letters)
            if alternative != token or listed:
                seen.update(matches)
            if len(matches) == 1:
                mass[matches[0]] += path * math.exp(alt_logprob)
            elif len(matches) > 1 and alternative != token:
                # Only the chosen token is followed; the others' continuations are unknown.
                against += path * math.exp(alt_logprob)
        # The least likely alternative listed bounds every token that was not listed.
        shown = [p for alt, p in alternatives.items() if alt != token or listed]
        bound = path * math.exp(min(shown)) if shown else path
        unseen += bound * len(still_open - seen - {label})
        if not listed:
            cap = min(cap, bound)
        letters = _letters(token, lead) if first else token
        if letters is None:
            return None
        consumed += letters
        matches = _consistent(consumed)
        if label not in matches:
            return None  # the tokens do not spell the label the text shows: do not guess
        if len(matches) == 1:
            total = sum(mass.values()) + against + unseen
            if total <= 0:
                return None
            shares = {word: mass[word] / total for word in LABEL_WORDS}
            shares[label] = min(1.0, cap, shares[label])
            return shares
        path *= math.exp(logprob)
    return None


def _label_start(text: str, label: str) -> int | None:
    """Where the answer's label word starts: the first label word after any thinking."""
    after = 0
    for closing in _THINK_END.finditer(text):
        after = closing.end()
    found = _LABEL_WORD.search(text, after)
    if found is None or found.group(1).lower() != label:
        return None  # the first label named is another one: which token decided is unclear
    return found.start()


def _letters(token: str, lead: str) -> str | None:
    """What a token at the label's first position spells of a label, lead removed."""
    if not lead.strip(_LEAD):
        # Only spacing or quotes before the label: " Positive", "pos" and '"pos' all count.
        return token.lstrip(_LEAD)
    if token.startswith(lead):
        return token[len(lead) :]
    return None


def _consistent(spelled: str) -> list[str]:
    """The labels the letters so far can still become (or are, followed by a non-letter)."""
    spelled = spelled.lower()
    if not spelled:
        return []
    return [
        word
        for word in LABEL_WORDS
        if word.startswith(spelled)
        or (spelled.startswith(word) and not spelled[len(word)].isalpha())
    ]
