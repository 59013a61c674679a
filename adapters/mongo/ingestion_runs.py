"""Ingestion runs and their row errors on MongoDB (``ingestion_runs``, ``ingestion_errors``).

Every operation is idempotent, so each is retried as a whole on transient errors: adding a run
never overwrites one, saving replaces, and errors are unique by ``{run_id, seq}`` (a duplicate is
what a retried insert finds, and is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from adapters.mongo.ingestion_documents import (
    IngestionErrorDocument,
    IngestionErrorFields,
    IngestionRunDocument,
    IngestionRunFields,
)
from adapters.mongo.retries import DEFAULT_RETRY, RetryPolicy
from domain.feed_rows import RowError
from domain.ingestion import Check, ErrorPolicy, IngestionRun, RunCounts, RunStatus
from domain.ports import IngestionRuns

DUPLICATE_KEY = 11000
_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def run_to_bson(run: IngestionRun) -> dict[str, Any]:
    record = IngestionRunFields.model_validate(
        {
            "_id": run.run_id,
            "kind": "run",
            "status": run.status.value,
            "dry_run": run.dry_run,
            "error_policy": run.error_policy.value,
            "source": run.source,
            "actor": run.actor,
            "created_at": run.created_at,
            "counts": run.counts.as_dict(),
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in run.checks],
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "reason": run.reason,
            "unknown_fields": [{"name": name, "rows": rows} for name, rows in sorted(run.unknown_fields.items())],
            "rolled_back_at": run.rolled_back_at,
            "rolled_back_by": run.rolled_back_by,
        }
    )
    return record.model_dump(by_alias=True)


def run_from_bson(raw: dict[str, Any]) -> IngestionRun:
    record = IngestionRunFields.model_validate(raw)
    return IngestionRun(
        run_id=record.id,
        status=RunStatus(record.status),
        dry_run=record.dry_run,
        error_policy=ErrorPolicy(record.error_policy),
        source=record.source,
        actor=record.actor,
        created_at=record.created_at,
        counts=RunCounts(**record.counts.model_dump()),
        checks=tuple(Check(c.name, c.passed, c.detail) for c in record.checks),
        started_at=record.started_at,
        finished_at=record.finished_at,
        reason=record.reason,
        unknown_fields={field.name: field.rows for field in record.unknown_fields},
        rolled_back_at=record.rolled_back_at,
        rolled_back_by=record.rolled_back_by,
    )


def error_to_bson(run_id: str, seq: int, error: RowError) -> dict[str, Any]:
    record = IngestionErrorFields(
        run_id=run_id,
        seq=seq,
        line=error.line,
        sku=error.sku,
        field=error.field,
        code=error.code,
        message=error.message,
    )
    return record.model_dump()


def error_from_bson(raw: dict[str, Any]) -> tuple[int, RowError]:
    record = IngestionErrorFields.model_validate({key: value for key, value in raw.items() if key != "_id"})
    return record.seq, RowError(record.line, record.sku, record.field, record.code, record.message)


class MongoIngestionRuns(IngestionRuns):
    def __init__(self, database: AsyncDatabase[Any], retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.runs = database[IngestionRunDocument.Settings.name]
        self.errors_collection = database[IngestionErrorDocument.Settings.name]
        self.retry = retry

    async def add(self, run: IngestionRun) -> None:
        """Stores a new run; adding a run id that is stored already changes nothing."""
        document = run_to_bson(run)
        fields = {key: value for key, value in document.items() if key != "_id"}
        await self.retry.call(self.runs.update_one, {"_id": run.run_id}, {"$setOnInsert": fields}, upsert=True)

    async def save(self, run: IngestionRun) -> None:
        await self.retry.call(self.runs.replace_one, {"_id": run.run_id}, run_to_bson(run), upsert=True)

    async def get(self, run_id: str) -> IngestionRun | None:
        raw = await self.retry.call(self.runs.find_one, {"_id": run_id})
        return run_from_bson(raw) if raw else None

    async def recent(self, limit: int) -> list[IngestionRun]:
        if limit <= 0:
            return []

        async def attempt() -> list[dict[str, Any]]:
            return await self.runs.find({"kind": "run"}).sort(_NEWEST_FIRST).limit(limit).to_list()

        return [run_from_bson(raw) for raw in await self.retry.call(attempt)]

    async def add_errors(self, run_id: str, first_seq: int, errors: Sequence[RowError]) -> None:
        if not errors:
            return
        documents = [error_to_bson(run_id, first_seq + offset, error) for offset, error in enumerate(errors)]
        await self.retry.call(self._insert_new, documents)

    async def _insert_new(self, documents: list[dict[str, Any]]) -> None:
        try:
            await self.errors_collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            if any(failure.get("code") != DUPLICATE_KEY for failure in error.details.get("writeErrors", [])):
                raise
            if error.details.get("writeConcernErrors"):
                raise

    async def errors(self, run_id: str, after: int | None, limit: int) -> list[tuple[int, RowError]]:
        if limit <= 0:
            return []
        query: dict[str, Any] = {"run_id": run_id}
        if after is not None:
            query["seq"] = {"$gt": after}

        async def attempt() -> list[dict[str, Any]]:
            cursor = self.errors_collection.find(query, {"_id": 0}).sort("seq", ASCENDING).limit(limit)
            return await cursor.to_list()

        return [error_from_bson(raw) for raw in await self.retry.call(attempt)]
