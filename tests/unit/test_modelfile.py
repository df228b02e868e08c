"""The Modelfile parser, the structured create request it produces, and the shipped Modelfile."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import ollama
import pytest
import respx

from moderation.errors import ConfigurationError, ModelfileError
from moderation.model.labels import LABEL_SCHEMA
from moderation.model.modelfile import ModelSpec, load_modelfile, parse_modelfile
from moderation.model.prompts import load_prompt

SMALL = '''\
# a small but complete Modelfile
FROM llama3.2
PARAMETER temperature 0.1
PARAMETER stop a
PARAMETER stop b
SYSTEM """You label comments."""
MESSAGE user hi
MESSAGE assistant {"label": "neutral"}
'''


def parse(text: str) -> ModelSpec:
    return parse_modelfile(text)


# --- values and commands ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("FROM llama3.2", "from_", "llama3.2"),
        ("from llama3.2", "from_", "llama3.2"),
        ("From   llama3.2   ", "from_", "llama3.2"),
        ("\tFROM\tllama3.2", "from_", "llama3.2"),
        ('FROM "llama3.2"', "from_", "llama3.2"),
        ("FROM x\nsystem be brief", "system", "be brief"),
        ("FROM x\nSyStEm be brief", "system", "be brief"),
        ("FROM x\nSYSTEM   be   brief  ", "system", "be   brief"),
        ('FROM x\nSYSTEM "  quoted, spaces kept  "', "system", "  quoted, spaces kept  "),
        ('FROM x\nSYSTEM """one line"""', "system", "one line"),
        (
            'FROM x\nSYSTEM """a\n  b\n\n# not a comment\nc"""',
            "system",
            "a\n  b\n\n# not a comment\nc",
        ),
        ('FROM x\nSYSTEM """\nline\n"""', "system", "\nline\n"),
        ('FROM x\nSYSTEM """first line kept   \nnext"""', "system", "first line kept   \nnext"),
        ('FROM x\nSYSTEM """say "hi""""', "system", 'say "hi"'),
        ('FROM x\nSYSTEM """a\nb"""   \nSYSTEM """c"""', "system", "c"),
        ('FROM x\nSYSTEM "say "hi""', "system", 'say "hi"'),
        ('FROM x\nSYSTEM "two\nlines"', "system", "two\nlines"),
        ('FROM x\nSYSTEM say \\n "hi"', "system", 'say \\n "hi"'),
        ('FROM x\nSYSTEM """no \\t escapes"""', "system", "no \\t escapes"),
        ('FROM x\nSYSTEM ""', "system", ""),
        ("FROM x\nSYSTEM first\nSYSTEM second", "system", "second"),
        ('FROM x\nTEMPLATE """{{ .Prompt }}"""', "template", "{{ .Prompt }}"),
        ("FROM x\nLICENSE MIT", "license", ("MIT",)),
        ('FROM x\nLICENSE MIT\nlicense """Apache\n2.0"""', "license", ("MIT", "Apache\n2.0")),
        ("FROM x", "system", None),
        ("FROM x", "template", None),
        ("FROM x", "license", ()),
        ("FROM x", "messages", ()),
        ("FROM x", "parameters", {}),
        ("\ufeffFROM x", "from_", "x"),
    ],
)
def test_values(text: str, field: str, expected: Any) -> None:
    assert getattr(parse(text), field) == expected


@pytest.mark.parametrize(
    "text",
    [
        "# comment\nFROM x\n",
        "   # indented comment\n\n\nFROM x\n\n",
        "FROM x\r\n# windows line ends\r\n",
        "\n\n  \t\nFROM x",
    ],
)
def test_comments_and_blank_lines_are_ignored(text: str) -> None:
    spec = parse(text)
    assert (spec.from_, spec.system, spec.messages) == ("x", None, ())


