"""Ports: what the catalog needs from the outside world, stated in domain terms.

Adapters implement these (memory twins, MongoDB, caches); the use cases know only these.
A repository returns domain objects, never documents or dicts.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.feed_rows import RowError
from domain.history import HistoryEntry
from domain.ingestion import Checkpoint, IngestionRun, RunCounts
from domain.product import Product
from domain.search import Facets, Page, SearchFilters, SearchQuery


class ProductRepository(abc.ABC):
    """Products, written together with the history entry that explains each write."""

    @abc.abstractmethod
    async def get(self, product_id: str) -> Product | None: ...

    @abc.abstractmethod
    async def get_by_sku(self, sku: str) -> Product | None:
        """``sku`` is already normalised."""

    @abc.abstractmethod
    async def add(self, product: Product, entry: HistoryEntry) -> None:
        """Stores a new product; ProductConflict when its id, a SKU or a GTIN is taken."""

    @abc.abstractmethod
    async def replace(self, product: Product, expected_version: int, entry: HistoryEntry) -> None:
        """Stores ``product`` only if the stored one is still at ``expected_version``.

        VersionMismatch otherwise (no update is ever lost); ProductNotFound when it is gone;
        ProductConflict when a new SKU or GTIN belongs to another product.
        """

    @abc.abstractmethod
    async def search(self, query: SearchQuery) -> Page[Product]: ...

    @abc.abstractmethod
    async def facets(self, filters: SearchFilters) -> Facets: ...


class ProductHistory(abc.ABC):
    @abc.abstractmethod
    async def entries(self, product_id: str) -> list[HistoryEntry]:
        """Oldest first; the creation is the first entry."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What change detection needs of a stored product, without decoding all of it."""

    product_id: str
    version: int
    fields_hash: str
    #: SKU -> ``variant_hash`` of the stored variant.
    variant_hashes: Mapping[str, str]
    #: SKU -> ``raw_digest`` of the feed record that produced exactly this variant and the
    #: product's fields (ADR 0011); absent after any other write of the product.
    raw_hashes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProductWrite:
    """One conditional write of a batch.

    create: ``before`` None, ``after`` the new product (it must not exist yet);
    replace: both given (the stored product must still be at ``before.version``);
    delete: ``after`` None (the stored product must still be at ``before.version``; its history goes too,
    because the product never existed before the run that created it).
    ``entry`` explains a create or replace and is stored with it; a delete has none.
    """

    before: Product | None
    after: Product | None
    entry: HistoryEntry | None = None
    #: SKU -> raw digest to store with the variants of ``after`` (ingestion only; a write without
    #: them stores none, so whatever raw digests the product had are dropped). A write whose
    #: ``after`` is ``before`` (same version, no entry) stores only these.
    raw_digests: Mapping[str, str] | None = None

    @property
    def product_id(self) -> str:
        product = self.after or self.before
        assert product is not None, "a write has a before, an after or both"
        return product.product_id


class BatchWriter(abc.ABC):
    """Writes a run's batches. Its ``identity``, recorded with the run, lets another process release
    what this writer left unfinished if its process dies in the middle of a batch: a transaction the
    server would otherwise keep open (holding its documents) for a minute (None: nothing can be left)."""

    identity: str | None = None

    @abc.abstractmethod
    async def write_batch(self, writes: Sequence[ProductWrite], checkpoint: Checkpoint | None = None) -> None:
        """As ``BulkCatalog.write_batch``, and, with a ``checkpoint``, stores it (its run's progress
        and row errors) with the batch, all or nothing; ``RunTakenOver`` (nothing written) when the
        run is no longer the checkpoint's owner's."""

    async def close(self) -> None:  # noqa: B027 - a hook: most writers hold nothing
        """Nothing to close by default."""


class _CatalogWriter(BatchWriter):
    """A catalog that cannot share a transaction with the run store: the batch, then the checkpoint
    (a crash in between replays the batch, which then finds its products written: unchanged)."""

    def __init__(self, catalog: BulkCatalog, runs: IngestionRuns | None) -> None:
        self.catalog = catalog
        self.runs = runs

    async def write_batch(self, writes: Sequence[ProductWrite], checkpoint: Checkpoint | None = None) -> None:
        if checkpoint is not None and self.runs is not None:
            await self.runs.store_checkpoint(checkpoint, check_only=True)
        await self.catalog.write_batch(writes)
        if checkpoint is not None and self.runs is not None:
            await self.runs.store_checkpoint(checkpoint)


class BulkCatalog(abc.ABC):
    """Batch reads and all-or-nothing batch writes: what a feed of any size needs to stay fast."""

    def writer(self, runs: IngestionRuns | None = None) -> BatchWriter:
        """A writer for one run's batches, whose checkpoints go to ``runs`` (by default, the catalog
        itself, then the run store: nothing to release)."""
        return _CatalogWriter(self, runs)

    async def release(self, writer: str) -> None:  # noqa: B027 - a hook: most stores keep nothing open
        """Ends whatever the writer ``writer`` (an ``identity``) left unfinished; its process is gone.
        Nothing to do by default."""

    @abc.abstractmethod
    async def fingerprints(self, product_ids: Collection[str]) -> dict[str, Fingerprint]:
        """The stored products among ``product_ids`` (archived ones included), by id."""

    @abc.abstractmethod
    async def sku_owners(self, skus: Collection[str]) -> dict[str, str]:
        """SKU -> id of the product that holds it, for the stored SKUs among ``skus``."""

    @abc.abstractmethod
    async def gtin_owners(self, gtins: Collection[str]) -> dict[str, str]:
        """GTIN -> SKU that holds it, for the stored GTINs among ``gtins``."""

    @abc.abstractmethod
    async def get_many(self, product_ids: Collection[str]) -> dict[str, Product]: ...

    @abc.abstractmethod
    async def write_batch(self, writes: Sequence[ProductWrite]) -> None:
        """Applies every write or none.

        VersionMismatch when a product is not at its expected version (or a created one exists
        already); ProductConflict when a SKU or a GTIN belongs to a product outside its write.
        Transient storage errors are retried inside the adapter; what escapes is permanent.
        """

    @abc.abstractmethod
    def entries_from(self, source: str) -> AsyncIterator[HistoryEntry]:
        """Every history entry written with ``source``, by product id, then version."""

    @abc.abstractmethod
    async def count_entries(self, source: str) -> int:
        """How many history entries were written with ``source`` (no entry is read)."""


