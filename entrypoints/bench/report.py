"""How the bench tells its results: a rich table on stdout, the JSON file, the cost-curve plot."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from entrypoints.bench.measure import TARGETS, Result
from entrypoints.bench.memory import CurvePoint


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:,.3f}"
    return f"{value:,.0f}"


def _console() -> Console:
    # A pipe or a file gets wide lines rather than details wrapped into a column of words.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 220, highlight=False)


def results_table(results: Sequence[Result]) -> Table:
    table = Table(title="eyewear bench: ours ÷ baseline (lower is better)", show_lines=True)
    for column, justify in (("name", "left"), ("ours", "right"), ("baseline", "right"), ("unit", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("target", justify="left", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for result in results:
        target = result.target
        met = target is None or result.ratio <= target
        mark = "" if target is None else f"≤ {target:g} {'✓' if met else '✗'}"
        table.add_row(
            result.name,
            _number(result.ours, result.unit),
            _number(result.baseline, result.unit),
            result.unit,
            f"[{'green' if met else 'red'}]{result.ratio:.2f}[/]",
            mark,
            result.detail,
        )
    return table


def curve_table(points: Sequence[CurvePoint]) -> Table:
    table = Table(title="ingestion cost by feed size (fresh `eyewear ingest` processes)")
    for column in ("rows", "pipeline s", "µs per row", "peak RSS MiB"):
        table.add_column(column, justify="right")
    for point in points:
        table.add_row(f"{point.rows:,}", f"{point.seconds:,.2f}", f"{point.us_per_row:,.0f}", f"{point.peak_mib:,.0f}")
    return table


def print_report(results: Sequence[Result], points: Sequence[CurvePoint]) -> None:
    console = _console()
    console.print(results_table(results))
    if points:
        console.print(curve_table(points))


def document(environment: dict[str, Any], results: Sequence[Result], points: Sequence[CurvePoint]) -> dict[str, Any]:
    return {
        "environment": environment,
        "results": [result.as_dict() for result in results],
        "targets": TARGETS,
        "cost_curve": [point.as_dict() for point in points],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def plot(path: Path, points: Sequence[CurvePoint], title: str) -> None:
    """Time per row and peak memory against the feed's size (log scale: sizes span decades)."""
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its font cache notice is no news
    from matplotlib import pyplot

    rows = [p.rows for p in points]
    figure, (time_axis, memory_axis) = pyplot.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    time_axis.plot(rows, [p.us_per_row for p in points], marker="o", color="tab:blue")
    time_axis.set(xlabel="rows in the feed", ylabel="pipeline time per row (µs)", title="time per row")
    memory_axis.plot(rows, [p.peak_mib for p in points], marker="o", color="tab:orange")
    memory_axis.set(xlabel="rows in the feed", ylabel="peak RSS of the process (MiB)", title="peak memory")
    for axis in (time_axis, memory_axis):
        axis.set_xscale("log")
        axis.set_xticks(rows, [f"{n:,}" for n in rows])
        axis.minorticks_off()
        axis.set_ylim(bottom=0)
        axis.grid(True, which="both", alpha=0.3)
        for x, y in zip(rows, axis.lines[0].get_ydata(), strict=True):
            axis.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
