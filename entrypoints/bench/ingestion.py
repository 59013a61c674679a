"""``ingest.cold`` and ``ingest.unchanged``: the pipeline against PyMongo with pre-built documents.

Ours is the real use case (the container's ``IngestFeed`` over the cached catalog, MongoDB runs,
metrics and logs) on a generated feed. The baseline inserts the very documents the pipeline
stored (read back after our first run and rebuilt with the adapter's own ``product_to_bson``),
built before the clock starts, with ``insert_many(ordered=False)`` in the same batches (the
products of each 500-row batch of the feed), into an empty collection with the products
collection's indexes; re-ingesting is compared with a ``bulk_write`` of ``ReplaceOne(upsert=True)``
of the same documents. Rounds alternate which side goes first.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import ReplaceOne

from adapters.feeds.readers import FeedFile
from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from adapters.mongo.documents import ProductDocument
from adapters.mongo.mapping import product_from_bson, product_to_bson
from adapters.mongo.migrations import migrate
from application.authorization import system_caller
from application.ingestion import DEFAULT_BATCH_SIZE
from domain.ingestion import IngestionRun, RunStatus
from entrypoints.bench.measure import Result, Sizes, median, timed
from entrypoints.bench.server_time import Breakdown, breakdown
from entrypoints.bench.session import Session

BASELINE_COLLECTION = "bench_baseline_products"
#: Who runs the feeds, as ``eyewear ingest`` does (a trusted in-process caller, audited).
INGESTOR = system_caller("eyewear-bench")
#: Collections a cold run must find empty (``audit_log`` only grows; it is no catalog state).
_CATALOG_STATE = ("products", "product_history", "ingestion_runs", "ingestion_errors")


class BenchFailed(RuntimeError):
    """A measurement could not be taken (a run that did not succeed, a server error)."""


def write_feed(path: Path, rows: int, seed: int) -> Path:
    """A generated feed of exactly ``rows`` rows (about 4.2 per style)."""
    write_jsonl(itertools.islice(generate_rows(styles=rows // 3 + 1, seed=seed), rows), path)
    return path


@dataclass(frozen=True)
class StoredCatalog:
    """What the pipeline stored, as the baselines and the read measurements need it."""

    documents: list[dict[str, Any]]
    #: The documents grouped as the pipeline's batches wrote them (≈500 rows each).
    batches: list[list[dict[str, Any]]]

    @property
    def sku_owners(self) -> list[tuple[str, str]]:
        return [(sku, doc["_id"]) for doc in self.documents for sku in doc["skus"]]


def _batches(documents: Iterable[dict[str, Any]], rows: int) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    filled = 0
    for doc in documents:
        if filled >= rows:
            batches.append([])
            filled = 0
        batches[-1].append(doc)
        filled += len(doc["variants"])
    return [batch for batch in batches if batch]


async def stored_catalog(session: Session) -> StoredCatalog:
    """The products as stored, in feed order (creation time, then id), rebuilt by the adapter's mapping."""
    cursor = session.raw[ProductDocument.Settings.name].find({}).sort([("created_at", 1), ("_id", 1)])
    documents = [product_to_bson(product_from_bson(raw)) async for raw in cursor]
    return StoredCatalog(documents, _batches(documents, DEFAULT_BATCH_SIZE))


async def empty_catalog(session: Session) -> None:
    """Dropped and made again (validators, indexes), rather than emptied: a server that keeps the
    deleted documents' versions for a while would get slower with every round."""
    for name in _CATALOG_STATE:
        await session.database.drop_collection(name)
    await migrate(session.database)
    await asyncio.sleep(1.0)  # the change-stream watcher reopens its stream before the clock starts


async def _ingest(session: Session, feed: Path) -> IngestionRun:
    run = await session.cases.ingest(FeedFile(feed), INGESTOR)
    if run.status is not RunStatus.SUCCEEDED:
        raise BenchFailed(f"the ingestion run {run.run_id} ended {run.status.value}: {run.reason}")
    return run


async def _baseline_collection(session: Session) -> Any:
    """An empty collection with the products collection's indexes (no validator: the bare floor)."""
    collection = session.raw[BASELINE_COLLECTION]
    await collection.drop()
    await session.raw.create_collection(BASELINE_COLLECTION)
    async for index in await session.raw[ProductDocument.Settings.name].list_indexes():
        if index["name"] == "_id_":
            continue
        options = {k: v for k, v in index.items() if k not in ("v", "key", "ns")}
        await collection.create_index(list(index["key"].items()), **options)
    return collection


async def _insert_all(collection: Any, catalog: StoredCatalog) -> None:
    for batch in catalog.batches:
        await collection.insert_many(batch, ordered=False)


async def _replace_all(collection: Any, operations: list[list[ReplaceOne[Any]]]) -> None:
    for batch in operations:
        await collection.bulk_write(batch)


