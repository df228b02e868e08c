"""The label's confidence from token log probabilities.

Most cases are real answers of a real model (SmolLM2-135M-Instruct on llama.cpp, recorded by
tests/data/record_logprobs.py in Ollama's ``logprobs`` shape); the rest are small hand-built
token lists for shapes that model never produced, each with its expected figure worked out
in the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import ollama
import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.model.confidence import label_confidence
from moderation.model.labels import parse_label

RECORDED = {
    r["name"]: r
    for r in json.loads((Path(__file__).parents[1] / "data" / "smollm2_logprobs.json").read_text())
}


def tokens(
    *entries: tuple[str, float, dict[str, float]], listed: bool = True
) -> list[dict[str, Any]]:
    """Ollama-shaped entries from (token, probability, {alternative: probability}).

    As from a real server, the chosen token is among its own alternatives (``listed``), unless
    the test is about a token a grammar forced past the model's own choices.
    """
    return [
        {
            "token": token,
            "logprob": math.log(p),
            "top_logprobs": [
                {"token": t, "logprob": math.log(q)}
                for t, q in ({token: p, **top} if listed else top).items()
            ],
        }
        for token, p, top in entries
    ]


def top_p(record: dict[str, Any], position: int, token: str) -> float:
    """The probability the model gave ``token`` among the alternatives at ``position``."""
    entry = record["logprobs"][position]
    return math.exp(next(t["logprob"] for t in entry["top_logprobs"] if t["token"] == token))


# --- recorded answers ------------------------------------------------------------------------


def test_a_recorded_json_answer_normalises_over_the_three_labels() -> None:
    record = RECORDED["json-praise"]
    assert record["response"] == '{"label": "positive"}'
    # Tokens: {"  label  ":  ␣"  positive  "}: the label is decided at the fifth.
    assert [e["token"] for e in record["logprobs"]][3:5] == [' "', "positive"]
    # Among the 20 alternatives there, these start or spell a label ("no", "non", "un" do
    # not); case does not matter.
    votes = {
        "positive": ("positive", "pos"),
        "negative": ("negative", "neg", "Negative"),
        "neutral": ("neutral", "neut"),
    }
    p = {label: sum(top_p(record, 4, t) for t in alts) for label, alts in votes.items()}
    expected = p["positive"] / sum(p.values())
    assert label_confidence("positive", record["logprobs"]) == pytest.approx(expected)
    assert expected == pytest.approx(0.613, abs=1e-3)


def test_a_recorded_bare_answer_is_scored_at_its_first_token() -> None:
    record = RECORDED["bare-question"]
    assert record["response"] == "negative"
    p = {t: top_p(record, 0, t) for t in ("negative", "positive", "neutral")}
    # No other alternative at that position starts or spells a label ("no", "non", "not" do
    # not: they are prefixes of none of the three words).
    labels = [t["token"] for t in record["logprobs"][0]["top_logprobs"]]
    assert "no" in labels and "non" in labels
    expected = p["negative"] / sum(p.values())
    assert label_confidence("negative", record["logprobs"]) == pytest.approx(expected)


def test_a_recorded_label_over_several_tokens() -> None:
    # In capitals this model spells POSITIVE as POS + IT + IVE: decided at POS, where "N" and
    # "NE" could still have become neutral or negative, and so count against it.
    record = RECORDED["upper-praise"]
    assert [e["token"] for e in record["logprobs"]][:3] == ["POS", "IT", "IVE"]
    positive = sum(top_p(record, 0, t) for t in ("POS", "P", "Positive", "positive"))
    against = top_p(record, 0, "N") + top_p(record, 0, "NE")
    expected = positive / (positive + against)
    assert label_confidence("positive", record["logprobs"]) == pytest.approx(expected)
    assert expected == pytest.approx(0.683, abs=1e-3)


def test_a_recorded_shared_prefix_is_followed_to_where_the_labels_part() -> None:
    # NEGATIVE as N + EG + ATIVE: "N" is still neutral or negative; "EG" decides.
    record = RECORDED["upper-question"]
    assert [e["token"] for e in record["logprobs"]][:3] == ["N", "EG", "ATIVE"]
    positive = sum(top_p(record, 0, t) for t in ("POS", "Positive", "P"))
    against = top_p(record, 0, "NE")  # beside the chosen "N": which label is unknown
    negative = top_p(record, 0, "Negative") + top_p(record, 0, "N") * top_p(record, 1, "EG")
    # After "N", no alternative leads to neutral ("EU"): it may still be as likely as the last
    # one listed there, and counts so.
    last = min(math.exp(t["logprob"]) for t in record["logprobs"][1]["top_logprobs"])
    unseen = top_p(record, 0, "N") * last
    expected = negative / (negative + positive + against + unseen)
    assert label_confidence("negative", record["logprobs"]) == pytest.approx(expected)
    assert expected == pytest.approx(0.452, abs=1e-3)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_every_recorded_answer_has_a_confidence_in_range(name: str) -> None:
    record = RECORDED[name]
    label = parse_label(record["response"])
    assert label is not None
    confidence = label_confidence(label.value, record["logprobs"])
    assert confidence is not None and 0 < confidence <= 1
    # Any other label than the one answered gets no confidence: it is not what was decided.
    for other in ("positive", "neutral", "negative"):
        if other != label.value:
            assert label_confidence(other, record["logprobs"]) is None


def test_the_ollama_clients_objects_are_read_like_plain_json() -> None:
    record = RECORDED["json-insult"]
    response = ollama.GenerateResponse.model_validate(
        {"model": "m", "response": record["response"], "logprobs": record["logprobs"]}
    )
    assert response.logprobs is not None
    assert label_confidence("positive", response.logprobs) == label_confidence(
        "positive", record["logprobs"]
    )


# --- missing or untraceable ------------------------------------------------------------------


@pytest.mark.parametrize("logprobs", [None, []], ids=["absent", "empty"])
def test_no_logprobs_no_confidence(logprobs: Any) -> None:
    assert label_confidence("positive", logprobs) is None


def test_no_label_no_confidence() -> None:
    assert label_confidence(None, RECORDED["json-praise"]["logprobs"]) is None


def test_logprobs_that_do_not_spell_a_label_give_none() -> None:
    cut = RECORDED["json-praise"]["logprobs"][:4]  # `{"label": "` and nothing more
    assert label_confidence("positive", cut) is None


def test_no_alternatives_at_the_deciding_token_give_none_not_certainty() -> None:
    # logprobs without top_logprobs would make every answer look sure.
    bare = [
        {k: v for k, v in e.items() if k != "top_logprobs"}
        for e in RECORDED["bare-praise"]["logprobs"]
    ]
    assert label_confidence("positive", bare) is None
    empty = [{**e, "top_logprobs": []} for e in RECORDED["json-praise"]["logprobs"]]
    assert label_confidence("positive", empty) is None


def test_malformed_entries_give_none_rather_than_raising() -> None:
    assert label_confidence("positive", [{"token": "positive"}]) is None
    assert label_confidence("positive", [{"token": "positive", "logprob": "x"}]) is None
    assert label_confidence("positive", [{"logprob": 0.0}]) is None
    assert label_confidence("positive", ["positive"]) is None


# --- tokenisations the recorded model did not produce ----------------------------------------


def test_a_label_over_several_tokens_is_decided_at_its_first() -> None:
    # "pos" 0.6, "neg" 0.3, "neut" 0.05, "The" 0.05 (no label): then "itive" is certain.
    answer = tokens(
        ("pos", 0.6, {"neg": 0.3, "neut": 0.05, "The": 0.05}),
        ("itive", 0.99, {"ive": 0.01}),
    )
    assert label_confidence("positive", answer) == pytest.approx(0.6 / 0.95)


def test_a_shared_prefix_is_followed_to_where_the_labels_part() -> None:
    # "ne" could still become neutral or negative; "pos" is positive outright.
    # P(negative) = 0.7 * 0.8, P(neutral) = 0.7 * 0.2, P(positive) = 0.25.
    answer = tokens(
        ("ne", 0.7, {"pos": 0.25, "I": 0.05}),
        ("gative", 0.8, {"utral": 0.2}),
    )
    assert label_confidence("negative", answer) == pytest.approx(0.56 / (0.56 + 0.14 + 0.25))


def test_alternatives_that_already_part_the_shared_prefix_count_directly() -> None:
    # At the first position "neg" and "neut" decide on their own; "ne" is followed.
    answer = tokens(
        ("ne", 0.5, {"neg": 0.2, "neut": 0.1, "pos": 0.2}),
        ("utral", 0.6, {"gative": 0.4}),
    )
    neutral = 0.1 + 0.5 * 0.6
    negative = 0.2 + 0.5 * 0.4
    assert label_confidence("neutral", answer) == pytest.approx(
        neutral / (neutral + negative + 0.2)
    )


def test_an_ambiguous_alternative_counts_against_the_chosen_label() -> None:
    # "n" could be neutral or negative: either way not positive.
    answer = tokens(("positive", 0.6, {"n": 0.3, "neutral": 0.1}))
    assert label_confidence("positive", answer) == pytest.approx(0.6)
    # ...and beside a chosen "neg" it might have been negative too: still counted against.
    answer = tokens(("neg", 0.6, {"ne": 0.2, "pos": 0.2}), ("ative", 1.0, {}))
    assert label_confidence("negative", answer) == pytest.approx(0.6)


def test_leading_space_quote_and_case_do_not_matter() -> None:
    # A bare answer " Positive": " positive", "Positive" and "POS" are all votes for it.
    answer = tokens(
        (" Positive", 0.5, {" positive": 0.2, "POS": 0.1, " negative": 0.1, " Neutral": 0.1}),
    )
    assert label_confidence("positive", answer) == pytest.approx(0.8)


def test_a_json_label_starting_inside_a_token_keeps_that_tokens_lead() -> None:
    # `": "neg` carries the end of the key as well: alternatives must carry the same lead.
    answer = tokens(
        ('{"label', 1.0, {}),
        ('": "neg', 0.6, {'": "pos': 0.3, '": "neu': 0.05, '": null': 0.05}),
        ('ative"}', 1.0, {}),
    )
    assert label_confidence("negative", answer) == pytest.approx(0.6 / 0.95)


def test_the_label_after_a_thinking_block_is_the_one_scored() -> None:
    answer = tokens(
        ("<think>", 1.0, {}),
        ("positive?", 1.0, {}),
        ("</think>", 1.0, {}),
        ("negative", 0.9, {"positive": 0.1}),
    )
    # Neutral is not among the alternatives: it counts at the last listed one's 0.1.
    assert label_confidence("negative", answer) == pytest.approx(0.9 / 1.1)


def test_a_chosen_token_missing_from_its_top_list_is_bounded_by_the_last_listed() -> None:
    # The model's own choices were other tokens: a grammar forced this one, and its
    # probability is at most the last listed alternative's, however alone its label is.
    answer = tokens(("neutral", 0.05, {"positive": 0.5, "negative": 0.1}), listed=False)
    assert label_confidence("neutral", answer) == pytest.approx(0.05 / 0.65)
    # As recorded from a base model under the enum schema: its own first choices were other
    # tokens; "p" (of positive) was forced at 0.001, and no other label was listed.
    forced = tokens(("p", 0.001, {"Class": 0.3, "\n": 0.2, "<eos>": 0.1}), listed=False)
    forced += tokens(("ositive", 1.0, {}))
    confidence = label_confidence("positive", forced)
    assert confidence == pytest.approx(0.001 / (0.001 + 0.1 + 0.1))
    assert confidence is not None and confidence < 0.1


def test_a_label_absent_from_the_alternatives_counts_at_the_last_listed() -> None:
    # Only "positive" and two non-labels listed: neutral and negative are not impossible, each
    # may be as likely as the last alternative shown (0.1), so the answer is not sure at all.
    answer = tokens(("positive", 0.6, {"Great": 0.3, "The": 0.1}))
    assert label_confidence("positive", answer) == pytest.approx(0.6 / (0.6 + 0.1 + 0.1))


def test_a_word_that_merely_starts_like_a_label_is_not_one() -> None:
    answer = tokens(("positively", 1.0, {}))
    assert label_confidence("positive", answer) is None
    # ...and as an alternative it votes for nothing.
    # (Neutral, not listed, counts at the last listed one's 0.1.)
    answer = tokens(("positive", 0.5, {"positively": 0.4, "negative": 0.1}))
    assert label_confidence("positive", answer) == pytest.approx(0.5 / 0.7)


def test_when_another_label_is_named_first_there_is_no_confidence() -> None:
    answer = tokens(("negative", 1.0, {}), (" or", 1.0, {}), (" positive", 1.0, {}))
    assert label_confidence("positive", answer) is None


# --- properties ------------------------------------------------------------------------------

_entry = st.fixed_dictionaries(
    {
        "token": st.sampled_from(["pos", "itive", "ne", "gative", "utral", " ", '"', "x", "POS"]),
        "logprob": st.floats(min_value=-30, max_value=0),
        "top_logprobs": st.lists(
            st.fixed_dictionaries(
                {
                    "token": st.sampled_from(["pos", "neg", "ne", "neutral", "a", ""]),
                    "logprob": st.floats(min_value=-30, max_value=0),
                }
            ),
            max_size=5,
        ),
    }
)


@given(
    label=st.sampled_from(["positive", "neutral", "negative"]),
    entries=st.lists(_entry, max_size=6),
)
def test_never_raises_and_stays_a_probability(label: str, entries: list[dict[str, Any]]) -> None:
    confidence = label_confidence(label, entries)
    assert confidence is None or 0 <= confidence <= 1
