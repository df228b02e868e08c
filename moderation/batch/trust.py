"""Whether this batch's model may approve, and at which threshold: its stored qualification.

Run once per batch, after the model is known and before any comment is asked. A model +
prompt + fixtures without a qualification is qualified first (``MODERATION_QUALIFY=auto``),
under the batch's lease, so that replicas never qualify the same model twice at once; the
next batches find it stored. A dry run writes nothing, so it only uses a stored one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from moderation.batch.state import BatchState
from moderation.formatting import percent
from moderation.storage import brake, qualifications
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.qualifications import Qualification

log = logging.getLogger(__name__)

# Recorded as the threshold of decisions taken while the model may not approve: above any
# confidence, and unlike any real threshold, so that memory asks those comments again once the
# model qualifies (see ``memory.skip_reason``) and not before.
UNQUALIFIED_THRESHOLD = 2.0
NOT_YET = "unqualified: not qualified yet (a batch qualifies it; or run `moderate qualify`)"


async def establish(state: BatchState) -> None:
    """Set the batch's gate: ``state.threshold`` and, if it may not approve, why not."""
    settings = state.settings
    state.threshold = settings.min_confidence
    if settings.qualify == "off":
        log.warning(
            "MODERATION_QUALIFY=off: approvals rest on the model's own confidence, which no "
            "labelled comment has checked"
        )
        state.report.threshold = state.threshold
        return
    found = await _evidence(state)
    if isinstance(found, str):
        state.unqualified = found
    elif found.threshold is None:
        state.unqualified = found.reason
    else:
        state.threshold = max(settings.min_confidence, found.threshold)
        if settings.max_reversal_rate is not None and not state.dry_run:
            state.unqualified = await asyncio.to_thread(_brake, state, found)
    if state.unqualified is not None:
        log.warning("%s: nothing will be approved", state.unqualified)
    state.report.unqualified = state.unqualified
    state.report.threshold = state.threshold


async def _evidence(state: BatchState) -> Qualification | str:
    """The stored qualification, or a new one (not in a dry run); else why there is none."""
    # The evaluation's modules are imported by the batches that use them, not by those that
    # run with MODERATION_QUALIFY=off.
    from moderation.evaluation.evaluate import fixtures_hash
    from moderation.evaluation.qualify import fixture_paths, qualification_key, qualify

    settings, identity = state.settings, state.identity
    assert identity is not None
    paths = fixture_paths(settings)
    key = qualification_key(settings, identity, fixtures_hash(paths))
    found = await asyncio.to_thread(_find, state, key)
    if found is not None:
        return found
    if state.dry_run:
        return NOT_YET
    log.info("qualifying %s on labelled fixtures before it may approve", identity.model)
    made, _ = await qualify(settings, state.classifier, identity, paths)
    if not made.complete:
        return made.incomplete_reason
    await asyncio.to_thread(_save, state, made)
    log.info("%s", made.verdict())
    return made


def _brake(state: BatchState, qualification: Qualification) -> str | None:
    """The reversal-rate brake: what the site's humans say of this model's approvals.

    Only decisions of the current model and prompt count, made since its qualification (so a
    ``moderate qualify --force`` starts afresh) and within the window; and only once enough
    of them were approvals for a rate to mean anything. The figures are those of `moderate
    outcomes`, kept up to date as decisions and outcomes are recorded (``storage.brake``): a
    batch reads a few rows of them, after re-reading a bounded number of the approvals on the
    site to record what humans did with them (``humans.outcomes.observe_approvals``).
    """
    from moderation.humans.outcomes import observe_approvals
    from moderation.humans.since import Window

    settings, identity = state.settings, state.identity
    assert identity is not None and settings.max_reversal_rate is not None
    window = Window.parse(settings.reversal_window)
    since = max(window.since, _aware(qualification.qualified_at))
    variant = (identity.model_digest, identity.prompt_hash)
    observe_approvals(state.engine, state.comments, Window(since, window.until), variant)
    with read_transaction(state.engine) as conn:
        tally = brake.figures(conn, state.comments.site, *variant, since, window.until)
    if tally.approved < settings.reversal_min_approvals:
        return None
    rate = tally.reversed / tally.approved
    if rate <= settings.max_reversal_rate:
        return None
    return (
        f"reversal-rate brake: humans took back {percent(rate)} of {tally.approved} "
        f"approvals since {since:%Y-%m-%d %H:%M} UTC, above {percent(settings.max_reversal_rate)}"
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the tool writes them in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _find(state: BatchState, key: str) -> Qualification | None:
    if not state.memory_available:
        return None
    with read_transaction(state.engine) as conn:
        return qualifications.find(conn, key)


def _save(state: BatchState, qualification: Qualification) -> None:
    def write(conn: Connection) -> None:
        assert state.lease is not None
        state.lease.fence(conn)
        qualifications.save(conn, qualification)

    run_write(state.engine, write)
