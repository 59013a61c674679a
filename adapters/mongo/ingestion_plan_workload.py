"""The ingestion adapters' part of the plan-check workload: batch reads and writes, their refusals,
the history of a run (resumed too), run records and their error pages."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.mongo.bulk_writes import history_filters
from adapters.mongo.ingestion_runs import MongoIngestionRuns
from adapters.mongo.product_repository import MongoCatalog
from domain.errors import DomainError
from domain.feed_rows import RowError
from domain.history import ingestion_source, record_change
from domain.ingestion import ErrorPolicy, IngestionRun, RunCounts, RunStatus
from domain.parsing import parse_product_payload
from domain.ports import ProductWrite
from domain.product import Product

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_SANITIZER = Nh3Sanitizer()


def _product(style_id: str, gtin: str | None = None) -> Product:
    payload = {
        "style_id": style_id,
        "brand": "Plan Check",
        "name": "Batch",
        "category": "eyeglasses",
        "frame_shape": "round",
        "frame_material": "metal",
        "rim_type": "full-rim",
        "variants": [
            {
                "sku": f"{style_id}-A",
                "gtin": gtin,
                "color_name": "Gold",
                "lens_width_mm": 49,
                "bridge_width_mm": 20,
                "temple_length_mm": 140,
                "price": {"amount": "99.00", "currency": "EUR"},
            }
        ],
    }
    return Product.create(parse_product_payload(payload, _SANITIZER), T0)


async def drive_batches(database: AsyncDatabase[Any]) -> None:
    catalog = MongoCatalog(database)
    source = ingestion_source("plan-check")

    def write(before: Product | None, after: Product | None) -> ProductWrite:
        entry = record_change(before, after, "plan-check", source, keep_previous=True) if after else None
        return ProductWrite(before, after, entry)

    items = [_product("BATCH1", "4006381333931"), _product("BATCH2"), _product("BATCH3")]
    await catalog.write_batch([write(None, item) for item in items])
    ids = [item.product_id for item in items]
    await catalog.fingerprints(ids)
    await catalog.sku_owners([sku for item in items for sku in item.skus])
    await catalog.gtin_owners(["04006381333931"])
    await catalog.get_many(ids)
    renamed = items[0].replaced_by(dataclasses.replace(items[0].draft, name="Renamed"), T0)
    await catalog.write_batch([write(items[0], renamed), write(items[1], None)])
    thief = _product("THIEF9", "4006381333931")
    for failing in (
        [write(items[0], renamed)],  # a stale version
        [write(None, items[2])],  # the product exists
        [write(None, thief)],  # a taken GTIN
    ):
        with contextlib.suppress(DomainError):
            await catalog.write_batch(failing)
    await catalog.count_entries(source)
    async for _ in catalog.entries_from(source):
        pass
    # What a resumed ``entries_from`` asks for (only after a failure, so sent here directly).
    for query in history_filters(source, (items[0].product_id, 1)):
        if query is not None:
            await catalog.history.find(query, {"_id": 0}).sort([("product_id", 1), ("version", 1)]).to_list()


async def drive_runs(database: AsyncDatabase[Any]) -> None:
    runs = MongoIngestionRuns(database)
    for i in range(3):
        run = IngestionRun(
            f"plan-run-{i}", RunStatus.QUEUED, False, ErrorPolicy.SKIP_INVALID, "feed.jsonl", "plan-check", T0
        )
        await runs.add(run)
        await runs.save(run.but(status=RunStatus.SUCCEEDED, finished_at=T0 + timedelta(seconds=i)))
    await runs.get("plan-run-0")
    await runs.recent(2)
    # A run's lease: claimed, renewed, finished; another one interrupted; the unfinished ones swept.
    lease = T0 + timedelta(seconds=30)
    for run_id in ("plan-lease-0", "plan-lease-1"):
        await runs.add(IngestionRun(run_id, RunStatus.QUEUED, False, ErrorPolicy.SKIP_INVALID, "f.jsonl", "plan", T0))
        await runs.claim(run_id, "plan-host:1:1", lease, "0" * 32, T0)
    await runs.unfinished(10)
    await runs.renew("plan-lease-0", "plan-host:1:1", lease, RunCounts())
    claimed = await runs.get("plan-lease-0")
    if claimed is not None:
        await runs.finish(claimed.but(status=RunStatus.SUCCEEDED, finished_at=lease), "plan-host:1:1")
    await runs.interrupt("plan-lease-1", "plan-host:1:1", lease)
    errors = [RowError(line, None, "price", "invalid_value", "x") for line in range(2, 6)]
    await runs.add_errors("plan-run-0", 0, errors)
    await runs.add_errors("plan-run-0", 0, errors)  # a retried page: duplicates dropped
    page = await runs.errors("plan-run-0", None, 2)
    await runs.errors("plan-run-0", page[-1][0], 2)


async def drive_ingestion(database: AsyncDatabase[Any]) -> None:
    await drive_batches(database)
    await drive_runs(database)