def test_messages_keep_order_and_content() -> None:
    spec = parse(
        'FROM x\nMESSAGE system be brief\nmessage user """a\nb"""\n'
        'MESSAGE assistant {"label": "positive"}\n'
    )
    assert spec.messages == (
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": '{"label": "positive"}'},
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("temperature 0.1", {"temperature": 0.1}),
        ("temperature 1", {"temperature": 1.0}),
        ("temperature .5", {"temperature": 0.5}),
        ("repeat_penalty 1e-1", {"repeat_penalty": 0.1}),
        ("presence_penalty -1.5", {"presence_penalty": -1.5}),
        ("top_p 0.9", {"top_p": 0.9}),
        ("min_p 0.05", {"min_p": 0.05}),
        ("typical_p 1.0", {"typical_p": 1.0}),
        ("frequency_penalty 0", {"frequency_penalty": 0.0}),
        ("num_ctx 4096", {"num_ctx": 4096}),
        ("num_predict -1", {"num_predict": -1}),
        ("seed 42", {"seed": 42}),
        ("top_k +40", {"top_k": 40}),
        ("num_keep 4", {"num_keep": 4}),
        ("repeat_last_n 64", {"repeat_last_n": 64}),
        ("num_batch 512", {"num_batch": 512}),
        ("num_gpu 0", {"num_gpu": 0}),
        ("main_gpu 1", {"main_gpu": 1}),
        ("num_thread 8", {"num_thread": 8}),
        ("use_mmap true", {"use_mmap": True}),
        ("use_mmap FALSE", {"use_mmap": False}),
        ("use_mmap 1", {"use_mmap": True}),
        ("use_mmap f", {"use_mmap": False}),
        ("stop </s>", {"stop": ["</s>"]}),
        ('stop "<|im_end|>"', {"stop": ["<|im_end|>"]}),
        ('stop "two words"', {"stop": ["two words"]}),
    ],
)
def test_parameters_are_typed(line: str, expected: dict[str, Any]) -> None:
    parameters = parse(f"FROM x\nPARAMETER {line}\n").parameters
    assert parameters == expected
    assert [type(v) for v in parameters.values()] == [type(v) for v in expected.values()]


def test_repeated_stop_builds_a_list_in_order() -> None:
    spec = parse(
        "FROM x\nPARAMETER stop a\nparameter stop b\nPARAMETER num_ctx 8\nPARAMETER stop c"
    )
    assert spec.parameters == {"stop": ["a", "b", "c"], "num_ctx": 8}


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM x\nFOO bar", "unknown command 'FOO' (line 2)"),
        ("FROM x\n\n# c\nSYSTEMS hi", "unknown command 'SYSTEMS' (line 4)"),
        ("FROM x\nPARAMETER foo 1", "unknown parameter 'foo' (line 2)"),
        ("FROM x\nPARAMETER Temperature 1", "unknown parameter 'Temperature' (line 2)"),
        (
            "FROM x\nPARAMETER num_ctx big",
            "parameter 'num_ctx' needs an integer, not 'big' (line 2)",
        ),
        ("FROM x\nPARAMETER seed 4.2", "parameter 'seed' needs an integer, not '4.2' (line 2)"),
        ("FROM x\nPARAMETER seed 1_000", "parameter 'seed' needs an integer, not '1_000' (line 2)"),
        ("FROM x\nPARAMETER top_p high", "parameter 'top_p' needs a number, not 'high' (line 2)"),
        (
            "FROM x\nPARAMETER temperature nan",
            "parameter 'temperature' needs a number, not 'nan' (line 2)",
        ),
        (
            "FROM x\nPARAMETER temperature inf",
            "parameter 'temperature' needs a number, not 'inf' (line 2)",
        ),
        (
            "FROM x\nPARAMETER use_mmap yes",
            "parameter 'use_mmap' needs true or false, not 'yes' (line 2)",
        ),
        (
            "FROM x\nPARAMETER seed 1\nPARAMETER seed 2",
            "parameter 'seed' is already set on line 2 (line 3)",
        ),
        (
            "FROM x\nMESSAGE bot hi",
            "invalid MESSAGE role 'bot': use system, user or assistant (line 2)",
        ),
        (
            "FROM x\nMESSAGE User hi",
            "invalid MESSAGE role 'User': use system, user or assistant (line 2)",
        ),
        ('FROM x\nSYSTEM """never closed\nmore', 'unterminated """ value (line 2)'),
        ('FROM x\nSYSTEM """a""" trailing\nmore', 'text after closing """ (line 2)'),
        ('FROM x\nSYSTEM """a""" # note\nSYSTEM """b"""', 'text after closing """ (line 2)'),
        ('FROM x\nSYSTEM """a\nb""" c\nSYSTEM d', 'text after closing """ (line 3)'),
        ('FROM x\nSYSTEM """\n\nend', 'unterminated """ value (line 2)'),
        ('FROM x\nMESSAGE user """', 'unterminated """ value (line 2)'),
        ('FROM x\nSYSTEM "open', 'unterminated " value (line 2)'),
        ("FROM", "FROM needs a value (line 1)"),
        ("FROM x\nSYSTEM   ", "SYSTEM needs a value (line 2)"),
        ("FROM x\nTEMPLATE", "TEMPLATE needs a value (line 2)"),
        ("FROM x\nLICENSE", "LICENSE needs a value (line 2)"),
        ("FROM x\nPARAMETER", "PARAMETER needs a name and a value (line 2)"),
        ("FROM x\nPARAMETER temperature", "PARAMETER needs a name and a value (line 2)"),
        ("FROM x\nMESSAGE user", "MESSAGE needs a role and content (line 2)"),
        ("FROM x\nMESSAGE user   ", "MESSAGE needs a role and content (line 2)"),
        ("FROM x\nMESSAGE", "MESSAGE needs a role and content (line 2)"),
        ('FROM ""', "FROM needs a model name (line 1)"),
        ("", "no FROM line"),
        ("# only a comment\nSYSTEM hi", "no FROM line"),
        ("FROM a\nSYSTEM hi\nFROM b", "more than one FROM, the first is on line 1 (line 3)"),
        (
            "FROM x\nADAPTER ./lora.gguf",
            "ADAPTER is not supported by this tool: it needs uploading the adapter file (line 2)",
        ),
        (
            "FROM x\nadapter ./lora.gguf",
            "ADAPTER is not supported by this tool: it needs uploading the adapter file (line 2)",
        ),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ModelfileError) as caught:
        parse(text)
    assert caught.value.message == message
    assert "\n" not in caught.value.message


