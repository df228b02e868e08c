"""What the stages of one batch share: its inputs, its report, and the signal to stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from moderation.batch.answers import Answers
from moderation.batch.decide import decide
from moderation.batch.lease import Lease
from moderation.batch.nothing_new import NothingNew
from moderation.batch.quarantine import InWork
from moderation.batch.run_report import RunReport
from moderation.comment import Comment
from moderation.model.classifier import Classifier
from moderation.model.reading import Reading
from moderation.rules import RuleContext
from moderation.settings import Settings
from moderation.site.protocol import Site
from moderation.storage.audit import Decision
from moderation.storage.memory import Identity

OnDecision = Callable[[Decision], None]


@dataclass
class Progress:
    """Callbacks for a progress display; every one optional, and called from the batch's
    loop or its worker threads (so they must be thread-safe, as rich's progress bar is).

    ``pending``: the number of pending comments, counted once at the start (one COUNT query,
    only when this callback is given); ``answered``: one comment was read by the model (before
    the decision is written, which happens in chunks); ``skipped``: comments left out because
    they were decided before.
    """

    pending: Callable[[int], None] | None = None
    answered: Callable[[], None] | None = None
    skipped: Callable[[int], None] | None = None


@dataclass(frozen=True, slots=True)
class Work:
    """A pending comment on its way to the model, with what memory says about it."""

    comment: Comment
    failures_before: int


@dataclass(eq=False)
class BatchState:
    settings: Settings
    engine: Engine
    comments: Site
    classifier: Classifier
    dry_run: bool
    report: RunReport
    lease: Lease | None
    limit: int | None = None
    memory_available: bool = True
    on_decision: OnDecision | None = None
    cancel: threading.Event | None = None
    scheduled_for: float | None = None
    progress: Progress = field(default_factory=Progress)
    identity: Identity | None = None
    # The approval gate of this batch: the threshold (the configured floor, raised to the
    # model's qualified threshold) and, for a model that may not approve, why not.
    threshold: float = 0.0
    unqualified: str | None = None
    # Set by any stage that must end the batch early: the others stop taking new work.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # The rules applied before the model, with the copies of each text read so far.
    rules: RuleContext = field(default_factory=RuleContext)
    # The model's answers by text, shared by every copy of a text (see batch.answers).
    answers: Answers = field(default_factory=Answers)
    # Whether memory skips every pending comment, asked while the batch starts.
    nothing_new: NothingNew | None = None
    # The comments in work now, and those held unread because batches stopped on them.
    in_work: InWork = field(default_factory=InWork)
    quarantined: frozenset[str] = frozenset()

    def decide(self, comment: Comment, reading: Reading, *, would_approve: bool) -> Decision:
        """The decision on one reading under this batch's gate (see ``batch.decide``)."""
        return decide(
            comment,
            reading,
            would_approve=would_approve,
            min_confidence=self.threshold,
            unqualified=self.unqualified,
        )
