"""The audit log on MongoDB: append-only inserts, newest-first keyset pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from adapters.mongo.documents import AuditDocument, AuditRecordFields
from domain.audit import (
    AuditLog,
    AuditQuery,
    AuditRecord,
    audit_fields,
    audit_record_of,
    decode_audit_cursor,
    encode_audit_cursor,
)
from domain.search import Page

#: Later than any record: the bound that keeps a first, unfiltered page on the time index.
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
DUPLICATE_KEY = 11000


def _to_bson(record: AuditRecord) -> dict[str, Any]:
    fields = audit_fields(record)
    fields["_id"] = fields.pop("record_id")
    return AuditRecordFields.model_validate(fields).model_dump(by_alias=True)


def _to_domain(raw: dict[str, Any]) -> AuditRecord:
    doc = AuditRecordFields.model_validate(raw)
    return audit_record_of({**doc.model_dump(), "record_id": doc.id})


class MongoAuditLog(AuditLog):
    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.collection = database[AuditDocument.Settings.name]

    async def append(self, record: AuditRecord) -> None:
        await self.append_many((record,))

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        """One unordered ``insert_many``; duplicate ids (a journal shipped twice) are the only
        errors tolerated."""
        if not records:
            return
        try:
            await self.collection.insert_many([_to_bson(record) for record in records], ordered=False)
        except BulkWriteError as error:
            others = [e for e in error.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if others or error.details.get("writeConcernErrors"):
                raise

    async def query(self, query: AuditQuery) -> Page[AuditRecord]:
        """Leads with one indexed predicate (a filter, else the time bound), then the rest."""
        filters: dict[str, Any] = {}
        if query.actor is not None:
            filters["actor"] = query.actor
        if query.action is not None:
            filters["action"] = query.action
        if query.decision is not None:
            filters["decision"] = query.decision.value
        after = decode_audit_cursor(query.cursor) if query.cursor else None
        driver = (
            dict([next(iter(filters.items()))]) if filters else {"at": {"$lte": after[0] if after else _END_OF_TIME}}
        )
        rest: dict[str, Any] = dict(filters)
        if after is not None:
            rest["$or"] = [{"at": {"$lt": after[0]}}, {"at": after[0], "_id": {"$lt": after[1]}}]
        pipeline = [
            {"$match": driver},
            {"$match": rest},
            {"$sort": {"at": -1, "_id": -1}},
            {"$limit": query.limit + 1},
        ]
        rows = [_to_domain(raw) async for raw in await self.collection.aggregate(pipeline)]
        items = tuple(rows[: query.limit])
        return Page(items, encode_audit_cursor(items[-1]) if len(rows) > query.limit else None)
