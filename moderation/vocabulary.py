"""Every word the tool writes down, spelled once: labels, outcomes, run statuses, exit codes.

The values are what the database, the ``--json`` objects and the README use, so they are
``StrEnum``s (a member compares and serialises as its plain string) and ``IntEnum`` for exit
codes. The CLI's exit-code help and the README's table are generated from ``ExitCode``.
"""

from __future__ import annotations

import enum


class Label(enum.StrEnum):
    """A comment's sentiment, spelled the way the model is asked to spell it."""

    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"

    @property
    def approves(self) -> bool:
        """Whether this label may publish a comment unseen (the confidence gate still applies:
        ``moderation.policy.rule`` is the one approval rule)."""
        return self in APPROVING_LABELS


# Listed explicitly rather than "anything but NEGATIVE": a label added later stays held for a
# human until someone decides it is safe.
APPROVING_LABELS: frozenset[Label] = frozenset({Label.POSITIVE, Label.NEUTRAL})
LABELS: tuple[Label, ...] = tuple(Label)


class Expected(enum.StrEnum):
    """A human's decision on an exported fixture, when its truth is not a sentiment."""

    APPROVE = "approve"
    HOLD = "hold"


class Outcome(enum.StrEnum):
    """What happened to a comment in a batch, or on the review page (``rejected``)."""

    APPROVED = "approved"
    HELD = "held"
    FAILED = "failed"
    REJECTED = "rejected"  # only ever written by a human reviewer


class HumanOutcome(enum.StrEnum):
    """What the site's humans later did with one of the tool's decisions."""

    KEPT = "kept"  # an approval still approved
    REVERSED = "reversed"  # an approval a human took back: a real false approval
    RELEASED = "released"  # a held comment a human approved
    CONFIRMED = "confirmed"  # a held comment a human rejected
    WAITING = "waiting"  # a held comment nobody has ruled on yet
    EDITED = "edited"  # the comment changed after the decision
    OTHER = "other"  # gone, or in a state no rule covers
    # Not a human's ruling: the comment system's own doing (WordPress trashed the comment's
    # post; Isso purged an old pending comment). Neither reversed nor confirmed, and left out
    # of both rates' denominators.
    SYSTEM = "system"


# The outcomes that are a human's verdict on the tool, as opposed to the passing of time.
HUMAN_VERDICTS: frozenset[HumanOutcome] = frozenset(
    {HumanOutcome.REVERSED, HumanOutcome.RELEASED, HumanOutcome.CONFIRMED}
)


class RunStatus(enum.StrEnum):
    """How a batch ended, in ``moderation_runs.status`` and the ``--json`` report."""

    RUNNING = "running"
    DONE = "done"
    FENCED = "fenced"  # lost its lease; its remaining writes were refused
    CIRCUIT_OPEN = "circuit-open"
    DEADLINE = "deadline"
    UNQUALIFIED = "unqualified"  # done, but the model may not approve: nothing was approved
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"  # found dead by the next batch
    FAILED = "failed"
    LEASE_HELD = "lease-held"
    INTERRUPTED = "interrupted"


class ExitCode(enum.IntEnum):
    """The process's exit codes; each member's ``meaning`` and ``action`` are documented."""

    meaning: str
    action: str

    def __new__(cls, value: int, meaning: str, action: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.action = action
        return member

    OK = 0, "batch done", ""
    FAILED = (
        1,
        "unexpected failure (a bug); the traceback is printed, credentials hidden",
        ("report it"),
    )
    USAGE = (
        2,
        "usage or configuration error (bad variable, missing table or column, missing database "
        "driver, status values the column cannot tell apart, a body column that is not text, a "
        "prompt template that does not use `{{ comment }}` or uses an undefined variable; "
        "`moderate review` beyond loopback without a token, or its port taken)",
        "a human must fix it",
    )
    PARTIAL = (
        3,
        "batch done, but some comments failed and stay pending (or the batch stopped early: "
        "circuit open, deadline)",
        "retried next run",
    )
    OLLAMA = (
        4,
        "Ollama unreachable, model missing, or (with `MODERATION_MIN_CONFIDENCE` above 0) a "
        "server that returns no log probabilities; nothing changed",
        "check the server",
    )
    DATABASE = 5, "database error; nothing half-written", "check the database"
    GATE = (
        6,
        "`moderate eval` below a gate, or `moderate outcomes` above `--max-reversal-rate`",
        "alert a human",
    )
    METRICS = (
        7,
        "batch done (its report printed), but the metrics file could not be written; a batch's "
        "own non-zero code wins",
        "check the collector directory",
    )
    UNQUALIFIED = (
        8,
        "batch done, but the model has not qualified on labelled comments (or its "
        "reversal-rate brake is on): every comment it would have approved is held",
        "alert a human: `moderate qualify` shows why",
    )
    LEASE_HELD = (
        75,
        "another batch holds the lease; the message says whether the holder looks alive",
        "retry after the lease (60 s); repeated, a second scheduler runs batches of the same site",
    )
    INTERRUPTED = 130, "interrupted (Ctrl-C)", ""


def exit_code_help() -> str:
    """The CLI's epilog: every exit code and its meaning, one sentence each."""
    parts = [f"{code.value} {code.meaning}" for code in ExitCode]
    return "Exit codes: " + "; ".join(parts) + "."


def exit_code_table() -> str:
    """The README's Markdown table of exit codes."""
    lines = ["| code | meaning | what to do |", "| --- | --- | --- |"]
    lines += [f"| {code.value} | {code.meaning} | {code.action} |" for code in ExitCode]
    return "\n".join(lines) + "\n"
