"""The pipeline's precise answers: each row error, each policy, rollback's refusals, a failing store."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from adapters.feeds.sample_feed import generate_rows
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from adapters.memory.ingestion_runs import MemoryIngestionRuns
from application.authorization import Authorizer
from application.catalog_commands import PatchVariant
from application.ingestion import IngestFeed, RunNotFound
from application.ingestion_queries import GetRun, ListRuns, RunErrors
from application.ingestion_rollback import RollbackRefused, RollbackRun
from application.run_leases import RunLeases
from domain.errors import AccessDenied, ValidationFailed
from domain.ingestion import ErrorPolicy, RunStatus
from domain.ports import Fingerprint, ProductWrite
from tests.builders import SANITIZER, caller
from tests.unit.test_ingestion_properties import ListFeed

ADMIN = caller("ops")
ROWS = list(generate_rows(styles=3, seed=11))


class Events:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []
        self.rows: dict[str, int] = {}
        self.runs: list[str] = []
        self.unfinished: dict[str, int] = {}

    def event(self, name: str, **fields: Any) -> None:
        self.lines.append((name, fields))

    def ingestion_rows(self, outcome: str, count: int) -> None:
        self.rows[outcome] = self.rows.get(outcome, 0) + count

    def ingestion_run(self, status: str, seconds: float) -> None:
        self.runs.append(status)

    def runs_unfinished(self, status: str, count: int) -> None:
        self.unfinished[status] = count


@pytest.fixture
def world() -> dict[str, Any]:
    clock, audit = FixedClock(), MemoryAuditLog()
    return {
        "catalog": MemoryCatalog(),
        "runs": MemoryIngestionRuns(),
        "clock": clock,
        "audit": audit,
        "authorizer": Authorizer(audit, clock),
        "events": Events(),
    }


def ingest(world: dict[str, Any], catalog: Any = None, batch_size: int = 4) -> IngestFeed:
    events = world["events"]
    return IngestFeed(
        catalog or world["catalog"],
        world["runs"],
        world["clock"],
        SANITIZER,
        world["authorizer"],
        metrics=events,
        log=events,
        batch_size=batch_size,
    )


def rollback(world: dict[str, Any]) -> RollbackRun:
    events = world["events"]
    return RollbackRun(world["catalog"], world["runs"], world["clock"], world["authorizer"], events, events)


async def errors_of(world: dict[str, Any], run_id: str) -> list[tuple[int, str | None, str | None, str]]:
    found = await world["runs"].errors(run_id, None, 1000)
    return [(e.line, e.sku, e.field, str(e.code)) for _, e in found]


async def test_each_row_error_is_reported_with_line_sku_field_and_code(world: dict[str, Any]) -> None:
    await ingest(world)(ListFeed(ROWS[:2]), ADMIN)  # the catalog holds the first style's first two SKUs
    other = copy.deepcopy(ROWS[-1])
    rows = copy.deepcopy(ROWS[2:6])
    rows[0]["lens_width_mm"] = 9
    rows[1]["$where"] = "sleep(1)"
    stolen = {**copy.deepcopy(other), "sku": ROWS[0]["sku"]}  # a stored SKU under another product
    twin = {**copy.deepcopy(other), "sku": other["sku"] + "X"}  # same GTIN as ``other``
    restyled = {**copy.deepcopy(other), "sku": other["sku"] + "Y", "model_name": "Other", "gtin": None}
    feed = [*rows, other, copy.deepcopy(other), stolen, twin, restyled, {**other, "sku": "Z99", "colour": "x"}]
    feed[-1].pop("gtin", None)
    world["clock"].advance(seconds=1)
    run = await ingest(world)(ListFeed(feed), ADMIN)
    assert run.status is RunStatus.SUCCEEDED
    found = await errors_of(world, run.run_id)
    assert (1, rows[0]["sku"].upper(), "lens_width_mm", "out_of_range") in found
    assert (2, rows[1]["sku"].upper(), "$where", "threat_detected") in found
    assert (6, other["sku"], "sku", "duplicate_sku") in found
    assert (6, other["sku"], "gtin", "duplicate_gtin") in found
    assert (7, ROWS[0]["sku"], "sku", "sku_conflict") in found
    assert (8, other["sku"] + "X", "gtin", "duplicate_gtin") in found
    assert (9, other["sku"] + "Y", None, "style_conflict") in found
    assert run.counts.invalid == 6 and run.counts.rows == 10
    assert run.unknown_fields == {"$where": 1, "colour": 1}


async def test_a_gtin_stored_on_another_sku_is_a_gtin_conflict(world: dict[str, Any]) -> None:
    await ingest(world)(ListFeed(ROWS[:1]), ADMIN)
    thief = {**copy.deepcopy(ROWS[-1]), "gtin": ROWS[0]["gtin"]}
    run = await ingest(world)(ListFeed([thief]), ADMIN)
    assert await errors_of(world, run.run_id) == [(1, thief["sku"], "gtin", "gtin_conflict")]


async def test_a_gtin_of_another_variant_of_the_same_product_is_a_gtin_conflict(world: dict[str, Any]) -> None:
    await ingest(world)(ListFeed(ROWS[:1]), ADMIN)
    sibling = {**copy.deepcopy(ROWS[1]), "gtin": ROWS[0]["gtin"]}  # same product, the first row's GTIN
    run = await ingest(world)(ListFeed([sibling, ROWS[2]]), ADMIN)
    assert await errors_of(world, run.run_id) == [(1, sibling["sku"], "gtin", "gtin_conflict")]
    assert (run.counts.created, run.counts.invalid) == (1, 1)
    stored = await world["catalog"].get_by_sku(ROWS[0]["sku"])
    assert stored.skus == tuple(sorted((ROWS[0]["sku"], ROWS[2]["sku"])))


async def test_malformed_rows_are_errors_of_their_line_only(world: dict[str, Any]) -> None:
    class Broken(ListFeed):
        def rows(self):  # type: ignore[no-untyped-def]
            from domain.feed_rows import FeedRow

            yield FeedRow(1, None, "not valid JSON")
            yield from (FeedRow(i + 2, dict(r)) for i, r in enumerate(self._rows))

    run = await ingest(world)(Broken(ROWS[:3]), ADMIN)
    assert (run.counts.rows, run.counts.invalid, run.counts.created) == (4, 1, 3)
    assert await errors_of(world, run.run_id) == [(1, None, None, "malformed_row")]


async def test_reject_all_writes_nothing_when_one_row_is_invalid(world: dict[str, Any]) -> None:
    rows = copy.deepcopy(ROWS)
    rows[-1]["price"] = "-1"
    run = await ingest(world)(ListFeed(rows), ADMIN, error_policy=ErrorPolicy.REJECT_ALL)
    assert run.status is RunStatus.REJECTED and "invalid row" in (run.reason or "")
    assert world["catalog"]._products == {}
    assert world["events"].runs == ["rejected"]
    ok = await ingest(world)(ListFeed(ROWS), ADMIN, error_policy=ErrorPolicy.REJECT_ALL)
    assert ok.status is RunStatus.SUCCEEDED and ok.counts.created == len(ROWS)


async def test_a_brand_scoped_caller_writes_only_its_brands(world: dict[str, Any]) -> None:
    brand = ROWS[0]["brand"]
    scoped = caller("partner", "catalog_manager", brands=(brand,))
    run = await ingest(world)(ListFeed(ROWS), scoped)
    outside = [r for r in ROWS if r["brand"] != brand]
    assert run.counts.invalid == len(outside) and run.counts.created == len(ROWS) - len(outside)
    assert {code for *_, code in await errors_of(world, run.run_id)} <= {"invalid_value"}
    with pytest.raises(AccessDenied):
        await ingest(world)(ListFeed(ROWS), caller("val", "viewer"))


async def test_rollback_refuses_after_a_later_change_unless_forced(world: dict[str, Any]) -> None:
    first = await ingest(world)(ListFeed(ROWS[:2]), ADMIN)
    changed = [{**r, "stock_quantity": 99} for r in ROWS[:2]]
    second = await ingest(world)(ListFeed(changed + ROWS[2:]), ADMIN)
    product = await world["catalog"].get_by_sku(ROWS[0]["sku"])
    await PatchVariant(world["catalog"], world["clock"], world["authorizer"])(
        ROWS[0]["sku"], {"stock_quantity": 1}, product.version, ADMIN
    )
    with pytest.raises(RollbackRefused) as refused:
        await rollback(world)(second.run_id, ADMIN)
    assert refused.value.products == (product.product_id,)
    undone = await rollback(world)(second.run_id, ADMIN, force=True)
    assert undone.status is RunStatus.ROLLED_BACK and undone.rolled_back_by == ADMIN.actor
    assert world["events"].runs[-1] == "rolled_back"
    assert [f["forced"] for n, f in world["events"].lines if n == "ingestion.run.rolled_back"] == [True]
    restored = await world["catalog"].get_by_sku(ROWS[0]["sku"])
    assert restored.variant(ROWS[0]["sku"]).stock_quantity == int(ROWS[0].get("stock_quantity", 0))
    assert restored.version == product.version + 2  # the patch, then the rollback: versions keep counting
    history = await world["catalog"].entries(product.product_id)
    assert history[-1].source == f"ingestion:{second.run_id}" and history[-1].reverts
    assert await world["catalog"].get_by_sku(ROWS[-1]["sku"]) is None  # created by the run: gone
    assert (await world["runs"].get(first.run_id)).status is RunStatus.SUCCEEDED


async def test_rollback_refuses_dry_runs_rejected_runs_and_unknown_runs(world: dict[str, Any]) -> None:
    dry = await ingest(world)(ListFeed(ROWS), ADMIN, dry_run=True)
    with pytest.raises(RollbackRefused):
        await rollback(world)(dry.run_id, ADMIN)
    with pytest.raises(RunNotFound):
        await rollback(world)("nope", ADMIN)
    with pytest.raises(AccessDenied):
        await rollback(world)(dry.run_id, caller("e", "editor"))


async def test_run_queries_page_errors_and_list_newest_first(world: dict[str, Any]) -> None:
    bad = [{**copy.deepcopy(r), "lens_width_mm": 1} for r in ROWS] * 1
    runs = []
    for _ in range(3):
        world["clock"].advance(seconds=1)
        runs.append(await ingest(world)(ListFeed(bad), ADMIN))
    leases = RunLeases(world["runs"], world["catalog"], world["clock"])
    assert [r.run_id for r in await ListRuns(world["runs"], world["authorizer"], leases)(ADMIN, 2)] == [
        runs[2].run_id,
        runs[1].run_id,
    ]
    assert (await GetRun(world["runs"], world["authorizer"], leases)(runs[0].run_id, ADMIN)).counts.invalid == len(bad)
    read = RunErrors(world["runs"], world["authorizer"])
    import application.ingestion_queries as queries

    page_size, queries.ERRORS_PAGE = queries.ERRORS_PAGE, 5
    try:
        seen: list[Any] = []
        cursor = None
        while True:
            page = await read(runs[0].run_id, ADMIN, cursor)
            seen.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        queries.ERRORS_PAGE = page_size
    assert [e.line for e in seen] == list(range(1, len(bad) + 1))
    with pytest.raises(ValidationFailed):
        await read(runs[0].run_id, ADMIN, "x'; drop")
    with pytest.raises(RunNotFound):
        await read("missing", ADMIN)


class FailingCatalog(MemoryCatalog):
    """A store whose writes fail for good after ``good`` batches."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    async def write_batch(self, writes: Sequence[ProductWrite], then: Any = None) -> None:
        if self.good == 0:
            raise ConnectionRefusedError("the database is gone")
        self.good -= 1
        await super().write_batch(writes, then)