def test_line_numbers_count_the_lines_of_multi_line_values() -> None:
    text = 'FROM x\nSYSTEM """a\nb\nc"""\nMESSAGE robot hi\n'
    with pytest.raises(ModelfileError, match=r"\(line 5\)$"):
        parse(text)


def test_modelfile_error_is_a_configuration_error() -> None:
    # The CLI maps ConfigurationError to exit code 2.
    with pytest.raises(ConfigurationError):
        parse("SYSTEM hi")


# --- load_modelfile -------------------------------------------------------------------------


def test_load_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_text(SMALL, encoding="utf-8")
    assert load_modelfile(path) == parse(SMALL)
    assert load_modelfile(str(path)) == parse(SMALL)


def test_load_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(ModelfileError, match="cannot read Modelfile") as caught:
        load_modelfile(path)
    assert str(path) in caught.value.message


def test_load_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelfileError, match="cannot read Modelfile"):
        load_modelfile(tmp_path)


def test_load_non_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_bytes(b"FROM x\nSYSTEM caf\xe9\n")
    with pytest.raises(ModelfileError, match=r"is not UTF-8 text: invalid byte 0xe9 \(line 2\)$"):
        load_modelfile(path)


def test_load_parse_error_names_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_text("FROM x\nBOGUS y\n", encoding="utf-8")
    with pytest.raises(ModelfileError) as caught:
        load_modelfile(path)
    assert caught.value.message == f"Modelfile {path}: unknown command 'BOGUS' (line 2)"


# --- create_kwargs and digest ---------------------------------------------------------------


def test_create_kwargs_of_a_small_modelfile() -> None:
    assert parse(SMALL).create_kwargs() == {
        "from_": "llama3.2",
        "system": "You label comments.",
        "parameters": {"temperature": 0.1, "stop": ["a", "b"]},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": '{"label": "neutral"}'},
        ],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM x", {"from_": "x"}),
        ('FROM x\nSYSTEM ""\nTEMPLATE ""', {"from_": "x"}),
        ("FROM x\nTEMPLATE {{ .Prompt }}", {"from_": "x", "template": "{{ .Prompt }}"}),
        ("FROM x\nLICENSE MIT", {"from_": "x", "license": "MIT"}),
        ("FROM x\nLICENSE MIT\nLICENSE BSD", {"from_": "x", "license": ["MIT", "BSD"]}),
    ],
)
def test_create_kwargs_leaves_out_empty_fields(text: str, expected: dict[str, Any]) -> None:
    assert parse(text).create_kwargs() == expected


def test_create_kwargs_is_a_copy() -> None:
    spec = parse(SMALL)
    kwargs = spec.create_kwargs()
    kwargs["parameters"]["stop"].append("c")
    kwargs["messages"][0]["content"] = "changed"
    assert spec.create_kwargs() == parse(SMALL).create_kwargs()


def test_digest_is_stable_and_ignores_layout() -> None:
    digest = parse(SMALL).digest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert parse(SMALL).digest() == digest
    relaid = "# another comment\n\n" + SMALL.replace("FROM llama3.2", "from   llama3.2  ")
    assert parse(relaid).digest() == digest


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("FROM llama3.2", "FROM llama3.1"),
        ("temperature 0.1", "temperature 0.2"),
        ("PARAMETER stop b", "PARAMETER stop c"),
        ("You label comments.", "You label comments!"),
        ("MESSAGE user hi", "MESSAGE user hello"),
        ("MESSAGE user hi", "MESSAGE system hi"),
        ("# a small", "LICENSE MIT\n# a small"),
        ("# a small", 'TEMPLATE "{{ .Prompt }}"\n# a small'),
    ],
)
def test_digest_changes_with_content(old: str, new: str) -> None:
    assert old in SMALL
    assert parse(SMALL.replace(old, new)).digest() != parse(SMALL).digest()


