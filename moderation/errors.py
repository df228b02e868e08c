"""One error root for everything the tool reports to its user.

Each class's docstring is its default message; ``exit_code`` is what the CLI exits with
(``moderation.vocabulary.ExitCode`` documents them all).
Foreign errors (ollama, httpx, SQLAlchemy) are translated into these in exactly one module
each, always with ``raise ... from exc`` so the cause stays in tracebacks and logs.
"""

from __future__ import annotations

from moderation.vocabulary import ExitCode


class ModerationError(Exception):
    """Moderation failed."""

    exit_code: ExitCode = ExitCode.FAILED
    # Set on a batch's failure once a human was told of it: the deliveries (sent, failed...).
    notifications: dict[str, int] | None = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigurationError(ModerationError):
    """The configuration is invalid."""

    exit_code = ExitCode.USAGE


class ModelfileError(ConfigurationError):
    """The Modelfile is invalid."""


class FixtureError(ConfigurationError):
    """The fixtures file is invalid."""


class OllamaUnavailable(ModerationError):
    """The Ollama server cannot be reached; nothing was changed."""

    exit_code = ExitCode.OLLAMA


class ModelMissing(OllamaUnavailable):
    """The model does not exist on the Ollama server; run `moderate model create` first."""


class LogprobsUnsupported(OllamaUnavailable):
    """The Ollama server returns no log probabilities; upgrade it to 0.12.11 or later."""


class DatabaseError(ModerationError):
    """The database failed; nothing was half-written."""

    exit_code = ExitCode.DATABASE


class SchemaError(DatabaseError):
    """The comments table does not match the configuration."""

    exit_code = ExitCode.USAGE


class LeaseHeld(ModerationError):
    """Another batch is running on this database."""

    exit_code = ExitCode.LEASE_HELD


class TickAlreadyRun(LeaseHeld):
    """Another process already ran the batch for this scheduled tick."""


class LeaseLost(ModerationError):
    """This batch lost its lease to another process; its remaining writes were refused."""

    exit_code = ExitCode.LEASE_HELD


class SiteRefused(ConfigurationError):
    """The site refused the tool's credentials: the user needs the `moderate_comments`
    capability and a valid Application Password."""


class SiteUnavailable(DatabaseError):
    """The site's API failed; nothing beyond what the report shows was changed."""
