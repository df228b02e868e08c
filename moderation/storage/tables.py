"""The tool's own tables. The site's comments table is never part of this metadata.

Migrations in ``moderation/migrations`` create exactly these; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


def site_column() -> sa.Column[str]:
    """The site a row belongs to (``moderation.site.key``): two sites can share a database.

    Rows written before revision 0009 hold the empty marker until the first site claims them.
    """
    return sa.Column("site", sa.String(255), nullable=False, server_default="")


class Timestamp(sa.types.TypeDecorator[datetime]):
    """A time of day: DATETIME(6) on MySQL/MariaDB, whose DATETIME drops the fraction, and a
    timezone-aware DateTime elsewhere. MySQL's type is imported only where it is used: its
    dialect is a fiftieth of the start-up of every command on other databases."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)


# Exact types on every database: epoch seconds are DOUBLE, never FLOAT (single precision on
# MySQL: 128-second steps).
EpochSeconds = sa.Double
# On MySQL/MariaDB every table is InnoDB (transactions and row locks), utf8mb4 (any text), with
# a binary collation (comment ids differing only in case stay distinct keys): the migrations'
# DDL says so. Not repeated here as table options, which SQLAlchemy checks by importing its
# MySQL dialect, in every command on every database.

# One row per run: what was asked, of which model, and how it ended.
runs = sa.Table(
    "moderation_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("fencing_token", sa.BigInteger),
    sa.Column("scheduled_for", EpochSeconds),
    sa.Column("model", sa.String(255)),
    sa.Column("model_digest", sa.String(128)),
    sa.Column("prompt_hash", sa.String(64)),
    sa.Column("considered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("approved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("exit_code", sa.Integer),
    sa.Column("error", sa.Text),
    site_column(),
    # The comments (JSON list of ids) the run was working on when it last said so: those in
    # work for a while, and all of them when it was fenced or failed (see batch.quarantine).
    sa.Column("in_work", sa.Text),
    # A site's recent runs (`moderate history`), its ticks, its runs left running.
    sa.Index("ix_moderation_runs_site_started_at", "site", "started_at"),
)

# The audit trail: one row per model answer that was acted on (or failed), and one per ruling
# of a human on the review page (`reviewer` set, outcome "approved" or "rejected").
decisions = sa.Table(
    "moderation_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("comment_id", sa.String(255), nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("label", sa.String(16)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("raw_answer", sa.Text),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("model_digest", sa.String(128)),
    sa.Column("host", sa.String(255)),
    sa.Column("prompt_hash", sa.String(64), nullable=False),
    sa.Column("options", sa.Text),
    sa.Column("latency_ms", sa.Double),
    sa.Column("error", sa.Text),
    sa.Column("decided_at", Timestamp, nullable=False),
    # "whole", "N windows", "K of N windows" or "none" (too long, or held by a rule: not read);
    # null on rows written before long comments were read in windows.
    sa.Column("coverage", sa.String(32)),
    # Probability of the label among the three, from the model's token log probabilities.
    sa.Column("confidence", sa.Double),
    sa.Column("reviewer", sa.String(255)),
    # The comment whose model answer this decision reused (same text, model, prompt, options).
    sa.Column("answer_of", sa.String(255)),
    site_column(),
    # Every lookup of a comment's decisions is within one site.
    sa.Index("ix_moderation_decisions_site_comment_id", "site", "comment_id"),
    # An answer is looked up by its text's hash to serve the text's other copies.
    sa.Index("ix_moderation_decisions_site_text_hash", "site", "text_hash"),
)

# Decision memory: the latest state per comment of a site, so a rerun knows in one indexed
# lookup what not to ask again (held with the same text, model and prompt; or out of attempts).
comment_state = sa.Table(
    "moderation_comment_state",
    metadata,
    sa.Column("site", sa.String(255), primary_key=True, server_default=""),
    sa.Column("comment_id", sa.String(255), primary_key=True),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("label", sa.String(16)),
    sa.Column("model_digest", sa.String(128)),
    sa.Column("prompt_hash", sa.String(64), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # The approval threshold the outcome was decided under (uncertain answers depend on it).
    sa.Column("min_confidence", sa.Double),
    # Set when a human ruled on the comment: the model is never asked about it again.
    sa.Column("reviewer", sa.String(255)),
)

# One row per lease name (one per site: ``batch:<site key>``). `token` only ever grows: it
# fences off a holder that lost the lease.
leases = sa.Table(
    "moderation_lease",
    metadata,
    sa.Column("name", sa.String(320), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", EpochSeconds, nullable=False),
    sa.Column("expires_at", EpochSeconds, nullable=False),
    sa.Column("run_id", sa.String(36)),
)

# What humans did after the tool: the first human outcome seen for a tool decision (reversed,
# released, confirmed). Kept here because the site may purge the row later (WordPress empties
# its trash after 30 days), and so that the same window always gives the same figures.
outcomes = sa.Table(
    "moderation_outcomes",
    metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("comment_id", sa.String(255), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("seen_at", Timestamp, nullable=False),
    site_column(),
)

# Which model may approve: one row per qualification, the evaluation of a model (by digest) and
# prompt on labelled fixtures with exactly the batch's request, keyed by everything that
# changes the answers. ``threshold`` is NULL when no threshold kept the false-approval bound
# within the limit: that model approves nothing.
qualifications = sa.Table(
    "moderation_qualifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, index=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("model_digest", sa.String(128)),
    sa.Column("prompt_hash", sa.String(64), nullable=False),
    sa.Column("fixtures_hash", sa.String(64), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("n_positive", sa.Integer, nullable=False),
    sa.Column("n_neutral", sa.Integer, nullable=False),
    sa.Column("n_negative", sa.Integer, nullable=False),
    sa.Column("n_approve", sa.Integer, nullable=False),
    sa.Column("n_hold", sa.Integer, nullable=False),
    sa.Column("max_false_approval", sa.Double, nullable=False),
    sa.Column("threshold", sa.Double),
    sa.Column("false_approval_rate", sa.Double),
    sa.Column("false_approval_bound", sa.Double),
    sa.Column("auto_approval_share", sa.Double),
    sa.Column("missed_approval_rate", sa.Double),
    # The lowest false-approval rate seen at any threshold, for the reason of an unqualified one.
    sa.Column("best_false_approval_rate", sa.Double),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Double, nullable=False),
    sa.Column("qualified_at", Timestamp, nullable=False),
    # The floor and the threshold table (JSON) the threshold was chosen from (0014).
    sa.Column("min_confidence", sa.Double),
    sa.Column("thresholds", sa.Text),
)

# The last notification of each kind (waiting, failed, unqualified) per site: when it was sent
# and a hash of what it said, so that an hourly cron tells the moderators once per period, not
# every run.
notifications = sa.Table(
    "moderation_notifications",
    metadata,
    sa.Column("site", sa.String(255), primary_key=True, server_default=""),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("sent_at", EpochSeconds, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
)

# Writes to a site outside the tool's database (WordPress's REST API), each recorded before it
# is sent: open until its audit row commits (done), or until a later batch finds the site
# without it (dropped). See ``storage.intents``.
write_intents = sa.Table(
    "moderation_write_intents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(255), nullable=False),
    sa.Column("comment_id", sa.String(255), nullable=False),
    # What is written: "approved" (a batch's approval or a reviewer's) or "rejected".
    sa.Column("outcome", sa.String(16), nullable=False),
    # The hash of the text that was judged: the write lands only on that text.
    sa.Column("text_hash", sa.String(64), nullable=False),
    # The batch run, or the review session, the write belongs to.
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("reviewer", sa.String(255)),
    # The batch's decision (JSON: its audit row and memory, less the comment's text), which a
    # later batch records if the write turns out to have landed.
    sa.Column("decision", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("settled_at", Timestamp),
    # A batch looks for its site's open intents before it reads new work.
    sa.Index("ix_moderation_write_intents_site_state", "site", "state"),
)

# The reversal brake's running figures (``storage.brake``): per site, model digest ("" for a
# model without one) and prompt, per hour and per minute of decision (``seconds``: 3600 or 60;
# ``starts_at``: epoch seconds), the tool's approvals that count (the latest tool decision on
# their comment, not taken away by the system) and those of them humans took back, as `moderate
# outcomes` counts them. ``first_id`` and ``last_id`` bound the ids of the decisions ever
# counted in the period: where a window starts or ends inside a minute, its decisions are read
# by that id range.
brake_figures = sa.Table(
    "moderation_brake_figures",
    metadata,
    sa.Column("site", sa.String(255), primary_key=True),
    sa.Column("model_digest", sa.String(128), primary_key=True),
    sa.Column("prompt_hash", sa.String(64), primary_key=True),
    sa.Column("seconds", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("starts_at", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("approved", sa.Integer, nullable=False),
    sa.Column("reversed", sa.Integer, nullable=False),
    sa.Column("first_id", sa.Integer, nullable=False),
    sa.Column("last_id", sa.Integer, nullable=False),
)

# Tool approvals last seen in a state the comment system set by itself (WordPress's
# ``post-trashed``): not counted in the figures until seen otherwise.
brake_marks = sa.Table(
    "moderation_brake_marks",
    metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("site", sa.String(255), nullable=False),
)

# One row per site: serialises the changes to its figures, and says where the batches'
# bounded re-reading of the site's approvals stopped (a decision id; 0: from the start).
brake_sites = sa.Table(
    "moderation_brake_sites",
    metadata,
    sa.Column("site", sa.String(255), primary_key=True),
    sa.Column("swept_after", sa.Integer, nullable=False, server_default="0"),
)