class _Rounds:
    """Both sides of both measurements, one round at a time; the samples of every round."""

    def __init__(self, session: Session, feed: Path) -> None:
        self.session = session
        self.feed = feed
        self.catalog: StoredCatalog | None = None
        self.operations: list[list[ReplaceOne[Any]]] = []
        self.runs: list[IngestionRun] = []
        self.cold: dict[str, list[float]] = {"ours": [], "baseline": []}
        self.unchanged: dict[str, list[float]] = {"ours": [], "baseline": []}
        #: Where our first cold and unchanged runs spent their time.
        self.cold_split, self.unchanged_split = Breakdown(), Breakdown()
        self.monitor: Any = None

    async def ours_cold(self) -> None:
        with breakdown(self.monitor, self.cold_split if not self.runs else Breakdown()):
            seconds, run = await timed(lambda: _ingest(self.session, self.feed))
        self.cold["ours"].append(seconds)
        self.runs.append(run)
        if self.catalog is None:  # the documents of the baselines: what our first run stored
            self.catalog = await stored_catalog(self.session)
            self.operations = [
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch] for batch in self.catalog.batches
            ]

    async def baseline_cold(self) -> None:
        catalog = self.stored
        collection = await _baseline_collection(self.session)
        self.cold["baseline"].append((await timed(lambda: _insert_all(collection, catalog)))[0])

    async def ours_unchanged(self) -> None:
        first = not self.unchanged["ours"]
        with breakdown(self.monitor, self.unchanged_split if first else Breakdown()):
            seconds, run = await timed(lambda: _ingest(self.session, self.feed))
        if run.counts.unchanged != run.counts.valid:
            raise BenchFailed(f"re-ingesting the same feed changed rows: {run.counts.as_dict()}")
        self.unchanged["ours"].append(seconds)

    async def baseline_unchanged(self) -> None:
        collection = self.session.raw[BASELINE_COLLECTION]
        self.unchanged["baseline"].append((await timed(lambda: _replace_all(collection, self.operations)))[0])

    @property
    def stored(self) -> StoredCatalog:
        if self.catalog is None:
            raise BenchFailed("no documents to compare with: our cold run comes first")
        return self.catalog

    async def play(self, number: int) -> None:
        """Round 0 starts with ours (its documents feed the baselines); then the order alternates."""
        await empty_catalog(self.session)
        if number % 2 == 0:
            steps = (self.ours_cold, self.baseline_cold, self.baseline_unchanged, self.ours_unchanged)
        else:
            steps = (self.baseline_cold, self.ours_cold, self.ours_unchanged, self.baseline_unchanged)
        for step in steps:
            await step()


async def ingestion_results(session: Session, sizes: Sizes, feed: Path) -> tuple[list[Result], StoredCatalog]:
    warmup = write_feed(session.workdir / "warmup.jsonl", min(DEFAULT_BATCH_SIZE, sizes.rows), seed=7)
    await _ingest(session, warmup)  # imports, pools and first-call caches, on both sides of the driver
    rounds = _Rounds(session, feed)
    rounds.monitor = await session.get("monitor")
    for number in range(sizes.rounds):
        await rounds.play(number)
    catalog, run = rounds.stored, rounds.runs[0]
    cold, unchanged = rounds.cold, rounds.unchanged
    products = len(catalog.documents)
    rows = run.counts.rows
    documents_per_batch = products / max(1, len(catalog.batches))
    ours_cold_s, base_cold_s = median(cold["ours"]), median(cold["baseline"])
    ours_same_s, base_same_s = median(unchanged["ours"]), median(unchanged["baseline"])
    played = f"median of {sizes.rounds} rounds" if sizes.rounds > 1 else "1 round"
    results = [
        Result(
            "ingest.cold",
            ours_cold_s,
            base_cold_s,
            "s",
            f"{rows:,} rows → {products:,} products into an empty catalog; ours {rows / ours_cold_s:,.0f} rows/s;"
            f" baseline insert_many(ordered=False) of the stored documents in {len(catalog.batches)} batches"
            f" (~{documents_per_batch:.0f} documents = {DEFAULT_BATCH_SIZE} rows); {played}; our first run:"
            f" {rounds.cold_split.describe()}",
        ),
        Result(
            "ingest.unchanged",
            ours_same_s,
            base_same_s,
            "s",
            f"the same feed again: {rows:,} rows unchanged, nothing written; ours {rows / ours_same_s:,.0f} rows/s;"
            f" baseline bulk_write of {products:,} ReplaceOne(upsert=True); ratio to our cold run"
            f" {ours_same_s / ours_cold_s:.2f}; {played}; our first run: {rounds.unchanged_split.describe()}",
        ),
    ]
    await session.raw[BASELINE_COLLECTION].drop()
    return results, catalog