def test_digest_distinguishes_stop_order() -> None:
    swapped = SMALL.replace("stop a", "stop TMP").replace("stop b", "stop a").replace("TMP", "b")
    assert parse(swapped).digest() != parse(SMALL).digest()


# --- the request the ollama client sends ----------------------------------------------------


def test_client_sends_structured_create_body() -> None:
    spec = parse(SMALL)
    with respx.mock(base_url="http://127.0.0.1:11434", assert_all_called=True) as router:
        route = router.post("/api/create").respond(json={"status": "success"})
        response = ollama.Client(host="http://127.0.0.1:11434").create(
            model="sentiments", **spec.create_kwargs()
        )
    assert response.status == "success"
    body = json.loads(route.calls.last.request.content)
    # The client drops the fields left as None and renames from_ to from; Ollama 0.5.5+
    # rejects the old "modelfile" field, which must never appear.
    assert body == {
        "model": "sentiments",
        "stream": False,
        "from": "llama3.2",
        "system": "You label comments.",
        "parameters": {"temperature": 0.1, "stop": ["a", "b"]},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": '{"label": "neutral"}'},
        ],
    }
    assert "modelfile" not in body


# --- the shipped Modelfile ------------------------------------------------------------------

_PROMPT_SHAPE = re.compile(
    r"Classify the sentiment of the blog comment between the markers\.\n"
    r"<comment>\n(?P<comment>.+)\n</comment>",
    re.DOTALL,
)
_ANSWERS = {f'"{label}"' for label in ("positive", "neutral", "negative")}


def _comment_of(user_content: str) -> str:
    match = _PROMPT_SHAPE.fullmatch(user_content)
    assert match, user_content
    return match["comment"]


@pytest.fixture(scope="module")
def shipped() -> ModelSpec:
    return load_modelfile()


def test_shipped_modelfile_settings(shipped: ModelSpec) -> None:
    assert shipped.from_
    assert shipped.parameters["temperature"] <= 0.2
    assert isinstance(shipped.parameters["num_predict"], int)
    assert 0 < shipped.parameters["num_predict"] <= 64
    assert shipped.parameters["num_ctx"] >= 4096
    assert shipped.system and "json" in shipped.system.lower()
    for word in ("positive", "neutral", "negative", "spam", "instructions"):
        assert word in shipped.system


def test_shipped_few_shots_alternate_user_then_assistant(shipped: ModelSpec) -> None:
    roles = [message["role"] for message in shipped.messages]
    assert 8 <= len(roles) // 2 <= 10
    assert roles == ["user", "assistant"] * (len(roles) // 2)


def test_shipped_answers_are_exact_json_for_all_labels(shipped: ModelSpec) -> None:
    # Exactly what the schema the tool sends admits, so the examples show the model its answer.
    answers = [m["content"] for m in shipped.messages if m["role"] == "assistant"]
    assert set(answers) == _ANSWERS
    assert all(json.loads(answer) in LABEL_SCHEMA["enum"] for answer in answers)


def test_shipped_user_messages_match_the_request_prompt(shipped: ModelSpec) -> None:
    # Few-shots must look exactly like the prompts the tool sends, or the model learns from
    # examples that differ from what it is then asked.
    prompt = load_prompt("classify.j2")
    for message in shipped.messages:
        if message["role"] != "user":
            continue
        match = _PROMPT_SHAPE.fullmatch(message["content"])
        assert match, message["content"]
        assert prompt.render(match["comment"], 10_000) == message["content"]


def test_shipped_few_shots_cover_languages_and_injection(shipped: ModelSpec) -> None:
    pairs = dict(
        zip(
            [m["content"] for m in shipped.messages[0::2]],
            [m["content"] for m in shipped.messages[1::2]],
            strict=True,
        )
    )
    comments = {_comment_of(user): answer for user, answer in pairs.items()}
    assert any(re.search(r"[А-Яа-яЁё]", comment) for comment in comments)
    assert any(re.search(r"[ñáéíóú¡¿]", comment) for comment in comments)
    assert comments["thank you, this was really useful for me"] == '"positive"'
    assert comments["you should do something else, this is really bad"] == '"negative"'
    assert comments["this has nothing to do with this post"] == '"neutral"'
    injections = [c for c in comments if "ignore your instructions" in c.lower()]
    assert injections and all(comments[c] == '"negative"' for c in injections)


def test_shipped_digest_is_stable(shipped: ModelSpec) -> None:
    assert load_modelfile().digest() == shipped.digest()
