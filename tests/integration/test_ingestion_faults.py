"""Faults injected into the real server during whole ingestion runs (``configureFailPoint``).

Retryable failures (a transient error code, a closed connection) are retried: the run succeeds
with the counts of an undisturbed run. A permanent failure fails the run with its reason, leaves
only whole batches behind, and running the same feed again converges to the undisturbed catalog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from adapters.feeds.sample_feed import generate_rows
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.clock import FixedClock
from adapters.mongo.ingestion_runs import MongoIngestionRuns
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.retries import RetryPolicy
from application.authorization import Authorizer
from application.ingestion import IngestFeed
from domain.ingestion import RunStatus
from tests.builders import SANITIZER, caller
from tests.conftest import empty
from tests.integration.test_bulk_faults import APP, Failures, fail_point
from tests.unit.test_ingestion_properties import ListFeed

FAST = RetryPolicy(attempts=6, timeout=20.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
ROWS = list(generate_rows(styles=6, seed=21))
ADMIN = caller("faults")


RUNS: dict[str, MongoIngestionRuns] = {}
FAILURES: dict[str, Failures] = {}


@pytest.fixture
async def faulty(mongo_catalog: MongoCatalog, mongo_url: str) -> AsyncIterator[tuple[MongoCatalog, Any]]:
    """The catalog on a client of its own (its ``appName`` scopes the fail points to it); the run
    records stay on the undisturbed client, so a fault hits the catalog's writes only."""
    FAILURES["seen"] = Failures()
    client: Any = AsyncMongoClient(
        mongo_url, tz_aware=True, appname=APP, timeoutMS=20_000, event_listeners=[FAILURES["seen"]]
    )
    await empty(mongo_catalog.database)
    RUNS["runs"] = MongoIngestionRuns(mongo_catalog.database, FAST)
    try:
        yield MongoCatalog(client[mongo_catalog.database.name], FAST), client
    finally:
        await client.close()


def ingest(catalog: MongoCatalog) -> IngestFeed:
    clock = FixedClock()
    return IngestFeed(catalog, RUNS["runs"], clock, SANITIZER, Authorizer(MemoryAuditLog(), clock), batch_size=5)


async def content(catalog: MongoCatalog) -> dict[str, Any]:
    found = await catalog.get_many([doc["_id"] async for doc in catalog.products.find({}, {"_id": 1})])
    return {pid: product.draft for pid, product in found.items()}


async def undisturbed(catalog: MongoCatalog) -> tuple[Any, dict[str, Any], int]:
    """Counts, catalog and number of history entries of the same run without faults."""
    run = await ingest(catalog)(ListFeed(ROWS), ADMIN)
    entries = await catalog.history.count_documents({"source": f"ingestion:{run.run_id}"})
    result = (run.counts, await content(catalog), entries)
    await empty(catalog.database)
    return result


@pytest.mark.parametrize(
    "fault",
    [
        {"errorCode": 112, "times": 2},  # WriteConflict: labelled TransientTransactionError
        {"closeConnection": True, "times": 1},
        {"errorCode": 6, "errorLabels": ["RetryableWriteError"], "times": 1},  # HostUnreachable
    ],
    ids=["write-conflict", "closed-connection", "retryable-label"],
)
async def test_retryable_failures_are_retried_and_the_counts_are_right(
    faulty: tuple[MongoCatalog, Any], fault: dict[str, Any]
) -> None:
    catalog, client = faulty
    expected_counts, expected, entries = await undisturbed(catalog)
    times = fault.pop("times")
    async with fail_point(client, ["insert", "update"], times=times, **fault):
        run = await ingest(catalog)(ListFeed(ROWS), ADMIN)
    assert run.status is RunStatus.SUCCEEDED, run.reason
    assert len(FAILURES["seen"].names) == times, "the fault did happen, and was retried"
    assert run.counts == expected_counts
    assert await content(catalog) == expected
    history = await catalog.history.count_documents({"source": f"ingestion:{run.run_id}"})
    assert history == entries, "no batch applied twice"


async def test_a_permanent_failure_fails_the_run_and_a_rerun_converges(faulty: tuple[MongoCatalog, Any]) -> None:
    catalog, client = faulty
    expected_counts, expected, _ = await undisturbed(catalog)
    # The third batch's product inserts fail for good (code 2, BadValue: no retry label).
    await ingest(catalog)(ListFeed(ROWS[:10]), ADMIN)
    async with fail_point(client, ["insert"], times="alwaysOn", errorCode=2):
        failed = await ingest(catalog)(ListFeed(ROWS), ADMIN)
    assert failed.status is RunStatus.FAILED
    assert failed.reason and "OperationFailure" in failed.reason
    for pid, draft in (await content(catalog)).items():  # whole batches only: each variant as the feed says
        assert set(draft.variants) <= set(expected[pid].variants)
        assert dataclasses.replace(draft, variants=()) == dataclasses.replace(expected[pid], variants=())
    again = await ingest(catalog)(ListFeed(ROWS), ADMIN)
    assert again.status is RunStatus.SUCCEEDED
    assert await content(catalog) == expected
    assert again.counts.valid == expected_counts.valid
