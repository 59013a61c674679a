"""Faults injected into the real server (``configureFailPoint`` / ``failCommand``) during batches.

Transient failures are retried and the batch is applied exactly once; a permanent one escapes at
once with nothing applied. Each fail point names this test's client (``appName``), so no other
client of the server is touched, and is switched off whatever happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import OperationFailure

from adapters.mongo.ingestion_runs import MongoIngestionRuns
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.retries import RetryPolicy
from domain.feed_rows import RowError
from domain.history import ingestion_source, record_change
from domain.ports import ProductWrite
from domain.product import Product
from tests.builders import T0, creation, payload, product, variant

APP = "eyewear-bulk-faults"
FAST = RetryPolicy(attempts=5, timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
RUN = ingestion_source("faulty")


class Failures(monitoring.CommandListener):
    """The commands this client saw fail, by name (but the abort of a transaction the server had
    already ended when its statement failed: cleaning up, not a fault)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.started_names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.started_names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.command_name != "abortTransaction":
            self.names.append(event.command_name)


@pytest.fixture
async def faulty(mongo_catalog: MongoCatalog, mongo_url: str) -> AsyncIterator[tuple[Any, Failures]]:
    """A client of its own (its ``appName`` scopes the fail points) on the test database."""
    failures = Failures()
    client: Any = AsyncMongoClient(mongo_url, tz_aware=True, appname=APP, timeoutMS=10_000, event_listeners=[failures])
    try:
        yield client, failures
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def fail_point(
    client: Any, commands: list[str], times: int | str = 1, app: str = APP, **data: Any
) -> AsyncIterator[None]:
    mode = times if isinstance(times, str) else {"times": times}
    await client.admin.command(
        {"configureFailPoint": "failCommand", "mode": mode, "data": {"failCommands": commands, "appName": app, **data}}
    )
    try:
        yield
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def _later(p: Product, name: str) -> Product:
    return p.replaced_by(dataclasses.replace(p.draft, name=name), T0 + timedelta(seconds=1))


async def _batch(mongo_catalog: MongoCatalog) -> tuple[list[ProductWrite], Product, Product, Product]:
    """A stored product to replace and one to delete; the batch that also creates a third."""
    keep, gone = product(payload("KEEP1", variants=[variant("KEEP1-A")])), product(payload("GONE1"))
    for p in (keep, gone):
        await mongo_catalog.add(p, creation(p))
    new, changed = product(payload("NEW1", variants=[variant("NEW1-A")])), _later(keep, "Changed")
    writes = [
        ProductWrite(None, new, record_change(None, new, "ingestor", RUN, keep_previous=True)),
        ProductWrite(keep, changed, record_change(keep, changed, "ingestor", RUN, keep_previous=True)),
        ProductWrite(gone, None),
    ]
    return writes, new, changed, gone


async def _assert_applied_once(mongo_catalog: MongoCatalog, new: Product, changed: Product, gone: Product) -> None:
    assert await mongo_catalog.get(new.product_id) == new
    assert await mongo_catalog.get(changed.product_id) == changed
    assert await mongo_catalog.get(gone.product_id) is None
    assert [(e.product_id, e.version) async for e in mongo_catalog.entries_from(RUN)] == [
        (changed.product_id, 2),
        (new.product_id, 1),
    ]
    assert await mongo_catalog.history.count_documents({}) == 3  # keep's creation, its change, new's creation


async def _assert_untouched(mongo_catalog: MongoCatalog, writes: list[ProductWrite]) -> None:
    for write in writes:
        assert await mongo_catalog.get(write.product_id) == write.before
    assert await mongo_catalog.history.count_documents({"source": RUN}) == 0
    assert await mongo_catalog.history.count_documents({}) == 2


@pytest.mark.parametrize(
    ("commands", "times", "data"),
    [
        (["insert"], 1, {"errorCode": 112}),  # WriteConflict: the server labels it TransientTransactionError
        (["update"], 1, {"errorCode": 6, "errorLabels": ["RetryableWriteError"]}),
        (["delete"], 2, {"errorCode": 9001, "errorLabels": ["TransientTransactionError"]}),
        (["insert"], 1, {"closeConnection": True}),  # a network error inside the transaction
        (["update", "delete"], 3, {"closeConnection": True}),
        (["commitTransaction"], 2, {"closeConnection": True}),  # the commit's outcome is unknown: retried as a commit
    ],
    ids=["write-conflict", "retryable-label", "transient-label", "connection-lost", "three-losses", "commit-lost"],
)
async def test_a_transient_failure_is_retried_and_the_batch_applied_once(
    mongo_catalog: MongoCatalog, faulty: tuple[Any, Failures], commands: list[str], times: int, data: dict[str, Any]
) -> None:
    client, failures = faulty
    writes, new, changed, gone = await _batch(mongo_catalog)
    catalog = MongoCatalog(client[mongo_catalog.database.name], FAST)
    async with fail_point(client, commands, times, **data):
        await catalog.write_batch(writes)
    assert len(failures.names) == times and set(failures.names) <= set(commands)
    if commands == ["commitTransaction"]:  # the commit was tried again, not the whole transaction
        assert failures.started_names.count("update") == 1
    await _assert_applied_once(mongo_catalog, new, changed, gone)


