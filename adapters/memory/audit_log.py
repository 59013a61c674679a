"""The in-memory audit log: the reference behaviour of the port."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from domain.audit import AuditLog, AuditQuery, AuditRecord, audit_matches, audit_order_key, decode_audit_cursor
from domain.audit import encode_audit_cursor as encode
from domain.search import Page


class MemoryAuditLog(AuditLog):
    def __init__(self) -> None:
        self._records: list[AuditRecord] = []
        self._ids: set[str] = set()
        self._lock = asyncio.Lock()

    async def append(self, record: AuditRecord) -> None:
        await self.append_many((record,))

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        async with self._lock:
            for record in records:
                if record.record_id not in self._ids:
                    self._ids.add(record.record_id)
                    self._records.append(record)

    async def query(self, query: AuditQuery) -> Page[AuditRecord]:
        matching = sorted((r for r in self._records if audit_matches(r, query)), key=audit_order_key, reverse=True)
        if query.cursor is not None:
            after = decode_audit_cursor(query.cursor)
            matching = [r for r in matching if audit_order_key(r) < after]
        items = tuple(matching[: query.limit])
        more = len(matching) > query.limit
        return Page(items, encode(items[-1]) if more and items else None)
