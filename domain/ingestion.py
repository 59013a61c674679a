"""Ingestion runs: the record of one feed going into the catalog (CONTRACT.md 4.4).

A run is created ``queued``, becomes ``running``, and ends ``succeeded``, ``failed`` (a permanent
error or a failed data-flow check) or ``rejected`` (``reject-all`` met an invalid row); a
succeeded run may later become ``rolled_back``. Its counts obey two laws the data-flow validation
checks: rows = valid + invalid, and valid = created + updated + unchanged.

A run that a process has taken on carries that process (``owner``) and a lease (``lease_until``),
renewed while it works. A process that dies cannot say so: the next process that looks at the run
finds its lease lapsed (or its owner gone) and records it ``failed`` with reason ``interrupted``;
what the run wrote stays in its change log, so it can still be rolled back, and the same feed run
again converges (each batch is all-or-nothing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.errors import ErrorCode, FieldError, RuleViolation, invalid
from domain.feed_rows import RowError
from domain.text import parse_plain_text

#: The longest feed name a run keeps (a file name, as the feed's sender gave it).
MAX_SOURCE_LENGTH = 200
#: The reason of a run whose process stopped before its end (CONTRACT.md section 6).
INTERRUPTED = "interrupted"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class ErrorPolicy(StrEnum):
    SKIP_INVALID = "skip-invalid"
    REJECT_ALL = "reject-all"


@dataclass(frozen=True, slots=True)
class RunCounts:
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    products_created: int = 0
    products_updated: int = 0

    def plus(self, other: RunCounts) -> RunCounts:
        return RunCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Check:
    """One data-flow validation check: its name, whether it held, and what was compared."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class IngestionRun:
    run_id: str
    status: RunStatus
    dry_run: bool
    error_policy: ErrorPolicy
    source: str
    actor: str
    created_at: datetime
    counts: RunCounts = field(default_factory=RunCounts)
    checks: tuple[Check, ...] = ()
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: Why a run failed or was rejected, in one line (None otherwise).
    reason: str | None = None
    #: Feed fields that are not in FEED.md, with how many rows carried each (ignored, reported once).
    unknown_fields: dict[str, int] = field(default_factory=dict)
    rolled_back_at: datetime | None = None
    rolled_back_by: str | None = None
    #: The process executing (or, before it starts, holding) the run: ``host:pid:start``.
    owner: str | None = None
    #: Until when the owner's claim holds unless renewed.
    lease_until: datetime | None = None
    #: The catalog writer the owner writes batches with: what a dead owner left open is released by it.
    writer: str | None = None
    #: Who asked for the run, as authorized then: an executor elsewhere applies the same brand scope
    #: and audits under the same name and request id.
    actor_roles: tuple[str, ...] = ()
    actor_brands: tuple[str, ...] = ()
    correlation_id: str | None = None
    #: Its feed is in the shared feed store, so any executor can go on with it (a run accepted for a
    #: job engine); a run that reads a file of its own process (``eyewear ingest``) is not.
    portable: bool = False

    def abandoned(self, now: datetime, owner_gone: bool) -> bool:
        """Unfinished and nobody is working on it: its owner is known to be gone, or stopped renewing
        its lease. A queued run without an owner waits for a worker; a running one without an owner
        (recorded before leases existed) has nobody to wait for."""
        if self.status.finished:
            return False
        if self.owner is None:
            return self.status is RunStatus.RUNNING
        return owner_gone or self.lease_until is None or self.lease_until <= now

    @property
    def validation_passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def rows_per_second(self) -> float | None:
        duration = self.duration_seconds
        if duration is None:
            return None
        return round(self.counts.rows / duration, 1) if duration > 0 else float(self.counts.rows)

    def but(self, **changes: Any) -> IngestionRun:
        return dataclasses.replace(self, **changes)


class RunTakenOver(Exception):
    """The run is no longer this process's (another process took it over, or recorded it
    interrupted): whatever this process was about to write for it is not written."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a run has committed so far, stored in the very transaction of the batch that got it
    there (together with that batch's row errors), and only while the run is still ``owner``'s.

    A process that takes the run over resumes after the last checkpoint: it skips the
    ``rows_read`` rows of pass ``pass_number``, rebuilds what the pass remembers from the ``state``
    of every checkpoint of that pass, and goes on with the same ``batch_size``; the run then ends
    with the counts, versions and history of an uninterrupted run.
    """

    run_id: str
    owner: str
    #: 1 for the first checkpoint of the run, counting every pass.
    number: int
    #: 1, or 2 for the writing pass of a ``reject-all`` run.
    pass_number: int
    rows_read: int
    batch_size: int
    #: The pass's counts so far (this batch included).
    counts: RunCounts
    lease_until: datetime
    #: This batch's row errors, numbered from ``first_error``.
    errors: tuple[RowError, ...] = ()
    first_error: int = 0
    #: What the pass remembers, as this batch changed it (the pipeline's own encoding; opaque to stores).
    state: bytes = b""


def parse_source_name(raw: str, field: str = "source") -> str:
    """A feed's name as a run records and reports it: plain text (FEED.md's text rule: no markup, no
    control characters) that names a file, not a path (no ``/`` or ``\\``): it is shown to operators
    and in reports, never used to open anything, and a name must not pretend otherwise."""
    try:
        name = parse_plain_text(raw, MAX_SOURCE_LENGTH)
        if "/" in name or "\\" in name:
            raise RuleViolation(ErrorCode.INVALID_VALUE, "a feed name is a file name, without '/' or '\\'")
    except RuleViolation as violation:
        error = FieldError(field, violation.code, violation.message)
        raise invalid(f"{field}: {violation.message}", (error,)) from None
    return name


def run_report(run: IngestionRun) -> dict[str, Any]:
    """The run report of CONTRACT.md 4.4 (plus ``reason``, ``unknown_fields``, and ``executor``: the
    process that holds or held the run, ``host:pid:start``)."""
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "dry_run": run.dry_run,
        "error_policy": run.error_policy.value,
        "source": run.source,
        "actor": run.actor,
        "counts": run.counts.as_dict(),
        "validation": {
            "passed": run.validation_passed,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in run.checks],
        },
        "reason": run.reason,
        "unknown_fields": dict(sorted(run.unknown_fields.items())),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": run.duration_seconds,
        "rows_per_second": run.rows_per_second,
        "rolled_back_at": _iso(run.rolled_back_at),
        "rolled_back_by": run.rolled_back_by,
        "executor": run.owner,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
