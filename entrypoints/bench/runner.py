"""``eyewear bench``: every measurement in one run, in an order that keeps each one clean.

In-process measurements first (ingestion, then the reads on the catalog it left, then auth and
HTTP), then, with the bench's container closed (no connection, no change stream left open), the
ingestion processes of the memory growth and the cost curve. Logs written meanwhile go to a file
(formatted as usual, so their cost stays in the numbers) instead of the terminal; warnings and
errors among them are repeated on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrypoints.bench import environment
from entrypoints.bench.audit_sinks import database_sink_results
from entrypoints.bench.auth import auth_results
from entrypoints.bench.http import http_results
from entrypoints.bench.ingestion import BenchFailed, ingestion_results, write_feed
from entrypoints.bench.measure import ORDER, Result, Sizes
from entrypoints.bench.memory import CurvePoint, feed_sizes, memory_results
from entrypoints.bench.reads import search_results, sku_results
from entrypoints.bench.report import document, plot, print_report, write_json
from entrypoints.bench.session import Scratch, open_session, scratch_settings, server_and_scratch
from entrypoints.bench.workers import worker_results
from entrypoints.settings import Settings

__all__ = ["BenchFailed", "BenchReport", "run_bench"]

Say = Callable[[str], None]
_CONSOLE_LEVEL = re.compile(r"\[(warning|error|critical)\s*\]")
MAX_REPLAYED = 20


@dataclass(frozen=True)
class BenchReport:
    environment: dict[str, Any]
    results: list[Result]
    curve: list[CurvePoint]


@contextlib.contextmanager
def logs_into(path: Path) -> Iterator[None]:
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    with path.open("w", encoding="utf-8") as sink:
        previous = [h.setStream(sink) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                handler.setStream(stream)


def _serious(line: str) -> bool:
    try:
        return str(json.loads(line).get("level", "")).lower() in ("warning", "error", "critical")
    except (ValueError, AttributeError):
        return bool(_CONSOLE_LEVEL.search(line))


def replay_serious(path: Path) -> None:
    lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if _serious(line)]
    for line in lines[:MAX_REPLAYED]:
        print(line, file=sys.stderr)
    if len(lines) > MAX_REPLAYED:
        print(f"… and {len(lines) - MAX_REPLAYED} more warnings", file=sys.stderr)


async def _measure(
    settings: Settings, scratch: Scratch, sizes: Sizes, mode: str, workdir: Path, say: Say
) -> tuple[dict[str, Any], list[Result]]:
    async with open_session(settings, scratch, workdir) as session:
        facts = environment.describe(
            mode=mode,
            rows=sizes.rows,
            samples_per_side=sizes.samples,
            server=await environment.server(session.database, scratch.embedded),
            cache="redis" if session.settings.redis_url else "memory",
            scratch_database=scratch.base,
            machine=environment.machine(),
        )
        results: list[Result] = []
        feed = await asyncio.to_thread(write_feed, workdir / f"feed-{sizes.rows}.jsonl", sizes.rows, 2026)
        say(f"ingesting {sizes.rows:,} rows, cold then unchanged, {sizes.rounds} round(s), and the driver alone")
        ingestion, catalog = await ingestion_results(session, sizes, feed)
        results += ingestion
        say(f"reading by SKU and searching: {sizes.samples:,} calls per side")
        results += await sku_results(session, sizes, catalog)
        say("reading by SKU with EYEWEAR_AUDIT_SINK=database, one caller then many")
        results += await database_sink_results(session, sizes, catalog)
        results += await search_results(session, sizes, catalog)
        say("verifying tokens")
        results += await auth_results(session, sizes)
        say(f"GET /api/v1/skus/{{sku}} over uvicorn: {sizes.samples:,} requests per side")
        results += await http_results(session, sizes, catalog)
    return facts, results


def _in_processes(settings: Settings, scratch: Scratch, sizes: Sizes, workdir: Path, say: Say) -> Any:
    say(f"ingesting in fresh processes: {', '.join(f'{n:,}' for n in feed_sizes(sizes))} rows")
    return memory_results(scratch_settings(settings, scratch), scratch, workdir, sizes)


def run_bench(
    settings: Settings,
    *,
    quick: bool,
    rows: int | None = None,
    samples: int | None = None,
    json_path: Path | None = None,
    plot_path: Path | None = None,
    say: Say = lambda message: print(f"bench: {message}", file=sys.stderr),
) -> BenchReport:
    sizes = Sizes.quick(rows, samples) if quick else Sizes.full(rows, samples)
    mode = "quick" if quick else "full"
    with tempfile.TemporaryDirectory(prefix="eyewear-bench-") as tmp, server_and_scratch(settings) as scratch:
        workdir = Path(tmp)
        where = "the embedded server" if scratch.embedded else "the configured server"
        say(f"scratch database {scratch.base} on {where}")
        log_file = workdir / "bench.log"
        try:
            with logs_into(log_file):
                facts, results = asyncio.run(_measure(settings, scratch, sizes, mode, workdir, say))
                growth, curve = _in_processes(settings, scratch, sizes, workdir, say)
                say("ingesting as two runs with one `eyewear worker`, then with two")
                growth += worker_results(settings, scratch, workdir, sizes)
        finally:
            replay_serious(log_file)
    order = {name: i for i, name in enumerate(ORDER)}
    report = BenchReport(facts, sorted(results + growth, key=lambda r: order.get(r.name, len(order))), curve)
    print_report(report.results, report.curve)
    if json_path is not None:
        write_json(json_path, document(report.environment, report.results, report.curve))
    if plot_path is not None:
        server = report.environment["server"]
        title = f"eyewear ingest cost by feed size ({server['kind']} {server['version']}, {mode} run)"
        plot(plot_path, report.curve, title)
    return report
