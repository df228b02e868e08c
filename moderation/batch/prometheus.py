"""Prometheus text-format metrics after each batch, for node_exporter's textfile collector."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moderation.batch.pipeline import RunReport


def write_metrics(path: Path, report: RunReport, duration: float | None = None) -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.exposition import generate_latest

    registry = CollectorRegistry()
    decisions = Gauge(
        "moderation_batch_decisions",
        "Comments decided in the last batch, by outcome.",
        ["outcome"],
        registry=registry,
    )
    for outcome, count in report.counts().items():
        decisions.labels(outcome=outcome).set(count)
    Gauge("moderation_batch_exit_code", "Exit code of the last batch.", registry=registry).set(
        report.exit_code
    )
    if duration is not None:
        Gauge(
            "moderation_batch_duration_seconds", "Wall time of the last batch.", registry=registry
        ).set(duration)
    latency = Histogram(
        "moderation_model_latency_seconds",
        "Model answer latency in the last batch.",
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        registry=registry,
    )
    for decision in report.decisions:
        if decision.latency is not None:
            latency.observe(decision.latency)
    if report.exit_code in (0, 3) and not report.dry_run:
        Gauge(
            "moderation_last_success_timestamp_seconds",
            "Unix time of the last batch that completed.",
            registry=registry,
        ).set(time.time())
    Counter(
        "moderation_batch_rejected_writes",
        "Decisions refused by the lease fence.",
        registry=registry,
    ).inc(report.rejected)
    # Write then rename: the collector must never read a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".moderation-", suffix=".prom")
    with os.fdopen(fd, "wb") as handle:
        handle.write(generate_latest(registry))
    # mkstemp makes the file owner-only; node_exporter reads it as another user.
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