class IngestionRuns(abc.ABC):
    """Run records and their row errors (pageable, any number of them).

    The lease operations are conditional, so that two processes never both take a run on, a
    process whose run was declared interrupted cannot overwrite that record, and a run is declared
    interrupted once only.
    """

    @abc.abstractmethod
    async def claim(
        self, run_id: str, owner: str, lease_until: datetime, writer: str | None, started_at: datetime
    ) -> IngestionRun | None:
        """Takes a queued run on (``running``, ``owner``, its lease and writer; ``started_at``
        unless it has one): the run as claimed, or None when it is not queued, or held by another owner."""

    @abc.abstractmethod
    async def renew(self, run_id: str, owner: str, lease_until: datetime, counts: RunCounts) -> bool:
        """Extends ``owner``'s lease and records the counts so far; False when the run is no longer
        ``owner``'s unfinished run (it was declared interrupted, or finished)."""

    @abc.abstractmethod
    async def finish(self, run: IngestionRun, owner: str) -> bool:
        """Stores ``run`` (its end) only while it is still ``owner``'s unfinished run; False otherwise."""

    @abc.abstractmethod
    async def interrupt(self, run_id: str, owner: str | None, finished_at: datetime) -> IngestionRun | None:
        """Records an unfinished run held by ``owner`` as ``failed``, reason ``interrupted`` (its lease
        dropped); the run as recorded, or None when it is finished or held by another owner now."""

    @abc.abstractmethod
    async def unfinished(self, limit: int) -> list[IngestionRun]:
        """Up to ``limit`` queued or running runs, oldest first."""

    @abc.abstractmethod
    async def hand_back(self, run_id: str, owner: str) -> IngestionRun | None:
        """``owner`` stops working on its running run before the end, for another executor to go on
        from its checkpoints: the run queued again without an owner, or None when it was not ``owner``'s."""

    @abc.abstractmethod
    async def store_checkpoint(self, checkpoint: Checkpoint, *, check_only: bool = False) -> None:
        """Stores ``checkpoint`` (its row errors with it, and its counts and lease on the run) while the
        run is its owner's running run; ``RunTakenOver`` otherwise. ``check_only``: only that check."""

    @abc.abstractmethod
    async def checkpoints(self, run_id: str) -> list[Checkpoint]:
        """The run's checkpoints, in order."""

    @abc.abstractmethod
    async def forget_checkpoints(self, run_id: str) -> None:
        """Drops the checkpoints of a run that ended (its record keeps the counts)."""

    @abc.abstractmethod
    async def add(self, run: IngestionRun) -> None: ...

    @abc.abstractmethod
    async def save(self, run: IngestionRun) -> None:
        """Replaces the stored record of ``run.run_id``."""

    @abc.abstractmethod
    async def get(self, run_id: str) -> IngestionRun | None: ...

    @abc.abstractmethod
    async def recent(self, limit: int) -> list[IngestionRun]:
        """Newest first (by ``created_at``, then ``run_id``)."""

    @abc.abstractmethod
    async def add_errors(self, run_id: str, first_seq: int, errors: Sequence[RowError]) -> None:
        """Stores ``errors`` numbered ``first_seq``, ``first_seq + 1``, …; storing a number twice keeps one."""

    @abc.abstractmethod
    async def errors(self, run_id: str, after: int | None, limit: int) -> list[tuple[int, RowError]]:
        """Up to ``limit`` errors with their numbers, in order, after number ``after``."""


class BrandNames(abc.ABC):
    """One spelling per brand: the first one the catalog stored for a brand's slug (``brand_key``).

    ``Nordvik`` and ``nordvik`` are one brand (their products share an id prefix and a scope); were
    both stored, the brand would show twice in facets and collections. Writers store the spelling
    this gives back instead of their own."""

    @abc.abstractmethod
    async def canonical(self, spellings: Collection[str], *, register: bool = True) -> dict[str, str]:
        """Each spelling -> its brand's canonical spelling; a brand seen for the first time is
        registered with its spelling (the first one in ``spellings``, or of whichever concurrent
        writer gets there first), or, with
        ``register`` false (a dry run writes nothing), given back as it is."""


class Executors(abc.ABC):
    """What this process can tell of the process that owns a run."""

    @abc.abstractmethod
    def current(self) -> str:
        """This process, as a run's ``owner`` names it."""

    @abc.abstractmethod
    def gone(self, owner: str) -> bool:
        """True only when ``owner`` has surely stopped (a process of this host that has exited);
        False when it may be alive, or cannot be told (another host: its lease decides)."""


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime:
        """An aware UTC time, truncated to milliseconds (the precision every store keeps)."""


def truncate_to_millis(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


class SystemClock(Clock):
    def now(self) -> datetime:
        return truncate_to_millis(datetime.now(UTC))
