"""The ingestion pipeline: a SKU Genie feed into the catalog, batch by batch (FEED.md, CONTRACT.md 4.4).

recognise records stored unchanged (raw digests, ADR 0011) → parse → validate (the API's rules)
→ group rows of a brand + style into one product → enrich (the domain derives size labels, face
shapes, completeness…) → diff against what is stored (content hashes, fetched per batch) → write
only what changed (all-or-nothing batches, conditional on each
product's version) → verify what was written.

Memory stays bounded: rows are read as a stream and handled ``batch_size`` at a time. What the
run keeps across batches is one small digest per SKU and GTIN (to find duplicates) and one entry
per product (to find style conflicts and count products once) — never the rows themselves.

A run killed half-way leaves whole batches behind (each is one transaction); running the same
file again finds those rows unchanged and writes the rest, so it converges to the same catalog.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from application.authorization import Authorizer, Caller
from application.ingestion_state import Delta, Lease, Pass, ProductState, Resume, digest, encode_delta
from application.metrics import IngestionMetrics, NoIngestionMetrics
from application.run_leases import IngestionLog, NoIngestionLog, RunLeases, report_run
from domain.errors import DomainError, ErrorCode, NotFound, ProductConflict, VersionMismatch
from domain.feed_rows import (
    FeedRow,
    ParsedRow,
    RawKey,
    RowError,
    RowOutcome,
    fields_hash,
    known_identity,
    parse_feed_row,
    raw_key,
    unknown_fields,
)
from domain.history import ingestion_source, record_change
from domain.ingestion import (
    Check,
    Checkpoint,
    ErrorPolicy,
    IngestionRun,
    RunCounts,
    RunStatus,
    RunTakenOver,
    parse_source_name,
)
from domain.parsing import MAX_VARIANTS
from domain.ports import BatchWriter, BrandNames, BulkCatalog, Clock, Fingerprint, IngestionRuns, ProductWrite
from domain.product import Product
from domain.rbac import Permission, brand_key
from domain.sanitising import HtmlSanitizer

DEFAULT_BATCH_SIZE = 500
#: Distinct unknown field names remembered per run: a hostile feed cannot grow the report forever.
MAX_UNKNOWN_FIELDS = 50
#: How often a batch is planned again when a concurrent writer got to one of its products first.
WRITE_ATTEMPTS = 5
#: Rows parsed ahead between two turns of the loop: short, as a writing batch waits for its turn.
PARSE_AHEAD_STEP = 4


class FeedSource(Protocol):
    """A feed that can be read as a stream, more than once (``reject-all`` reads it twice)."""

    @property
    def name(self) -> str: ...

    def rows(self) -> Iterator[FeedRow]: ...


Progress = Callable[[RunCounts], None]


@dataclass(frozen=True, slots=True)
class _Row:
    """A readable row as the feed-wide and catalog rules see it: parsed, or (``parsed`` None)
    recognised by its raw digest as the very record that produced the stored variant (ADR 0011),
    its digests then taken from the stored fingerprint."""

    line: int
    product_id: str
    sku: str
    brand: str
    gtin: str | None
    fields_digest: str
    variant_digest: str
    raw_digest: str | None
    parsed: ParsedRow | None

    @classmethod
    def of(cls, row: ParsedRow, key: RawKey | None) -> _Row:
        brand = row.product_fields["brand"]
        raw = key.digest if key is not None else None
        return cls(
            row.line, row.product_id, row.sku, brand, row.variant.gtin, row.fields_digest, row.variant_digest, raw, row
        )

    def with_brand(self, brand: str) -> _Row:
        """This parsed row with another spelling of its brand (its product-level digest follows)."""
        if brand == self.brand or self.parsed is None:
            return self
        fields = {**self.parsed.product_fields, "brand": brand}
        digest = fields_hash(fields)
        parsed = dataclasses.replace(self.parsed, product_fields=fields, fields_digest=digest)
        return dataclasses.replace(self, brand=brand, fields_digest=digest, parsed=parsed)

    @classmethod
    def unchanged(cls, row: FeedRow, key: RawKey, fp: Fingerprint) -> _Row:
        assert row.fields is not None, "a raw key is read from a decoded record"
        brand, gtin = known_identity(row.fields)
        variant_digest = fp.variant_hashes[key.sku]
        return cls(row.line, key.product_id, key.sku, brand, gtin, fp.fields_hash, variant_digest, key.digest, None)


@dataclass(slots=True)
class _Plan:
    """One batch, diffed: what to count, what to write, and what to remember if it succeeds."""

    counts: RunCounts
    errors: list[RowError]
    writes: list[ProductWrite]
    states: dict[str, ProductState]
    expected: dict[str, tuple[str, dict[str, str]]]
    invalid_lines: set[int]
    #: Digests of the SKUs and GTINs of the batch's readable rows (valid or not).
    seen_skus: set[int] = field(default_factory=set)
    seen_gtins: set[int] = field(default_factory=set)
    #: Product id digest -> fields digest of the products whose first readable row is in this batch.
    new_styles: dict[int, int] = field(default_factory=dict)


class RunNotFound(NotFound):
    """No ingestion run with that id."""


class _LeaseLost(Exception):
    """The run is no longer this process's: stop before the next batch, record nothing."""


