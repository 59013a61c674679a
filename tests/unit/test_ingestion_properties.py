"""Laws of the ingestion pipeline, over generated feeds, on the memory twins (FEED.md semantics).

- rows = valid + invalid, valid = created + updated + unchanged, for any feed;
- the same feed twice: the second run is all ``unchanged`` and changes nothing;
- ingest then roll back: the catalog's content is what it was, for any feed and any prior catalog;
- the batch size is invisible: any batch size gives the same catalog and the same counts;
- CSV and JSON Lines renderings of the same rows give the same catalog;
- a dry run and a rejected ``reject-all`` run write nothing;
- raw digests change no outcome: a row known by the digest of its record is not parsed, and only
  such rows are skipped (an API edit, a changed row, new parsing rules all make rows parse again).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.feeds.readers import FeedFile
from adapters.feeds.render import write_csv, write_jsonl
from adapters.feeds.sample_feed import generate_rows
from adapters.memory.audit_log import MemoryAuditLog
from adapters.memory.catalog import MemoryCatalog
from adapters.memory.clock import FixedClock
from adapters.memory.ingestion_runs import MemoryIngestionRuns
from application import ingestion
from application.authorization import Authorizer
from application.ingestion import IngestFeed
from application.ingestion_rollback import RollbackRefused, RollbackRun
from domain import feed_rows
from domain.feed_rows import FeedRow
from domain.history import record_change
from domain.identifiers import product_id_for
from domain.ingestion import ErrorPolicy, IngestionRun, RunStatus
from domain.money import Money
from tests.builders import SANITIZER, caller

ADMIN = caller("ingestor-test")


class ListFeed:
    """Rows held in a list: the pipeline reads them as it would read a file."""

    def __init__(self, rows: list[dict[str, Any]], name: str = "feed.jsonl") -> None:
        self._rows = rows
        self.name = name

    def rows(self) -> Iterator[FeedRow]:
        """``None`` in the list stands for a line that could not be decoded."""
        for index, row in enumerate(self._rows):
            yield (
                FeedRow(index + 1, None, "not a JSON object") if row is None else FeedRow(index + 1, copy.deepcopy(row))
            )


@dataclasses.dataclass
class World:
    catalog: MemoryCatalog
    runs: MemoryIngestionRuns
    clock: FixedClock

    @classmethod
    def new(cls) -> World:
        return cls(MemoryCatalog(), MemoryIngestionRuns(), FixedClock())

    def ingest(self, batch_size: int = 500) -> IngestFeed:
        authorizer = Authorizer(MemoryAuditLog(), self.clock)
        return IngestFeed(self.catalog, self.runs, self.clock, SANITIZER, authorizer, batch_size=batch_size)

    def rollback(self) -> RollbackRun:
        return RollbackRun(self.catalog, self.runs, self.clock, Authorizer(MemoryAuditLog(), self.clock))

    async def run(self, rows: list[dict[str, Any]], batch_size: int = 500, **options: Any) -> IngestionRun:
        self.clock.advance(seconds=1)
        return await self.ingest(batch_size)(ListFeed(rows), ADMIN, **options)

    async def content(self) -> dict[str, Any]:
        """Every product's content (draft and status), without versions and timestamps."""
        products = await self.catalog.get_many(set(self.catalog._products))
        return {pid: (p.draft, p.status) for pid, p in products.items()}

    async def versions(self) -> dict[str, int]:
        return {pid: p.version for pid, p in self.catalog._products.items()}


def _mutate(rows: list[dict[str, Any]], ops: list[tuple[str, int]]) -> list[dict[str, Any]]:
    rows = copy.deepcopy(rows)
    for op, index in ops:
        if not rows:
            break
        row = rows[index % len(rows)]
        if row is None:
            continue
        if op == "price":
            row["price"] = f"{int(float(row['price'])) + 1 + index % 7}.50"
        elif op == "stock":
            row["stock_quantity"] = (int(row.get("stock_quantity", 0)) + 3) % 40
        elif op == "drop":
            rows.remove(row)
        elif op == "break":
            row["lens_width_mm"] = "wide"
        elif op == "duplicate":
            rows.append(copy.deepcopy(row))
        elif op == "rename":  # a product-level change on one row only: a style conflict (or a rename)
            row["model_name"] = f"{row['model_name']} Neo"
        elif op == "malformed":
            rows.insert(index % len(rows), None)  # type: ignore[arg-type]
    return rows