async def test_a_permanent_failure_escapes_at_once_and_nothing_is_applied(
    mongo_catalog: MongoCatalog, faulty: tuple[Any, Failures]
) -> None:
    client, failures = faulty
    writes, *_ = await _batch(mongo_catalog)
    catalog = MongoCatalog(client[mongo_catalog.database.name], FAST)
    async with fail_point(client, ["insert"], "alwaysOn", errorCode=2):  # BadValue: no label, not retryable
        with pytest.raises(OperationFailure) as caught:
            await catalog.write_batch(writes)
    assert caught.value.code == 2
    assert failures.names == ["insert"]  # tried once, not again
    await _assert_untouched(mongo_catalog, writes)


async def test_retries_are_bounded_and_leave_nothing_applied(
    mongo_catalog: MongoCatalog, faulty: tuple[Any, Failures]
) -> None:
    client, failures = faulty
    writes, *_ = await _batch(mongo_catalog)
    catalog = MongoCatalog(client[mongo_catalog.database.name], dataclasses.replace(FAST, attempts=3))
    async with fail_point(client, ["update"], "alwaysOn", errorCode=112):
        with pytest.raises(OperationFailure) as caught:
            await catalog.write_batch(writes)
    assert caught.value.has_error_label("TransientTransactionError")
    assert failures.names == ["update"] * 3
    await _assert_untouched(mongo_catalog, writes)


async def test_batch_reads_survive_lost_connections(mongo_catalog: MongoCatalog, faulty: tuple[Any, Failures]) -> None:
    client, failures = faulty
    p = product(payload(variants=[variant("RB3016-A", gtin="08053672000016")]))
    await mongo_catalog.add(p, creation(p))
    catalog = MongoCatalog(client[mongo_catalog.database.name], FAST)
    async with fail_point(client, ["find"], 3, closeConnection=True):
        assert (await catalog.fingerprints([p.product_id]))[p.product_id].version == 1
        assert await catalog.sku_owners(["RB3016-A"]) == {"RB3016-A": p.product_id}
        assert await catalog.gtin_owners(["08053672000016"]) == {"08053672000016": "RB3016-A"}
        assert await catalog.get_many([p.product_id]) == {p.product_id: p}
    assert failures.names == ["find"] * 3


async def test_entries_from_resumes_after_a_broken_cursor(
    mongo_catalog: MongoCatalog, faulty: tuple[Any, Failures], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.mongo.bulk_writes.PAGE", 2)
    client, failures = faulty
    items = [product(payload(f"P{i}", variants=[variant(f"P{i}-A")])) for i in range(4)]
    writes = [ProductWrite(None, p, record_change(None, p, "ingestor", RUN, keep_previous=True)) for p in items]
    await mongo_catalog.write_batch(writes)
    changes = [_later(p, "Two") for p in items[:3]]
    await mongo_catalog.write_batch(
        [
            ProductWrite(p, c, record_change(p, c, "ingestor", RUN, keep_previous=True))
            for p, c in zip(items, changes, strict=False)
        ]
    )
    catalog = MongoCatalog(client[mongo_catalog.database.name], FAST)
    expected = sorted([(p.product_id, 1) for p in items] + [(c.product_id, 2) for c in changes])
    async with fail_point(client, ["getMore"], 2, closeConnection=True):
        listed = [(e.product_id, e.version) async for e in catalog.entries_from(RUN)]
    assert failures.names == ["getMore", "getMore"]
    assert listed == expected


async def test_storing_run_errors_survives_lost_connections(
    mongo_catalog: MongoCatalog, faulty: tuple[Any, Failures]
) -> None:
    client, failures = faulty
    runs = MongoIngestionRuns(client[mongo_catalog.database.name], FAST)
    errors = [RowError(line, None, "price", "invalid_value", "x") for line in range(2, 12)]
    async with fail_point(client, ["insert"], 3, closeConnection=True):
        await runs.add_errors("run-1", 0, errors)
    assert failures.names == ["insert"] * 3
    assert await runs.errors("run-1", None, 100) == list(enumerate(errors))
