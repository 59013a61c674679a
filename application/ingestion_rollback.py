"""Undoing an ingestion run from its change log (FEED.md "Ingestion semantics", CONTRACT.md 4.4).

The run's history entries (source ``ingestion:<run_id>``) keep the product as it was before each
change; the first one per product is the state before the run. Rolling back writes that state as
a new version (versions keep counting up, and the rollback is itself a history entry, marked
``reverts``) and deletes the products the run created. A product changed after the run (its
version is no longer the one the run left) makes the rollback refuse with a conflict, unless forced.

A brand-scoped caller (a ``catalog_manager`` of some brands) may undo only a run whose every product
is of its brands: the brands are read from the run's change log before anything is written, and
one product outside them makes the whole rollback a 403, audited as a deny naming that brand.

The log is streamed product by product; restoring a product is idempotent (an already restored
product is skipped), so an interrupted rollback can simply be run again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.authorization import Authorizer, Caller
from application.ingestion import RunNotFound
from application.metrics import IngestionMetrics, NoIngestionMetrics
from application.run_leases import IngestionLog, NoIngestionLog, RunLeases
from domain.errors import Conflict, VersionMismatch
from domain.history import HistoryEntry, ingestion_source, record_change
from domain.ingestion import IngestionRun, RunStatus
from domain.ports import BulkCatalog, Clock, IngestionRuns, ProductWrite
from domain.product import Product
from domain.rbac import Permission, brand_key

BATCH = 200
MAX_NAMED = 20


class RollbackRefused(Conflict):
    """The run cannot be rolled back (its state, or later changes to its products)."""

    def __init__(self, message: str, products: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.products = products


@dataclass(frozen=True, slots=True)
class _Change:
    """What one run did to one product: the state before it, and the version it left."""

    product_id: str
    previous: Product | None
    last_version: int
    reverted: bool
    #: The product's brand as the run found or created it (a product id fixes its brand's slug).
    brand: str


async def _changes(entries: AsyncIterator[HistoryEntry]) -> AsyncIterator[_Change]:
    current: list[HistoryEntry] = []
    async for entry in entries:
        if current and entry.product_id != current[0].product_id:
            yield _summary(current)
            current = []
        current.append(entry)
    if current:
        yield _summary(current)


def _summary(entries: list[HistoryEntry]) -> _Change:
    own = [entry for entry in entries if not entry.reverts]
    first = own[0] if own else entries[0]
    last_version = max(e.version for e in own or entries)
    return _Change(entries[0].product_id, first.previous, last_version, entries[-1].reverts, _brand_of(first))


def _brand_of(entry: HistoryEntry) -> str:
    """The brand before the change, or the one a creation set (a creation lists every field); an
    entry without one names no brand, which no scope covers (fail closed)."""
    if entry.previous is not None:
        return entry.previous.brand
    created = entry.changes.get("brand", {}).get("to")
    return created if isinstance(created, str) else ""


class RollbackRun:
    def __init__(
        self,
        catalog: BulkCatalog,
        runs: IngestionRuns,
        clock: Clock,
        authorizer: Authorizer,
        metrics: IngestionMetrics | None = None,
        log: IngestionLog | None = None,
        leases: RunLeases | None = None,
    ) -> None:
        self.catalog = catalog
        self.runs = runs
        self.clock = clock
        self.authorizer = authorizer
        self.metrics: IngestionMetrics = metrics or NoIngestionMetrics()
        self.log: IngestionLog = log or NoIngestionLog()
        self.leases = leases or RunLeases(runs, catalog, clock, metrics=self.metrics, log=self.log)

    async def __call__(self, run_id: str, caller: Caller, force: bool = False) -> IngestionRun:
        resource = f"ingestion:{run_id}"
        await self.authorizer.precheck(caller, Permission.INGESTION_ROLLBACK, resource)
        run = await self.runs.get(run_id)
        if run is None:
            await self.authorizer.require(caller, Permission.INGESTION_ROLLBACK, resource)
            raise RunNotFound(f"no ingestion run {run_id!r}")
        source = ingestion_source(run_id)
        brands = await self._brands(source) if caller.principal.brand_scoped else ()
        await self.authorizer.require(caller, Permission.INGESTION_ROLLBACK, resource, brands)
        run = await self.leases.settle(run)  # a run whose process died is interrupted: what it wrote can go
        if run.dry_run:
            raise RollbackRefused(f"run {run_id} was a dry run: it changed nothing")
        if run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            raise RollbackRefused(f"run {run_id} is {run.status.value}: only a finished run that wrote can be undone")
        started = self.clock.now()
        if not force:
            touched = await self._touched_later(source)
            if touched:
                named = ", ".join(touched[:MAX_NAMED])
                raise RollbackRefused(
                    f"{len(touched)} product(s) changed after run {run_id}: {named}; force to roll back anyway",
                    tuple(touched[:MAX_NAMED]),
                )
        batch: list[_Change] = []
        async for change in _changes(self.catalog.entries_from(source)):
            if not change.reverted:
                batch.append(change)
            if len(batch) >= BATCH:
                await self._restore(batch, caller, source, force)
                batch = []
        if batch:
            await self._restore(batch, caller, source, force)
        now = self.clock.now()
        run = run.but(status=RunStatus.ROLLED_BACK, rolled_back_at=now, rolled_back_by=caller.actor)
        await self.runs.save(run)
        seconds = (now - started).total_seconds()
        self.metrics.ingestion_run(RunStatus.ROLLED_BACK.value, seconds)
        self.log.event("ingestion.run.rolled_back", run_id=run_id, actor=caller.actor, forced=force, seconds=seconds)
        return run

    async def _brands(self, source: str) -> tuple[str, ...]:
        """Every brand of the products the run changed (the scope check needs them all)."""
        brands: dict[str, str] = {}
        async for change in _changes(self.catalog.entries_from(source)):
            brands.setdefault(brand_key(change.brand), change.brand)
        return tuple(sorted(brands.values()))

    async def _touched_later(self, source: str) -> list[str]:
        touched: list[str] = []
        batch: list[_Change] = []

        async def check(changes: list[_Change]) -> None:
            stored = await self.catalog.fingerprints({c.product_id for c in changes})
            for change in changes:
                fp = stored.get(change.product_id)
                if fp is not None and fp.version != change.last_version:
                    touched.append(change.product_id)

        async for change in _changes(self.catalog.entries_from(source)):
            if not change.reverted:
                batch.append(change)
            if len(batch) >= BATCH:
                await check(batch)
                batch = []
        if batch:
            await check(batch)
        return touched

    async def _restore(self, changes: list[_Change], caller: Caller, source: str, force: bool) -> None:
        for _attempt in range(5):
            stored = await self.catalog.get_many({c.product_id for c in changes})
            now = self.clock.now()
            writes: list[ProductWrite] = []
            for change in changes:
                current = stored.get(change.product_id)
                if current is None:
                    continue  # gone already (a created product deleted by an interrupted rollback)
                if not force and current.version != change.last_version:
                    raise RollbackRefused(
                        f"product {change.product_id} changed during the rollback", (change.product_id,)
                    )
                if change.previous is None:
                    writes.append(ProductWrite(current, None))
                else:
                    restored = current.restored_to(change.previous, now)
                    entry = record_change(current, restored, caller.actor, source, keep_previous=True, reverts=True)
                    writes.append(ProductWrite(current, restored, entry))
            try:
                await self.catalog.write_batch(writes)
                return
            except VersionMismatch:
                if not force:
                    raise RollbackRefused("a product changed during the rollback; run it again") from None
        raise RollbackRefused("products kept changing during the forced rollback; run it again")