MUTATIONS = ["price", "stock", "drop", "break", "duplicate", "rename", "malformed"]
OPS = st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 99)), max_size=6)
FEEDS = st.builds(
    lambda styles, seed, ops: _mutate(list(generate_rows(styles=styles, seed=seed)), ops),
    st.integers(1, 5),
    st.integers(0, 10_000),
    OPS,
)
LAWS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@LAWS
@given(feed=FEEDS, prior=FEEDS)
def test_counts_add_up_and_a_second_run_changes_nothing(feed: list[Any], prior: list[Any]) -> None:
    async def scenario() -> None:
        world = World.new()
        await world.ingest()(ListFeed(prior), ADMIN)
        first = await world.ingest(batch_size=7)(ListFeed(feed), ADMIN)
        c = first.counts
        assert first.status is RunStatus.SUCCEEDED, first
        assert c.rows == len(feed) == c.valid + c.invalid
        assert c.valid == c.created + c.updated + c.unchanged
        assert first.validation_passed
        before, versions = await world.content(), await world.versions()

        world.clock.advance(seconds=1)
        second = await world.ingest(batch_size=5)(ListFeed(feed), ADMIN)
        assert second.counts.unchanged == second.counts.valid == c.valid
        assert (second.counts.created, second.counts.updated, second.counts.invalid) == (0, 0, c.invalid)
        assert await world.content() == before
        assert await world.versions() == versions

    asyncio.run(scenario())


@LAWS
@given(feed=FEEDS, prior=FEEDS, batch=st.integers(1, 9))
def test_rollback_restores_the_catalog_content_before_the_run(feed: list[Any], prior: list[Any], batch: int) -> None:
    async def scenario() -> None:
        world = World.new()
        await world.ingest()(ListFeed(prior), ADMIN)
        before = await world.content()
        run = await world.ingest(batch_size=batch)(ListFeed(feed), ADMIN)
        world.clock.advance(seconds=1)
        undone = await world.rollback()(run.run_id, ADMIN)
        assert undone.status is RunStatus.ROLLED_BACK
        assert await world.content() == before
        with pytest.raises(RollbackRefused):  # once is all
            await world.rollback()(run.run_id, ADMIN)

    asyncio.run(scenario())


@LAWS
@given(feed=FEEDS, prior=FEEDS, batch=st.integers(1, 9))
def test_the_batch_size_changes_neither_the_catalog_nor_the_counts(
    feed: list[Any], prior: list[Any], batch: int
) -> None:
    async def scenario() -> tuple[Any, Any]:
        results = []
        for size in (batch, 500):
            world = World.new()
            await world.ingest()(ListFeed(prior), ADMIN)
            run = await world.ingest(batch_size=size)(ListFeed(feed), ADMIN)
            results.append((run.counts, await world.content()))
        return results[0], results[1]

    small, large = asyncio.run(scenario())
    assert small == large


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(styles=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_csv_and_json_lines_renderings_give_the_same_catalog(tmp_path: Path, styles: int, seed: int) -> None:
    rows = list(generate_rows(styles=styles, seed=seed))
    folder = tmp_path / f"{styles}-{seed}"
    folder.mkdir(exist_ok=True)
    write_jsonl(rows, folder / "feed.jsonl")
    write_csv(rows, folder / "feed.csv.gz")

    async def catalog_of(path: Path) -> Any:
        world = World.new()
        run = await world.ingest(batch_size=4)(FeedFile(path), ADMIN)
        assert run.counts.invalid == 0, run
        return await world.content()

    assert asyncio.run(catalog_of(folder / "feed.jsonl")) == asyncio.run(catalog_of(folder / "feed.csv.gz"))


@LAWS
@given(feed=FEEDS, prior=FEEDS, policy=st.sampled_from(ErrorPolicy))
def test_a_dry_run_writes_nothing_and_counts_what_a_real_run_would(
    feed: list[Any], prior: list[Any], policy: ErrorPolicy
) -> None:
    async def scenario() -> None:
        world = World.new()
        await world.ingest()(ListFeed(prior), ADMIN)
        before, versions = await world.content(), await world.versions()
        dry = await world.ingest(batch_size=3)(ListFeed(feed), ADMIN, dry_run=True, error_policy=policy)
        assert await world.content() == before and await world.versions() == versions
        real = await world.ingest(batch_size=3)(ListFeed(feed), ADMIN, error_policy=policy)
        assert dry.counts == real.counts
        assert dry.status is real.status
        if policy is ErrorPolicy.REJECT_ALL and real.counts.invalid:
            assert real.status is RunStatus.REJECTED
            assert await world.content() == before and await world.versions() == versions

    asyncio.run(scenario())


# Raw digests (ADR 0011): a row recognised by the digest of its record is not parsed, and that
# changes no outcome. The reference is the same pipeline with raw digests switched off.


@contextlib.contextmanager
def counted_parses() -> Iterator[list[int]]:
    """How many rows the pipeline parses while the block runs."""
    calls = [0]
    original = ingestion.parse_feed_row

    def counting(row: FeedRow, sanitizer: Any) -> Any:
        calls[0] += 1
        return original(row, sanitizer)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingestion, "parse_feed_row", counting)
        yield calls