class IngestFeed:
    def __init__(
        self,
        catalog: BulkCatalog,
        runs: IngestionRuns,
        clock: Clock,
        sanitizer: HtmlSanitizer,
        authorizer: Authorizer,
        metrics: IngestionMetrics | None = None,
        log: IngestionLog | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        leases: RunLeases | None = None,
        brands: BrandNames | None = None,
    ) -> None:
        self.catalog = catalog
        self.runs = runs
        self.clock = clock
        self.sanitizer = sanitizer
        self.authorizer = authorizer
        self.metrics: IngestionMetrics = metrics or NoIngestionMetrics()
        self.log: IngestionLog = log or NoIngestionLog()
        self.batch_size = batch_size
        self.leases = leases or RunLeases(runs, catalog, clock, metrics=self.metrics, log=self.log)
        self.brands = brands

    async def start(
        self,
        source_name: str,
        caller: Caller,
        dry_run: bool = False,
        error_policy: ErrorPolicy = ErrorPolicy.SKIP_INVALID,
        *,
        source_field: str = "source",
    ) -> IngestionRun:
        """Authorizes and records a queued run (what ``POST /api/v1/ingestions`` answers at once),
        held by this process, which is to execute it."""
        run = await self.admit(source_name, caller, dry_run, error_policy, source_field=source_field)
        return await self.enqueue(run)

    async def admit(
        self,
        source_name: str,
        caller: Caller,
        dry_run: bool = False,
        error_policy: ErrorPolicy = ErrorPolicy.SKIP_INVALID,
        *,
        source_field: str = "source",
    ) -> IngestionRun:
        """Authorizes a run and checks its source name; nothing is stored yet (an HTTP upload is
        admitted before its body is read, and recorded once the body is in: ``enqueue``).

        The source name is checked after the permission (a caller without it learns nothing of its
        input); ``source_field`` names it in the error as the caller gave it (a header, say)."""
        run_id = uuid.uuid4().hex
        await self.authorizer.require(caller, Permission.INGESTION_RUN, f"ingestion:{run_id}")
        source_name = parse_source_name(source_name, source_field)
        return IngestionRun(
            run_id=run_id,
            status=RunStatus.QUEUED,
            dry_run=dry_run,
            error_policy=error_policy,
            source=source_name,
            actor=caller.actor,
            created_at=self.clock.now(),
            actor_roles=tuple(sorted(role.value for role in caller.principal.roles)),
            actor_brands=tuple(sorted(caller.principal.brands)),
            correlation_id=caller.correlation_id,
        )

    async def enqueue(self, run: IngestionRun, *, hold: bool = True) -> IngestionRun:
        """Records an admitted run as queued: held by this process under a lease until it executes
        it (if it dies first, the run is recorded interrupted like a run that died running), or, with
        ``hold`` false, for whichever executor takes it (a job engine's worker)."""
        queued = run.but(owner=self.leases.owner, lease_until=self.leases.until()) if hold else run.but(portable=True)
        await self.runs.add(queued)
        return queued

    async def hand_back(self, run_id: str) -> None:
        """This process stops working on its run before the end (it is shutting down), for another
        executor to go on from the run's checkpoints."""
        queued = await self.runs.hand_back(run_id, self.leases.owner)
        if queued is not None:
            self.log.event("ingestion.run.handed_back", run_id=run_id, rows=queued.counts.rows)

    async def __call__(
        self,
        source: FeedSource,
        caller: Caller,
        dry_run: bool = False,
        error_policy: ErrorPolicy = ErrorPolicy.SKIP_INVALID,
        progress: Progress | None = None,
    ) -> IngestionRun:
        run = await self.start(source.name, caller, dry_run, error_policy)
        return await self.execute(run, source, caller, progress)

    async def execute(
        self, run: IngestionRun, source: FeedSource, caller: Caller, progress: Progress | None = None
    ) -> IngestionRun:
        """Runs a queued run to its end, or goes on with one nobody works on any more from its last
        checkpoint; never raises for a data or storage problem (the run fails).

        Without a job engine, runs nobody works on are recorded interrupted first (a dead run's open
        transaction would make this one's batches wait). The run is then claimed (or taken over)
        under this process's lease, renewed while it works; a run this process cannot take (another
        holds it, or it ended) is returned as stored."""
        if not self.leases.takes_over:
            await self.leases.settle_all()
        writer = self.catalog.writer(self.runs)
        try:
            return await self._execute(run, source, caller, progress, writer)
        finally:
            await writer.close()

    async def fail_unstarted(self, run: IngestionRun, reason: str) -> IngestionRun:
        """Records a delivered run that cannot even begin (its feed is gone) as failed, saying why."""
        taken = await self._take(run, None)
        if taken is None:
            return await self.runs.get(run.run_id) or run
        failed = taken.but(status=RunStatus.FAILED, reason=reason, finished_at=self.clock.now(), lease_until=None)
        if not await self.runs.finish(failed, self.leases.owner):
            return await self._lost(run.run_id, self.leases.owner)
        report_run(failed, self.metrics, self.log)
        return failed

    async def _take(self, run: IngestionRun, writer: str | None) -> IngestionRun | None:
        """The run, claimed by this process; None when it is not to be had. With a job engine, a
        running run nobody works on any more is queued again first (what its writer left open
        released), and then claimed: taken over, to go on from its checkpoints."""
        owner = self.leases.owner
        stored = await self.runs.get(run.run_id) or run
        if self.leases.takes_over and stored.status is RunStatus.RUNNING and stored.owner != owner:
            stored = await self.leases.settle(stored)  # queued again (a portable run) or interrupted
        return await self.runs.claim(run.run_id, owner, self.leases.until(), writer, self.clock.now())

    async def _execute(
        self, run: IngestionRun, source: FeedSource, caller: Caller, progress: Progress | None, writer: BatchWriter
    ) -> IngestionRun:
        owner = self.leases.owner
        taken = await self._take(run, writer.identity)
        if taken is None:
            self.log.event("ingestion.run.not_claimed", run_id=run.run_id, owner=owner)
            stored = await self.runs.get(run.run_id)
            if stored is None:
                raise RunNotFound(f"no ingestion run {run.run_id!r}")
            return stored
        run = taken
        resume = Resume(await self.runs.checkpoints(run.run_id))
        batch_size = resume.batch_size or self.batch_size
        if resume.last is not None:
            self.log.event("ingestion.run.resumed", run_id=run.run_id, after_rows=resume.last.rows_read)
        else:
            self.log.event("ingestion.run.started", run_id=run.run_id, source=run.source, dry_run=run.dry_run)
        lease = Lease(counts=run.counts)
        keeper = asyncio.ensure_future(self._keep(run.run_id, owner, lease))
        current = Pass(run.run_id, write=False)
        try:
            two_passes = run.error_policy is ErrorPolicy.REJECT_ALL and not run.dry_run
            first = resume.restore(self._pass(run, not run.dry_run and not two_passes, writer, lease, 1))
            current = first
            if not (two_passes and resume.reached(2)):
                await self._read(source, first, caller, progress, True, batch_size)
            if two_passes and first.counts.invalid == 0:
                current = resume.restore(self._pass(run, True, writer, lease, 2))
                current.checkpoints = max(current.checkpoints, first.checkpoints)
                current.unknown = first.unknown
                await self._read(source, current, caller, progress, False, batch_size)
                current.errors_stored, current.invalid_rows_stored = first.errors_stored, first.invalid_rows_stored
            checks = await self._checks(run, current)
            if run.error_policy is ErrorPolicy.REJECT_ALL and current.counts.invalid > 0:
                status, reason = RunStatus.REJECTED, f"{current.counts.invalid} invalid row(s) under reject-all"
            elif all(check.passed for check in checks):
                status, reason = RunStatus.SUCCEEDED, None
            else:
                status = RunStatus.FAILED
                reason = "data-flow validation failed: " + ", ".join(c.name for c in checks if not c.passed)
                for check in checks:
                    if not check.passed:
                        self.log.event(
                            "ingestion.validation.failed",
                            run_id=run.run_id,
                            check=check.name,
                            detail=check.detail,
                            alert=True,
                        )
        except (_LeaseLost, RunTakenOver):
            return await self._lost(run.run_id, owner)
        except DomainError as error:
            checks, status, reason = [], RunStatus.FAILED, _one_line(error)
        except Exception as error:  # an unreadable feed, a permanent storage error: the run fails, saying why
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the driver's answer to a cancellation: stopping
                raise asyncio.CancelledError from error
            checks, status, reason = [], RunStatus.FAILED, f"{type(error).__name__}: {_one_line(error)}"
        finally:
            keeper.cancel()
            keeper.add_done_callback(_collect)
        run = run.but(
            status=status,
            reason=reason,
            counts=current.counts,
            checks=tuple(checks),
            unknown_fields=current.unknown,
            finished_at=self.clock.now(),
            lease_until=None,
        )
        if not await self.runs.finish(run, owner):
            return await self._lost(run.run_id, owner)
        await self.runs.forget_checkpoints(run.run_id)
        report_run(run, self.metrics, self.log)
        return run

    def _pass(self, run: IngestionRun, write: bool, writer: BatchWriter, lease: Lease, number: int) -> Pass:
        return Pass(run.run_id, write=write, writer=writer, lease=lease, number=number)

    async def _keep(self, run_id: str, owner: str, lease: Lease) -> None:
        """Renews the lease (with the counts so far) until cancelled, or until the run is not ours;
        not when a checkpoint renewed it meanwhile (a renewal is one more writer of the run's record)."""
        loop = asyncio.get_running_loop()
        lease.renewed_at = loop.time()
        while True:
            await asyncio.sleep(max(0.0, lease.renewed_at + self.leases.renew_every - loop.time()))
            if loop.time() - lease.renewed_at < self.leases.renew_every:
                continue
            lease.renewed_at = loop.time()
            try:
                held = await self.runs.renew(run_id, owner, self.leases.until(), lease.counts)
            except Exception as error:  # the database is away: try again next time (the lease has slack)
                self.log.event("ingestion.lease.renewal_failed", run_id=run_id, error=type(error).__name__)
                continue
            if not held:
                lease.lost = True
                return

    async def _lost(self, run_id: str, owner: str) -> IngestionRun:
        """The run was declared interrupted while this process still worked on it (it stalled past
        its lease): what it wrote stays in the change log; the record stays what the other process made it."""
        self.log.event("ingestion.run.lease_lost", run_id=run_id, owner=owner, alert=True)
        stored = await self.runs.get(run_id)
        if stored is None:
            raise RunNotFound(f"no ingestion run {run_id!r}")
        return stored

    async def abandon(self, run_id: str) -> None:
        """Records that this process's run stopped before its end (the process is shutting down)."""
        await self.leases.give_up(run_id)

    async def _read(
        self,
        source: FeedSource,
        state: Pass,
        caller: Caller,
        progress: Progress | None,
        store_errors: bool,
        batch_size: int,
    ) -> None:
        """Batch by batch, after the rows the pass's checkpoints say it has read; the next batch is
        read and its fingerprints asked for while this one is planned and written, so the server's
        answer costs no waiting (``_Batch``)."""
        pending: list[_Batch] = []  # the batch being handled, and the one read ahead
        if progress is not None and state.rows_read:
            progress(state.counts)
        try:
            async for rows in _batches(source.rows(), batch_size, skip=state.rows_read):
                pending.append(self._prepare(rows))
                if len(pending) == 2:
                    await self._finish(pending[0], pending[1], state, caller, progress, store_errors)
                    pending.pop(0)
                    await asyncio.sleep(0)  # let the server answer other requests between batches
            if pending:
                await self._finish(pending[0], None, state, caller, progress, store_errors)
                pending.pop(0)
            elif progress is not None:
                progress(state.counts)
        finally:
            for batch in pending:
                batch.forget()

    def _prepare(self, rows: list[FeedRow]) -> _Batch:
        batch = _Batch(rows, [raw_key(row) for row in rows])
        batch.ask(self.catalog)
        return batch

    async def _finish(
        self,
        batch: _Batch,
        following: _Batch | None,
        state: Pass,
        caller: Caller,
        progress: Progress | None,
        store_errors: bool,
    ) -> None:
        ahead = asyncio.ensure_future(following.parse_ahead(self.sanitizer)) if following is not None else None
        try:
            written = await self._batch(batch, state, caller, store_errors)
        finally:
            if ahead is not None:
                ahead.cancel()  # what it parsed stays parsed; the rest is parsed when planned
                ahead.add_done_callback(_collect)
        if following is not None:
            following.stale |= written & following.wanted  # asked before this batch wrote them
        if progress is not None:
            progress(state.counts)

    async def _batch(self, batch: _Batch, state: Pass, caller: Caller, store_errors: bool) -> set[str]:
        """Plans and writes one batch; the ids of the products it wrote."""
        if state.lease is not None and state.lease.lost:
            raise _LeaseLost
        for row in batch.rows:
            for name in unknown_fields(row.fields) if row.fields is not None else ():
                if name in state.unknown or len(state.unknown) < MAX_UNKNOWN_FIELDS:
                    state.unknown[name] = state.unknown.get(name, 0) + 1
        for attempt in range(WRITE_ATTEMPTS):
            try:
                # A writing pass first trusts the unique indexes to refuse a SKU or GTIN held
                # elsewhere (no lookups: they are most of a new feed's reads); on a refusal it plans
                # again with the lookups, and the rows at fault become row errors.
                plan = await self._plan(batch, state, caller, attempt)
                writes = plan.writes if state.write else []
                if state.writer is not None:  # the batch and the run's progress, all or nothing
                    await state.writer.write_batch(writes, self._checkpoint(batch, state, plan, store_errors))
                elif writes:
                    await self.catalog.write_batch(writes)
                break
            except (VersionMismatch, ProductConflict):
                # A SKU or GTIN is taken, or somebody else wrote one of these products meanwhile:
                # plan again from what is stored now.
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        if state.write and plan.writes:
            state.writes += sum(1 for write in plan.writes if write.entry is not None)
            await self._read_back(plan, state)
        for pid, product_state in plan.states.items():
            state.products.put(digest(pid), product_state.packed())
        for sku_key in plan.seen_skus:  # every readable row counts as seen, valid or not (FEED.md duplicate_sku)
            state.seen_skus.add(sku_key)
        for gtin_key in plan.seen_gtins:
            state.seen_gtins.add(gtin_key)
        for style_key, fields_key in plan.new_styles.items():
            state.styles.put(style_key, fields_key)
        state.counts = state.counts.plus(plan.counts)
        state.rows_read += len(batch.rows)
        if state.lease is not None:
            state.lease.counts = state.counts
            if state.writer is not None:  # the checkpoint renewed the lease
                state.lease.renewed_at = asyncio.get_running_loop().time()
        if store_errors and plan.errors:
            if state.writer is None:  # else stored with the checkpoint
                await self.runs.add_errors(state.run_id, state.errors_stored, plan.errors)
            state.errors_stored += len(plan.errors)
            state.invalid_rows_stored += len({error.line for error in plan.errors})
        if state.writer is not None:
            state.checkpoints += 1
        return {write.product_id for write in plan.writes} if state.write else set()

    def _checkpoint(self, batch: _Batch, state: Pass, plan: _Plan, store_errors: bool) -> Checkpoint:
        """The run's progress as it will be once this batch is committed (with it, in its transaction)."""
        errors = tuple(plan.errors) if store_errors else ()
        entries = sum(1 for write in plan.writes if write.entry is not None) if state.write else 0
        delta = Delta(
            skus=plan.seen_skus,
            gtins=plan.seen_gtins,
            products={digest(pid): product_state.packed() for pid, product_state in plan.states.items()},
            styles=plan.new_styles,
        )
        encoded = encode_delta(
            state,
            delta,
            errors_stored=state.errors_stored + len(errors),
            invalid_rows_stored=state.invalid_rows_stored + len({error.line for error in errors}),
            writes=state.writes + entries,
        )
        return Checkpoint(
            run_id=state.run_id,
            owner=self.leases.owner,
            number=state.checkpoints + 1,
            pass_number=state.number,
            rows_read=state.rows_read + len(batch.rows),
            batch_size=len(batch.rows) if batch.rows else self.batch_size,
            counts=state.counts.plus(plan.counts),
            lease_until=self.leases.until(),
            errors=errors,
            first_error=state.errors_stored,
            state=encoded,
        )

    async def _plan(self, batch: _Batch, state: Pass, caller: Caller, attempt: int) -> _Plan:
        # A writing pass first trusts the unique indexes to refuse a SKU or GTIN held elsewhere.
        optimistic = state.write and attempt == 0
        errors: list[RowError] = []
        invalid_lines: set[int] = set()

        def fail(line: int, sku: str | None, field_name: str | None, code: str, message: str) -> None:
            errors.append(RowError(line, sku, field_name, code, message))
            invalid_lines.add(line)

        # The stored fingerprints of the batch's products come first (one query): a row whose raw
        # digest is the one stored with its SKU is the record that produced the stored variant and
        # product fields, so it is valid and unchanged without being parsed (ADR 0011). The others
        # are parsed (once per batch, whatever the attempts).
        wanted = batch.wanted
        fingerprints = await batch.fingerprints(self.catalog, fresh=attempt > 0)
        parsed: list[_Row] = []
        for index, (record, key) in enumerate(zip(batch.rows, batch.keys, strict=True)):
            fp = fingerprints.get(key.product_id) if key is not None else None
            if key is not None and fp is not None and fp.raw_hashes.get(key.sku) == key.digest:
                parsed.append(_Row.unchanged(record, key, fp))
                continue
            outcome = batch.parse(index, self.sanitizer)
            for error in outcome.errors:
                fail(error.line, error.sku, error.field, error.code, error.message)
            if outcome.parsed is not None:
                parsed.append(_Row.of(outcome.parsed, key))
        if self.brands is not None:
            parsed = await self._canonical_brands(parsed, state)
        missing = {row.product_id for row in parsed} - wanted
        if missing:
            fingerprints.update(await self.catalog.fingerprints(missing))

        # Feed-wide rules, in feed order: duplicates and style conflicts.
        new_styles: dict[int, int] = {}
        batch_skus: set[int] = set()
        batch_gtins: set[int] = set()
        for row in parsed:
            sku_key = digest(row.sku)
            if sku_key in state.seen_skus or sku_key in batch_skus:
                fail(row.line, row.sku, "sku", ErrorCode.DUPLICATE_SKU, f"SKU {row.sku} appears earlier in the feed")
            batch_skus.add(sku_key)
            gtin = row.gtin
            if gtin is not None:
                gtin_key = digest(gtin)
                if gtin_key in state.seen_gtins or gtin_key in batch_gtins:
                    fail(
                        row.line, row.sku, "gtin", ErrorCode.DUPLICATE_GTIN, f"GTIN {gtin} appears earlier in the feed"
                    )
                batch_gtins.add(gtin_key)
            fields_key = digest(row.fields_digest)
            style_key = digest(row.product_id)
            first_fields = state.styles.get(style_key)
            if first_fields is None:  # the first readable row of the product: kept once the batch is
                first_fields = new_styles.setdefault(style_key, fields_key)
            if fields_key != first_fields:
                fail(
                    row.line,
                    row.sku,
                    None,
                    ErrorCode.STYLE_CONFLICT,
                    f"product-level fields differ from the first row of product {row.product_id!r}",
                )
            if not caller.principal.covers_brand(row.brand):
                await self._deny_brand(caller, state, row)
                fail(row.line, row.sku, "brand", ErrorCode.INVALID_VALUE, "is outside the brands this caller may write")

        # Catalog-wide rules, for every readable row (a row reports all its errors): a SKU belongs
        # to one product, a GTIN to one SKU. A SKU stored in its own product, or an unchanged
        # variant (whose GTIN is stored on that very SKU), cannot conflict, so only the other rows
        # are looked up — a feed that changed little costs little.
        def stored_hash(row: _Row) -> str | None:
            fp = fingerprints.get(row.product_id)
            return fp.variant_hashes.get(row.sku) if fp is not None else None

        # Optimistic: only rows already invalid are looked up (to report all their errors); the
        # write's unique indexes answer for the others.
        looked_up = [row for row in parsed if not optimistic or row.line in invalid_lines]
        unknown_skus = {row.sku for row in looked_up if stored_hash(row) is None}
        owners = await self.catalog.sku_owners(unknown_skus) if unknown_skus else {}
        gtins = {row.gtin for row in looked_up if row.gtin is not None and stored_hash(row) != row.variant_digest}
        gtin_owners = await self.catalog.gtin_owners(gtins) if gtins else {}
        for row in parsed:
            owner = owners.get(row.sku)
            if owner is not None and owner != row.product_id:
                fail(row.line, row.sku, "sku", ErrorCode.SKU_CONFLICT, f"SKU {row.sku} belongs to product {owner!r}")
            gtin = row.gtin
            holder = gtin_owners.get(gtin) if gtin is not None else None
            if holder is not None and holder != row.sku:
                fail(row.line, row.sku, "gtin", ErrorCode.GTIN_CONFLICT, f"GTIN {gtin} belongs to SKU {holder}")
        valid = [row for row in parsed if row.line not in invalid_lines]

        groups: dict[str, list[_Row]] = {}
        for row in valid:
            groups.setdefault(row.product_id, []).append(row)
        plan = await self._diff(groups, fingerprints, state, caller, errors, invalid_lines, len(batch.rows))
        plan.seen_skus, plan.seen_gtins, plan.new_styles = batch_skus, batch_gtins, new_styles
        return plan

    async def _canonical_brands(self, rows: list[_Row], state: Pass) -> list[_Row]:
        """Parsed rows take their brand's canonical spelling (``BrandNames``). A pass that writes
        nothing registers no new brand, and gives a brand the catalog does not know the first
        spelling this pass met, as the writing pass's registration would: the counts are the same."""
        assert self.brands is not None
        spellings = list(dict.fromkeys(row.brand for row in rows if row.parsed is not None))  # in feed order
        if not spellings:
            return rows
        names = await self.brands.canonical(spellings, register=state.write)
        if not state.write:
            names = {spelling: state.brands.setdefault(brand_key(spelling), names[spelling]) for spelling in spellings}
        return [row.with_brand(names[row.brand]) if row.parsed is not None else row for row in rows]

    async def _diff(
        self,
        groups: dict[str, list[_Row]],
        fingerprints: dict[str, Fingerprint],
        state: Pass,
        caller: Caller,
        errors: list[RowError],
        invalid_lines: set[int],
        rows: int,
    ) -> _Plan:
        created = updated = unchanged = products_created = products_updated = 0
        states: dict[str, ProductState] = {}
        to_write: dict[str, list[_Row]] = {}
        #: Products whose rows are all unchanged but whose stored raw digests are not the rows'
        #: (a catalog from before ADR 0011, a new rules version): stamped, not versioned.
        to_stamp: dict[str, list[_Row]] = {}
        for pid, group in groups.items():
            fp = fingerprints.get(pid)
            row_fields = group[0].fields_digest
            known = state.product(pid)
            if known is None:
                known = ProductState(
                    existed=fp is not None,
                    fields_changed=fp is None or fp.fields_hash != row_fields,
                )
                if not known.existed:
                    products_created += 1
            stored = dict(fp.variant_hashes) if fp is not None else {}
            new_skus = [row for row in group if row.sku not in stored]
            if len(stored) + len(new_skus) > MAX_VARIANTS:
                for row in new_skus:
                    message = f"product {pid!r} would have more than {MAX_VARIANTS} variants"
                    errors.append(RowError(row.line, row.sku, "sku", ErrorCode.OUT_OF_RANGE, message))
                    invalid_lines.add(row.line)
                group = [row for row in group if row.sku in stored]
                if not group:
                    continue
            needs_write = fp is None or fp.fields_hash != row_fields
            for row in group:
                old = stored.get(row.sku)
                if old is None:
                    created += 1
                    needs_write = True
                elif old != row.variant_digest:
                    updated += 1
                    needs_write = True
                elif known.fields_changed:
                    updated += 1
                else:
                    unchanged += 1
                    continue
                if known.existed and not known.counted_updated:
                    known.counted_updated = True
                    products_updated += 1
            if needs_write:
                to_write[pid] = group
                known.written = True
            elif fp is not None and any(row.raw_digest not in (None, fp.raw_hashes.get(row.sku)) for row in group):
                to_stamp[pid] = group
            states[pid] = known
        writes: list[ProductWrite] = []
        if state.write and (to_write or to_stamp):
            writes = await self._writes(to_write, to_stamp, fingerprints, state, caller)
        expected = {
            pid: (group[0].fields_digest, {row.sku: row.variant_digest for row in group})
            for pid, group in to_write.items()
        }
        counts = RunCounts(
            rows=rows,
            valid=created + updated + unchanged,
            invalid=len(invalid_lines),
            created=created,
            updated=updated,
            unchanged=unchanged,
            products_created=products_created,
            products_updated=products_updated,
        )
        return _Plan(counts, errors, writes, states, expected, invalid_lines)

    async def _writes(
        self,
        groups: dict[str, list[_Row]],
        stamps: dict[str, list[_Row]],
        fingerprints: dict[str, Fingerprint],
        state: Pass,
        caller: Caller,
    ) -> list[ProductWrite]:
        # A product without a fingerprint was not stored when planned: nothing to read (if another
        # writer creates it meanwhile, the create is refused and the batch planned again).
        known = {pid for pid in set(groups) | set(stamps) if fingerprints.get(pid) is not None}
        stored = await self.catalog.get_many(known) if known else {}
        now = self.clock.now()
        source = ingestion_source(state.run_id)
        writes: list[ProductWrite] = []
        for pid, group in groups.items():
            before, fp = stored.get(pid), fingerprints.get(pid)
            _require_planned(pid, before, fp, group)
            variants = {v.sku: v for v in before.variants} if before is not None else {}
            variants.update({row.sku: row.parsed.variant for row in group if row.parsed is not None})
            template = next((row.parsed for row in group if row.parsed is not None), None)
            if template is None:  # every row unchanged: nothing to write (the diff never asks for it)
                continue
            draft = template.draft(tuple(variants[sku] for sku in sorted(variants)))
            held = [v.gtin for v in draft.variants if v.gtin is not None]
            if len(held) != len(set(held)):  # a GTIN of another variant of this product: look it up
                raise ProductConflict(f"a GTIN is held by two variants of product {pid!r}")
            after: Product
            if before is None:
                after = Product.create(draft, now)
            elif draft == before.draft:
                stored_raw = fp.raw_hashes if fp is not None else {}
                if any(row.raw_digest not in (None, stored_raw.get(row.sku)) for row in group):
                    stamps[pid] = group
                continue
            else:
                after = before.replaced_by(draft, now)
            entry = record_change(before, after, caller.actor, source, keep_previous=True)
            writes.append(ProductWrite(before, after, entry, _raw_digests(after, group, fp)))
        for pid, group in stamps.items():
            before, fp = stored.get(pid), fingerprints.get(pid)
            _require_planned(pid, before, fp, group)
            if before is not None:
                writes.append(ProductWrite(before, before, None, _raw_digests(before, group, fp)))
        return writes

    async def _read_back(self, plan: _Plan, state: Pass) -> None:
        """Every SKU a batch wrote is read back and compared with what the run meant to write."""
        stored = await self.catalog.fingerprints(set(plan.expected))
        for pid, (expected_fields, expected_variants) in plan.expected.items():
            fp = stored.get(pid)
            if fp is None or fp.fields_hash != expected_fields:
                state.readback_failed(pid)
                continue
            for sku, expected in expected_variants.items():
                if fp.variant_hashes.get(sku) != expected:
                    state.readback_failed(f"{pid}/{sku}")

    async def _deny_brand(self, caller: Caller, state: Pass, row: _Row) -> None:
        key = brand_key(row.brand)
        if key not in state.denied_brands:
            state.denied_brands.add(key)
            await self.authorizer.event(
                caller,
                Permission.PRODUCT_WRITE.value,
                f"ingestion:{state.run_id}:brand:{row.brand}",
                allowed=False,
                reason="brand outside the token's brand scope",
            )

    async def _checks(self, run: IngestionRun, state: Pass) -> list[Check]:
        c = state.counts
        checks = [
            Check(
                "rows_accounted",
                c.rows == c.valid + c.invalid,
                f"rows {c.rows} = valid {c.valid} + invalid {c.invalid}",
            ),
            Check(
                "valid_accounted",
                c.valid == c.created + c.updated + c.unchanged,
                f"valid {c.valid} = created {c.created} + updated {c.updated} + unchanged {c.unchanged}",
            ),
            Check(
                "errors_recorded",
                state.invalid_rows_stored == c.invalid and state.errors_stored >= c.invalid,
                f"{state.errors_stored} error(s) stored for {state.invalid_rows_stored} of {c.invalid} invalid row(s)",
            ),
        ]
        if not state.write:
            return checks
        failures = state.readback_failures
        checks.append(
            Check(
                "written_content_readable",
                not failures,
                "every written SKU reads back as written"
                if not failures
                else f"{failures} differ, e.g. {', '.join(state.readback_samples)}",
            )
        )
        checks.append(await self._only_feed_products(run, state))
        return checks

    async def _only_feed_products(self, run: IngestionRun, state: Pass) -> Check:
        """The store's change log holds exactly the writes this run made (all of products of the
        feed, by construction): counted on the server, no entry is read, whatever the run's size."""
        logged = await self.catalog.count_entries(ingestion_source(run.run_id))
        written = sum(1 for bits in state.products.values() if ProductState.unpacked(bits).written)
        return Check(
            "only_feed_products_changed",
            logged == state.writes,
            f"{logged} change(s) in the run's change log, {state.writes} made by it ({written} product(s))",
        )


