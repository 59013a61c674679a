"""Ports of the store feature: profiles, the store catalog's source, and where an export goes."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import Any

from domain.store_catalog import StoreProductEntry, StoreSummary
from domain.stores import StoreProfile


class StoreProfiles(abc.ABC):
    @abc.abstractmethod
    async def get(self, store_id: str) -> StoreProfile | None: ...

    @abc.abstractmethod
    async def put(self, profile: StoreProfile) -> bool:
        """Stores or replaces the profile; True when it did not exist before."""


class StoreCatalogSource(abc.ABC):
    """The store data of a profile, computed where the products are (FEED.md semantics)."""

    @abc.abstractmethod
    def products(self, profile: StoreProfile) -> AsyncIterator[StoreProductEntry]:
        """The store's products by ``product_id``, as a stream: a store need not fit in memory."""

    @abc.abstractmethod
    async def summary(self, profile: StoreProfile) -> StoreSummary:
        """Collections, facets and counts of the same products."""


class StoreExportSink(abc.ABC):
    """Where ``ExportStore`` writes its files; each method returns where the file went."""

    @abc.abstractmethod
    async def write_json(self, name: str, document: Any) -> str: ...

    @abc.abstractmethod
    async def write_lines(self, name: str, documents: AsyncIterator[Any]) -> tuple[str, int]:
        """One JSON document per line, consumed as it comes; returns the location and the line count."""