async def test_a_permanent_storage_error_fails_the_run_and_a_rerun_converges(world: dict[str, Any]) -> None:
    failing = FailingCatalog(good=1)
    world["catalog"] = failing
    run = await ingest(world, batch_size=3)(ListFeed(ROWS), ADMIN)
    assert run.status is RunStatus.FAILED and "the database is gone" in (run.reason or "")
    assert 0 < len(failing._products) < 3
    failing.good = 100
    again = await ingest(world, batch_size=3)(ListFeed(ROWS), ADMIN)
    assert again.status is RunStatus.SUCCEEDED and again.counts.unchanged == 3
    reference = MemoryCatalog()
    world_ref = {**world, "catalog": reference, "runs": MemoryIngestionRuns()}
    await ingest(world_ref)(ListFeed(ROWS), ADMIN)
    assert {p: x.draft for p, x in failing._products.items()} == {p: x.draft for p, x in reference._products.items()}


class LyingCatalog(MemoryCatalog):
    """Reads back something else than what was written: the data-flow validation must notice."""

    async def fingerprints(self, product_ids: Any) -> dict[str, Fingerprint]:
        found = await super().fingerprints(product_ids)
        return {pid: Fingerprint(fp.product_id, fp.version, "tampered", fp.variant_hashes) for pid, fp in found.items()}


