"""Ports: what the catalog needs from the outside world, stated in domain terms.

Adapters implement these (memory twins, MongoDB, caches); the use cases know only these.
A repository returns domain objects, never documents or dicts.
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime

from domain.history import HistoryEntry
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


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime:
        """An aware UTC time, truncated to milliseconds (the precision every store keeps)."""


def truncate_to_millis(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


class SystemClock(Clock):
    def now(self) -> datetime:
        return truncate_to_millis(datetime.now(UTC))