@contextlib.contextmanager
def every_row_parsed() -> Iterator[None]:
    """The pipeline as it was before raw digests: no row has a raw key, so every row is parsed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ingestion, "raw_key", lambda row: None)
        yield


async def outcome(world: World, rows: list[Any], batch_size: int, **options: Any) -> tuple[Any, ...]:
    run = await world.run(rows, batch_size, **options)
    errors = await world.runs.errors(run.run_id, None, 10_000)
    return run.status, run.counts, run.checks, [error for _, error in errors], await world.content()


@LAWS
@given(prior=FEEDS, feed=FEEDS, ops=OPS, batch=st.integers(1, 9), policy=st.sampled_from(ErrorPolicy))
def test_raw_digests_change_no_outcome_of_any_sequence_of_runs(
    prior: list[Any], feed: list[Any], ops: list[tuple[str, int]], batch: int, policy: ErrorPolicy
) -> None:
    """prior, feed, the same feed again, then a changed feed: the same runs, errors and catalog."""
    later = _mutate(feed, ops)

    async def runs(world: World) -> list[Any]:
        return [
            await outcome(world, prior, 500),
            await outcome(world, feed, batch, error_policy=policy),
            await outcome(world, feed, batch, dry_run=True),
            await outcome(world, feed, batch),
            await outcome(world, later, batch, error_policy=policy),
            await outcome(world, later, 500),
            [*(await world.versions()).items()],
        ]

    async def scenario() -> None:
        with every_row_parsed():
            reference = await runs(World.new())
        assert await runs(World.new()) == reference

    asyncio.run(scenario())


@LAWS
@given(feed=FEEDS, prior=FEEDS, batch=st.integers(1, 9))
def test_a_second_run_of_a_feed_parses_only_its_invalid_rows(feed: list[Any], prior: list[Any], batch: int) -> None:
    async def scenario() -> None:
        world = World.new()
        await world.run(prior)
        await world.run(feed, batch)
        with counted_parses() as parses:
            second = await world.run(feed, batch)
        assert parses[0] <= second.counts.invalid

    asyncio.run(scenario())


@settings(max_examples=25, deadline=None)
@given(styles=st.integers(1, 8), seed=st.integers(0, 10_000), batch=st.integers(1, 40))
def test_a_second_run_of_a_valid_feed_parses_no_row_and_counts_every_row_unchanged(
    styles: int, seed: int, batch: int
) -> None:
    rows = list(generate_rows(styles=styles, seed=seed))

    async def scenario() -> None:
        world = World.new()
        first = await world.run(rows, batch)
        content, versions = await world.content(), await world.versions()
        with counted_parses() as parses:
            second = await world.run(rows, batch)
        assert parses[0] == 0
        assert second.status is RunStatus.SUCCEEDED and second.validation_passed
        assert second.counts == dataclasses.replace(
            first.counts, created=0, unchanged=len(rows), products_created=0, products_updated=0
        )
        assert await world.content() == content and await world.versions() == versions

    asyncio.run(scenario())


EDITS = st.sampled_from(["price", "color", "name", "description", "archive"])


@settings(max_examples=30, deadline=None)
@given(styles=st.integers(1, 6), seed=st.integers(0, 10_000), pick=st.integers(0, 999), edit=EDITS)
def test_after_an_api_edit_the_same_feed_restores_the_feed_content(
    styles: int, seed: int, pick: int, edit: str
) -> None:
    """The edit drops the product's raw digests: its rows are parsed again, and win."""
    rows = list(generate_rows(styles=styles, seed=seed))

    async def scenario() -> None:
        world = World.new()
        await world.run(rows)
        content = await world.content()
        pid = sorted(content)[pick % len(content)]
        before = await world.catalog.get(pid)
        assert before is not None
        world.clock.advance(seconds=1)
        now = world.clock.now()
        first = before.variants[0]
        if edit == "price":
            amount = first.price.amount + 1
            after = before.with_variant(dataclasses.replace(first, price=Money(amount, first.price.currency)), now)
        elif edit == "color":
            after = before.with_variant(dataclasses.replace(first, color_name="Edited"), now)
        elif edit == "name":
            after = before.replaced_by(dataclasses.replace(before.draft, name="Edited"), now)
        elif edit == "description":
            after = before.replaced_by(dataclasses.replace(before.draft, description_html="<p>edited</p>"), now)
        else:
            after = before.archived(now)
        await world.catalog.replace(after, before.version, record_change(before, after, "editor", "api"))

        with counted_parses() as parses:
            again = await world.run(rows)
        restored = await world.content()
        if edit == "archive":  # ingestion never changes a status; the content is the feed's
            assert restored == {**content, pid: (content[pid][0], after.status)}
            assert again.counts.updated == 0
        else:
            assert restored == content
            assert again.counts.updated >= 1
        assert parses[0] == sum(1 for row in rows if product_id_for(row["brand"], row["style_id"]) == pid)

    asyncio.run(scenario())


