"""Reading ingestion runs and their row errors (``ingestion:read``)."""

from __future__ import annotations

from dataclasses import dataclass

from application.authorization import Authorizer, Caller
from application.ingestion import RunNotFound
from application.run_leases import RunLeases
from domain.errors import ErrorCode, FieldError, ValidationFailed
from domain.feed_rows import RowError
from domain.ingestion import IngestionRun
from domain.ports import IngestionRuns
from domain.rbac import Permission

ERRORS_PAGE = 100
MAX_RECENT = 100


@dataclass(frozen=True, slots=True)
class ErrorPage:
    items: tuple[RowError, ...]
    next_cursor: str | None


class GetRun:
    """A run as it stands: one whose process died is reported (and recorded) interrupted, not running."""

    def __init__(self, runs: IngestionRuns, authorizer: Authorizer, leases: RunLeases) -> None:
        self.runs = runs
        self.authorizer = authorizer
        self.leases = leases

    async def __call__(self, run_id: str, caller: Caller) -> IngestionRun:
        await self.authorizer.require(caller, Permission.INGESTION_READ, f"ingestion:{run_id}")
        run = await self.runs.get(run_id)
        if run is None:
            raise RunNotFound(f"no ingestion run {run_id!r}")
        return await self.leases.settle(run)


class ListRuns:
    def __init__(self, runs: IngestionRuns, authorizer: Authorizer, leases: RunLeases) -> None:
        self.runs = runs
        self.authorizer = authorizer
        self.leases = leases

    async def __call__(self, caller: Caller, limit: int = 20) -> list[IngestionRun]:
        await self.authorizer.require(caller, Permission.INGESTION_READ, "ingestion")
        runs = await self.runs.recent(max(1, min(limit, MAX_RECENT)))
        return [await self.leases.settle(run) for run in runs]


class RunErrors:
    def __init__(self, runs: IngestionRuns, authorizer: Authorizer) -> None:
        self.runs = runs
        self.authorizer = authorizer

    async def __call__(self, run_id: str, caller: Caller, cursor: str | None = None) -> ErrorPage:
        await self.authorizer.require(caller, Permission.INGESTION_READ, f"ingestion:{run_id}")
        after = _parse_cursor(cursor)
        if await self.runs.get(run_id) is None:
            raise RunNotFound(f"no ingestion run {run_id!r}")
        found = await self.runs.errors(run_id, after, ERRORS_PAGE + 1)
        page = found[:ERRORS_PAGE]
        more = len(found) > ERRORS_PAGE
        return ErrorPage(tuple(error for _, error in page), str(page[-1][0]) if more and page else None)


def _parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 12:
        message = "is not a cursor this service gave out"
        raise ValidationFailed("invalid cursor", (FieldError("cursor", ErrorCode.INVALID_VALUE, message),))
    return int(cursor)
