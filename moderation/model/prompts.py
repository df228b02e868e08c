"""Per-request prompts, rendered from jinja2 templates in ``prompts/``.

The comment is always a template *variable*, never template source, and the environment is
sandboxed with StrictUndefined, so a comment cannot run template code and a typo in a template
fails loudly instead of rendering an empty string. The template's hash identifies the prompt in
every decision row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from moderation.errors import ConfigurationError
from moderation.model.delimiters import defuse_delimiters
from moderation.resources import resource_path

TRUNCATION_MARKER = "\n[… comment truncated …]"

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    source: str
    hash: str
    _template: jinja2.Template

    def render(self, comment: str, max_chars: int) -> str:
        return self._template.render(comment=prepare_comment(comment, max_chars))


def prepare_comment(text: str, max_chars: int) -> str:
    """Make a comment safe to embed: valid UTF-8, no NULs, no delimiters, bounded length."""
    # Lone surrogates cannot be encoded as JSON for the request; replace rather than crash.
    text = _SURROGATE.sub("\ufffd", text).replace("\x00", "")
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARKER
    return defuse_delimiters(text)


@lru_cache(maxsize=16)
def _environment(directory: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text prompt, not HTML
        keep_trailing_newline=False,
    )


def load_prompt(name_or_path: str) -> PromptTemplate:
    """A template by file name in the shipped ``prompts/`` or by path to any file."""
    path = Path(name_or_path)
    directory = path.parent if path.is_file() else resource_path("prompts")
    name = path.name if path.is_file() else name_or_path
    env = _environment(str(directory))
    try:
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        template = env.get_template(name)
        _check_variables(env, name_or_path, source)
    except jinja2.TemplateNotFound as exc:
        raise ConfigurationError(f"prompt template {name_or_path!r} not found") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigurationError(
            f"prompt template {name_or_path!r}: {exc.message} (line {exc.lineno})"
        ) from exc
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    return PromptTemplate(name=name, source=source, hash=digest, _template=template)


def _check_variables(env: SandboxedEnvironment, label: str, source: str) -> None:
    """The template must show the model the comment, and may use nothing else.

    StrictUndefined only fails when a line is rendered, and a template that never mentions
    ``comment`` renders fine: the model then judges the instructions alone, and every comment
    "passes". Both mistakes are caught here, before any request.
    """
    used = _undeclared(env, source, seen=set())
    unknown = sorted(used - {"comment"})
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise ConfigurationError(
            f"prompt template {label!r} uses undefined variable(s) {names}; "
            "the only variable is 'comment'"
        )
    if "comment" not in used:
        raise ConfigurationError(
            f"prompt template {label!r} never uses {{{{ comment }}}}: "
            "the model would not see the comments"
        )


def _undeclared(env: SandboxedEnvironment, source: str, seen: set[str]) -> set[str]:
    """Variables the template (and the templates it includes or extends) expect from outside."""
    tree = env.parse(source)
    used = set(meta.find_undeclared_variables(tree)) - set(env.globals)
    for included in meta.find_referenced_templates(tree):
        if included is None or included in seen:
            continue  # a computed name cannot be followed; rendering still checks it
        seen.add(included)
        try:
            text, _, _ = env.loader.get_source(env, included)  # type: ignore[union-attr]
        except jinja2.TemplateNotFound as exc:
            raise ConfigurationError(f"prompt template {included!r} not found") from exc
        used |= _undeclared(env, text, seen)
    return used