async def test_a_failed_data_flow_check_fails_the_run_and_raises_an_alert(world: dict[str, Any]) -> None:
    run = await ingest(world, LyingCatalog())(ListFeed(ROWS), ADMIN)
    assert run.status is RunStatus.FAILED
    failed = [c.name for c in run.checks if not c.passed]
    assert "written_content_readable" in failed
    alerts = [fields for name, fields in world["events"].lines if name == "ingestion.validation.failed"]
    assert alerts and alerts[0]["alert"] is True
    finished = [fields for name, fields in world["events"].lines if name == "ingestion.run.finished"]
    assert finished[-1]["status"] == "failed"


async def test_metrics_count_rows_by_outcome_once_per_run(world: dict[str, Any]) -> None:
    await ingest(world)(ListFeed(ROWS), ADMIN)
    await ingest(world)(ListFeed(ROWS), ADMIN)
    assert world["events"].rows == {"created": len(ROWS), "updated": 0, "unchanged": len(ROWS), "invalid": 0}
    assert world["events"].runs == ["succeeded", "succeeded"]


async def test_a_feed_stores_one_spelling_per_brand_and_a_dry_run_registers_none(world: dict[str, Any]) -> None:
    from adapters.memory.brands import MemoryBrandNames

    brands = MemoryBrandNames()
    feed = IngestFeed(world["catalog"], world["runs"], world["clock"], SANITIZER, world["authorizer"], brands=brands)
    first = {**copy.deepcopy(ROWS[0]), "brand": "nordvik", "style_id": "N1", "sku": "N1-A", "gtin": None}
    others = [
        {**copy.deepcopy(ROWS[0]), "brand": spelling, "style_id": f"N{n}", "sku": f"N{n}-A", "gtin": None}
        for n, spelling in ((2, "Nordvik"), (3, "NORDVIK"))
    ]
    dry = await feed(ListFeed([first]), ADMIN, dry_run=True)
    assert dry.counts.created == 1 and await brands.canonical(["X"], register=False) == {"X": "X"}
    assert await brands.canonical(["NoRdViK"], register=False) == {"NoRdViK": "NoRdViK"}  # the dry run left none
    run = await feed(ListFeed([first, *others]), ADMIN)
    assert run.counts.created == 3 and run.counts.invalid == 0
    stored = await world["catalog"].get_many({"nordvik-n1", "nordvik-n2", "nordvik-n3"})
    assert {product.brand for product in stored.values()} == {"nordvik"}  # the first spelling written


async def test_a_dry_run_counts_two_spellings_of_a_new_brand_as_the_real_run_does(world: dict[str, Any]) -> None:
    """A pass that registers no brand still gives a new brand one spelling (the first it meets), so
    ``Zorvik`` and ``zorvik`` in one product are no style conflict in a dry run or under reject-all."""
    from adapters.memory.brands import MemoryBrandNames

    feed = IngestFeed(
        world["catalog"], world["runs"], world["clock"], SANITIZER, world["authorizer"], brands=MemoryBrandNames()
    )
    rows = [
        {**copy.deepcopy(ROWS[0]), "brand": spelling, "style_id": "Z1", "sku": f"Z1-{n}", "gtin": None}
        for n, spelling in enumerate(("Zorvik", "zorvik"))
    ]
    dry = await feed(ListFeed(rows), ADMIN, dry_run=True)
    strict = await feed(ListFeed(rows), ADMIN, error_policy=ErrorPolicy.REJECT_ALL)
    assert (dry.counts.valid, dry.counts.invalid) == (2, 0)
    assert strict.status is RunStatus.SUCCEEDED and strict.counts == dry.counts
    assert (await world["catalog"].get("zorvik-z1")).brand == "Zorvik"