@settings(max_examples=30, deadline=None)
@given(
    styles=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    pick=st.integers(0, 999),
    change=st.sampled_from(["price", "stock", "rename", "break"]),
    batch=st.integers(1, 40),
)
def test_a_feed_with_one_changed_row_parses_that_row_and_counts_as_a_full_parse_would(
    styles: int, seed: int, pick: int, change: str, batch: int
) -> None:
    """A changed variant parses one row; a changed product (``rename``) makes the raw digests of
    its other variants stale (they stood for the old product fields), so those may parse too."""
    rows = list(generate_rows(styles=styles, seed=seed))
    changed = _mutate(rows, [(change, pick)])

    async def runs(world: World) -> tuple[Any, ...]:
        await world.run(rows, batch)
        with counted_parses() as parses:
            result = await outcome(world, changed, batch)
        return result, parses[0]

    async def scenario() -> None:
        with every_row_parsed():
            reference, _ = await runs(World.new())
        result, parses = await runs(World.new())
        assert result == reference
        if change == "rename":  # a product-level change: its product's other rows may parse again
            index = pick % len(rows)
            pid = product_id_for(rows[index]["brand"], rows[index]["style_id"])
            assert 1 <= parses <= sum(1 for row in rows if product_id_for(row["brand"], row["style_id"]) == pid)
        else:
            assert parses == 1

    asyncio.run(scenario())


@settings(max_examples=10, deadline=None)
@given(styles=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_a_new_rules_version_parses_every_row_once_more_and_stamps_the_new_digests(styles: int, seed: int) -> None:
    """Stored digests of older rules never match; the next run stores the new ones without a new version."""
    rows = list(generate_rows(styles=styles, seed=seed))

    async def scenario() -> None:
        world = World.new()
        await world.run(rows)
        content, versions = await world.content(), await world.versions()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(feed_rows, "RAW_RULES_VERSION", feed_rows.RAW_RULES_VERSION + 1)
            for expected_parses in (len(rows), 0):
                with counted_parses() as parses:
                    run = await world.run(rows)
                assert parses[0] == expected_parses
                assert run.counts.unchanged == len(rows) and run.validation_passed
        assert await world.content() == content and await world.versions() == versions

    asyncio.run(scenario())


class SlowWrites(MemoryCatalog):
    """Writes wait for the loop's next turns, as a real server's do: the parse-ahead gets to run."""

    async def write_batch(self, writes: Any, then: Any = None) -> None:
        for _ in range(40):
            await asyncio.sleep(0)
        await super().write_batch(writes, then)


@LAWS
@given(feed=FEEDS, prior=FEEDS, batch=st.integers(1, 40))
def test_parsing_ahead_changes_no_outcome_and_parses_no_row_twice(
    feed: list[Any], prior: list[Any], batch: int
) -> None:
    """The next batch's rows are parsed while this batch is written: a hint, never a difference."""

    async def scenario(ahead: bool) -> tuple[Any, ...]:
        world = World(SlowWrites(), MemoryIngestionRuns(), FixedClock())
        await world.run(prior, batch)
        with contextlib.ExitStack() as stack:
            if not ahead:
                patch = stack.enter_context(pytest.MonkeyPatch.context())
                patch.setattr(ingestion._Batch, "parse_ahead", _no_parse_ahead)
            parses = stack.enter_context(counted_parses())
            result = await outcome(world, feed, batch)
        return result, parses[0]

    with_ahead, parsed_with = asyncio.run(scenario(ahead=True))
    without, parsed_without = asyncio.run(scenario(ahead=False))
    assert with_ahead == without
    # Parsing ahead may parse a row its plan then finds unchanged (the batch before wrote its
    # product), never a row twice.
    assert parsed_without <= parsed_with <= len(feed)


async def _no_parse_ahead(self: Any, sanitizer: Any) -> None:
    return None


def test_a_cold_run_with_slow_writes_parses_every_row_exactly_once() -> None:
    rows = list(generate_rows(styles=30, seed=5))

    async def scenario() -> tuple[IngestionRun, int]:
        world = World(SlowWrites(), MemoryIngestionRuns(), FixedClock())
        with counted_parses() as parses:
            run = await world.run(rows, batch_size=20)
        return run, parses[0]

    run, parses = asyncio.run(scenario())
    assert run.status is RunStatus.SUCCEEDED and run.counts.created == len(rows)
    assert parses == len(rows)