class _Batch:
    """The rows of one batch, their raw keys, and each row parsed at most once (plans may repeat).

    Its fingerprints are asked for as soon as it is read (``ask``), while the batch before it is
    planned and written; the products that batch then wrote are ``stale`` and asked for again.
    Writes by others between the question and the plan are like writes between the plan and the
    write: the version conditions catch those that matter.
    """

    __slots__ = ("asked", "keys", "outcomes", "rows", "stale", "wanted")

    def __init__(self, rows: list[FeedRow], keys: list[RawKey | None]) -> None:
        self.rows = rows
        self.keys = keys
        self.wanted = {key.product_id for key in keys if key is not None}
        self.outcomes: dict[int, RowOutcome] = {}
        self.asked: asyncio.Future[dict[str, Fingerprint]] | None = None
        self.stale: set[str] = set()

    def ask(self, catalog: BulkCatalog) -> None:
        self.asked = asyncio.ensure_future(catalog.fingerprints(self.wanted))

    async def fingerprints(self, catalog: BulkCatalog, fresh: bool) -> dict[str, Fingerprint]:
        asked, self.asked = self.asked, None
        if fresh or asked is None:
            _forget(asked)
            return await catalog.fingerprints(self.wanted)
        found = dict(await asked)
        if self.stale:
            for pid in self.stale:
                found.pop(pid, None)
            found.update(await catalog.fingerprints(self.stale))
        return found

    def forget(self) -> None:
        asked, self.asked = self.asked, None
        _forget(asked)

    def parse(self, index: int, sanitizer: HtmlSanitizer) -> RowOutcome:
        outcome = self.outcomes.get(index)
        if outcome is None:
            outcome = self.outcomes[index] = parse_feed_row(self.rows[index], sanitizer)
        return outcome

    async def parse_ahead(self, sanitizer: HtmlSanitizer) -> None:
        """Parses, while the batch before is written, the rows its plan will parse (those whose raw
        digest is not the stored one), a few at a time: the loop runs this only while the writing
        batch waits for the server, so the parsing leaves the run's critical path. A hint only:
        ``parse`` gives the same outcome whether it ran here or not."""
        if self.asked is None:
            return
        fingerprints = await asyncio.shield(self.asked)  # the plan awaits the same answer
        for index, key in enumerate(self.keys):
            fp = fingerprints.get(key.product_id) if key is not None else None
            if key is None or fp is None or fp.raw_hashes.get(key.sku) != key.digest:
                self.parse(index, sanitizer)
                if index % PARSE_AHEAD_STEP == PARSE_AHEAD_STEP - 1:
                    await asyncio.sleep(0)


