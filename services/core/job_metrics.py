"""Prometheus metrics of conversion jobs: outcomes, the time of each stage and of the whole job,
and lease renewals.

They are written by the worker process that runs the job (never by its conversion child), in
files under PROMETHEUS_MULTIPROC_DIR when it is set (plexzoom.core.metrics). Label values are
bounded: outcomes, error class names (never a message), the builder's stage names.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from prometheus_client import Counter, Histogram

# A small image converts in under a second, a large slide or multiplex stack in hours.
BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800)

CONVERSIONS = Counter(
    "plexzoom_conversions_total",
    "Conversion jobs by outcome (ready, failed, retried, lease_lost, skipped) and, for failed "
    "and retried, the error's class.",
    ["outcome", "reason"],
)
CONVERSION_SECONDS = Histogram(
    "plexzoom_conversion_seconds",
    "Time of a whole conversion job, from its claim to its outcome.",
    ["outcome"],
    buckets=BUCKETS,
)
STAGE_SECONDS = Histogram(
    "plexzoom_conversion_stage_seconds",
    "Time of one stage of a conversion (starting, reading, building pyramid(s), committing).",
    ["stage"],
    buckets=BUCKETS,
)
LEASE_RENEWALS = Counter(
    "plexzoom_lease_renewals_total",
    "Renewals of a job's lease (each also publishes its progress), by result.",
    ["result"],
)


class ConversionRun:
    """Times one conversion job and counts its outcome, once."""

    def __init__(self) -> None:
        self._started, self._ended = time.monotonic(), False

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        """Count the outcome (the error's class is the reason); later calls change nothing."""
        if self._ended:
            return
        self._ended = True
        reason = type(error).__name__ if error is not None else ""
        CONVERSIONS.labels(outcome, reason).inc()
        CONVERSION_SECONDS.labels(outcome).observe(time.monotonic() - self._started)


class StageClock:
    """Times a job's stages: each is observed when the next begins, and the last at ``end``
    (or when a ``with`` block ends, however it ends)."""

    def __init__(self, stage: str) -> None:
        self.stage, self._since, self._ended = stage, time.monotonic(), False

    def enter(self, stage: str) -> None:
        """Begin ``stage`` (ending the current one), unless it is already the current one."""
        if stage != self.stage:
            self.end()
            self.stage, self._since, self._ended = stage, time.monotonic(), False

    def end(self) -> None:
        """End the current stage."""
        if not self._ended:
            STAGE_SECONDS.labels(self.stage).observe(time.monotonic() - self._since)
            self._ended = True

    def __enter__(self) -> "StageClock":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.end()


@contextmanager
def counting_renewal() -> Iterator[None]:
    """Count one lease renewal: ok when the block ends normally, failed when it raises."""
    try:
        yield
    except BaseException:
        LEASE_RENEWALS.labels("failed").inc()
        raise
    LEASE_RENEWALS.labels("ok").inc()
