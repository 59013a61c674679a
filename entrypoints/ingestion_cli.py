"""What ``eyewear ingest`` shows: a progress bar on a terminal, a summary, the JSON report file."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from domain.feed_rows import row_error_to_dict
from domain.ingestion import IngestionRun, RunCounts, run_report
from domain.ports import IngestionRuns

ERRORS_PAGE = 1000
SHOWN_CHECKS = 10


@contextlib.contextmanager
def progress_display(run_id: str, console: Console | None = None) -> Iterator[Callable[[RunCounts], None] | None]:
    """A live line (rows, rows/s, errors so far) on a terminal; nothing at all otherwise."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:>9,.0f} rows"),
        TextColumn("{task.fields[rate]:>8,.0f} rows/s"),
        TextColumn("[red]{task.fields[invalid]:,} invalid"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"ingesting {run_id[:8]}", total=None, rate=0.0, invalid=0)

        def update(counts: RunCounts) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = counts.rows / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=counts.rows, rate=rate, invalid=counts.invalid)

        yield update


def summary_lines(run: IngestionRun) -> list[str]:
    c = run.counts
    lines = [
        f"run {run.run_id}: {run.status.value}" + (" (dry run: nothing written)" if run.dry_run else ""),
        f"source {run.source}, policy {run.error_policy.value}",
        f"rows {c.rows}: valid {c.valid}, invalid {c.invalid}",
        f"created {c.created}, updated {c.updated}, unchanged {c.unchanged}"
        f" (products: {c.products_created} created, {c.products_updated} updated)",
    ]
    if run.duration_seconds is not None:
        lines.append(f"{run.duration_seconds:.2f} s, {run.rows_per_second or 0:,.0f} rows/s")
    if run.unknown_fields:
        lines.append("ignored unknown fields: " + ", ".join(sorted(run.unknown_fields)))
    failed = [check for check in run.checks if not check.passed]
    for check in failed[:SHOWN_CHECKS]:
        lines.append(f"check {check.name} FAILED: {check.detail}")
    if run.checks and not failed:
        lines.append(f"data-flow validation: {len(run.checks)} checks passed")
    if run.reason:
        lines.append(f"reason: {run.reason}")
    if c.invalid:
        lines.append(f"row errors: GET /api/v1/ingestions/{run.run_id}/errors (or --report FILE)")
    return lines


async def write_report(path: Path, run: IngestionRun, runs: IngestionRuns) -> None:
    """The run report with every row error, written as the errors are paged in (never all in memory)."""
    report = run_report(run)
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(report, ensure_ascii=False)[:-1])
        out.write(', "errors": [')
        after: int | None = None
        first = True
        while True:
            page = await runs.errors(run.run_id, after, ERRORS_PAGE)
            for seq, error in page:
                out.write(("" if first else ",\n") + json.dumps(row_error_to_dict(error), ensure_ascii=False))
                first = False
                after = seq
            if len(page) < ERRORS_PAGE:
                break
        out.write("]}\n")
