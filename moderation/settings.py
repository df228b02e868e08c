"""All configuration, read in one place: the environment (and an optional ``.env`` file).

Nothing else in the package reads ``os.environ``; callers build a :class:`Settings` at the edge
(the CLI, a web app's startup hook) and pass it down.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from moderation.redact import redact_url, remember_secrets
from moderation.site.presets import DEFAULT_TABLE_PREFIX, PRESET_NAMES, preset_values

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_HOSTNAME = re.compile(r"^[A-Za-z0-9._~%:-]+$")  # a name, IPv4, or IPv6 without brackets

# Positive and neutral answers less sure than this are held for a human (0 turns the gate
# off). Measured on all shipped fixtures with a tiny real model and the shipped Modelfile: its
# surest wrong approval (a negative called positive) had 0.844, 0.75 still let 5.0% of the
# negatives through and 0.85 none; 0.9 keeps a margin above the worst (README, "Confidence").
DEFAULT_MIN_CONFIDENCE = 0.9


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One Ollama server and how many requests it may have in flight (``URL*N``)."""

    url: str
    concurrency: int

    @property
    def safe_url(self) -> str:
        """The URL with its credentials hidden: the only form ever printed, logged or stored."""
        return redact_url(self.url)


class Settings(BaseSettings):
    """The tool's settings; every field maps to an environment variable (see the README)."""

    model_config = SettingsConfigDict(
        env_prefix="MODERATION_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # A validation error must never quote a value: it may be a URL with a password.
        hide_input_in_errors=True,
    )

    database_url: str = "sqlite:///moderation.db"

    # Ollama's own variable names, so an existing OLLAMA_HOST just works.
    ollama_host: str = Field(
        default=DEFAULT_OLLAMA_HOST,
        validation_alias=AliasChoices("OLLAMA_HOST", "ollama_host"),
    )
    ollama_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("OLLAMA_HOSTS", "ollama_hosts"),
    )
    model: str = "sentiments"
    prompt: str = "classify.j2"
    # Finite numbers only: an infinite timeout is accepted by Python's arithmetic and then
    # overflows inside the HTTP client on every request.
    timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    load_timeout: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    concurrency: int = Field(default=1, ge=1, le=1024)
    structured_output: bool = True
    min_confidence: float = Field(default=DEFAULT_MIN_CONFIDENCE, ge=0, le=1)
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    max_comment_chars: int = Field(default=4000, ge=100)
    # A longer comment is read in overlapping windows of max_comment_chars; beyond this many
    # windows it is held for a human unread.
    max_windows: int = Field(default=8, ge=1, le=1000)
    window_overlap: int = Field(default=400, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    retries: int = Field(default=2, ge=0, le=10)
    circuit_breaker: int = Field(default=5, ge=1)
    batch_size: int = Field(default=500, ge=1, le=10000)
    limit: int | None = Field(default=None, ge=1)
    deadline: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # Short, because the heartbeat renews it every third of it while the batch runs: a batch
    # killed with -9 on another host blocks the next one for this long at most.
    lease_seconds: float = Field(default=60.0, ge=5, allow_inf_nan=False)
    auto_migrate: bool = True
    eval_history: str = "moderation-evals.jsonl"
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    # A comment system's known layout (see presets.py); single variables below still override.
    preset: Literal["wordpress", "isso", "commento", "django", "tr"] | None = None
    table_prefix: str = Field(default=DEFAULT_TABLE_PREFIX, pattern=r"^[A-Za-z0-9_]*$")
    comments_table: str = "comments"
    comments_id_column: str = "id"
    comments_body_column: str = "body"
    comments_approved_column: str = "approved"
    # Only for status columns (strings, integers); a boolean column uses true/false.
    comments_approved_value: str | None = None
    comments_pending_value: str | None = None
    # A boolean column: a row with it true was removed by a human, is never pending, never touched.
    comments_removed_column: str | None = None
    # Status values meaning a human rejected the comment; the first is what "Reject" writes.
    comments_rejected_values: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Needed by `moderate review` on any address but loopback; never printed.
    review_token: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Fill what the preset knows, leaving every value the operator set as it is."""
        if not isinstance(data, dict) or not data.get("preset"):
            return data
        name = str(data["preset"]).strip().lower()
        if name not in PRESET_NAMES:
            return data  # the Literal field reports the allowed names
        prefix = str(data.get("table_prefix") or DEFAULT_TABLE_PREFIX)
        if not re.fullmatch(r"[A-Za-z0-9_]*", prefix):
            return data  # the field's pattern reports it
        filled = dict(data, preset=name)
        for key, value in preset_values(name, prefix).items():
            filled.setdefault(key, value)
        return filled

    @field_validator("comments_rejected_values", mode="before")
    @classmethod
    def _split_values(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ollama_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("review_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("MODERATION_REVIEW_TOKEN must be at least 16 characters")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator("ollama_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        _normalise_host(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            parsed = make_url(value)
        except Exception as exc:  # SQLAlchemy raises ArgumentError with the URL in it
            raise ValueError("MODERATION_DATABASE_URL is not a valid database URL") from exc
        if parsed.host and "@" in parsed.host:
            # SQLAlchemy ends the password at its first "@" and takes the rest for the host:
            # the connection would go to a wrong host, and messages would quote part of the
            # password as a host name.
            raise ValueError(
                "MODERATION_DATABASE_URL: a character of the password must be percent-encoded "
                "(@ as %40, / as %2F, ? as %3F, # as %23, % as %25)"
            )
        return value

    @model_validator(mode="after")
    def _check_status_values(self) -> Settings:
        given = (self.comments_approved_value, self.comments_pending_value)
        if (given[0] is None) != (given[1] is None):
            raise ValueError(
                "set both MODERATION_COMMENTS_APPROVED_VALUE and "
                "MODERATION_COMMENTS_PENDING_VALUE, or neither"
            )
        if given[0] is not None and given[0] == given[1]:
            raise ValueError("the approved and pending values must differ")
        if self.window_overlap * 2 > self.max_comment_chars:
            raise ValueError(
                "MODERATION_WINDOW_OVERLAP must be at most half of MODERATION_MAX_COMMENT_CHARS"
            )
        if given[0] is not None and given[0] in self.comments_rejected_values:
            raise ValueError("MODERATION_COMMENTS_REJECTED_VALUES must not hold the approved value")
        if given[1] is not None and given[1] in self.comments_rejected_values:
            raise ValueError("MODERATION_COMMENTS_REJECTED_VALUES must not hold the pending value")
        for spec in self.ollama_hosts:
            _parse_host(spec, self.concurrency)
        # From now on every message, log line and stored error shows these as "***".
        remember_secrets([self.database_url, self.ollama_host, *self.ollama_hosts])
        return self

    @property
    def hosts(self) -> list[HostSpec]:
        """The model servers: ``OLLAMA_HOSTS`` if set, else the single ``OLLAMA_HOST``."""
        if self.ollama_hosts:
            return [_parse_host(spec, self.concurrency) for spec in self.ollama_hosts]
        return [HostSpec(_normalise_host(self.ollama_host), self.concurrency)]

    @property
    def safe_database_url(self) -> str:
        """The database URL with its password hidden, for logs and messages."""
        return redact_url(self.database_url)


def _parse_host(spec: str, default_concurrency: int) -> HostSpec:
    url, star, count = spec.rpartition("*")
    if not star:
        return HostSpec(_normalise_host(spec), default_concurrency)
    if not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"OLLAMA_HOSTS entry {redact_url(spec)!r}: the concurrency after '*' must be >= 1"
        )
    return HostSpec(_normalise_host(url), int(count))


def _normalise_host(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("an Ollama host is empty")
    if "://" not in url:
        url = "http://" + url
    # The value itself is not repeated: it may carry credentials.
    example = "expected a URL like http://127.0.0.1:11434"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"an Ollama host is not a valid URL ({example})") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOSTNAME.match(host):
        raise ValueError(f"an Ollama host is not a valid URL ({example})")
    return url


def environment_name(field: str) -> str:
    """The variable that sets ``field`` (OLLAMA_HOST, or MODERATION_ plus its name)."""
    info = Settings.model_fields.get(field)
    alias = getattr(info, "validation_alias", None) if info else None
    if alias is not None and getattr(alias, "choices", None):
        return str(alias.choices[0])
    return f"MODERATION_{field.upper()}"


def known_variables() -> list[str]:
    return [environment_name(name) for name in Settings.model_fields]


def misspelled_variables(
    env_file: Path | None, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str, str | None]]:
    """(name, where it was set, the closest known name) for each MODERATION_* nobody reads.

    Settings ignores unknown variables (a site's environment holds many); a misspelled one
    would otherwise leave its setting at the default without a word.
    """
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        found.update({k: str(env_file) for k in dotenv_values(env_file)})
    found.update({k: "environment" for k in environ})
    known = known_variables()
    unknown = []
    for name, where in sorted(found.items()):
        upper = name.upper()
        if not upper.startswith("MODERATION_") or upper.startswith("MODERATION_TEST_"):
            continue
        if upper in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        unknown.append((name, where, close[0] if close else None))
    return unknown


def requested_log_format() -> str:
    """The log format asked for, read leniently: for reporting an invalid configuration."""
    value = os.environ.get("MODERATION_LOG_FORMAT", "")
    return "json" if value.strip().lower() == "json" else "text"
