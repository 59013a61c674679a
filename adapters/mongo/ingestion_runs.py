"""Ingestion runs and their row errors on MongoDB (``ingestion_runs``, ``ingestion_errors``).

Every operation is idempotent, so each is retried as a whole on transient errors: adding a run
never overwrites one, saving replaces, and errors are unique by ``{run_id, seq}`` (a duplicate is
what a retried insert finds, and is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from adapters.mongo.ingestion_documents import (
    IngestionCheckpointDocument,
    IngestionCheckpointFields,
    IngestionErrorDocument,
    IngestionErrorFields,
    IngestionRunDocument,
    IngestionRunFields,
)
from adapters.mongo.retries import DEFAULT_RETRY, RetryPolicy
from domain.feed_rows import RowError
from domain.ingestion import (
    INTERRUPTED,
    Check,
    Checkpoint,
    ErrorPolicy,
    IngestionRun,
    RunCounts,
    RunStatus,
    RunTakenOver,
)
from domain.ports import IngestionRuns

DUPLICATE_KEY = 11000
_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
_OLDEST_FIRST = [("created_at", ASCENDING), ("_id", ASCENDING)]


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
            "finished": run.status.finished,
            "holder": holder_of(run.status, run.owner),
            "owner": run.owner,
            "lease_until": run.lease_until,
            "writer": run.writer,
            "actor_roles": list(run.actor_roles),
            "actor_brands": list(run.actor_brands),
            "correlation_id": run.correlation_id,
            "portable": run.portable,
        }
    )
    return record.model_dump(by_alias=True)


def holder_of(status: RunStatus, owner: str | None) -> str | None:
    """Who may change an unfinished run, and in which state it is (None once it is finished)."""
    return None if status.finished else f"{status.value}:{owner or ''}"


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
        owner=record.owner,
        lease_until=record.lease_until,
        writer=record.writer,
        actor_roles=tuple(record.actor_roles),
        actor_brands=tuple(record.actor_brands),
        correlation_id=record.correlation_id,
        portable=record.portable,
    )


def checkpoint_to_bson(checkpoint: Checkpoint) -> dict[str, Any]:
    record = IngestionCheckpointFields.model_validate(
        {
            "_id": f"{checkpoint.run_id}/{checkpoint.number:09d}",
            "run_id": checkpoint.run_id,
            "number": checkpoint.number,
            "pass_number": checkpoint.pass_number,
            "rows_read": checkpoint.rows_read,
            "batch_size": checkpoint.batch_size,
            "owner": checkpoint.owner,
            "counts": checkpoint.counts.as_dict(),
            "lease_until": checkpoint.lease_until,
            "first_error": checkpoint.first_error,
            "error_count": len(checkpoint.errors),
            "state": checkpoint.state,
        }
    )
    return record.model_dump(by_alias=True)


def checkpoint_from_bson(raw: dict[str, Any]) -> Checkpoint:
    """Without its errors: they are read page by page with ``errors`` (a resumed run needs none)."""
    record = IngestionCheckpointFields.model_validate(raw)
    return Checkpoint(
        run_id=record.run_id,
        owner=record.owner,
        number=record.number,
        pass_number=record.pass_number,
        rows_read=record.rows_read,
        batch_size=record.batch_size,
        counts=RunCounts(**record.counts.model_dump()),
        lease_until=record.lease_until,
        first_error=record.first_error,
        state=record.state,
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
        self.checkpoints_collection = database[IngestionCheckpointDocument.Settings.name]
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

    async def claim(
        self, run_id: str, owner: str, lease_until: datetime, writer: str | None, started_at: datetime
    ) -> IngestionRun | None:
        """Read, then a write conditional on the holder read. A retried claim finds its own first
        attempt (running, this owner and writer): the same answer."""
        run = await self.get(run_id)
        if run is None:
            return None
        if run.status is RunStatus.RUNNING and run.owner == owner and run.writer == writer:
            return run
        if run.status is not RunStatus.QUEUED or run.owner not in (None, owner):
            return None
        claimed = run.but(
            status=RunStatus.RUNNING, owner=owner, lease_until=lease_until, writer=writer, started_at=started_at
        )
        if await self._change(run_id, holder_of(run.status, run.owner), claimed):
            return claimed
        now = await self.get(run_id)  # somebody else claimed it first, or this is a retried attempt
        return now if now is not None and now.owner == owner and now.writer == writer else None

    async def _change(self, run_id: str, holder: str | None, changed: IngestionRun) -> bool:
        """Stores ``changed`` if the run is still held as ``holder``."""
        held = {"_id": run_id, "holder": holder}
        result = await self.retry.call(self.runs.replace_one, held, run_to_bson(changed))
        return bool(result.matched_count)

    async def renew(self, run_id: str, owner: str, lease_until: datetime, counts: RunCounts) -> bool:
        held = {"_id": run_id, "holder": holder_of(RunStatus.RUNNING, owner)}
        changes = {"lease_until": lease_until, "counts": counts.as_dict()}
        result = await self.retry.call(self.runs.update_one, held, {"$set": changes})
        return bool(result.matched_count)

    async def finish(self, run: IngestionRun, owner: str) -> bool:
        """A retried finish finds its first attempt stored: the same answer."""
        if await self._change(run.run_id, holder_of(RunStatus.RUNNING, owner), run):
            return True
        return await self.get(run.run_id) == run

    async def interrupt(self, run_id: str, owner: str | None, finished_at: datetime) -> IngestionRun | None:
        run = await self.get(run_id)
        if run is None or run.status.finished or run.owner != owner:
            return None
        interrupted = run.but(status=RunStatus.FAILED, reason=INTERRUPTED, finished_at=finished_at, lease_until=None)
        if await self._change(run_id, holder_of(run.status, owner), interrupted):
            return interrupted
        return None

    async def hand_back(self, run_id: str, owner: str) -> IngestionRun | None:
        run = await self.get(run_id)
        if run is None or run.status is not RunStatus.RUNNING or run.owner != owner:
            return None
        queued = run.but(status=RunStatus.QUEUED, owner=None, lease_until=None, writer=None)
        return queued if await self._change(run_id, holder_of(RunStatus.RUNNING, owner), queued) else None

    async def checkpoint_in(self, checkpoint: Checkpoint, session: Any) -> None:
        """The checkpoint's writes, in ``session``'s transaction (the batch's): the run's counts and
        lease while it is still the owner's (``RunTakenOver`` aborts the transaction otherwise), the
        checkpoint, and the batch's row errors."""
        held = {"_id": checkpoint.run_id, "holder": holder_of(RunStatus.RUNNING, checkpoint.owner)}
        progress = {"counts": checkpoint.counts.as_dict(), "lease_until": checkpoint.lease_until}
        result = await self.runs.update_one(held, {"$set": progress}, session=session)
        if not result.matched_count:
            raise RunTakenOver(f"run {checkpoint.run_id} is no longer {checkpoint.owner}'s")
        await self.checkpoints_collection.insert_one(checkpoint_to_bson(checkpoint), session=session)
        if checkpoint.errors:
            documents = [
                error_to_bson(checkpoint.run_id, checkpoint.first_error + offset, error)
                for offset, error in enumerate(checkpoint.errors)
            ]
            await self.errors_collection.insert_many(documents, session=session)

    async def store_checkpoint(self, checkpoint: Checkpoint, *, check_only: bool = False) -> None:
        """Outside a transaction (a catalog that cannot share one): each write is idempotent."""
        held = {"_id": checkpoint.run_id, "holder": holder_of(RunStatus.RUNNING, checkpoint.owner)}
        if check_only:
            if await self.retry.call(self.runs.find_one, held, {"_id": 1}) is None:
                raise RunTakenOver(f"run {checkpoint.run_id} is no longer {checkpoint.owner}'s")
            return
        progress = {"counts": checkpoint.counts.as_dict(), "lease_until": checkpoint.lease_until}
        result = await self.retry.call(self.runs.update_one, held, {"$set": progress})
        if not result.matched_count:
            raise RunTakenOver(f"run {checkpoint.run_id} is no longer {checkpoint.owner}'s")
        document = checkpoint_to_bson(checkpoint)
        await self.retry.call(self.checkpoints_collection.replace_one, {"_id": document["_id"]}, document, upsert=True)
        await self.add_errors(checkpoint.run_id, checkpoint.first_error, checkpoint.errors)

    async def checkpoints(self, run_id: str) -> list[Checkpoint]:
        async def attempt() -> list[dict[str, Any]]:
            found = self.checkpoints_collection.find({"run_id": run_id}).sort("number", ASCENDING)
            return await found.to_list()

        return [checkpoint_from_bson(raw) for raw in await self.retry.call(attempt)]

    async def forget_checkpoints(self, run_id: str) -> None:
        await self.retry.call(self.checkpoints_collection.delete_many, {"run_id": run_id})

    async def unfinished(self, limit: int) -> list[IngestionRun]:
        if limit <= 0:
            return []

        async def attempt() -> list[dict[str, Any]]:
            query = {"kind": "run", "finished": False}
            return await self.runs.find(query).sort(_OLDEST_FIRST).limit(limit).to_list()

        return [run_from_bson(raw) for raw in await self.retry.call(attempt)]

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
