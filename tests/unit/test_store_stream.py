"""The streamed catalog document is one valid JSON document, whatever the number of products."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from application.stores import StoreData
from domain.store_catalog import StoreCounts, StoreSummary
from domain.stores import StoreProfile
from entrypoints.http.stores import CHUNK, catalog_chunks
from tests.builders import T0


class Entries:
    """An async stream of fake entries that records whether it was closed."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.closed = False

    async def stream(self) -> AsyncIterator[Any]:
        try:
            for n in range(self.count):
                yield {"product_id": f"p{n:04d}", "title": "Ünïcode"}
        finally:
            self.closed = True


@pytest.mark.parametrize("count", [0, 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
async def test_the_stream_is_one_json_document(count: int) -> None:
    entries = Entries(count)
    summary = StoreSummary((), {}, StoreCounts(count, count))
    data = StoreData(StoreProfile("eu", "EU", "EUR"), T0, summary, entries.stream())
    body = b"".join([chunk async for chunk in catalog_chunks(data)])
    document = json.loads(body.decode("utf-8"))
    assert list(document) == ["store", "generated_at", "products", "collections", "facets", "counts"]
    assert [p["product_id"] for p in document["products"]] == [f"p{n:04d}" for n in range(count)]
    assert document["counts"] == {"products": count, "variants": count}
    assert entries.closed


async def test_a_client_that_goes_away_closes_the_product_stream() -> None:
    entries = Entries(3 * CHUNK)
    data = StoreData(StoreProfile("eu", "EU", "EUR"), T0, StoreSummary((), {}, StoreCounts(0, 0)), entries.stream())
    chunks = catalog_chunks(data)
    await chunks.__anext__()
    await chunks.__anext__()
    await chunks.aclose()
    assert entries.closed