async def _batches(rows: Iterator[FeedRow], size: int, skip: int = 0) -> AsyncIterator[list[FeedRow]]:
    """The feed's rows ``size`` at a time, after the first ``skip`` (a resumed pass), each batch read
    in a worker thread: reading (inflating gzip, splitting lines, decoding JSON or CSV, skipping blank
    lines) is work in proportion to the file, not to its rows, and on the event loop it would stall
    every other request meanwhile."""
    while skip > 0:
        skipped = len(await asyncio.to_thread(_take, rows, min(skip, 50_000)))
        if not skipped:
            return
        skip -= skipped
    while batch := await asyncio.to_thread(_take, rows, size):
        yield batch


def _take(rows: Iterator[FeedRow], size: int) -> list[FeedRow]:
    return list(itertools.islice(rows, size))


def _forget(asked: asyncio.Future[dict[str, Fingerprint]] | None) -> None:
    """Cancels an unused question; its outcome, whatever it is, is collected when it comes (not
    awaited here: a cancellation of the run itself must not be swallowed)."""
    if asked is not None:
        asked.cancel()
        asked.add_done_callback(_collect)


def _collect(asked: asyncio.Future[Any]) -> None:
    if not asked.cancelled():
        asked.exception()


def _require_planned(pid: str, before: Product | None, fp: Fingerprint | None, group: list[_Row]) -> None:
    """The product read in full is the one the plan diffed (its fingerprint), or the plan is stale.

    Unparsed rows take their variant from it, and its raw digests come from the fingerprint.
    """
    if before is not None and fp is not None and before.version != fp.version:
        raise VersionMismatch(pid, fp.version, before.version)
    if before is None and any(row.parsed is None for row in group):
        raise VersionMismatch(pid, fp.version if fp is not None else 0, None)


def _raw_digests(after: Product, group: list[_Row], fp: Fingerprint | None) -> dict[str, str]:
    """The raw digests that stay true of ``after``: its rows' in this batch, and the stored ones of
    its other variants while the product's fields are unchanged (a raw digest stands for a
    variant *and* the product fields its record carried)."""
    digests = {row.sku: row.raw_digest for row in group if row.raw_digest is not None}
    if fp is not None and fields_hash(after.draft) == fp.fields_hash:
        for sku, digest in fp.raw_hashes.items():
            digests.setdefault(sku, digest)
    skus = set(after.skus)
    return {sku: digest for sku, digest in digests.items() if sku in skus}


def _one_line(error: BaseException) -> str:
    """One line for a run's ``reason``: a driver error's message without the server's reply it
    appends (``…, full error: {…}``, with cluster times and signatures nobody needs to read)."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    text = str(text).split(", full error:")[0]
    return " ".join(text.split())[:500]
