"""Parse an Ollama ``Modelfile`` into the structured fields of ``/api/create``.

Since Ollama 0.5.5 the server no longer accepts a raw Modelfile: ``/api/create`` takes ``from``,
``system``, ``parameters``, ``messages``… as separate JSON fields, and the Python client sends
exactly those. So the tool parses the Modelfile itself, with the same rules as Ollama's own
parser (``parser/parser.go``), and checks parameter names and types against ``api.Options``
here, so that a typo fails with a line number before any server is contacted.

Commands are case-insensitive; values are bare (rest of the line), ``"quoted"`` or
``\"\"\"triple-quoted\"\"\"`` (may span lines). No escape sequences are interpreted, as in Ollama.

Where Ollama would quietly build a different model than the file seems to describe, this parser
refuses instead: text after a closing ``\"\"\"`` (Ollama would run on and swallow the following
commands into the value), a second ``FROM``, and a scalar ``PARAMETER`` set twice. ``ADAPTER``
is refused too, because it would mean uploading a file to every host.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moderation.errors import ModelfileError
from moderation.resources import resource_path

_COMMANDS = ("from", "parameter", "system", "template", "message", "license", "adapter")
_ROLES = ("system", "user", "assistant")

_INT_PARAMETERS = frozenset(
    {
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
    }
)
_FLOAT_PARAMETERS = frozenset(
    {
        "top_p",
        "min_p",
        "typical_p",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)
_BOOL_PARAMETERS = frozenset({"use_mmap"})
# ``stop`` is the only list-valued option: each ``PARAMETER stop`` line adds one sequence.
_LIST_PARAMETERS = frozenset({"stop"})

# Plain decimal notation only: Python's int()/float() would also take "1_000", "nan" or
# "inf", which Ollama rejects (and NaN is not even valid JSON for the request body).
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# The spellings Go's strconv.ParseBool accepts, which is what Ollama uses.
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}

_SPLIT = re.compile(r"(\S+)\s*(.*)", re.DOTALL)
# The closing quotes of a block are the last three of a run, so a value may end with '"'.
_BLOCK_END = re.compile(r'"{3,}')


@dataclass(frozen=True)
class ModelSpec:
    """What a Modelfile asks the server to build, in ``/api/create``'s own terms."""

    from_: str
    parameters: dict[str, Any]  # typed; "stop" -> list[str]
    system: str | None
    template: str | None
    messages: tuple[dict[str, str], ...]  # each {"role": ..., "content": ...}
    license: tuple[str, ...]

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ollama.Client.create(model=name, **kwargs)``.

        Empty fields are left out rather than sent empty: an empty ``system`` or ``template``
        would replace the base model's own instead of inheriting it. Everything is copied, so
        a caller cannot change the spec through the returned dict.
        """
        kwargs: dict[str, Any] = {"from_": self.from_}
        if self.system:
            kwargs["system"] = self.system
        if self.template:
            kwargs["template"] = self.template
        if self.parameters:
            kwargs["parameters"] = _copy_parameters(self.parameters)
        if self.messages:
            kwargs["messages"] = [dict(message) for message in self.messages]
        if self.license:
            kwargs["license"] = self.license[0] if len(self.license) == 1 else list(self.license)
        return kwargs

    def digest(self) -> str:
        """SHA-256 of a canonical JSON of the spec: identifies what the Modelfile builds.

        Computed from the parsed content, not the file's bytes, so comments and layout do not
        change it but any change to what the server would build does.
        """
        canonical = {
            "from": self.from_,
            "parameters": self.parameters,
            "system": self.system,
            "template": self.template,
            "messages": list(self.messages),
            "license": list(self.license),
        }
        text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _copy_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    return {key: list(val) if isinstance(val, list) else val for key, val in parameters.items()}


def load_modelfile(path: str | Path | None = None) -> ModelSpec:
    """Read and parse a Modelfile; ``None`` means the one shipped with the tool."""
    target = Path(path) if path is not None else resource_path("Modelfile")
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise ModelfileError(f"cannot read Modelfile {target}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad, line = data[exc.start], data.count(b"\n", 0, exc.start) + 1
        raise ModelfileError(
            f"Modelfile {target} is not UTF-8 text: invalid byte 0x{bad:02x} (line {line})"
        ) from exc
    try:
        return parse_modelfile(text)
    except ModelfileError as exc:
        raise ModelfileError(f"Modelfile {target}: {exc.message}") from exc


def parse_modelfile(text: str) -> ModelSpec:
    """Parse Modelfile text; every error is one line ending in ``(line N)``."""
    builder = _Builder()
    # Some editors prepend a byte-order mark and end lines with CRLF; neither is content.
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        index = _parse_command(lines, index, builder)
    return builder.build()


def _parse_command(lines: list[str], index: int, builder: _Builder) -> int:
    """Parse the command starting at ``lines[index]``; returns the index of the next line."""
    lineno = index + 1
    command, rest = _split(lines[index])
    keyword = command.lower()
    if keyword not in _COMMANDS:
        raise _error(f"unknown command {command!r}", lineno)
    if keyword == "adapter":
        # An adapter is a local file that would first have to be uploaded as a blob and
        # referenced by digest; this tool only sends the structured fields, so refuse early.
        raise _error(
            "ADAPTER is not supported by this tool: it needs uploading the adapter file", lineno
        )
    name = ""
    if keyword in ("parameter", "message"):
        name, rest = _split(rest)
        if not name or not rest.strip():
            needs = "a name and a value" if keyword == "parameter" else "a role and content"
            raise _error(f"{keyword.upper()} needs {needs}", lineno)
    if not rest.strip():
        raise _error(f"{keyword.upper()} needs a value", lineno)
    value, next_index = _read_value(lines, index, rest)
    builder.add(keyword, name, value, lineno)
    return next_index


def _split(text: str) -> tuple[str, str]:
    """First whitespace-separated word and the (left-trimmed) rest."""
    match = _SPLIT.fullmatch(text.lstrip())
    if match is None:
        return "", ""
    return match.group(1), match.group(2)


def _read_value(lines: list[str], index: int, first: str) -> tuple[str, int]:
    """The value that starts with ``first`` on ``lines[index]``, and the next line's index.

    Same rule as Ollama for bare and ``"``-quoted values: a value ends at the first line break
    where the whitespace-trimmed text read so far is complete (bare, or ending with its closing
    quote, so ``"say "hi""`` is ``say "hi"``); otherwise the line break belongs to the value and
    reading goes on. The inside of quotes is kept verbatim.
    """
    if first.startswith('"""'):
        return _read_block(lines, index, first[3:])
    buffer = first
    current = index
    while True:
        value = _unquote(buffer.strip())
        if value is not None:
            return value, current + 1
        current += 1
        if current >= len(lines):
            raise _error('unterminated " value', index + 1)
        buffer += "\n" + lines[current]


