"""``read.sku.cached.audit_database``: ``read.sku.cached`` with ``EYEWEAR_AUDIT_SINK=database``.

The same use case over the same cache and the same keys as ``read.sku.cached`` (which the
bench's container runs with the journal), against the same baseline, but with the audit sink the
container wires for ``database``, built by the container's own ``audit_log`` resource: each read
waits for the insert that carries its record (ADR 0019). One caller, as in every latency result,
pays one insert per read; the detail adds what group commit is for, many callers at once, for
both sinks: the reads per second, their latencies and the records each insert carried, and for
the journal how long its records took to reach MongoDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from adapters.cache import codec
from adapters.cache.backend import PREFIX
from adapters.files.audit_journal import JournaledAuditLog
from adapters.mongo.group_commit_audit import GroupCommitAuditLog
from application.authorization import Authorizer
from application.catalog_queries import GetProductBySku
from domain.rbac import Permission
from entrypoints.bench.ingestion import BenchFailed, StoredCatalog
from entrypoints.bench.measure import Latencies, Result, Sizes, side_by_side
from entrypoints.bench.reads import hot_skus
from entrypoints.bench.session import Session
from entrypoints.container import audit_log

#: Callers at once in the concurrent part of the detail (a busy replica's requests in flight).
CALLERS = 32


async def concurrently(read: Callable[[int], Awaitable[object]], callers: int, calls: int) -> tuple[float, Latencies]:
    """``callers`` tasks, each making ``calls`` reads one after another; the wall time and each read's."""
    latencies = Latencies()
    clock = time.perf_counter

    async def caller(k: int) -> None:
        for j in range(calls):
            began = clock()
            await read(k * calls + j)
            latencies.samples.append(clock() - began)

    began = clock()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    return clock() - began, latencies


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} reads/s"


async def database_sink_results(session: Session, sizes: Sizes, catalog: StoredCatalog) -> list[Result]:
    cached_catalog = await session.get("catalog")
    store = await session.get("cache_store")
    journal = await session.get("audit_log")
    if not isinstance(journal, JournaledAuditLog):
        raise BenchFailed("the bench's container must run the journal sink (read.sku.cached is named for it)")
    caller = session.caller
    pairs = hot_skus(catalog)
    skus = [sku for sku, _ in pairs]
    keys = [PREFIX + f"p:{pid}" for _, pid in pairs]
    n = len(skus)
    journaled = session.cases.get_by_sku
    settings = session.settings.model_copy(update={"audit_sink": "database"})
    resource = contextlib.asynccontextmanager(audit_log)
    async with resource(settings, session.container.database, await session.get("metrics")) as sink:
        if not isinstance(sink, GroupCommitAuditLog):
            raise BenchFailed(f"EYEWEAR_AUDIT_SINK=database wired {type(sink).__name__}")
        authorizer = Authorizer(sink, await session.get("clock"), await session.get("metrics"))
        committed = GetProductBySku(cached_catalog, authorizer)

        async def ours(i: int) -> object:
            return await committed(skus[i % n], caller)

        async def bare_get(i: int) -> object:
            entry = await store.cache.get(keys[i % n])
            return codec.product_from_json(entry["v"])

        async def audit(i: int) -> object:
            return await authorizer.require(caller, Permission.PRODUCT_READ, f"sku:{skus[i % n]}")

        async def with_journal(i: int) -> object:
            return await journaled(skus[i % n], caller)

        await journal.flush()  # the backlog read.sku.cached left must not share the server with these inserts
        inserts, carried = sink.inserts, sink.carried
        mine, theirs, audits = await side_by_side(ours, bare_get, audit, sizes=sizes)
        alone = (sink.carried - carried) / max(1, sink.inserts - inserts)

        calls = sizes.block
        inserts, carried = sink.inserts, sink.carried
        db_seconds, db_latencies = await concurrently(ours, CALLERS, calls)
        together = (sink.carried - carried) / max(1, sink.inserts - inserts)

        began = time.perf_counter()
        journal_seconds, journal_latencies = await concurrently(with_journal, CALLERS, calls)
        await journal.flush()
        journal_stored = time.perf_counter() - began
    backend = "Redis" if store.shared else "memory"
    count = CALLERS * calls
    return [
        Result(
            "read.sku.cached.audit_database",
            mine.p50_us,
            theirs.p50_us,
            "µs",
            f"read.sku.cached with EYEWEAR_AUDIT_SINK=database: each read waits for the insert that carries its"
            f" record; cashews on {backend}, every entry a hit; one caller: {mine.count:,} calls per side,"
            f" {alone:,.1f} records per insert; ours {mine.describe()}, baseline get + decode {theirs.describe()};"
            f" its layer, interleaved: authorization + the insert p50 {audits.p50_us:,.0f} µs;"
            f" {CALLERS} callers at once, {count:,} reads: database sink {_rate(count, db_seconds)},"
            f" {db_latencies.describe()}, {together:,.1f} records per insert; journal"
            f" {_rate(count, journal_seconds)}, {journal_latencies.describe()}, its records all in MongoDB"
            f" {journal_stored:,.2f} s after the first read",
        )
    ]
