"""``ingest.memory_growth`` and the cost curve: real ``eyewear ingest`` processes, one per feed size.

Each size runs in a fresh process (so its peak RSS is its own, read with ``os.wait4`` by a small
launcher) on a scratch database of its own on the same server, dropped right after, and reports
its pipeline time through ``--report``. The growth is the peak RSS at 10·N rows over the peak at
N rows: a pipeline whose memory is bounded by its batch stays near 1, whatever the feed's size.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from entrypoints.bench.ingestion import BenchFailed, write_feed
from entrypoints.bench.measure import Result, Sizes
from entrypoints.bench.session import CHILD_TIMEOUT_MS, Scratch, child_environment, drop_databases
from entrypoints.settings import Settings

EYEWEAR = [sys.executable, "-c", "from entrypoints.cli import main; main()"]


@dataclass(frozen=True)
class CurvePoint:
    rows: int
    #: The pipeline's own duration (the run report's), without the process start.
    seconds: float
    peak_rss_kib: int

    @property
    def us_per_row(self) -> float:
        return self.seconds / self.rows * 1e6

    @property
    def peak_mib(self) -> float:
        return self.peak_rss_kib / 1024

    def as_dict(self) -> dict[str, float]:
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "us_per_row": round(self.us_per_row, 1),
            "peak_rss_mib": round(self.peak_mib, 1),
        }


#: A small parent for each measured process: a child's peak RSS as the kernel reports it starts
#: from its parent's RSS at fork time (the copied address space, before ``exec``), so the bench,
#: which holds a whole catalog, must not be that parent.
LAUNCHER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "child.returncode = 0\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def launch(command: list[str], env: dict[str, str], errors: Path) -> tuple[int, int]:
    """Exit code and peak RSS (KiB on Linux) of ``command``, run under the small launcher."""
    with errors.open("wb") as stderr:
        launcher = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-S", "-c", LAUNCHER, *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # so that stopping the bench stops the measured process too
        )
        try:
            out, _ = launcher.communicate()
        except BaseException:  # Ctrl-C: the launcher and the ingestion go with the bench
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            raise
    code, peak = out.split()
    return int(code), int(peak)


def ingest_in_child(settings: Settings, scratch: Scratch, workdir: Path, feed: Path, label: str) -> CurvePoint:
    database = scratch.database(label)
    report = workdir / f"report-{label}.json"
    errors = workdir / f"stderr-{label}.txt"
    command = [*EYEWEAR, "ingest", str(feed), "--report", str(report)]
    code, peak = launch(command, child_environment(settings, database), errors)
    drop_databases(scratch.url, [database])  # keeps the server as small as it was for the next size
    if code != 0:
        lines = errors.read_text(errors="replace").strip().splitlines()
        raise BenchFailed(f"`eyewear ingest` of {feed.name} exited {code}: {lines[-1] if lines else 'no output'}")
    data = json.loads(report.read_text())
    if data["status"] != "succeeded":
        raise BenchFailed(f"`eyewear ingest` of {feed.name} ended {data['status']}: {data.get('reason')}")
    return CurvePoint(rows=data["counts"]["rows"], seconds=data["duration_seconds"], peak_rss_kib=peak)


def feed_sizes(sizes: Sizes) -> list[int]:
    return sorted({*sizes.curve, sizes.rows, sizes.rows * sizes.growth})


def memory_results(
    settings: Settings, scratch: Scratch, workdir: Path, sizes: Sizes
) -> tuple[list[Result], list[CurvePoint]]:
    """Synchronous, and run with no bench connection open: the measured processes have the server alone."""
    big = sizes.rows * sizes.growth
    points: dict[int, CurvePoint] = {}
    for rows in feed_sizes(sizes):
        feed = write_feed(workdir / f"feed-{rows}.jsonl", rows, 11)
        points[rows] = ingest_in_child(settings, scratch, workdir, feed, f"m{rows}")
        feed.unlink()
    small, large = points[sizes.rows], points[big]
    result = Result(
        "ingest.memory_growth",
        large.peak_rss_kib,
        small.peak_rss_kib,
        "KiB",
        f"peak RSS of a fresh `eyewear ingest` process: {large.rows:,} rows {large.peak_mib:,.0f} MiB vs"
        f" {small.rows:,} rows {small.peak_mib:,.0f} MiB; pipeline time per row {large.us_per_row:,.0f} µs"
        f" vs {small.us_per_row:,.0f} µs (operation timeout {CHILD_TIMEOUT_MS // 1000} s: docs/performance.md)",
    )
    return [result], [points[rows] for rows in sorted(points)]