def _read_block(lines: list[str], index: int, first: str) -> tuple[str, int]:
    """A ``\"\"\"`` value; ``first`` is what follows the opening quotes on ``lines[index]``.

    The value ends at the first closing quotes. Ollama instead looks for a line that *ends*
    with them, so ``SYSTEM \"\"\"…\"\"\" # note`` would silently take in every following command
    up to the next block; here text after the closing quotes is an error.
    """
    parts: list[str] = []
    current, lineno = first, index + 1
    while True:
        end = _BLOCK_END.search(current)
        if end is not None:
            parts.append(current[: end.end() - 3])
            if current[end.end() :].strip():
                raise _error('text after closing """', lineno)
            return "\n".join(parts), lineno
        parts.append(current)
        if lineno >= len(lines):
            raise _error('unterminated """ value', index + 1)
        current, lineno = lines[lineno], lineno + 1


def _unquote(text: str) -> str | None:
    """The value inside its quotes, the text itself if bare, or None if a quote is open."""
    if text.startswith('"'):
        return text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    return text


def _error(message: str, lineno: int) -> ModelfileError:
    return ModelfileError(f"{message} (line {lineno})")


class _Builder:
    """Collects commands in file order and checks what only makes sense across lines."""

    def __init__(self) -> None:
        self.from_: str | None = None
        self.from_line = 0
        self.parameters: dict[str, Any] = {}
        self.parameter_lines: dict[str, int] = {}
        self.system: str | None = None
        self.template: str | None = None
        self.messages: list[dict[str, str]] = []
        self.license: list[str] = []

    def add(self, keyword: str, name: str, value: str, lineno: int) -> None:
        match keyword:
            case "from":
                self._set_from(value, lineno)
            case "parameter":
                self._add_parameter(name, value, lineno)
            case "message":
                self._add_message(name, value, lineno)
            case "license":
                self.license.append(value)
            # Repeated SYSTEM/TEMPLATE: the last one wins, as in Ollama.
            case "system":
                self.system = value
            case "template":
                self.template = value

    def _set_from(self, value: str, lineno: int) -> None:
        if self.from_ is not None:
            raise _error(f"more than one FROM, the first is on line {self.from_line}", lineno)
        if not value:
            raise _error("FROM needs a model name", lineno)
        self.from_, self.from_line = value, lineno

    def _add_parameter(self, name: str, value: str, lineno: int) -> None:
        typed = _convert_parameter(name, value, lineno)
        if name in _LIST_PARAMETERS:
            self.parameters.setdefault(name, []).append(typed)
            return
        if name in self.parameters:
            # Ollama would silently keep the last value; a repeat is almost always an edit
            # that forgot to remove the old line, so say so instead of guessing which.
            first = self.parameter_lines[name]
            raise _error(f"parameter {name!r} is already set on line {first}", lineno)
        self.parameters[name] = typed
        self.parameter_lines[name] = lineno

    def _add_message(self, role: str, content: str, lineno: int) -> None:
        # Case-sensitive, like Ollama: the role is sent to the server as written.
        if role not in _ROLES:
            raise _error(f"invalid MESSAGE role {role!r}: use system, user or assistant", lineno)
        self.messages.append({"role": role, "content": content})

    def build(self) -> ModelSpec:
        if self.from_ is None:
            raise ModelfileError("no FROM line")
        return ModelSpec(
            from_=self.from_,
            parameters=self.parameters,
            system=self.system,
            template=self.template,
            messages=tuple(self.messages),
            license=tuple(self.license),
        )


def _convert_parameter(name: str, value: str, lineno: int) -> Any:
    """The value typed as ``api.Options`` declares it; names are case-sensitive as there."""
    if name in _INT_PARAMETERS:
        if not _INT.fullmatch(value):
            raise _error(f"parameter {name!r} needs an integer, not {value!r}", lineno)
        return int(value)
    if name in _FLOAT_PARAMETERS:
        if not _FLOAT.fullmatch(value):
            raise _error(f"parameter {name!r} needs a number, not {value!r}", lineno)
        return float(value)
    if name in _BOOL_PARAMETERS:
        if value not in _BOOLS:
            raise _error(f"parameter {name!r} needs true or false, not {value!r}", lineno)
        return _BOOLS[value]
    if name in _LIST_PARAMETERS:
        return value
    raise _error(f"unknown parameter {name!r}", lineno)
