"""Batch reads and all-or-nothing batch writes on MongoDB: the ``BulkCatalog`` half of ``MongoCatalog``.

Reads are ``$in`` lookups on indexed fields, in chunks, with projections: change detection reads
the hashes stored in each product document (``fields_hash``, ``variants[].content_hash``), not
whole products. A batch is one transaction: an ordered ``bulk_write`` of version-conditional
writes on the products, then the history in the same order; a precondition that failed aborts
it. Transient errors are retried (``adapters.mongo.retries``); the version conditions make a
retried batch apply once at most.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bson.binary import Binary
from pymongo import ASCENDING, DeleteMany, DeleteOne, InsertOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, PyMongoError

from adapters.batch_rules import expected_version, fingerprint_of, first_stale, owner_in_batch
from adapters.mongo.documents import HistoryRecord
from adapters.mongo.mapping import history_to_bson, history_to_domain, product_from_bson, product_to_bson
from adapters.mongo.retries import RetryPolicy
from domain.conflicts import gtin_taken, sku_taken
from domain.errors import VersionMismatch
from domain.history import HistoryEntry
from domain.ingestion import Checkpoint
from domain.ports import BatchWriter, BulkCatalog, Fingerprint, IngestionRuns, ProductWrite
from domain.product import Product

if TYPE_CHECKING:
    from adapters.mongo.ingestion_runs import MongoIngestionRuns

#: Values per ``$in`` query.
CHUNK = 1000
#: History entries per page of ``entries_from``. An ingestion entry decodes to ~36 KB of Python
#: objects (it holds the product before and the diff); two pages are alive while the next one is
#: read, so this bounds the run's verification and the rollback to ~8 MB (`eyewear bench`,
#: ``ingest.memory_growth``: 500 gave +38 MiB of peak RSS from 1 000 to 10 000 rows, 100 gives +6).
PAGE = 100
DUPLICATE_KEY = 11000
_FINGERPRINT = {"version": 1, "fields_hash": 1, "variants.sku": 1, "variants.content_hash": 1, "variants.raw_hash": 1}
_BY_RUN = [("product_id", ASCENDING), ("version", ASCENDING)]


class _Stale(Exception):
    """A version condition matched nothing: the transaction is aborted, then the culprit named."""


class _CheckpointRefused(Exception):
    def __init__(self, error: BulkWriteError) -> None:
        super().__init__(str(error))
        self.error = error


class _HistoryClash(Exception):
    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry["product_id"])
        self.entry = entry


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _stored_fingerprint(raw: dict[str, Any]) -> Fingerprint | None:
    """From the stored hashes; None for a document written before they were."""
    variants = raw.get("variants") or []
    if not raw.get("fields_hash") or not all(v.get("content_hash") for v in variants):
        return None
    return Fingerprint(
        product_id=raw["_id"],
        version=raw["version"],
        fields_hash=raw["fields_hash"],
        variant_hashes={v["sku"]: v["content_hash"] for v in variants},
        raw_hashes={v["sku"]: v["raw_hash"] for v in variants if v.get("raw_hash")},
    )


def history_filters(source: str, after: tuple[str, int] | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """What ``entries_from`` asks for: from the start, one query; resuming after ``(product_id, version)``,
    the rest of that product, then the products after it (two index ranges, no ``$or``)."""
    if after is None:
        return None, {"source": source}
    product_id, version = after
    return (
        {"source": source, "product_id": product_id, "version": {"$gt": version}},
        {"source": source, "product_id": {"$gt": product_id}},
    )


def _product_operation(write: ProductWrite) -> Any:
    if write.before is None:
        assert write.after is not None, "a write has a before, an after or both"
        return InsertOne(product_to_bson(write.after, write.raw_digests))
    condition = {"_id": write.before.product_id, "version": write.before.version}
    if write.after is None:
        return DeleteOne(condition)
    return ReplaceOne(condition, product_to_bson(write.after, write.raw_digests))


class MongoBulkWrites(BulkCatalog):
    """Mixed into ``MongoCatalog``, whose collections, client and retry policy it uses."""

    products: Any
    history: Any
    client: Any
    retry: RetryPolicy

    # Reads.
    async def _find_all(self, collection: Any, query: dict[str, Any], projection: dict[str, Any] | None = None) -> Any:
        async def attempt() -> list[dict[str, Any]]:
            return await collection.find(query, projection).to_list()  # type: ignore[no-any-return]

        return await self.retry.call(attempt)

    async def fingerprints(self, product_ids: Collection[str]) -> dict[str, Fingerprint]:
        found: dict[str, Fingerprint] = {}
        legacy: list[str] = []
        for chunk in _chunks(product_ids):
            for raw in await self._find_all(self.products, {"_id": {"$in": chunk}}, _FINGERPRINT):
                fingerprint = _stored_fingerprint(raw)
                if fingerprint is None:
                    legacy.append(raw["_id"])
                else:
                    found[fingerprint.product_id] = fingerprint
        for product in (await self.get_many(legacy)).values() if legacy else ():
            found[product.product_id] = fingerprint_of(product)
        return found

    async def sku_owners(self, skus: Collection[str]) -> dict[str, str]:
        wanted, owners = set(skus), {}
        for chunk in _chunks(wanted):
            for raw in await self._find_all(self.products, {"skus": {"$in": chunk}}, {"skus": 1}):
                owners.update({sku: raw["_id"] for sku in raw["skus"] if sku in wanted})
        return owners

    async def gtin_owners(self, gtins: Collection[str]) -> dict[str, str]:
        wanted, owners = set(gtins), {}
        projection = {"variants.sku": 1, "variants.gtin": 1}
        for chunk in _chunks(wanted):
            for raw in await self._find_all(self.products, {"gtins": {"$in": chunk}}, projection):
                owners.update({v["gtin"]: v["sku"] for v in raw["variants"] if v.get("gtin") in wanted})
        return owners

    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        found: dict[str, Product] = {}
        for chunk in _chunks(product_ids):
            for raw in await self._find_all(self.products, {"_id": {"$in": chunk}}):
                product = product_from_bson(raw)
                found[product.product_id] = product
        return found

    async def count_entries(self, source: str) -> int:
        async def attempt() -> int:
            return await self.history.count_documents({"source": source})  # type: ignore[no-any-return]

        return await self.retry.call(attempt)

    async def entries_from(self, source: str) -> AsyncIterator[HistoryEntry]:
        """One sorted cursor, read page by page; a page that fails transiently is read again,
        resuming after the last entry handed out (on a fresh cursor when the old one broke)."""
        after: tuple[str, int] | None = None
        cursor: Any = None

        def sorted_find(query: dict[str, Any]) -> Any:
            return self.history.find(query, {"_id": 0}).sort(_BY_RUN).batch_size(PAGE)

        async def next_page() -> list[dict[str, Any]]:
            nonlocal cursor
            page: list[dict[str, Any]] = []
            try:
                if cursor is None:
                    rest_of_product, following = history_filters(source, after)
                    if rest_of_product is not None:
                        page = await sorted_find(rest_of_product).to_list()
                    cursor = sorted_find(following)
                if not page:
                    page = await cursor.to_list(PAGE)
            except BaseException:
                if cursor is not None:
                    with contextlib.suppress(PyMongoError):
                        await cursor.close()
                cursor = None
                raise
            return page

        try:
            while page := await self.retry.call(next_page):
                for raw in page:
                    entry = history_to_domain(HistoryRecord.model_validate(raw))
                    after = (entry.product_id, entry.version)
                    yield entry
        finally:
            if cursor is not None:
                with contextlib.suppress(PyMongoError):
                    await cursor.close()

    # Writes.
    def writer(self, runs: IngestionRuns | None = None) -> BatchWriter:
        """With this database's run store, each batch's checkpoint is written in its transaction."""
        from adapters.mongo.ingestion_runs import MongoIngestionRuns

        shared = isinstance(runs, MongoIngestionRuns) and runs.runs.database.client is self.client
        return MongoBatchWriter(self, runs if shared else None, runs)  # type: ignore[arg-type]

    async def release(self, writer: str) -> None:
        """Kills the writer's session: the server aborts the transaction a dead process left open (it
        would otherwise hold its documents until the transaction lifetime, 60 s, runs out). A
        session the server does not know (ended, expired) is no error."""
        try:
            session_id = {"id": Binary.from_uuid(uuid.UUID(hex=writer))}
        except ValueError:
            return  # not a session id of ours: nothing of it can be open
        await self.retry.call(self.client.admin.command, "killSessions", [session_id])

    async def write_batch(self, writes: Sequence[ProductWrite]) -> None:
        await self._write_batch(writes, None)

    async def _write_batch(
        self,
        writes: Sequence[ProductWrite],
        session: AsyncClientSession | None,
        checkpoint: Checkpoint | None = None,
        runs: MongoIngestionRuns | None = None,
    ) -> None:
        in_transaction = checkpoint is not None and runs is not None
        if not writes and not in_transaction:
            return
        operations = [_product_operation(write) for write in writes]
        # In the order of the writes: a delete takes the product's history with it.
        entries: list[dict[str, Any] | None] = []
        history_operations: list[Any] = []
        for write in writes:
            if write.after is None:
                entries.append(None)
                history_operations.append(DeleteMany({"product_id": write.product_id}))
            elif write.entry is not None:
                entries.append(history_to_bson(write.entry))
                history_operations.append(InsertOne(entries[-1]))
        replaced = sum(1 for write in writes if write.before is not None and write.after is not None)
        deleted = sum(1 for write in writes if write.after is None)

        async def work(session: AsyncClientSession) -> None:
            if checkpoint is not None and runs is not None:
                # The run's record first: the transaction holds it from the start, so the owner's
                # lease renewals (outside it) wait for the batch rather than abort it.
                try:
                    await runs.checkpoint_in(checkpoint, session)
                except BulkWriteError as error:  # not a product's refusal: the run store's own failure
                    raise _CheckpointRefused(error) from error
            if operations:
                result = await self.products.bulk_write(operations, ordered=True, session=session)
                if result.matched_count != replaced or result.deleted_count != deleted:
                    raise _Stale()
            if history_operations:
                try:
                    await self.history.bulk_write(history_operations, ordered=True, session=session)
                except BulkWriteError as error:
                    first = error.details["writeErrors"][0]
                    entry = entries[first["index"]]
                    if first.get("code") != DUPLICATE_KEY or entry is None:
                        raise
                    raise _HistoryClash(entry) from None

        try:
            await self.retry.transaction(self.client, work, session)
        except _Stale:
            raise await self._stale(writes) from None
        except _HistoryClash as clash:
            entry = clash.entry
            raise VersionMismatch(entry["product_id"], entry["version"] - 1, None) from None
        except BulkWriteError as error:
            raise await self._refused(writes, error) from None
        except _CheckpointRefused as refused:
            raise refused.error from None

    async def _stored_versions(self, writes: Sequence[ProductWrite]) -> dict[str, int]:
        ids = {write.product_id for write in writes}
        versions: dict[str, int] = {}
        for chunk in _chunks(ids):
            for raw in await self._find_all(self.products, {"_id": {"$in": chunk}}, {"version": 1}):
                versions[raw["_id"]] = raw["version"]
        return versions

    async def _stale(self, writes: Sequence[ProductWrite]) -> VersionMismatch:
        stale = first_stale(writes, await self._stored_versions(writes))
        if stale is not None:
            return stale
        # The stored versions are right again (a concurrent writer): name the first conditional write.
        write = next(w for w in writes if w.before is not None)
        return VersionMismatch(write.product_id, expected_version(write) or 0, None)

    async def _refused(self, writes: Sequence[ProductWrite], error: BulkWriteError) -> Exception:
        """The domain error for the write at which the ordered bulk write stopped."""
        first = error.details["writeErrors"][0]
        index: int = first["index"]
        if first.get("code") != DUPLICATE_KEY:
            return error
        # A version condition before it, or the product to create exists (whichever unique index the
        # server checked first): the same answer as the memory twin's, which checks in order.
        done = writes[: index + 1]
        stale = first_stale(done, await self._stored_versions(done))
        if stale is not None:
            return stale
        write = writes[index]
        key = first.get("keyValue") or {}
        attribute = "skus" if "skus" in key else "gtins" if "gtins" in key else None
        if attribute is None:
            return VersionMismatch(write.product_id, expected_version(write) or 0, None)
        value = str(key[attribute])
        owner = owner_in_batch(writes[:index], attribute, value)
        if owner is None:
            raw = await self.products.find_one({attribute: value}, {"_id": 1})
            owner = raw["_id"] if raw else None
        return sku_taken(value, owner) if attribute == "skus" else gtin_taken(value, owner)


class MongoBatchWriter(BatchWriter):
    """One run's batches, each a transaction on one explicit session held for the run: its id (the
    ``identity``) is recorded with the run before the first batch, so that another process can kill
    the session (``release``) if this one dies with a transaction open. With the run store of the
    same database, each batch's checkpoint is written in the batch's own transaction (exactly-once
    effects across a take-over); with another store, after it."""

    def __init__(
        self, catalog: MongoBulkWrites, runs: MongoIngestionRuns | None, other: IngestionRuns | None = None
    ) -> None:
        self.catalog = catalog
        self.runs = runs
        self.other = other if runs is None else None
        self.session: AsyncClientSession = catalog.client.start_session()
        self.identity = self.session.session_id["id"].as_uuid().hex

    async def write_batch(self, writes: Sequence[ProductWrite], checkpoint: Checkpoint | None = None) -> None:
        if checkpoint is not None and self.other is not None:
            await self.other.store_checkpoint(checkpoint, check_only=True)
            await self.catalog._write_batch(writes, self.session)
            await self.other.store_checkpoint(checkpoint)
            return
        await self.catalog._write_batch(writes, self.session, checkpoint, self.runs)

    async def close(self) -> None:
        await self.session.end_session()
